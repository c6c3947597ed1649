"""`ml-chatops serve` as a real subprocess against the emulator and the Slack stand-in."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from conftest import ROLE_MAP, button_value, text_of
from support.botproc import BotProcess, clean_env, free_port
from support.driver import SlackDriver
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn

from bot.emulator import Emulator, demo_state

ADMIN = "U0ADMIN1"
CHANNEL = "C0INCIDENTS"
ES_BOT_USER = "ml-chatops"
# The role the README tells SREs to create: the bot must work with exactly this.
ES_BOT_ROLE = ["manage_ml", "monitor", "read_pipeline"]


@dataclass
class Live:
    """Emulator (security on) and Slack stand-in in this process; bots as subprocesses."""

    bg_loop: BackgroundLoop
    slack: SlackStandIn
    emulator: Emulator
    es_url: str
    signing_secret: str
    es_password: str
    tmp: Path
    bots: list[BotProcess] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        """The bot's environment: HTTP mode, every secret set."""
        config = self.tmp / "config.yml"
        config.write_text(ROLE_MAP)
        values = {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_API_URL": self.slack.api_url,
            "ELASTICSEARCH_URL": self.es_url,
            "ELASTICSEARCH_USERNAME": ES_BOT_USER,
            "ELASTICSEARCH_PASSWORD": self.es_password,
            "ML_CHATOPS_CONFIG": str(config),
            "ML_CHATOPS_STATE": f"sqlite:///{self.tmp / 'state.db'}",
        }
        return clean_env({**values, **overrides}, self.tmp)

    def start(self, **overrides: str) -> BotProcess:
        """Start `ml-chatops serve` and wait until /healthz answers."""
        bot = BotProcess(self.env(**overrides), self.tmp, free_port())
        self.bots.append(bot)
        bot.wait_healthy()
        return bot

    def secrets(self) -> dict[str, str]:
        """Every secret the bot was given, by setting name."""
        return {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_APP_TOKEN": self.slack.app_token,
            "ELASTICSEARCH_PASSWORD": self.es_password,
        }

    def emulator_admin(self, path: str, body: dict[str, Any]) -> None:
        """POST to the emulator's `/_emulator/` test interface."""
        request = urllib.request.Request(
            f"{self.es_url}/_emulator/{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=5) as resp:
            assert resp.status == 200


@pytest.fixture
def live(
    bg_loop: BackgroundLoop, slack: SlackStandIn, signing_secret: str, tmp_path: Path
) -> Iterator[Live]:
    state = demo_state()
    es_password = "es-" + secrets.token_urlsafe(18)
    state.add_role("ml_chatops", cluster=ES_BOT_ROLE)
    state.add_user(ES_BOT_USER, es_password, ["ml_chatops"])
    emulator = Emulator(state, auth=("elastic", "changeme"))
    es_url = bg_loop.run(emulator.start())
    slack.bot_token = "xoxb-" + secrets.token_hex(12)  # distinctive, for the secret scan
    slack.usergroups.update({"S0SRE": ["U0SRE1"], "S0MLOPS": ["U0OPS1"]})
    env = Live(bg_loop, slack, emulator, es_url, signing_secret, es_password, tmp_path)
    yield env
    for bot in env.bots:
        bot.kill()
    bg_loop.run(emulator.stop())


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None if absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if metric_name == name and found == labels:
            return float(value)
    return None


def results(slack: SlackStandIn) -> list[dict[str, Any]]:
    """Channel messages that report a finished stop (a progress message is updated into one)."""
    return [m for m in slack.messages(CHANNEL) if "stopped" in text_of(m)]


def preview(live: Live, bot: BotProcess, text: str) -> tuple[dict[str, Any], SlackDriver]:
    """Send a signed /ml-stop and wait for its preview; return it and the driver."""
    driver = SlackDriver(bot.url, live.signing_secret, live.slack)
    reply = driver.command("/ml-stop", text, user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200, reply.body_text
    url = driver.last_response_url
    posts = live.slack.wait_for(lambda: live.slack.response_posts(url) or None, timeout=10)
    message = posts[0].body or {}
    assert "ml_stop.confirm" in text_of(message), message
    return message, driver


def test_probes_answer_and_readyz_names_what_failed(live: Live) -> None:
    bot = live.start()
    health = bot.get("/healthz")
    assert (health.status, health.json()) == (200, {"status": "ok"})

    ready = bot.get("/readyz")
    assert ready.status == 200, ready.body
    assert ready.json()["checks"] == {
        "cluster:default": "ok 9.1.0",
        "slack": "ok",
        "audit": "ok",
    }

    # The cluster answers 503 (the client retries it; every try fails).
    live.emulator_admin("fail", {"count": 50, "status": 503, "endpoint": "root"})
    down = bot.get("/readyz")
    assert down.status == 503
    checks = down.json()["checks"]
    assert checks["slack"] == "ok"
    assert checks["cluster:default"].startswith("failed: cluster `default` failed (503")
    live.emulator_admin("reset", {})

    live.slack.bot_token = "xoxb-rotated-" + secrets.token_hex(6)  # the bot's token is revoked
    revoked = bot.get("/readyz")
    assert revoked.status == 503
    assert revoked.json()["checks"] == {
        "cluster:default": "ok 9.1.0",
        "slack": "failed: auth.test: invalid_auth",
        "audit": "ok",
    }

    metrics = bot.get("/metrics")
    assert metrics.status == 200
    assert metrics.headers["Content-Type"].startswith("text/plain; version=")
    for name in (
        "ml_chatops_commands_total",
        "ml_chatops_policy_decisions_total",
        "ml_chatops_approvals_total",
        "ml_chatops_elasticsearch_request_duration_seconds",
        "ml_chatops_slack_ack_duration_seconds",
        "ml_chatops_pending_actions",
        "ml_chatops_audit_spool_events",
    ):
        assert f"# TYPE {name} " in metrics.body, name
    # The readiness pings were timed, failures included.
    pings = metric(
        metrics.body,
        "ml_chatops_elasticsearch_request_duration_seconds_count",
        cluster="default",
        endpoint="info",
        status="503",
    )
    assert pings is not None and pings >= 1
    assert bot.terminate() == 0


def test_full_flow_metrics_and_logs_without_secrets(live: Live) -> None:
    bot = live.start()
    shown, driver = preview(live, bot, 'ner-prod --reason "INC-7 OOM"')
    pending = bot.get("/metrics").body
    assert metric(pending, "ml_chatops_pending_actions") == 1.0

    driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    result = live.slack.wait_for(lambda: results(live.slack), timeout=10)
    assert "ner-prod" in text_of(result[0])
    assert len(live.emulator.stop_calls("ner-prod")) == 1
    assert live.emulator.stop_calls("ner-prod")[0].principal == ES_BOT_USER

    text = bot.get("/metrics").body
    assert metric(text, "ml_chatops_pending_actions") == 0.0
    assert metric(text, "ml_chatops_policy_decisions_total", result="allowed") == 1.0
    assert metric(text, "ml_chatops_stops_total", cluster="default", outcome="success") == 1.0
    stop_count = metric(
        text,
        "ml_chatops_elasticsearch_request_duration_seconds_count",
        cluster="default",
        endpoint="ml.stop_trained_model_deployment",
        status="200",
    )
    assert stop_count == 1.0
    for kind in ("command", "block_actions"):
        acks = metric(
            text, "ml_chatops_slack_ack_duration_seconds_count", kind=kind, transport="http"
        )
        assert acks is not None and acks >= 1, kind
    # Every ack was well inside Slack's 3 seconds.
    fast = metric(
        text,
        "ml_chatops_slack_ack_duration_seconds_bucket",
        kind="block_actions",
        transport="http",
        le="3.0",
    )
    assert fast == metric(
        text, "ml_chatops_slack_ack_duration_seconds_count", kind="block_actions", transport="http"
    )

    assert bot.terminate() == 0
    records = bot.log_records()  # every stderr line is one JSON document
    action_id = button_value(shown)
    clicks = [r for r in records if r.get("slack.request") == "block_actions"]
    assert clicks and clicks[0]["ml_chatops.action_id"] == action_id
    assert clicks[0]["user.id"] == ADMIN and clicks[0]["slack.channel.id"] == CHANNEL
    commands = [r for r in records if r.get("slack.command") == "/ml-stop"]
    assert commands and commands[0]["slack.team.id"] == live.slack.team_id

    audit = [json.loads(line) for line in bot.stdout().splitlines() if line.strip()]
    stops = [d for d in audit if d["event"]["action"] == "stop"]
    assert [d["event"]["outcome"] for d in stops] == ["success"]  # the audit trail is there
    output = bot.stdout() + bot.stderr()
    for name, value in live.secrets().items():
        assert value not in output, f"{name} appears in the bot's output"


def test_sigterm_lets_a_running_stop_finish_and_refuses_new_requests(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator holds the stop until the test releases it: order, not timing.
    lifecycle = live.emulator.lifecycle
    released = asyncio.Event()
    real_stop = lifecycle.stop

    async def held_stop(deployment_id: str, finish_pending_work: bool) -> None:
        await released.wait()
        await real_stop(deployment_id, finish_pending_work)

    monkeypatch.setattr(lifecycle, "stop", held_stop)
    bot = live.start()
    _, driver = preview(live, bot, "ner-prod")
    reply = driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200  # acked; the stop runs after the answer
    live.slack.wait_for(lambda: live.emulator.stop_calls("ner-prod") or None, timeout=10)

    bot.proc.send_signal(15)
    refused = False
    deadline = time.monotonic() + 30  # a hang guard, not a margin
    while not refused and time.monotonic() < deadline:
        try:
            bot.get("/healthz", timeout=0.5)
            time.sleep(0.02)
        except OSError:
            refused = True
    assert refused, "the bot kept accepting requests after SIGTERM"
    assert results(live.slack) == []  # the stop is still held in the emulator
    assert bot.proc.poll() is None  # and the bot waits for it

    live.bg_loop.loop.call_soon_threadsafe(released.set)
    assert bot.proc.wait(timeout=30) == 0
    result = results(live.slack)
    assert len(result) == 1 and "ner-prod" in text_of(result[0])
    assert len(live.emulator.stop_calls("ner-prod")) == 1
    messages = [r["message"] for r in bot.log_records()]
    assert any(m.startswith("shutting down") for m in messages)
    assert messages[-1] == "stopped"


def test_socket_mode_connects_in_the_background_and_keeps_serving(live: Live) -> None:
    env = live.env(SLACK_APP_TOKEN=live.slack.app_token)
    del env["SLACK_SIGNING_SECRET"]
    bot = BotProcess(env, live.tmp, free_port())
    live.bots.append(bot)
    bot.wait_healthy()

    opened = live.slack.wait_for_calls("apps.connections.open", timeout=10)
    assert opened[0].token == live.slack.app_token
    # The stand-in's WebSocket URL refuses: the handler logs it and keeps retrying.
    failed = bot.wait_for_log(lambda r: "Failed to connect" in r["message"], timeout=10)
    assert "Retrying" in failed["message"]
    assert bot.get("/healthz").status == 200
    assert bot.get("/readyz").status == 200

    # Not stuck in the reconnect loop: SIGTERM ends it by the shutdown path, exit 0
    # (terminate's timeout only guards against a hang).
    assert bot.terminate() == 0
    messages = [r["message"] for r in bot.log_records()]
    assert any(m.startswith("shutting down") for m in messages)
    assert messages[-1] == "stopped"
    output = bot.stdout() + bot.stderr()
    for name, value in live.secrets().items():
        assert value not in output, f"{name} appears in the bot's output"


class SocketModeServer:
    """A Socket Mode WebSocket endpoint: sends envelopes to the connected bot, keeps its acks."""

    def __init__(self, bg_loop: BackgroundLoop) -> None:
        self.bg_loop = bg_loop
        self.acks: list[str] = []
        self.socket: web.WebSocketResponse | None = None
        self.runner: web.AppRunner | None = None

    def start(self) -> str:
        """Listen on a free local port; returns the ws:// URL to hand out."""
        app = web.Application()
        app.router.add_get("/link", self._connect)
        self.runner = web.AppRunner(app)
        port = free_port()

        async def up() -> None:
            assert self.runner is not None
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", port).start()

        self.bg_loop.run(up())
        return f"ws://127.0.0.1:{port}/link"

    async def _connect(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1})
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data)["envelope_id"])
        return socket

    def send(self, envelope: dict[str, Any]) -> None:
        """Deliver one envelope to the connected bot."""
        assert self.socket is not None
        self.bg_loop.run(self.socket.send_json(envelope))

    def stop(self) -> None:
        if self.runner is not None:
            self.bg_loop.run(self.runner.cleanup())


