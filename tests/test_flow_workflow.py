"""Incident workflows: the Workflow Builder step, incident context, threads, /ml-audit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of

ADMIN = "U0ADMIN1"
CHANNEL = "C0INCIDENTS"


def run_step(bench: Bench, **inputs: Any) -> tuple[str, str]:
    """Deliver a signed function_executed event; return (execution id, its token)."""
    full = {"requested_by": ADMIN, "channel": CHANNEL, **inputs}
    execution = bench.slack.new_function_execution("stop_ml_deployment", full)
    event = {
        "type": "function_executed",
        "function": {
            "id": "Fn0STOP",
            "callback_id": "stop_ml_deployment",
            "title": "Stop ML deployment",
            "type": "app",
            "input_parameters": [],
            "output_parameters": [],
            "app_id": bench.slack.app_id,
        },
        "inputs": full,
        "function_execution_id": execution.id,
        "workflow_execution_id": "Wx0TEST",
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": execution.token,
    }
    reply = bench.driver.event(event)
    assert reply.status == 200
    # The step answers asynchronously: a preview in the channel or a failed run.
    bench.slack.wait_for(
        lambda: (
            bench.slack.messages(CHANNEL)
            or bench.slack.function_execution(execution.id)["state"] != "running"
            or None
        )
    )
    return execution.id, execution.token


def step_state(bench: Bench, execution_id: str) -> dict[str, Any]:
    return bench.slack.wait_for(
        lambda: (
            ((s := bench.slack.function_execution(execution_id))["state"] != "running" and s)
            or None
        ),
        timeout=15,
    )


def click_step_button(
    bench: Bench, action_id: str, execution_id: str, token: str, user: str = ADMIN
) -> None:
    message = bench.slack.wait_for(
        lambda: next(
            (m for m in reversed(bench.slack.messages(CHANNEL)) if action_id in text_of(m)), None
        )
    )
    extra = {
        "function_data": {
            "execution_id": execution_id,
            "function": {"callback_id": "stop_ml_deployment"},
            "inputs": {},
        },
        "bot_access_token": token,
        "interactivity": {"interactor": {"id": user}, "interactivity_pointer": "1.2.abc"},
    }
    reply = bench.driver.click(
        action_id,
        button_value(message, action_id),
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
        message=message,
        ephemeral=False,
        extra=extra,
    )
    assert reply.status == 200


def test_step_runs_a_stop_to_completion_with_outputs(bench: Bench) -> None:
    execution_id, token = run_step(bench, deployment_id="ner-prod", reason="INC-1 from workflow")
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "completed", state
    outputs = state["outputs"]
    assert outputs["outcome"] == "succeeded"
    assert outputs["stopped_deployments"] == "ner-prod"
    assert outputs["result_url"].startswith("https://")
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
    assert len(bench.slack.messages(CHANNEL)) == 1  # the preview became the result line
    completes = bench.slack.calls("functions.completeSuccess")
    assert completes and completes[0].token == token


@pytest.mark.parametrize(
    ("inputs", "user", "fragment"),
    [
        ({"deployment_id": "ner-prod"}, "U0NOBODY", "denied"),
        ({"deployment_id": "ner-prdo"}, ADMIN, "No deployment matches"),
        ({"deployment_id": "../etc"}, ADMIN, "`../etc`"),
    ],
)
def test_step_fails_readably(
    bench: Bench, inputs: dict[str, Any], user: str, fragment: str
) -> None:
    execution_id, _ = run_step(bench, requested_by=user, **inputs)
    state = step_state(bench, execution_id)
    assert state["state"] == "failed"
    assert fragment in state["error"]
    assert bench.emulator.stop_calls() == []


def test_step_goes_through_the_gate_and_the_audit_point_of_the_dispatch_table(
    bench: Bench,
) -> None:
    """An operator may stop ner-* but not with --force: the gate refuses before any call."""
    before = len(bench.emulator.requests)
    execution_id, _ = run_step(
        bench, requested_by="U0OPS1", deployment_id="ner-prod", force=True, reason="INC-7"
    )
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and "denied" in state["error"]
    assert bench.emulator.requests[before:] == []  # refused before Elasticsearch was asked
    # The same audit point as /ml-stop: the command as the step's inputs spell it.
    commands = [d for d in bench.audit.docs if d["event"]["action"] == "command"]
    assert [(d["user"]["id"], d["ml_chatops"]["text"]) for d in commands] == [
        ("U0OPS1", "ner-prod --force --reason INC-7")
    ]
    assert commands[0]["ml_chatops"]["command"] == "/ml-stop"


def test_step_cancelled_fails_with_reason(bench: Bench) -> None:
    execution_id, token = run_step(bench, deployment_id="ner-prod")
    click_step_button(bench, "ml_stop.cancel", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and "cancelled" in state["error"]
    assert bench.emulator.stop_calls() == []


def test_step_expired_fails(bench: Bench) -> None:
    execution_id, token = run_step(bench, deployment_id="ner-prod")
    bench.clock.advance(601)
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and "expired" in state["error"]


# --------------------------------------------------------------------------- incidents

INCIDENTS = (
    ROLE_MAP
    + """
