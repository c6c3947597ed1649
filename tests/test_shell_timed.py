"""Timed changes in the shell: `:advance` moves the bot's clock and runs the sweep."""

from __future__ import annotations

from bot.core.outcomes import Who
from bot.demo import demo_runtime
from bot.shell.session import ShellClock, ShellSession
from bot.slack import blocks


def texts(messages: list[blocks.Message]) -> str:
    return "\n".join(blocks.to_text(m) for m in messages)


async def test_a_timed_stop_in_the_shell_warns_extends_and_reverts_once() -> None:
    clock = ShellClock()
    async with demo_runtime(clock) as (runtime, emulator):
        who = Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO")
        session = ShellSession(runtime.service, who, clock=clock)
        preview = texts(await session.handle("/ml-stop ner-prod --for 30m"))
        assert "Stop now; at" in preview and "1 allocation, adaptive off" in preview
        result = texts(await session.handle("Stop"))
        assert "stopped (verified)" in result and "Reverts at" in result and "[+30 min]" in result
        warned = texts(await session.handle(":advance 21m"))
        assert "@U0ADMIN1 the timed change reverts at" in warned
        extended = texts(await session.handle("+30 min"))
        assert "extended by 30 min by @U0ADMIN1" in extended
        assert "Timed revert done" not in texts(await session.handle(":advance 10m"))
        done = texts(await session.handle(":advance 30m"))
        assert "Timed revert done: restart `ner-prod`" in done
        assert emulator.state.deployments["ner-prod"].state == "started"
        assert "Timed revert done" not in texts(await session.handle(":advance 1h"))
        stale = texts(await session.handle("Revert now"))
        assert "already ran" in stale


async def test_advance_takes_a_duration() -> None:
    clock = ShellClock()
    async with demo_runtime(clock) as (runtime, _):
        session = ShellSession(runtime.service, Who("U0ADMIN1", "a", "T0", "C0DEMO"), clock=clock)
        assert "not a duration" in texts(await session.handle(":advance soon"))
        assert clock.offset == 0


async def test_a_revert_the_world_overtook_offers_a_preview_in_the_shell() -> None:
    clock = ShellClock()
    async with demo_runtime(clock) as (runtime, emulator):
        who = Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO")
        session = ShellSession(runtime.service, who, clock=clock)
        await session.handle("/ml-stop search-e5 --force --for 30m")
        assert "stopped (verified)" in texts(await session.handle("Stop"))
        model = next(m for m in emulator.state.models if m.startswith(".multilingual-e5"))
        emulator.state.start_deployment(model, "search-e5", number_of_allocations=1)
        found = texts(await session.handle(":advance 31m"))
        assert "Timed revert not run" in found and "someone started it" in found
        assert "preview a scale back to the settings it had" in found
        assert "[Preview scale back: search-e5]" in found
        preview = texts(await session.handle("Preview scale back: search-e5"))
        assert "1 allocation (1 allocated now) → *2 allocations*" in preview
        assert emulator.state.deployments["search-e5"].number_of_allocations == 1
