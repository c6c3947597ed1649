"""The local shell: the same core through a text adapter, on the in-process demo cluster."""

from __future__ import annotations

import os
import subprocess
import sys

from bot.core.outcomes import Who
from bot.demo import demo_runtime
from bot.emulator.demo import E5
from bot.shell.session import ShellSession
from bot.slack import blocks


def texts(messages: list[blocks.Message]) -> str:
    return "\n".join(blocks.to_text(m) for m in messages)


async def test_stop_by_typing_the_button_label() -> None:
    async with demo_runtime() as (runtime, emulator):
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        preview = texts(await session.handle('/ml-stop ner-prod --reason "demo"'))
        assert "[Stop]" in preview and "ner-prod" in preview
        result = texts(await session.handle("stop"))  # labels are case-insensitive
        assert "stopped (verified)" in result
        assert len(emulator.stop_calls("ner-prod")) == 1
        again = texts(await session.handle("Stop"))
        assert "already" in again.lower()
        assert len(emulator.stop_calls("ner-prod")) == 1


async def test_four_eyes_in_the_shell_with_as() -> None:
    async with demo_runtime() as (runtime, emulator):
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        shown = texts(await session.handle("/ml-stop elser-prod --force"))
        assert "[Approve]" in shown
        assert "someone else" in texts(await session.handle("Approve"))
        await session.handle("/as U0ADMIN2")
        assert "approved" in texts(await session.handle("Approve"))
        await session.handle("/as U0ADMIN1")
        assert "stopped" in texts(await session.handle("Stop"))
        assert "elser-prod" not in emulator.state.deployments


async def test_operator_is_limited_and_typos_are_explained() -> None:
    async with demo_runtime() as (runtime, _):
        session = ShellSession(runtime.service, Who("U0OPER1", "oper", "T0LOCAL", "C0DEMO"))
        assert "denied" in texts(await session.handle("/ml-stop elser-prod"))
        assert "did you mean `--force`" in texts(await session.handle("/ml-stop ner-prod --froce"))
        assert "not a command" in texts(await session.handle("hello"))


def test_readme_first_command_runs_the_demo_shell() -> None:
    script = "/ml-deployments\n/ml-stop search-e5\nStop\nquit\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ELASTICSEARCH_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "--demo"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "elser-prod" in proc.stdout  # the listing
    assert "stopped (verified)" in proc.stdout


def test_demo_shell_shows_what_stopping_the_endpoint_deployment_breaks() -> None:
    script = "/ml-stop elser-endpoint\n/ml-stop elser-endpoint --force\nquit\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ELASTICSEARCH_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "--demo"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    refused, _, forced = proc.stdout.partition("--force` overrides")
    assert "was created by inference endpoint `elser-endpoint`" in refused
    assert "[Stop]" not in refused  # ES would refuse: no button bound to fail
    assert "semantic_text `docs-semantic.content`" in proc.stdout
    assert "[Stop]" in forced


async def test_show_all_prints_every_target_in_the_shell() -> None:
    async with demo_runtime() as (runtime, emulator):
        for i in range(40):
            emulator.state.start_deployment(E5, f"d-{i:02d}-e5")
            emulator.state.put_pipeline(
                f"p-{i}", {"processors": [{"inference": {"model_id": f"d-{i:02d}-e5"}}]}
            )
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        preview = texts(await session.handle("/ml-stop d-* --force"))
        assert "[Show all 40]" in preview
        shown = texts(await session.handle("Show all 40"))
        assert all(f"d-{i:02d}-e5" in shown for i in range(40))
        assert emulator.stop_calls() == []  # showing is not stopping
