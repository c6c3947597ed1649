"""Restart safety: pending actions survive a restart; a stop cut off by a crash is `unknown`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import Bench
from support.botproc import BotProcess
from support.driver import SlackDriver
from support.redis_server import redis_server, redis_url
from support.replica import Launcher, bot_env
from support.serving import standin_client
from support.slack_standin import SlackStandIn
from test_store import make_action

from bot.adapters.audit import AuditLog, MemorySink
from bot.adapters.store_sqlite import ActionStore, SQLiteStore, open_store
from bot.app.recovery import cause_of, recover
from bot.core.model import ActionState, PendingAction
from bot.emulator import Emulator
from bot.server import sweep_once
from bot.slack.notices import SlackNotices

__all__ = ["redis_server", "redis_url"]

FOREIGN = "elsewhere|pid:[1]|4242|dead0000"
ROLE_MAP = """
audit: {file: AUDIT_FILE}
roles:
  ml-admin:
    - {action: [stop, status], deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1]}
"""


class Told:
    """Records outcome_unknown notices."""

    def __init__(self) -> None:
        self.actions: list[PendingAction] = []
        self.causes: list[str] = []

    async def outcome_unknown(self, action: PendingAction, cause: str) -> None:
        self.actions.append(action)
        self.causes.append(cause)


async def test_replicas_recovering_at_once_recover_each_orphan_once(tmp_path: Path) -> None:
    dead = SQLiteStore(tmp_path / "s.db", owner=FOREIGN, lease_seconds=0.05)
    await dead.put(make_action())
    await dead.put(make_action("a2"))
    for action_id in ("a1", "a2"):
        await dead.transition(action_id, ActionState.PROPOSED, ActionState.EXECUTING)
    await dead._keeper.stop()  # type: ignore[attr-defined]  # the owner crashes
    await asyncio.sleep(0.1)
    replicas = [SQLiteStore(tmp_path / "s.db") for _ in range(3)]
    sink, told = MemorySink(), Told()
    audit = AuditLog([sink], clock=time.time)
    results = await asyncio.gather(*(recover(s, audit, time.time, told) for s in replicas))
    assert sorted(a.id for found in results for a in found) == ["a1", "a2"]
    assert sorted(a.id for a in told.actions) == ["a1", "a2"]
    assert [(d["event"]["action"], d["event"]["outcome"]) for d in sink.docs] == [
        ("recover", "unknown")
    ] * 2
    doc = sink.docs[0]
    assert doc["user"]["id"] == "U1" and doc["ml_chatops"]["deployment_ids"] == ["elser-prod"]
    assert doc["event"]["reason"] == "INC-1" and doc["ml_chatops"]["flags"] == ["--force"]
    stored = await replicas[0].get("a1")
    assert stored is not None and stored.state is ActionState.UNKNOWN
    assert stored.finished_at is not None
    for store in replicas:
        await store.close()


async def test_a_live_owner_is_left_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.put(make_action())
    await store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert await recover(store, AuditLog([], time.time), time.time) == []
    await store.close()


async def test_a_replica_that_stopped_answering_is_named_not_a_restart(
    tmp_path: Path, slack: SlackStandIn
) -> None:
    dead = SQLiteStore(tmp_path / "s.db", owner=FOREIGN, lease_seconds=0.05)
    await dead.put(replace(make_action(), channel_id="C0INCIDENTS"))
    await dead.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    await dead._keeper.stop()  # type: ignore[attr-defined]  # the other replica goes silent
    await asyncio.sleep(0.1)  # past its lease
    survivor = SQLiteStore(tmp_path / "s.db")
    sink = MemorySink()
    notices = SlackNotices(standin_client(slack), time.time)
    found = await recover(survivor, AuditLog([sink], time.time), time.time, notices)
    assert [a.id for a in found] == ["a1"]
    said = "Replica elsewhere (pid 4242) stopped answering while stopping"
    posted = slack.messages("C0INCIDENTS")
    assert len(posted) == 1 and posted[0]["text"].startswith(said), posted
    assert "restarted" not in posted[0]["text"]
    assert sink.docs[0]["ml_chatops"]["explanation"].startswith(
        said.removesuffix(" while stopping")
    )
    await survivor.close()


def test_the_cause_names_this_host_or_the_replica() -> None:
    here = "host-a"
    assert cause_of(f"{here}|pid:[1]|77|abcd", here) == (
        "The bot restarted (its process 77 on host-a ended)"
    )
    assert cause_of("host-b|pid:[1]|88|abcd", here) == "Replica host-b (pid 88) stopped answering"
    assert cause_of(None, here) == cause_of("garbage", here) == "The bot restarted"


# ---- real processes ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
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


def stored(state_url: str, action_id: str) -> PendingAction | None:
    async def read() -> PendingAction | None:
        store: ActionStore = open_store(state_url)
        try:
            return await store.get(action_id)
        finally:
            await store.close()

    return asyncio.run(read())


def wait_final(state_url: str, action_id: str, bot: BotProcess) -> PendingAction:
    """The action once it reached a final state (10 s at most)."""
    deadline = time.monotonic() + 10
    while True:
        found = stored(state_url, action_id)
        if found is not None and found.state.is_final:
            return found
        assert time.monotonic() < deadline, f"still {found and found.state}: {bot.stderr()}"
        time.sleep(0.1)


def command(slack: SlackStandIn, driver: SlackDriver, text: str) -> str:
    """A /ml-stop whose preview arrived; the action id on its Stop button."""
    assert driver.command("/ml-stop", text).status == 200
    target = slack.wait_for(lambda: driver.latest_click_target("ml_stop.confirm"), timeout=10)
    assert target.value is not None
    return target.value


def test_restart_between_command_and_click(
    launch: Launcher,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
) -> None:
    first = launch.start()
    action_id = command(slack, SlackDriver(first.url, signing_secret, slack), "ner-prod")
    assert first.terminate() == 0
    second = launch.start()
    driver = SlackDriver(second.url, signing_secret, slack)
    assert driver.click_button("ml_stop.confirm").status == 200
    final = wait_final(state_url, action_id, second)
    assert final.state is ActionState.SUCCEEDED
    assert len(emulator[0].stop_calls("ner-prod")) == 1
    assert "ner-prod" in slack.messages("C0INCIDENTS")[0]["text"]


def test_kill_during_executing_leaves_an_unknown_outcome(
    launch: Launcher,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    state_url: str,
    tmp_path: Path,
) -> None:
    emu = emulator[0]
    first = launch.start()
    action_id = command(slack, SlackDriver(first.url, signing_secret, slack), "ner-prod")
    emu.faults.latency["ml.stop"] = 3.0  # the stop hangs on the cluster...
    assert SlackDriver(first.url, signing_secret, slack).click_button("ml_stop.confirm").status
    slack.wait_for(lambda: emu.stop_calls("ner-prod") or None, timeout=10)
    first.kill()  # ...and the bot dies while it waits
    emu.faults.latency.clear()
    running = stored(state_url, action_id)
    assert running is not None and running.state is ActionState.EXECUTING

    second = launch.start()  # recovery runs at start
    assert wait_final(state_url, action_id, second).state is ActionState.UNKNOWN

    # The channel's one line for the action (it showed progress) now says unknown.
    lines = slack.wait_for(
        lambda: [m for m in slack.messages("C0INCIDENTS") if "unknown" in m["text"]] or None,
        timeout=10,
    )
    assert len(slack.messages("C0INCIDENTS")) == 1
    assert "outcome is unknown" in lines[0]["text"]
    # Same host, the owner's pid is gone: this bot restarted (no replica is blamed).
    assert lines[0]["text"].startswith("The bot restarted (its process "), lines[0]["text"]
    assert "/ml-deployments ner-prod --cluster default" in lines[0]["text"]
    private = slack.wait_for(
        lambda: (
            [e for e in slack.ephemerals("C0INCIDENTS", "U0ADMIN1") if "unknown" in e["text"]]
            or None
        ),
        timeout=10,
    )
    assert "ner-prod" in private[-1]["text"]
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    recovered = [e for e in events if e["event"]["action"] == "recover"]
    assert len(recovered) == 1 and recovered[0]["event"]["outcome"] == "unknown"
    assert recovered[0]["ml_chatops"]["action_id"] == action_id

    # The old Stop button does nothing more.
    before = len(emu.stop_calls())
    driver = SlackDriver(second.url, signing_secret, slack)
    reply = driver.click("ml_stop.confirm", action_id)
    assert reply.status == 200
    slack.wait_for(lambda: slack.response_posts(driver.last_response_url) or None, timeout=10)
    assert len(emu.stop_calls()) == before


# ---- the sweeper's expiry notices -------------------------------------------------------------


def test_sweeper_tells_the_requester_a_preview_expired_once(bench: Bench) -> None:
    bench.command("ner-prod")
    url = bench.driver.last_response_url
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.clock.advance(601)
    bench.run(sweep_once(bench.runtime, notices))
    posts = bench.slack.wait_for(lambda: bench.slack.response_posts(url)[1:] or None)
    assert posts[0].status == 200
    assert posts[0].body is not None and "expired" in posts[0].body["text"]
    assert posts[0].body["replace_original"] is False  # a command's reply cannot be replaced
    assert "expired" in bench.ephemeral()["text"]
    bench.run(sweep_once(bench.runtime, notices))  # nothing more is due
    assert len(bench.slack.response_posts(url)) == 2
    assert [d["event"]["action"] for d in bench.audit.docs].count("recover") == 0


def test_sweeper_leaves_a_preview_whose_response_url_is_too_old(bench: Bench) -> None:
    bench.command("ner-prod")
    url = bench.driver.last_response_url
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.clock.advance(31 * 60)  # Slack no longer takes posts on that url
    bench.run(sweep_once(bench.runtime, notices))
    assert len(bench.slack.response_posts(url)) == 1  # just the preview
