"""Timed changes (issue 22), what a person sees: the usage names `--for`/`--until`; a revert
the world overtook offers previews instead (buttons that dispatch command text as if typed);
Extend, Keep and Revert now are answered in the change's thread. The real Bolt app over
HTTP, the emulator and the strict Slack stand-in; time moves only through the bot's clock."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ROLE_MAP, Bench, text_of

from bot.core.model import ActionState, PendingAction
from bot.manifest import build
from bot.server import sweep_once
from bot.slack.notices import SlackNotices

ADMIN, CHANNEL = "U0ADMIN1", "C0INCIDENTS"
USAGE_HINT_MAX = 1000  # Slack's manifest schema: features.slash_commands[].usage_hint


@pytest.fixture
def role_map_text() -> str:
    """The shared role map, with `scale` granted to the admins."""
    return ROLE_MAP.replace(
        '- {action: [stop, start, status, freeze], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all]}",
        '- {action: [stop, start, status, freeze, scale], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all, adaptive_off,"
        " scale_to_zero]}",
    )


def _sweep(bench: Bench) -> None:
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.run(sweep_once(bench.runtime, notices))


def _get(bench: Bench, action_id: str) -> PendingAction:
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None
    return action


def _timed(bench: Bench) -> list[PendingAction]:
    return [a for a in bench.run(bench.runtime.store.history(0)) if a.revert_id]


def _thread(bench: Bench, change: PendingAction) -> list[dict[str, Any]]:
    latest = _get(bench, change.id)
    assert latest.result_ref is not None
    ts = latest.result_ref.ts
    return [m for m in bench.slack.messages(CHANNEL) if m.get("thread_ts") == ts]


def _in_thread(bench: Bench, change: PendingAction, words: str) -> dict[str, Any]:
    found: dict[str, Any] = bench.slack.wait_for(
        lambda: next((m for m in _thread(bench, change) if words in text_of(m)), None)
    )
    return found


def _buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for b in message.get("blocks", [])
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


def _preview_after_click(bench: Bench, action_id: str) -> dict[str, Any]:
    reply = bench.driver.click_button(action_id, user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200
    url = bench.driver.last_response_url
    posts = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
    body: dict[str, Any] = posts[0].body
    return body


# ------------------------------------------------------------------------- usage and manifest


def test_the_usage_lines_name_for_and_until(bench: Bench) -> None:
    stop = text_of(bench.command("help"))
    assert "[--for DURATION | --until TIME]" in stop
    assert "freeze [--for DURATION | --until TIME]" in stop
    scale = text_of(bench.command("help", command="/ml-scale"))
    assert "[--for DURATION | --until TIME]" in scale and "--until 06:00" in scale
    # A usage error repeats the usage line, so it names them too.
    error = text_of(bench.command("ner-prod --for 1m --until 06:00"))
    assert "--for DURATION" in error
    assert bench.emulator.requests == [] or all(
        not r.path.endswith("/_stop") for r in bench.emulator.requests
    )


def test_the_manifest_usage_hints_name_for_and_until_within_slacks_limit() -> None:
    commands = {c["command"]: c for c in build()["features"]["slash_commands"]}
    for name in ("/ml-stop", "/ml-scale"):
        hint = commands[name]["usage_hint"]
        assert "--for DURATION" in hint and "--until TIME" in hint
        assert len(hint) <= USAGE_HINT_MAX
    assert "freeze [--for DURATION|--until TIME]" in commands["/ml-stop"]["usage_hint"]


# ------------------------------------------------------- the world moved: previews instead


def test_a_stop_revert_overtaken_offers_restart_and_scale_back_previews(bench: Bench) -> None:
    bench.command("ner-prod,search-e5 --force --for 30m")
    bench.confirm()
    change = _timed(bench)[-1]
    assert change.revert_id is not None
    ner = next(d for d in change.targets if d.deployment_id == "ner-prod")
    bench.emulator.state.start_deployment(ner.model_id, "ner-prod", number_of_allocations=3)
    bench.clock.advance(1801)
    _sweep(bench)
    assert _get(bench, change.revert_id).state is ActionState.CANCELLED
    starts = [r for r in bench.emulator.requests if r.path.endswith("/_start")]
    assert not starts  # nothing restarted blindly
    note = _in_thread(bench, change, "Timed revert not run")
    buttons = _buttons(note)
    ids = [b["action_id"] for b in buttons]
    assert len(ids) == len(set(ids))  # Slack refuses a message whose buttons share an id
    by_id = {b["action_id"]: b for b in buttons}
    assert by_id["ml_revert.preview_start"]["value"].startswith("search-e5 --cluster ")
    assert by_id["ml_revert.preview_scale"]["value"].startswith("ner-prod --allocations 1 ")

    preview = _preview_after_click(bench, "ml_revert.preview_start")
    assert "ml_start.confirm" in text_of(preview) and "search-e5" in text_of(preview)
    preview = _preview_after_click(bench, "ml_revert.preview_scale")
    shown = text_of(preview)
    assert "ml_scale.confirm" in shown and "ner-prod" in shown
    # A preview only: nothing started or scaled until someone confirms it.
    assert not [r for r in bench.emulator.requests if r.path.endswith("/_start")]
    assert not [r for r in bench.emulator.requests if r.endpoint == "ml.update"]
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 3


def test_a_scale_revert_overtaken_offers_the_scale_back_preview(bench: Bench) -> None:
    bench.command("ner-prod --allocations 3 --for 30m", command="/ml-scale")
    bench.confirm(action_id="ml_scale.confirm")
    change = _timed(bench)[-1]
    assert change.revert_id is not None
    bench.emulator.state.deployments["ner-prod"].number_of_allocations = 5  # by hand
    bench.emulator.state.deployments["ner-prod"].target_allocation_count = 5
    bench.clock.advance(1801)
    _sweep(bench)
    assert _get(bench, change.revert_id).state is ActionState.CANCELLED
    note = _in_thread(bench, change, "Timed revert not run")
    assert "someone scaled it since" in text_of(note)
    [button] = _buttons(note)
    assert button["action_id"] == "ml_revert.preview_scale"
    assert button["value"].startswith("ner-prod --allocations 1 ")
    preview = _preview_after_click(bench, "ml_revert.preview_scale")
    assert "ml_scale.confirm" in text_of(preview)
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 5


def test_a_preview_button_can_do_nothing_the_clicker_could_not_type(bench: Bench) -> None:
    bench.command("ner-prod --for 30m")
    bench.confirm()
    change = _timed(bench)[-1]
    ner = change.targets[0]
    bench.emulator.state.start_deployment(ner.model_id, "ner-prod")
    bench.clock.advance(1801)
    _sweep(bench)
    _in_thread(bench, change, "Timed revert not run")
    reply = bench.driver.click_button("ml_revert.preview_scale", user_id="U0NOBODY")
    assert reply.status == 200
    url = bench.driver.last_response_url
    [answer] = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
    assert "ml_scale.confirm" not in text_of(answer.body)
    assert answer.body.get("response_type") == "ephemeral"


# ------------------------------------------------------------- answers in the change's thread


def test_extend_keep_and_revert_now_are_answered_in_the_changes_thread(bench: Bench) -> None:
    bench.command("ner-prod --for 30m")
    bench.confirm()
    change = _timed(bench)[-1]
    assert change.revert_id is not None
    _in_thread(bench, change, "Reverts at")
    bench.driver.click_button("ml_revert.extend_30m", user_id=ADMIN, channel_id=CHANNEL)
    said = _in_thread(bench, change, "extended by 30 min")
    assert f"<@{ADMIN}>" in text_of(said)
    bench.driver.click_button("ml_revert.now", user_id=ADMIN, channel_id=CHANNEL)
    said = _in_thread(bench, change, "pressed Revert now")
    assert f"<@{ADMIN}>" in text_of(said)
    bench.slack.wait_for(lambda: _get(bench, change.revert_id or "").state.is_final or None)
    assert _get(bench, change.revert_id).state is ActionState.SUCCEEDED

    bench.command("search-e5 --for 30m")
    bench.confirm()
    second = _timed(bench)[-1]
    _in_thread(bench, second, "Reverts at")
    bench.driver.click_button("ml_revert.keep", user_id=ADMIN, channel_id=CHANNEL)
    said = _in_thread(bench, second, "kept")
    assert f"<@{ADMIN}>" in text_of(said)


def test_a_refused_extend_is_told_only_to_the_clicker(bench: Bench) -> None:
    bench.command("ner-prod --for 30m")
    bench.confirm()
    change = _timed(bench)[-1]
    assert change.revert_id is not None
    _in_thread(bench, change, "Reverts at")
    before = len(_thread(bench, change))
    due = _get(bench, change.revert_id).expires_at
    reply = bench.driver.click_button("ml_revert.extend_1h", user_id="U0NOBODY")
    assert reply.status == 200
    url = bench.driver.last_response_url
    [answer] = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
    assert answer.body.get("response_type") == "ephemeral"
    assert "extended" not in text_of(answer.body)
    assert _get(bench, change.revert_id).expires_at == due
    assert len(_thread(bench, change)) == before  # nothing said in the thread
