"""`ml-chatops serve` in Socket Mode, end to end through the stand-in's WebSocket.

The bot runs as a subprocess with SLACK_APP_TOKEN and no signing secret; the stand-in hands
it a Socket Mode URL of its own, pushes envelopes as Slack does and records the bot's acks.
Counts are read after a SIGTERM has drained every listener run, so nothing races the asserts.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ROLE_MAP, button_value, text_of
from support.botproc import BotProcess, clean_env, free_port
from support.driver import SlackDriver
from support.loop import BackgroundLoop
from support.redis_server import RedisServer, redis_server, redis_url
from support.shared import USERGROUPS
from support.slack_standin import SlackStandIn
from support.socket_mode import Ack

from bot.emulator import Emulator, demo_state
from bot.slack.edge import MAX_COMMAND_TEXT

__all__ = ["redis_server", "redis_url"]

ADMIN, CHANNEL = "U0ADMIN1", "C0INCIDENTS"
DOWN = "cannot reach the state store; nothing was done"


@dataclass
class SocketBot:
    """The bot in Socket Mode, the stand-in it is connected to, and the emulator it stops."""

    bot: BotProcess
    slack: SlackStandIn
    emulator: Emulator
    driver: SlackDriver

    def preview(self, deployment: str) -> dict[str, Any]:
        """Send `/ml-stop <deployment>` over the socket; return the reply on its response_url."""
        self.driver.socket_command("/ml-stop", deployment, user_id=ADMIN, channel_id=CHANNEL)
        url = self.driver.last_response_url
        posts = self.slack.wait_for(lambda: self.slack.response_posts(url) or None, timeout=15)
        return posts[0].body or {}

    def click_stop(self, value: str) -> Ack:
        """Press Stop on the preview whose button carries `value` (the action id)."""
        return self.driver.socket_click(
            "ml_stop.confirm", value, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
        )

    def answers(self) -> list[str]:
        """What the admin was told privately in #incidents, oldest first."""
        return [text_of(e) for e in self.slack.ephemerals(channel=CHANNEL, user=ADMIN)]

    def wait_answers(self, more_than: int) -> list[str]:
        """Wait until the admin has more than `more_than` private answers; return them all."""
        return self.slack.wait_for(
            lambda: (len(a := self.answers()) > more_than and a) or None, timeout=15
        )

    def drain(self) -> None:
        """SIGTERM: the bot finishes every listener run, then exits 0."""
        assert self.bot.terminate() == 0, self.bot.stderr()


def start_socket_bot(
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    tmp: Path,
    state_url: str,
    role_map: str = ROLE_MAP,
) -> Iterator[SocketBot]:
    """Emulator, stand-in serving Socket Mode, and `ml-chatops serve` connected to it."""
    emulator = Emulator(demo_state())
    es_url = bg_loop.run(emulator.start())
    slack.usergroups.update(USERGROUPS)
    slack.accept_socket_mode()
    config = tmp / "config.yml"
    config.write_text(role_map)
    env = clean_env(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "ELASTICSEARCH_URL": es_url,
            "ML_CHATOPS_CONFIG": str(config),
            "ML_CHATOPS_STATE": state_url,
        },
        tmp,
    )
    bot = BotProcess(env, tmp, free_port())
    try:
        bot.wait_healthy()
        slack.socket_mode.wait_connected()
        yield SocketBot(bot, slack, emulator, SlackDriver(bot.url, "", slack))
    finally:
        bot.kill()
        bg_loop.run(emulator.stop())


