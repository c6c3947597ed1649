"""Timed reverts (issue 22) across real `ml-chatops serve` processes: a bot killed (SIGKILL)
before a revert's due time and started after it, and a bot killed mid-revert.

Real time is spent only on the shortest `--for` (10 s); "down for ten minutes" is the due
time moved back in the store while no bot runs (what ten minutes of downtime leave behind).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import text_of
from support.botproc import BotProcess
from support.driver import SlackDriver
from support.redis_server import redis_server, redis_url
from support.replica import Launcher, bot_env
from support.slack_standin import SlackStandIn

from bot.adapters.store_sqlite import ActionStore, open_store
from bot.core.model import ActionState, PendingAction
from bot.emulator import Emulator

__all__ = ["redis_server", "redis_url"]

CHANNEL = "C0INCIDENTS"
ROLE_MAP = """
audit: {file: AUDIT_FILE}
roles:
  ml-admin:
    - {action: [stop, start, status], deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1]}
"""


REDIS = pytest.param("redis", marks=pytest.mark.redis)


@pytest.fixture(params=["sqlite", REDIS])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both stores by default; a test waiting for real seconds takes one (`indirect`)."""
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def launch(
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
    tmp_path: Path,
) -> Iterator[Launcher]:
    """Start bot processes on demand; all are stopped at the end."""
    config = tmp_path / "config.yml"
    config.write_text(ROLE_MAP.replace("AUDIT_FILE", str(tmp_path / "audit.jsonl")))
    env = bot_env(
        slack_token=slack.bot_token,
        signing_secret=signing_secret,
        slack_api_url=slack.api_url,
        es_url=emulator[1],
        config=config,
        state=state_url,
    )
    launcher = Launcher(env, tmp_path)
    yield launcher
    launcher.stop_all()


def _store(state_url: str, job: Callable[[ActionStore], Any]) -> Any:
    async def run() -> Any:
        store: ActionStore = open_store(state_url)
        try:
            return await job(store)
        finally:
            await store.close()

    return asyncio.run(run())


def stored(state_url: str, action_id: str) -> PendingAction:
    found = _store(state_url, lambda s: s.get(action_id))
    assert isinstance(found, PendingAction), action_id
    return found


def wait_state(
    state_url: str, action_id: str, bot: BotProcess, states: set[ActionState], timeout: float
) -> PendingAction:
    """The action once it is in one of `states`."""
    deadline = time.monotonic() + timeout
    while True:
        found = stored(state_url, action_id)
        if found.state in states:
            return found
        assert time.monotonic() < deadline, f"still {found.state}:\n{bot.stderr()}"
        time.sleep(0.1)


def starts(emu: Emulator, deployment_id: str = "ner-prod") -> list[Any]:
    """The `_start` requests the cluster received (logged before any injected latency)."""
    return [
        r
        for r in emu.requests
        if r.endpoint == "ml.start" and r.query.get("deployment_id", "") == deployment_id
    ]


def timed_stop(slack: SlackStandIn, bot: BotProcess, signing_secret: str, state_url: str) -> str:
    """`/ml-stop ner-prod --for 10s`, confirmed on `bot`; the scheduled revert's id."""
    driver = SlackDriver(bot.url, signing_secret, slack)
    reply = driver.command("/ml-stop", "ner-prod --for 10s", channel_id=CHANNEL)
    assert reply.status == 200, reply.body_text
    target = slack.wait_for(lambda: driver.latest_click_target("ml_stop.confirm"), timeout=10)
    assert target.value is not None
    change_id = target.value
    assert driver.click_button("ml_stop.confirm", channel_id=CHANNEL).status == 200
    change = wait_state(state_url, change_id, bot, {ActionState.SUCCEEDED}, timeout=15)
    # The revert is saved before the change is final, and the final save names it: a bot
    # killed the moment the change shows succeeded cannot have lost its revert.
    assert change.revert_id is not None
    revert = stored(state_url, change.revert_id)
    assert revert.state is ActionState.SCHEDULED and revert.revert_of == change_id
    # The live line ("Reverts at …") is posted in the change's thread, then remembered.
    deadline = time.monotonic() + 10
    while not stored(state_url, revert.id).message.ts:
        assert time.monotonic() < deadline, f"no live line:\n{bot.stderr()}"
        time.sleep(0.05)
    return revert.id


def wait_until(at: float) -> None:
    """Sleep until the wall clock (the bot's clock) passes `at` (a few seconds at most)."""
    left = at - time.time()
    assert left < 15, left
    if left > 0:
        time.sleep(left)


