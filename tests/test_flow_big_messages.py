"""Many targets, many approvals, a big workflow step: only messages real Slack takes (#19).

Through the real HTTP path: the strict stand-in refuses what Slack refuses (and the `slack`
fixture fails any test whose bot sent such a message), so each flow here passing means every
preview, card, notice, listing, timeline and step completion fitted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of
from test_flow_workflow import click_step_button, run_step, step_state

from bot.emulator.demo import E5
from bot.emulator.faults import FailRule

ADMIN = "U0ADMIN1"
CHANNEL = "C0INCIDENTS"
OTHER = "U0ADMIN2"
APPROVERS = ["U0ADMIN2", "U0APPR3", "U0APPR4", "U0APPR5", "U0APPR6"]


def add_deployments(bench: Bench, count: int) -> list[str]:
    """`count` more deployments named d-…; every third feeds an ingest pipeline."""
    ids = [f"d-{i:03d}-multilingual-e5-small-prod" for i in range(count)]
    state = bench.emulator.state
    for i, dep in enumerate(ids):
        state.start_deployment(E5, dep, inference_count=1000 + i)
        if i % 3 == 0:
            processors = [{"inference": {"model_id": dep}}]
            state.put_pipeline(f"ingest-{dep}", {"processors": processors})
    return ids


def shown_ids(message: dict[str, Any]) -> set[str]:
    """Every id in inline code, `prefix{a,b}` groups expanded."""
    found: set[str] = set()
    for span in re.findall(r"`([^`]+)`", text_of(message)):
        group = re.fullmatch(r"(.*)\{(.*)\}(.*)", span)
        found |= {group[1] + x + group[3] for x in group[2].split(",")} if group else {span}
    return found


def no_limit_problems(bench: Bench) -> None:
    assert bench.slack.limit_problems() == []


def test_a_wildcard_over_71_deployments_fits_from_preview_to_audit(bench: Bench) -> None:
    ids = add_deployments(bench, 71)
    listing = bench.command("d-*", command="/ml-deployments")
    assert "71 deployments" in text_of(listing)
    refused = bench.command("d-* --reason INC-71")
    assert "--force" in text_of(refused)  # pipelines use 24 of them: the refusal fits too
    preview = bench.command("d-* --force --reason INC-71")
    assert shown_ids(preview) >= set(ids), "every deployment that will stop is named"
    assert "24 of 71 break something when stopped" in text_of(preview)
    result = bench.confirm()
    assert "71" in text_of(result)
    assert all(bench.emulator.stop_calls(d) for d in ids)
    timeline = bench.command("", command="/ml-audit")
    assert "ML action" in text_of(timeline) or "stop" in text_of(timeline)
    no_limit_problems(bench)


FIVE_EYES = (
    ROLE_MAP.replace(
        "  - {role: ml-admin, usergroups: [S0SRE]}",
        "  - {role: ml-admin, usergroups: [S0SRE]}\n"
        "  - {role: ml-admin, users: [U0APPR3, U0APPR4, U0APPR5, U0APPR6]}",
    )
    + """
approvals:
  - {actions: [stop], required: 5, approvers: [ml-admin]}
