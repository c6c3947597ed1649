"""The local shell: the same core through a text adapter, on the in-process demo cluster."""

from __future__ import annotations

import dataclasses
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


async def test_a_non_command_lists_each_live_button_once() -> None:
    # Issue 20: two previews show two Stop and two Cancel buttons; a finished one is not live.
    async with demo_runtime() as (runtime, _):
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        await session.handle("/ml-stop ner-prod")
        await session.handle("/ml-stop search-e5")
        hint = texts(await session.handle("clear"))
        assert hint.count("`Stop`") == 1 and hint.count("`Cancel`") == 1
        await session.handle("Cancel")  # the newest: search-e5
        await session.handle("Cancel")  # then ner-prod
        assert "press" not in texts(await session.handle("clear"))  # nothing live is left


async def test_a_label_presses_the_newest_live_button_never_a_finished_one() -> None:
    async with demo_runtime() as (runtime, emulator):
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        await session.handle("/ml-stop ner-prod")
        await session.handle("/ml-stop search-e5")
        assert "search-e5" in texts(await session.handle("Cancel"))  # the newest
        stopped = texts(await session.handle("Stop"))  # search-e5's is finished: ner-prod's
        assert "ner-prod" in stopped and "stopped" in stopped
        assert emulator.stop_calls("search-e5") == []
        again = texts(await session.handle("Stop"))
        assert "run the command again" in again and len(emulator.stop_calls("ner-prod")) == 1


def test_the_banner_names_the_demo_users_and_the_approval_rule() -> None:
    script = "quit\n"
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
    for user in ("U0ADMIN1", "U0ADMIN2", "U0OPER1"):
        assert user in proc.stdout
    assert "elser-prod" in proc.stdout and "approval" in proc.stdout
    assert "/as U0ADMIN2" in proc.stdout


async def test_a_preview_past_its_expiry_is_not_offered_nor_pressed() -> None:
    async with demo_runtime() as (runtime, emulator):
        now = [runtime.service.clock()]
        runtime.service.deps = dataclasses.replace(runtime.service.deps, clock=lambda: now[0])
        session = ShellSession(runtime.service, Who("U0ADMIN1", "admin", "T0LOCAL", "C0DEMO"))
        await session.handle("/ml-stop ner-prod")
        now[0] += 601  # past the demo's 600 s expiry; no sweep has run yet
        assert "press" not in texts(await session.handle("clear"))
        pressed = texts(await session.handle("Stop"))
        assert "expired" in pressed and "run the command again" in pressed
        assert emulator.stop_calls("ner-prod") == []


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
