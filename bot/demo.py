"""The demo: the emulator's demo cluster in-process plus a demo role map, no credentials."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from bot.adapters.audit import MemorySink
from bot.bootstrap import Runtime, build_runtime
from bot.emulator import Emulator, demo_state
from bot.settings import Settings

DEMO_ADMIN = "U0ADMIN1"
DEMO_CHANNEL = "C0DEMO"


def demo_config_path() -> Path:
    """The packaged demo role map."""
    return Path(str(resources.files("bot").joinpath("demo_config.yml")))


@asynccontextmanager
async def demo_runtime(
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[tuple[Runtime, Emulator]]:
    """A runtime wired to a fresh in-process demo cluster; torn down on exit.

    `clock`: the bot's clock (the shell's can be moved forward with `:advance`)."""
    emulator = Emulator(demo_state())
    url = await emulator.start()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        elasticsearch_url=url,
        ml_chatops_config=demo_config_path(),
        ml_chatops_state="sqlite:///:memory:",
    )
    runtime = build_runtime(settings, clock=clock, audit_sinks=[MemorySink()])
    try:
        yield runtime, emulator
    finally:
        await runtime.close()
        await emulator.stop()