"""
)


def _approve(bench: Bench, user: str) -> None:
    card = bench.slack.wait_for(
        lambda: next(
            (m for m in reversed(bench.slack.messages(CHANNEL)) if "ml_stop.approve" in str(m)),
            None,
        )
    )
    reply = bench.driver.click(
        "ml_stop.approve",
        button_value(card, "ml_stop.approve"),
        user_id=user,
        channel_id=CHANNEL,
        message_ts=card["ts"],
        message=card,
        ephemeral=False,
    )
    assert reply.status == 200
    bench.slack.wait_for(
        lambda: f"<@{user}>" in text_of(bench.slack.message(CHANNEL, card["ts"]) or {}) or None
    )


@pytest.mark.parametrize("role_map_text", [FIVE_EYES])
def test_a_five_approval_rule_over_71_deployments_fits(bench: Bench) -> None:
    for user in APPROVERS[1:]:
        bench.slack.add_user(user, user.lower())
    ids = add_deployments(bench, 71)
    preview = bench.command("d-* --force --reason INC-5")
    assert "5 approvals" in text_of(preview)
    assert shown_ids(preview) >= set(ids)
    for user in APPROVERS:
        _approve(bench, user)
    result = bench.confirm()
    assert "stopped" in text_of(result) or "71" in text_of(result)
    assert all(bench.emulator.stop_calls(d) for d in ids)
    no_limit_problems(bench)


def test_a_130_deployment_workflow_step_completes_with_capped_outputs(bench: Bench) -> None:
    ids = add_deployments(bench, 130)
    execution_id, token = run_step(bench, deployment_id="d-*", force=True, reason="INC-130")
    preview = bench.slack.messages(CHANNEL)[-1]
    assert shown_ids(preview) >= set(ids)
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "completed", state
    stopped = state["outputs"]["stopped_deployments"]
    listed = stopped.split(",")
    more = re.fullmatch(r"… and (\d+) more", listed[-1])
    assert more is not None and len(listed) - 1 + int(more[1]) == 130, stopped
    assert set(listed[:-1]) <= set(ids)
    call = bench.slack.calls("functions.completeSuccess")[-1]
    assert len(urlencode({k: str(v) for k, v in call.params.items()})) < 6000
    no_limit_problems(bench)


def test_a_130_deployment_workflow_step_that_fails_completes_with_a_capped_error(
    bench: Bench,
) -> None:
    ids = add_deployments(bench, 130)
    reason = "status_exception: cannot stop deployment while it is busy; try again " * 8
    bench.emulator.faults.fails.append(
        FailRule(130, 409, "ml.stop", type="status_exception", reason=reason)
    )
    execution_id, token = run_step(bench, deployment_id="d-*", force=True)
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    state = step_state(bench, execution_id)
    assert state["state"] == "failed", state
    assert re.search(r"… and \d+ more$", state["error"]), state["error"][-200:]
    assert any(d in state["error"] for d in ids)
    no_limit_problems(bench)


def _click_in_view(bench: Bench, view: dict[str, Any], action_id: str, user: str) -> None:
    """A Previous/Next click inside a modal, as Slack sends it (the view, no message)."""
    button = next(
        e
        for b in view["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    container = {"type": "view", "view_id": view["id"]}
    reply = bench.driver.click(
        action_id, button["value"], user_id=user, extra={"view": view, "container": container}
    )
    assert reply.status == 200


def test_show_all_opens_every_target_in_a_paged_modal(bench: Bench) -> None:
    ids = add_deployments(bench, 71)
    preview = bench.command("d-* --force --reason INC-71")
    assert "ml_stop.show_all" in text_of(preview)
    # Only the requester opens it: someone else's click is answered privately, nothing opens.
    bench.driver.click("ml_stop.show_all", button_value(preview, "ml_stop.show_all"), user_id=OTHER)
    bench.slack.wait_for(
        lambda: any("not yours" in text_of(e) for e in bench.slack.ephemerals(user=OTHER)) or None
    )
    assert bench.slack.views() == []
    bench.driver.click_button("ml_stop.show_all", user_id=ADMIN, channel_id=CHANNEL)
    view = bench.slack.wait_for(lambda: (bench.slack.views() or [None])[0])
    seen: list[str] = []
    while True:
        seen += re.findall(r"\*`(d-\d{3}-multilingual-e5-small-prod)`\*", text_of(view))
        if "ml_stop.details_next" not in text_of(view):
            break
        before = view["hash"]
        _click_in_view(bench, view, "ml_stop.details_next", ADMIN)
        view = bench.slack.wait_for(
            lambda b=before: next((v for v in bench.slack.views() if v["hash"] != b), None)
        )
    assert sorted(seen) == sorted(ids), "every target once, in detail"
    assert "page 1 of" not in text_of(view)  # paged forward to the last
    assert len(bench.slack.calls("views.update")) >= 6
    no_limit_problems(bench)
