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
    assert ready.json()["checks"] == {"cluster:default": "ok 9.1.0", "slack": "ok"}

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