@pytest.fixture
def sqlite_bot(bg_loop: BackgroundLoop, slack: SlackStandIn, tmp_path: Path) -> Iterator[SocketBot]:
    yield from start_socket_bot(bg_loop, slack, tmp_path, f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def redis_bot(
    bg_loop: BackgroundLoop, slack: SlackStandIn, tmp_path: Path, redis_url: str
) -> Iterator[SocketBot]:
    yield from start_socket_bot(bg_loop, slack, tmp_path, redis_url)


def results(slack: SlackStandIn, deployment: str) -> list[dict[str, Any]]:
    """Channel messages reporting that `deployment` was stopped."""
    return [
        m for m in slack.messages(CHANNEL) if "stopped" in text_of(m) and deployment in text_of(m)
    ]


def save(server: RedisServer) -> None:
    # Keep the data across the restart: the test server runs without persistence.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"SAVE\r\n")
        assert conn.recv(16).startswith(b"+OK")


# ---- (a) a stop over Socket Mode -----------------------------------------------------------


def test_a_stop_over_socket_mode_previews_then_stops_exactly_once(sqlite_bot: SocketBot) -> None:
    sb = sqlite_bot
    preview = sb.preview("ner-prod")
    value = button_value(preview, "ml_stop.confirm")
    assert sb.emulator.stop_calls() == []  # a preview changes nothing

    ack = sb.click_stop(value)
    assert ack.payload is None  # a click is acked empty; the answer goes to Slack's API
    sb.slack.wait_for(lambda: results(sb.slack, "ner-prod") or None, timeout=15)

    # The same Stop pressed again (a second envelope): it says so and runs nothing.
    seen = len(sb.answers())
    sb.click_stop(value)
    assert "already ran" in sb.wait_answers(seen)[-1]
    sb.drain()
    assert len(sb.emulator.stop_calls("ner-prod")) == 1
    assert len(results(sb.slack, "ner-prod")) == 1
    assert sb.slack.socket_mode.unparsed() == []


@pytest.mark.parametrize("how", ["refresh_requested", "closed"])
def test_the_bot_reconnects_when_slack_drops_the_socket_and_keeps_working(
    sqlite_bot: SocketBot, how: str
) -> None:
    sb, server = sqlite_bot, sqlite_bot.slack.socket_mode
    if how == "refresh_requested":
        server.refresh()  # Slack's `disconnect` message: fetch a new URL, connect again
    else:
        server.disconnect_all()  # the WebSocket just closes
    server.wait_opened(2)
    assert len(sb.slack.calls("apps.connections.open")) >= 2
    value = button_value(sb.preview("ner-prod"), "ml_stop.confirm")
    sb.click_stop(value)
    sb.slack.wait_for(lambda: results(sb.slack, "ner-prod") or None, timeout=15)
    sb.drain()
    assert len(sb.emulator.stop_calls("ner-prod")) == 1


# ---- (b) the state store goes away -----------------------------------------------------------


@pytest.mark.redis
def test_store_down_over_socket_mode_runs_nothing_then_runs_once(
    redis_bot: SocketBot, redis_server: RedisServer
) -> None:
    sb = redis_bot
    value = button_value(sb.preview("ner-prod"), "ml_stop.confirm")
    save(redis_server)
    redis_server.stop()
    try:
        seen = len(sb.answers())
        sb.click_stop(value)  # acked, like every envelope
        assert DOWN in sb.wait_answers(seen)[-1]
        assert DOWN in text_of(sb.preview("elser-prod"))
        assert sb.emulator.stop_calls() == []
    finally:
        redis_server.start()

    sb.click_stop(value)
    sb.slack.wait_for(lambda: results(sb.slack, "ner-prod") or None, timeout=15)
    seen = len(sb.answers())
    sb.click_stop(value)
    assert "already ran" in sb.wait_answers(seen)[-1]
    sb.drain()
    assert len(sb.emulator.stop_calls("ner-prod")) == 1
    assert sb.emulator.stop_calls("elser-prod") == []


LOAD_DEPLOYMENTS = ("ner-prod", "search-e5", "sentiment-batch")
CLICKS_PER_PHASE = 2


@pytest.mark.redis
def test_store_down_and_back_under_load_never_runs_a_stop_twice(
    redis_bot: SocketBot, redis_server: RedisServer
) -> None:
    sb = redis_bot
    values = {d: button_value(sb.preview(d), "ml_stop.confirm") for d in LOAD_DEPLOYMENTS}
    sent: list[dict[str, Any]] = []

    def burst() -> list[str]:
        # Clicks on every preview and a fresh command per deployment, all in flight at once.
        urls = []
        for deployment, value in values.items():
            for _ in range(CLICKS_PER_PHASE):
                payload = sb.driver.click_payload(
                    "ml_stop.confirm", value, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
                )
                sent.append(sb.driver.socket_push("interactive", payload))
            command = sb.driver.command_payload(
                "/ml-stop", deployment, user_id=ADMIN, channel_id=CHANNEL
            )
            urls.append(command["response_url"])
            sent.append(sb.driver.socket_push("slash_commands", command))
        return urls

    def answered_down(url: str) -> bool:
        return any(DOWN in text_of(p.body or {}) for p in sb.slack.response_posts(url))

    save(redis_server)
    burst()
    redis_server.stop()
    try:
        down_urls = burst()
        # Hold the store down until this burst's commands were refused (an outcome, not a
        # clock); its clicks may still be running when the store comes back.
        sb.slack.wait_for(lambda: all(answered_down(u) for u in down_urls), timeout=30)
    finally:
        redis_server.start()
    burst()

    for envelope in sent:  # every envelope acknowledged (once), whatever the store did
        sb.driver.socket_ack(envelope, timeout=30)
    # Every preview's Stop, pressed once more with the store up: each action ends stopped.
    for value in values.values():
        sb.click_stop(value)
    for deployment in LOAD_DEPLOYMENTS:
        sb.slack.wait_for(lambda d=deployment: results(sb.slack, d) or None, timeout=30)
    sb.drain()
    for deployment in LOAD_DEPLOYMENTS:
        assert len(sb.emulator.stop_calls(deployment)) == 1, deployment
        assert len(results(sb.slack, deployment)) == 1, deployment
    for envelope in sent:
        assert len(sb.slack.socket_mode.acks(envelope["envelope_id"])) == 1


# ---- (c) Slack delivers an envelope again ----------------------------------------------------


def function_executed(slack: SlackStandIn) -> tuple[dict[str, Any], str]:
    """A workflow step run of `stop_ml_deployment` and its function_executed event."""
    inputs = {"requested_by": ADMIN, "channel": CHANNEL, "deployment_id": "ner-prod"}
    execution = slack.new_function_execution("stop_ml_deployment", inputs)
    event = {
        "type": "function_executed",
        "function": {"id": "Fn0STOP", "callback_id": "stop_ml_deployment"},
        "inputs": inputs,
        "function_execution_id": execution.id,
        "event_ts": "1700000000.000100",
        "bot_access_token": execution.token,
    }
    return event, execution.id


def test_a_redelivered_envelope_does_nothing_the_second_time(sqlite_bot: SocketBot) -> None:
    sb = sqlite_bot
    event, execution_id = function_executed(sb.slack)
    payload = sb.driver.event_payload(event, event_id="Ev0ONCE")
    first = sb.driver.socket_push("events_api", payload)
    sb.driver.socket_ack(first)
    sb.slack.wait_for(lambda: sb.slack.messages(CHANNEL) or None, timeout=15)
    # Slack re-sends the same envelope, then the same event in a new one, as retries.
    sb.driver.socket_push(
        "events_api",
        payload,
        envelope_id=first["envelope_id"],
        retry_attempt=1,
        retry_reason="timeout",
    )
    acks = sb.slack.socket_mode.acks
    sb.slack.wait_for(lambda: len(acks(first["envelope_id"])) >= 2 or None, timeout=15)
    retried = sb.driver.socket_push("events_api", payload, retry_attempt=2, retry_reason="timeout")
    sb.driver.socket_ack(retried)  # a duplicate is still acked, or Slack keeps retrying
    sb.drain()
    assert len(sb.slack.messages(CHANNEL)) == 1  # one preview, not one per delivery
    step = sb.slack.function_execution(execution_id)
    assert step["state"] == "running", step  # not failed by a second run of the step
    assert sb.slack.calls("functions.completeError") == []


# ---- (d) what no listener handles is still acknowledged ---------------------------------------


def test_deliveries_no_listener_handles_are_acked_and_do_nothing(sqlite_bot: SocketBot) -> None:
    # Over HTTP the edge answers these 200 so Slack neither retries nor shows an error; an
    # envelope left without an ack is retried by Slack, so Socket Mode must ack them too.
    sb = sqlite_bot
    mention = {"type": "app_mention", "user": ADMIN, "text": "hi", "channel": CHANNEL}
    other_step, _ = function_executed(sb.slack)
    other_step["function"] = {"id": "Fn0OTHER", "callback_id": "not_our_function"}
    closed = {"type": "view_closed", "user": {"id": ADMIN}, "team": {"id": "T0TEAM"}, "view": {}}
    sent = [
        sb.driver.socket_push("events_api", sb.driver.event_payload(mention)),
        sb.driver.socket_push("events_api", sb.driver.event_payload(other_step)),
        sb.driver.socket_push("interactive", closed),
    ]
    for envelope in sent:
        assert sb.driver.socket_ack(envelope).payload is None
    sb.drain()
    assert sb.slack.messages(CHANNEL) == [] and sb.slack.ephemerals() == []
    assert sb.slack.calls("functions.completeError") == []


def test_a_command_longer_than_slack_allows_is_answered_in_its_ack(sqlite_bot: SocketBot) -> None:
    sb = sqlite_bot
    ack = sb.driver.socket_command("/ml-stop", "x" * (MAX_COMMAND_TEXT + 1), user_id=ADMIN)
    assert ack.payload is not None and "longer than Slack allows" in ack.payload["text"]
    sb.drain()
    assert sb.emulator.stop_calls() == []
    assert sb.slack.response_posts() == []
