"""The state store goes away mid-flow (a real redis-server stopped and restarted)."""

from __future__ import annotations

import socket

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of
from support.redis_server import RedisServer, redis_server, redis_url
from test_flow_workflow import run_step, step_state

__all__ = ["redis_server", "redis_url"]

pytestmark = pytest.mark.redis

ADMIN, CHANNEL = "U0ADMIN1", "C0INCIDENTS"
DOWN = "cannot reach the state store; nothing was done"


@pytest.fixture
def bench_state_url(redis_url: str) -> str:
    return redis_url


def _save(server: RedisServer) -> None:
    # Keep the data across the restart: the test server runs without persistence.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"SAVE\r\n")
        assert conn.recv(16).startswith(b"+OK")


def _answers(bench: Bench) -> list[str]:
    return [text_of(e) for e in bench.slack.ephemerals(channel=CHANNEL, user=ADMIN)]


def test_a_click_while_the_store_is_down_runs_nothing_then_runs_once(
    bench: Bench, redis_server: RedisServer
) -> None:
    value = button_value(bench.command("ner-prod"), "ml_stop.confirm")
    _save(redis_server)
    redis_server.stop()
    try:
        bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
        bench.slack.wait_for(lambda: any(DOWN in t for t in _answers(bench)) or None)
        assert bench.emulator.stop_calls() == []
        assert DOWN in text_of(bench.command("elser-prod"))
    finally:
        redis_server.start()
    result = bench.confirm()
    assert "stopped" in text_of(result)
    # The old preview's Stop, pressed again after the store came back: nothing more runs.
    seen = len(_answers(bench))
    bench.driver.click("ml_stop.confirm", value, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True)
    bench.slack.wait_for(lambda: len(_answers(bench)) > seen or None)
    assert "already ran" in _answers(bench)[-1]
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


FOUR_EYES = (
    ROLE_MAP
    + """
approvals:
  - {actions: [stop], deployments: ["ner-*"], required: 1, approvers: [ml-admin]}
"""
)


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_an_approval_while_the_store_is_down_is_not_recorded(
    bench: Bench, redis_server: RedisServer
) -> None:
    value = button_value(bench.command("ner-prod"), "ml_stop.confirm")
    card = bench.slack.wait_for(
        lambda: next((m for m in bench.slack.messages(CHANNEL) if "approv" in text_of(m)), None)
    )
    _save(redis_server)
    redis_server.stop()
    try:
        bench.driver.click(
            "ml_stop.approve",
            button_value(card, "ml_stop.approve"),
            user_id="U0ADMIN2",
            channel_id=CHANNEL,
            message_ts=card["ts"],
            message=card,
            ephemeral=False,
        )
        bench.slack.wait_for(
            lambda: (
                any(
                    DOWN in text_of(e)
                    for e in bench.slack.ephemerals(channel=CHANNEL, user="U0ADMIN2")
                )
                or None
            )
        )
    finally:
        redis_server.start()
    assert bench.run(bench.runtime.store.get(value)).approvals == ()
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: any("more approval" in t for t in _answers(bench)) or None)
    assert bench.emulator.stop_calls() == []


def test_a_workflow_step_while_the_store_is_down_fails_with_the_plain_answer(
    bench: Bench, redis_server: RedisServer
) -> None:
    redis_server.stop()
    try:
        execution_id, _ = run_step(bench, deployment_id="ner-prod")
        state = step_state(bench, execution_id)
    finally:
        redis_server.start()
    assert state["state"] == "failed" and DOWN in state["error"], state
    assert "internal error" not in state["error"]
    assert bench.emulator.stop_calls() == []
    assert bench.slack.messages(CHANNEL) == []  # no preview was posted