def _step_envelope(
    slack: SlackStandIn, envelope_id: str, event_id: str, retry: int, deployment: str
) -> dict[str, Any]:
    inputs = {"deployment_id": deployment, "requested_by": ADMIN, "channel": CHANNEL}
    execution = slack.new_function_execution("stop_ml_deployment", inputs)
    return _envelope(envelope_id, event_id, retry, execution.id, execution.token, inputs)


def _envelope(
    envelope_id: str,
    event_id: str,
    retry: int,
    execution_id: str,
    token: str,
    inputs: dict[str, Any],
) -> dict[str, Any]:
    event = {
        "type": "function_executed",
        "function": {"id": "Fn0STOP", "callback_id": "stop_ml_deployment", "type": "app"},
        "inputs": inputs,
        "function_execution_id": execution_id,
        "workflow_execution_id": "Wx0TEST",
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": token,
    }
    payload = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "event": event,
        "event_id": event_id,
        "event_time": int(time.time()),
    }
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "payload": payload,
        "accepts_response_payload": False,
        "retry_attempt": retry,
        "retry_reason": "timeout" if retry else "",
    }


def test_socket_mode_runs_a_redelivered_step_once(live: Live) -> None:
    """Slack redelivers an event (same event id, new envelope): acked, not run again."""
    server = SocketModeServer(live.bg_loop)
    live.slack.socket_mode_url = server.start()
    try:
        env = live.env(SLACK_APP_TOKEN=live.slack.app_token)
        del env["SLACK_SIGNING_SECRET"]
        bot = BotProcess(env, live.tmp, free_port())
        live.bots.append(bot)
        bot.wait_healthy()
        live.slack.wait_for(lambda: server.socket, timeout=10)

        first = _step_envelope(live.slack, "env-1", "Ev0FIRST", 0, "ner-prod")
        server.send(first)
        live.slack.wait_for(lambda: live.slack.messages(CHANNEL) or None, timeout=10)
        again = {**first, "envelope_id": "env-2", "retry_attempt": 1, "retry_reason": "timeout"}
        server.send(again)
        logged = bot.wait_for_log(lambda r: "duplicate delivery" in r["message"])
        assert "retry 1" in logged["message"]
        live.slack.wait_for(lambda: "env-2" in server.acks or None)  # acked: Slack stops

        # Another event afterwards runs as usual: the duplicate left nothing behind.
        server.send(_step_envelope(live.slack, "env-3", "Ev0OTHER", 0, "search-e5"))
        live.slack.wait_for(lambda: len(live.slack.messages(CHANNEL)) >= 2 or None, timeout=10)
        previews = [text_of(m) for m in live.slack.messages(CHANNEL)]
        assert len(previews) == 2, previews
        assert "ner-prod" in previews[0] and "search-e5" in previews[1]
        assert set(server.acks) == {"env-1", "env-2", "env-3"}
        assert bot.terminate() == 0
    finally:
        server.stop()
