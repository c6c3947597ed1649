"""Two real `ml-chatops serve` processes sharing one redis-server, driven alternately."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.botproc import BotProcess
from support.driver import SlackDriver
from support.redis_server import redis_server, redis_url
from support.replica import Launcher, bot_env
from support.slack_standin import SlackStandIn

from bot.emulator import Emulator

__all__ = ["redis_server", "redis_url"]

pytestmark = pytest.mark.redis

ROLE_MAP = """
expire_after_seconds: 600
roles:
  ml-admin:
    - {action: [stop, start, status], deployments: ["*"],
       options: [force, finish_pending_work, wildcard, list, all]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1]}
  - {role: ml-admin, usergroups: [S0SRE]}
"""


@dataclass
class Replicas:
    """Two replicas, their drivers, and what they share."""

    slack: SlackStandIn
    emulator: Emulator
    bots: list[BotProcess]
    drivers: list[SlackDriver]


@pytest.fixture
def replica_role_map() -> str:
    """The config file the replicas start with (a module may override this fixture)."""
    return ROLE_MAP


@pytest.fixture
def replicas(
    replica_role_map: str,
    slack: SlackStandIn,
    emulator: tuple[Emulator, str],
    signing_secret: str,
    redis_url: str,
    tmp_path: Path,
) -> Iterator[Replicas]:
    emu, es_url = emulator
    slack.usergroups.update({"S0SRE": ["U0SRE1"]})
    config = tmp_path / "config.yml"
    config.write_text(replica_role_map)
    env = bot_env(
        slack_token=slack.bot_token,
        signing_secret=signing_secret,
        slack_api_url=slack.api_url,
        es_url=es_url,
        config=config,
        state=redis_url,
    )
    launcher = Launcher(env, tmp_path)
    try:
        bots = [launcher.start(), launcher.start()]
        yield Replicas(slack, emu, bots, [SlackDriver(b.url, signing_secret, slack) for b in bots])
    finally:
        launcher.stop_all()


def preview(r: Replicas, driver: SlackDriver, text: str, user: str = "U0ADMIN1") -> str:
    """Send /ml-stop through `driver`; return the action id on the preview's Stop button."""
    reply = driver.command("/ml-stop", text, user_id=user, channel_id="C0INCIDENTS")
    assert reply.status == 200, reply.body_text
    url = driver.last_response_url
    posts = r.slack.wait_for(lambda: r.slack.response_posts(url) or None, timeout=10)
    for block in posts[0].body["blocks"] if posts[0].body else []:
        for element in block.get("elements", []):
            if element.get("action_id") == "ml_stop.confirm":
                return str(element["value"])
    raise AssertionError(f"no Stop button in {posts[0].body}")


def test_command_on_one_replica_click_on_the_other(replicas: Replicas) -> None:
    r = replicas
    preview(r, r.drivers[0], "ner-prod --reason INC-1")
    reply = r.drivers[1].click_button("ml_stop.confirm")
    assert reply.status == 200
    # The channel line shows progress first, then is replaced by the result.
    result = r.slack.wait_for(lambda: finished_line(r), timeout=15)
    assert "ner-prod" in result["text"]
    assert len(r.emulator.stop_calls("ner-prod")) == 1


def finished_line(r: Replicas) -> dict[str, object] | None:
    """The channel's result line once it says how the stop ended."""
    lines = [m for m in r.slack.messages("C0INCIDENTS") if "stopped" in m["text"]]
    return lines[0] if lines else None


def test_fifty_clicks_split_across_replicas_stop_once(replicas: Replicas) -> None:
    r = replicas
    action_id = preview(r, r.drivers[1], "ner-prod")

    async def clicks() -> list[int]:
        sends = [
            r.drivers[i % 2].aclick("ml_stop.confirm", action_id, user_id="U0ADMIN1")
            for i in range(50)
        ]
        return [reply.status for reply in await asyncio.gather(*sends)]

    assert asyncio.run(clicks()) == [200] * 50
    r.slack.wait_for(lambda: finished_line(r), timeout=15)
    # Every click answered on its own response_url (the winner with the result, the
    # others with "already running/ran"): only then is the count of stops final.
    r.slack.wait_for(
        lambda: len({p.url for p in r.slack.response_posts()}) >= 51 or None, timeout=15
    )
    assert len(r.emulator.stop_calls("ner-prod")) == 1
    assert len(r.emulator.stop_calls()) == 1


def test_user_group_members_are_fetched_once_for_all_replicas(replicas: Replicas) -> None:
    r = replicas
    for driver, target in zip(r.drivers, ("ner-prod", "search-e5"), strict=True):
        preview(r, driver, target, user="U0SRE1")  # allowed only through S0SRE
    calls = [c for c in r.slack.calls("usergroups.users.list") if c.params["usergroup"] == "S0SRE"]
    assert len(calls) == 1