incidents:
  channel_pattern: "^inc-(?P<id>\\\\d+)-"
"""
)


@pytest.mark.parametrize("role_map_text", [INCIDENTS])
def test_incident_id_travels_everywhere(bench: Bench) -> None:
    bench.slack.add_channel("C0INC4711", "inc-4711-es-oom")
    reply = bench.driver.command(
        "/ml-stop",
        "ner-prod",
        user_id=ADMIN,
        channel_id="C0INC4711",
        channel_name="inc-4711-es-oom",
    )
    assert reply.status == 200
    url = bench.driver.last_response_url
    preview = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)[0].body
    assert "4711" in text_of(preview)
    result = bench.confirm(channel="C0INC4711")
    assert "4711" in text_of(result)
    stop = bench.emulator.stop_calls("ner-prod")[0]
    assert stop.headers["x-opaque-id"].endswith("/4711")
    incident_events = [d for d in bench.audit.docs if d["ml_chatops"].get("incident_id") == "4711"]
    assert {"propose", "confirm", "stop"} <= {d["event"]["action"] for d in incident_events}
    action = bench.run(bench.runtime.store.get(button_value(preview)))
    assert action.spec.reason == "4711"  # --reason defaults to the incident


def test_outside_incident_channels_nothing_changes(bench: Bench) -> None:
    preview = bench.command("ner-prod")
    assert "Incident" not in text_of(preview)


# --------------------------------------------------------------------------- threads


def test_restart_follow_up_goes_in_the_stop_results_thread(bench: Bench) -> None:
    bench.command("search-e5")
    stop_result = bench.confirm()
    bench.driver.click_button("ml_deployment.restart", user_id=ADMIN, channel_id=CHANNEL)
    start = bench.confirm(action_id="ml_start.confirm")
    assert start.get("thread_ts") == stop_result["ts"]
    top_level = [m for m in bench.slack.messages(CHANNEL) if not m.get("thread_ts")]
    assert len(top_level) == 1


# --------------------------------------------------------------------------- /ml-audit


def test_audit_lists_this_channels_actions_in_order(bench: Bench) -> None:
    bench.command("ner-prod --reason first")
    bench.confirm()
    bench.clock.advance(5)
    bench.command("search-e5 --reason second")
    bench.driver.click_button("ml_stop.cancel", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "cancelled" in text_of(bench.ephemeral()) or None)
    bench.clock.advance(5)
    bench.command("sentiment-batch --reason elsewhere", channel="C0OTHER")
    timeline = text_of(bench.command("", command="/ml-audit"))
    assert timeline.index("first") < timeline.index("second")
    assert "elsewhere" not in timeline
    assert "cancelled" in timeline and "stopped" in timeline
    assert "slack.com/archives/" in timeline  # link to the result message


def test_audit_markdown_for_a_postmortem(bench: Bench) -> None:
    bench.command("ner-prod --force --reason INC-9")
    bench.confirm()
    text = text_of(bench.command("--format markdown --since 2h", command="/ml-audit"))
    assert "| time (UTC) | who |" in text and "--force" in text and "INC-9" in text


def test_audit_needs_status(bench: Bench) -> None:
    reply = bench.command("", command="/ml-audit", user="U0RANDOM", channel="C0OTHER")
    assert "denied" in text_of(reply)


def test_step_fails_when_the_sweeper_expires_its_preview(bench: Bench) -> None:
    from bot.server import sweep_once
    from bot.slack.notices import SlackNotices

    execution_id, _ = run_step(bench, deployment_id="ner-prod")
    bench.clock.advance(601)
    bench.run(sweep_once(bench.runtime, SlackNotices(bench.runtime.slack, bench.clock)))
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and "expired" in state["error"]


def test_step_completes_when_nothing_is_left_to_stop_at_the_click(bench: Bench) -> None:
    # Someone stopped it by hand between the step's preview and the click: the step still
    # completes (with its error) instead of staying "running" for ever.
    execution_id, token = run_step(bench, deployment_id="ner-prod")
    del bench.emulator.state.deployments["ner-prod"]
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and state["error"]
    assert bench.emulator.stop_calls() == []
