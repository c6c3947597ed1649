"""Slack failing halfway: a failed post never strands, loses or misreports an action.

Issue 18 (1, 2, 7) and the delivery half of issue 19: the stand-in answers the bot's posts
with a 500, a 429 after the client's retries, a dropped connection or a held (slow) answer,
and a response_url refuses its sixth use, the way Slack does; the action still runs once
and its result reaches someone.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from typing import Any

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of
from test_flow_safety import card, click_card, wait_text
from test_flow_workflow import click_step_button, run_step, step_state

from bot.core.model import ActionState
from bot.server import sweep_once
from bot.slack.notices import SlackNotices

ADMIN, ADMIN2 = "U0ADMIN1", "U0ADMIN2"
CHANNEL = "C0INCIDENTS"

FOUR_EYES = (
    ROLE_MAP
    + """
approvals:
  - {clusters: [default], actions: [stop], deployments: ["ner-*"], required: 1,
     approvers: [ml-admin]}
"""
)
FIVE_APPROVALS = (
    ROLE_MAP
    + """
approvals:
  - {clusters: [default], actions: [stop], deployments: ["ner-*"], required: 5,
     approvers: [ml-admin]}
"""
)


def _action_id(bench: Bench) -> str:
    target = bench.slack.wait_for(
        lambda: bench.driver.latest_click_target("ml_stop.confirm", user_id=ADMIN)
    )
    return str(target.value)


def _state(bench: Bench, action_id: str) -> ActionState:
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None
    return action.state


def _final(bench: Bench, action_id: str) -> ActionState:
    return bench.slack.wait_for(
        lambda: ((s := _state(bench, action_id)).is_final and s) or None, timeout=15
    )


def _channel_texts(bench: Bench) -> list[str]:
    return [text_of(m) for m in bench.slack.messages(CHANNEL)]


def _no_false_apology(bench: Bench) -> None:
    for ephemeral in bench.slack.ephemerals(user=ADMIN):
        assert "nothing more was done" not in text_of(ephemeral)


def _logged(caplog: pytest.LogCaptureFixture, method: str, error: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "slack.method", None) == method and getattr(r, "slack.error", None) == error
    ]


# ------------------------------------------------------------------ 18.1: the progress post


@pytest.mark.parametrize(
    "fail",
    [
        pytest.param(lambda s: s.http_error_next("chat.postMessage", 500, count=3), id="500"),
        pytest.param(
            lambda s: s.rate_limit_next("chat.postMessage", retry_after=1, count=4), id="429"
        ),
        pytest.param(lambda s: s.drop_next("chat.postMessage", count=9), id="dropped"),
    ],
)
def test_a_failed_progress_post_does_not_strand_the_stop(
    bench: Bench, fail: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    fail(bench.slack)  # every try of the "⏳ Stopping…" post fails
    with caplog.at_level(logging.WARNING):
        bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
        assert _final(bench, action_id) is ActionState.SUCCEEDED
        # The result is still shown in the channel, as a new message.
        texts = bench.slack.wait_for(
            lambda: [t for t in _channel_texts(bench) if "stopped" in t] or None, timeout=20
        )
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
    assert len(texts) == 1 and "ner-prod" in texts[0]
    assert not any("Stopping…" in t for t in _channel_texts(bench))
    assert [r for r in caplog.records if getattr(r, "slack.method", None) == "chat.postMessage"]
    _no_false_apology(bench)


def test_a_slow_progress_post_does_not_hold_the_stop_back(bench: Bench) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    hold = bench.slack.hold_next("chat.postMessage")  # Slack sits on the progress post
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    hold.wait_arrived()
    # The stop reaches Elasticsearch while the post is still held.
    bench.slack.wait_for(lambda: bench.emulator.stop_calls("ner-prod") or None, timeout=10)
    assert _final(bench, action_id) is ActionState.SUCCEEDED
    assert bench.slack.messages(CHANNEL) == []
    hold.release()
    # The post catches up, and the result replaces it: one line, saying stopped.
    result = bench.result_of(action_id)
    assert "stopped" in text_of(result)
    assert len(bench.slack.messages(CHANNEL)) == 1


def test_an_own_action_stranded_by_an_internal_error_is_recovered(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug between the claim and the stop")

    monkeypatch.setattr("bot.app.confirm.execute", broken)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    told = wait_text_any(bench, "outcome is not known")
    assert "nothing more was done" not in told and "error id" in told
    assert _state(bench, action_id) is ActionState.EXECUTING
    monkeypatch.undo()

    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.run(sweep_once(bench.runtime, notices))
    assert _state(bench, action_id) is ActionState.EXECUTING  # within its lease: left alone
    bench.clock.advance(31)
    bench.run(sweep_once(bench.runtime, notices))
    assert _state(bench, action_id) is ActionState.UNKNOWN
    recovered = [d for d in bench.audit.docs if d["event"]["action"] == "recover"]
    assert len(recovered) == 1 and "internal error" in recovered[0]["ml_chatops"]["explanation"]
    assert any("outcome is unknown" in t for t in _channel_texts(bench))
    # The deployment is no longer held by a stop that "is already running".
    again = bench.command("ner-prod")
    assert "ml_stop.confirm" in text_of(again), text_of(again)


def wait_text_any(bench: Bench, fragment: str) -> str:
    return bench.slack.wait_for(
        lambda: next(
            (text_of(e) for e in bench.slack.ephemerals(user=ADMIN) if fragment in text_of(e)),
            None,
        )
    )


# ------------------------------------------------------------------ 18.2: the result post


def test_a_result_update_failing_once_is_retried(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.command("ner-prod")
    bench.slack.http_error_next("chat.update", 500)  # only the result line is updated
    with caplog.at_level(logging.WARNING):
        result = bench.confirm()
    assert "stopped" in text_of(result)
    assert len(bench.slack.messages(CHANNEL)) == 1
    assert _logged(caplog, "chat.update", "http_500")


def test_a_result_update_that_keeps_failing_is_posted_anew(bench: Bench) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    bench.slack.fail_next("chat.update", "internal_error", count=3)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    assert _final(bench, action_id) is ActionState.SUCCEEDED
    # The stale "⏳ Stopping…" line is removed; the result is the one line left.
    lines = bench.slack.wait_for(
        lambda: ((t := _channel_texts(bench)) and len(t) == 1 and "stopped" in t[0] and t) or None,
        timeout=10,
    )
    assert "Stopping…" not in lines[0]
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None and action.result_ref is not None
    assert bench.slack.messages(CHANNEL)[0]["ts"] == action.result_ref.ts
    _no_false_apology(bench)


def test_the_workflow_step_completes_whatever_happened_to_the_posts(bench: Bench) -> None:
    execution_id, token = run_step(bench, deployment_id="ner-prod", reason="INC-1")
    # Every try fails: the progress update, the result update and the new post.
    bench.slack.fail_next("chat.update", "internal_error", count=6)
    bench.slack.http_error_next("chat.postMessage", 500, count=3)
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "completed", state
    assert state["outputs"]["outcome"] == "succeeded"
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
    # Neither the line nor a new post went out: the requester is told privately.
    note = wait_text_any(bench, "ner-prod")
    assert "stopped" in note


# ------------------------------------------------------------------ 18.7: one approval card


def _live_cards(bench: Bench) -> list[dict[str, Any]]:
    return [m for m in bench.slack.messages(CHANNEL) if "ml_stop.approve" in text_of(m)]


def _cards(bench: Bench) -> list[dict[str, Any]]:
    return [m for m in bench.slack.messages(CHANNEL) if "approv" in text_of(m).lower()]


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_a_slow_card_and_a_stop_click_leave_one_card_and_cancel_retires_it(
    bench: Bench,
) -> None:
    hold = bench.slack.hold_next("chat.postMessage")  # the card's post is slow
    bench.command("ner-prod")
    hold.wait_arrived()
    action_id = _action_id(bench)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    bench.driver.click_button("ml_stop.cancel", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(
        lambda: (
            any("cancel" in text_of(e).lower() for e in bench.slack.ephemerals(user=ADMIN)) or None
        )
    )
    hold.release()
    # The held card lands; once the action records it, it must show the cancellation.

    def recorded_card() -> dict[str, Any] | None:
        action = bench.run(bench.runtime.store.get(action_id))
        ref = action.approval_card if action is not None else None
        return bench.slack.message(CHANNEL, str(ref.ts)) if ref is not None else None

    bench.slack.wait_for(lambda: (m := recorded_card()) and "cancel" in text_of(m).lower())
    assert _live_cards(bench) == []
    assert len(_cards(bench)) == 1
    assert "cancel" in text_of(_cards(bench)[0]).lower()
    assert bench.emulator.stop_calls() == []


# ------------------------------------------------------------------ 19: response_url budget


@pytest.mark.parametrize("role_map_text", [FIVE_APPROVALS])
def test_five_approval_notices_are_not_lost_to_the_response_url_budget(bench: Bench) -> None:
    approvers = [ADMIN2, "U0SRE1", "U0SRE2", "U0SRE3", "U0SRE4"]
    bench.slack.usergroups["S0SRE"] = approvers[1:]
    bench.command("ner-prod")
    url = bench.driver.last_response_url
    for n, approver in enumerate(approvers, 1):
        click_card(bench, "ml_stop.approve", approver)
        bench.slack.wait_for(
            lambda a=approver: f"<@{a}>" in text_of(card(bench)) or None  # type: ignore[misc]
        )
        # Each approval is told to the requester: the preview plus n notices so far.
        bench.slack.wait_for(
            lambda n=n: (
                len(  # type: ignore[misc]
                    [e for e in bench.slack.ephemerals(user=ADMIN) if "approved your" in text_of(e)]
                )
                >= n
                or None
            )
        )
    posts = bench.slack.response_posts(url)
    assert [p.status for p in posts] == [200] * 5  # the sixth was never tried, so never lost
    notices = [e for e in bench.slack.ephemerals(user=ADMIN) if "approved your" in text_of(e)]
    assert [e["via"] for e in notices] == ["response_url"] * 4 + ["api"]
    assert "U0SRE4" in text_of(notices[-1])


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_a_notice_slack_refuses_as_used_url_goes_by_chat_post_ephemeral(bench: Bench) -> None:
    bench.command("ner-prod")
    url = bench.driver.last_response_url
    assert url is not None
    for _ in range(4):  # the url's other four uses are spent elsewhere
        post_json(url, {"text": "elsewhere"})
    click_card(bench, "ml_stop.approve", ADMIN2)
    note = bench.slack.wait_for(
        lambda: next(
            (e for e in bench.slack.ephemerals(user=ADMIN) if "approved your" in text_of(e)),
            None,
        )
    )
    assert note["via"] == "api"
    assert bench.slack.response_posts(url)[-1].answer == "used_url"


def post_json(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        return int(response.status)


# ------------------------------------------------------------------ 18.8: the action's channel


def _with_binding_elsewhere() -> str:
    # An approver only in C0OTHER; the approval rule as FOUR_EYES has it.
    roles, approvals = FOUR_EYES.split("approvals:\n", 1)
    roles = roles.replace(
        "bindings:\n", "bindings:\n  - {role: ml-admin, users: [U0ELSE1], channels: [C0OTHER]}\n"
    )
    return roles + "approvals:\n" + approvals


@pytest.mark.parametrize("role_map_text", [_with_binding_elsewhere()])
def test_a_click_naming_another_channel_counts_in_the_actions_channel(bench: Bench) -> None:
    bench.command("ner-prod")
    message = card(bench)
    value = button_value(message, "ml_stop.approve")
    # The approval card, clicked with a payload that names another channel.
    reply = bench.driver.click(
        "ml_stop.approve",
        value,
        user_id="U0ELSE1",
        channel_id="C0OTHER",
        message_ts=message["ts"],
        message=message,
        ephemeral=False,
    )
    assert reply.status == 200
    bench.slack.wait_for(
        lambda: any("denied" in text_of(e) for e in bench.slack.ephemerals(user="U0ELSE1")) or None
    )
    action = bench.run(bench.runtime.store.get(value))
    assert action is not None and action.approvals == ()
    assert "✅" not in text_of(card(bench)) and "ml_stop.approve" in text_of(card(bench))
    clicks = [d for d in bench.audit.docs if d["user"]["id"] == "U0ELSE1"]
    assert clicks and {d["slack"]["channel"]["id"] for d in clicks} == {CHANNEL}


def test_a_step_whose_preview_cannot_be_posted_fails_saying_why(bench: Bench) -> None:
    bench.slack.bot_not_in(CHANNEL)
    execution_id, _ = run_step(bench, deployment_id="ner-prod")
    state = step_state(bench, execution_id)
    assert state["state"] == "failed"
    assert "not_in_channel" in state["error"] and "invite" in state["error"]
    assert "internal error" not in state["error"]
    # The preview nobody can see is ended, so the deployment is not held.
    proposed = bench.run(bench.runtime.store.due(float("inf")))
    assert proposed == []


def test_a_progress_line_landing_after_the_result_is_removed(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.slack.listeners.running.PROGRESS_GRACE", 0.2)
    bench.command("ner-prod")
    action_id = _action_id(bench)
    hold = bench.slack.hold_next("chat.postMessage")  # the progress post is very slow
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    hold.wait_arrived()
    # The result does not wait for it: it goes out as a new message.
    result = bench.slack.wait_for(
        lambda: next((m for m in bench.slack.messages(CHANNEL) if "stopped" in text_of(m)), None),
        timeout=15,
    )
    hold.release()
    # The late "⏳ Stopping…" line is removed once it lands; the result stays the one line.
    bench.slack.wait_for(
        lambda: len(bench.slack.messages(CHANNEL, include_deleted=True)) == 2 or None
    )
    bench.slack.wait_for(lambda: len(bench.slack.messages(CHANNEL)) == 1 or None)
    assert bench.slack.messages(CHANNEL)[0]["ts"] == result["ts"]
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None and action.result_ref is not None
    bench.slack.wait_for(
        lambda: (
            (
                (a := bench.run(bench.runtime.store.get(action_id)))
                and a.result_ref
                and a.result_ref.ts == result["ts"]
            )
            or None
        )
    )


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_a_card_slack_failed_to_post_is_posted_at_the_next_click(bench: Bench) -> None:
    bench.slack.fail_next("chat.postMessage", "internal_error", count=3)
    bench.command("ner-prod")
    told = wait_text_any(bench, "could not post the approval card")
    assert "internal_error" in told
    assert _cards(bench) == []
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    bench.slack.wait_for(lambda: _live_cards(bench) or None)
    assert len(_cards(bench)) == 1


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_a_notice_with_no_url_left_and_no_ephemeral_goes_by_dm(bench: Bench) -> None:
    bench.command("ner-prod")
    url = bench.driver.last_response_url
    assert url is not None
    for _ in range(4):
        post_json(url, {"text": "elsewhere"})
    bench.slack.fail_next("chat.postEphemeral", "user_not_in_channel")  # they left the channel
    click_card(bench, "ml_stop.approve", ADMIN2)
    dm = bench.slack.wait_for(lambda: bench.slack.direct_messages(ADMIN) or None)
    assert "approved your" in text_of(dm[-1])


def test_a_slow_response_url_does_not_hold_the_stop_back(bench: Bench) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    # Slack sits on the click's response_url post (the preview's "⏳ Stopping…").
    hold = bench.slack.hold_next("response_url")
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    hold.wait_arrived()
    assert _final(bench, action_id) is ActionState.SUCCEEDED  # while the post is held
    hold.release()
    result = bench.result_of(action_id)
    assert "stopped" in text_of(result)
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


def test_a_delayed_answer_is_still_taken(bench: Bench) -> None:
    # The stand-in's delay fault: the post is answered late, and counts as delivered.
    bench.slack.delay_next("chat.postMessage", 0.3)
    bench.command("ner-prod")
    result = bench.confirm()
    assert "stopped" in text_of(result)
    assert len(bench.slack.messages(CHANNEL)) == 1


def test_a_result_whose_blocks_slack_refuses_goes_out_as_plain_text(bench: Bench) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    # The progress post and the result's post: both refused for their blocks.
    bench.slack.fail_next("chat.postMessage", "msg_blocks_too_long", count=2)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    assert _final(bench, action_id) is ActionState.SUCCEEDED
    lines = bench.slack.wait_for(
        lambda: [m for m in bench.slack.messages(CHANNEL) if "stopped" in m["text"]] or None
    )
    assert lines[0]["blocks"] == [] and "ner-prod" in lines[0]["text"]


def test_an_answer_to_a_click_whose_url_slack_says_is_spent_goes_by_ephemeral(
    bench: Bench,
) -> None:
    bench.command("ner-prod")
    action_id = _action_id(bench)
    url = bench.slack.new_response_url(channel=CHANNEL, user=ADMIN, ephemeral=True)
    for _ in range(5):  # spent before the bot ever uses it: only Slack knows
        post_json(url, {"text": "elsewhere"})
    bench.driver.click("ml_stop.cancel", action_id, user_id=ADMIN, response_url=url, ephemeral=True)
    note = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in bench.slack.ephemerals(user=ADMIN)
                if e["via"] == "api" and "cancel" in text_of(e).lower()
            ),
            None,
        )
    )
    assert "ner-prod" in text_of(note)
    assert bench.slack.response_posts(url)[-1].status == 404
    assert _state(bench, action_id) is ActionState.CANCELLED