def said_unknown(slack: SlackStandIn, *, top_level: bool) -> list[str]:
    """The unknown-outcome notices in the channel (top level) or in threads."""
    return [
        str(m["text"])
        for m in slack.messages(CHANNEL)
        if "the outcome is unknown" in m["text"] and (m.get("thread_ts") is None) == top_level
    ]


def reports(slack: SlackStandIn) -> list[str]:
    return [text_of(m) for m in slack.messages(CHANNEL) if "Timed revert" in text_of(m)]


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)  # 10 s of real time
def test_a_bot_killed_before_the_due_time_reverts_once_when_back(
    launch: Launcher,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
) -> None:
    emu = emulator[0]
    first = launch.start()
    revert_id = timed_stop(slack, first, signing_secret, state_url)
    first.kill()  # SIGKILL, well before the due time
    due = stored(state_url, revert_id).expires_at
    assert due > time.time()
    wait_until(due + 1)  # the due time passes with no bot running
    assert stored(state_url, revert_id).state is ActionState.SCHEDULED and not starts(emu)

    second = launch.start()  # its first sweep runs at start
    done = wait_state(state_url, revert_id, second, {ActionState.SUCCEEDED}, timeout=15)
    assert done.started_at is not None and done.started_at > due
    assert emu.state.deployments["ner-prod"].state == "started"
    said = slack.wait_for(lambda: reports(slack) or None, timeout=10)
    assert len(said) == 1 and "Timed revert done" in said[0], said
    # A few seconds late is within a sweep's granularity: no lateness is claimed.
    assert "late" not in said[0] and "after its time" not in said[0]
    third = launch.start()  # another restart (and its sweep) runs nothing again
    assert second.terminate() == 0 and third.terminate() == 0
    assert len(starts(emu)) == 1
    assert len(reports(slack)) == 1


def test_a_bot_down_for_ten_minutes_says_how_late_the_revert_ran(
    launch: Launcher,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
) -> None:
    emu = emulator[0]
    first = launch.start()
    revert_id = timed_stop(slack, first, signing_secret, state_url)
    first.kill()
    # Ten minutes pass with no bot: the due time is 10 min in the past when one starts.
    late_due = time.time() - 600
    moved = _store(
        state_url, lambda s: s.mutate(revert_id, lambda a: replace(a, expires_at=late_due))
    )
    assert isinstance(moved, PendingAction)

    second = launch.start()
    wait_state(state_url, revert_id, second, {ActionState.SUCCEEDED}, timeout=15)
    said = slack.wait_for(lambda: reports(slack) or None, timeout=10)
    assert len(said) == 1, said
    assert "ran 10 min late: the bot was not running at its time" in said[0], said[0]
    assert len(starts(emu)) == 1


@pytest.mark.parametrize("state_url", [REDIS], indirect=True)  # 10 s of real time
def test_a_bot_killed_mid_revert_leaves_it_unknown_and_never_reruns_it(
    launch: Launcher,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
) -> None:
    emu = emulator[0]
    first = launch.start()
    revert_id = timed_stop(slack, first, signing_secret, state_url)
    first.kill()
    emu.faults.latency["ml.start"] = 5.0  # the revert's restart hangs on the cluster...
    wait_until(stored(state_url, revert_id).expires_at + 1)

    second = launch.start()  # claims the due revert at start, and waits on `_start`
    slack.wait_for(lambda: starts(emu) or None, timeout=10)
    claimed = stored(state_url, revert_id)
    assert claimed.state is ActionState.EXECUTING
    second.kill()  # ...and the replica running it dies (SIGKILL)
    emu.faults.latency.clear()

    third = launch.start()  # recovery runs at start: the owner's pid is gone
    final = wait_state(state_url, revert_id, third, {ActionState.UNKNOWN}, timeout=10)
    assert final.state is ActionState.UNKNOWN
    # Told once in the channel (as every revert's outcome is), once in the change's thread
    # (the revert's result line), and the live line says what became of the revert.
    unknown = slack.wait_for(lambda: said_unknown(slack, top_level=True) or None, timeout=10)
    assert len(unknown) == 1, unknown
    assert unknown[0].startswith("The bot restarted (its process "), unknown[0]
    assert "while starting ner-prod on default" in unknown[0]
    assert len(said_unknown(slack, top_level=False)) == 1
    live = [m for m in slack.messages(CHANNEL) if m["text"] == "Revert outcome unknown"]
    assert len(live) == 1 and live[0].get("thread_ts"), slack.messages(CHANNEL)
    # Later sweeps (a fourth process's start sweep) never run it a second time.
    fourth = launch.start()
    assert third.terminate() == 0 and fourth.terminate() == 0
    assert stored(state_url, revert_id).state is ActionState.UNKNOWN
    assert len(starts(emu)) == 1
    assert not reports(slack)  # no "Timed revert done" claimed for an unknown outcome
