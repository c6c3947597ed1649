"""Every message family fits what real Slack takes, whatever the number of targets (#19).

One place: each renderer, with 1, 10, 71 and 130 targets that all break something (endpoints,
semantic_text fields, pipelines, long Elasticsearch errors), goes through the stand-in's own
validator (tests/support/slack_limits.py) and through the shell's text rendering. A preview
must still name every target that will change and say that something will break.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest
from support.slack_limits import check_message

from bot.core.impact import EndpointUse, Impact, PipelineUse, Reach, SemanticUse
from bot.core.model import (
    ActionState,
    Approval,
    Deployment,
    PendingAction,
    StartSpec,
    StopOutcome,
    StopSpec,
)
from bot.core.policy import Decision
from bot.slack import blocks, impact_blocks
from bot.slack.blocks import Message

NOW = 1_700_000_000.0
SIZES = [1, 10, 71, 130]


def heavy(i: int) -> Deployment:
    """A deployment whose stop breaks a lot: what makes previews long in real clusters."""
    name = f"dep-{i:03d}-multilingual-e5-small-prod"
    impact = Impact(
        endpoints=tuple(
            EndpointUse(f"{name}-endpoint-{k}", k == 0, "text_embedding") for k in range(3)
        ),
        semantic=tuple(
            SemanticUse(f"docs-{i}-{k}", "content.body", f"{name}-endpoint-0") for k in range(3)
        ),
        pipelines=tuple(
            PipelineUse(f"ingest-{i}-{k}", Reach.MODEL_ID, name, refuses=True) for k in range(4)
        ),
    )
    return Deployment(
        deployment_id=name,
        model_id=".multilingual-e5-small_linux-x86_64",
        state="started",
        allocations=2,
        target_allocations=2,
        threads_per_allocation=1,
        priority="normal",
        inference_count=123_456,
        pending_requests=12,
        pipelines=tuple(f"ingest-{i}-{k}" for k in range(4)),
        impact=impact,
    )


def action(n: int, **changes: object) -> PendingAction:
    base = PendingAction(
        id="act-1234",
        requester_id="U123",
        requester_name="alice",
        team_id="T1",
        channel_id="C1",
        cluster="prod",
        spec=StopSpec(expression="dep-*", reason="runaway memory & <latency>", force=True),
        targets=tuple(heavy(i) for i in range(n)),
        created_at=NOW,
        expires_at=NOW + 600,
        decision="allowed: role ml-admin via user U123",
        required_approvals=5,
        approver_roles=("ml-admin", "sre-lead"),
        approvals=tuple(Approval(f"U{k:03d}", f"user{k}", NOW + k) for k in range(4)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def finished(n: int) -> PendingAction:
    outcomes = tuple(
        StopOutcome(
            d.deployment_id,
            i % 3 != 0,
            "stopped" if i % 3 else "status_exception: " + "cannot stop deployment " * 20,
            409,
        )
        for i, d in enumerate(action(n).targets)
    )
    return action(
        n, state=ActionState.FAILED, outcomes=outcomes, actor_id="U123", finished_at=NOW + 60
    )


RENDERERS: dict[str, Callable[[int], Message]] = {
    "preview": lambda n: blocks.proposal(action(n), now=NOW),
    "preview, changed": lambda n: blocks.proposal(action(n), now=NOW, note="⚠ " + "x" * 900),
    "start preview": lambda n: blocks.proposal(
        action(n, spec=StartSpec(expression="dep-*")), now=NOW
    ),
    "progress": lambda n: blocks.progress(action(n)),
    "approval card": lambda n: blocks.approval_card(action(n), now=NOW),
    "needs approval": lambda n: blocks.needs_approval(action(n)),
    "approval recorded": lambda n: blocks.approval_recorded(action(n), "U999"),
    "result": lambda n: blocks.result(finished(n), now=NOW + 60),
    "final preview": lambda n: blocks.final_preview(finished(n)),
    "unknown outcome": lambda n: blocks.unknown_outcome(action(n)),
    "listing": lambda n: blocks.deployments_table("prod", "dep-*", action(n).targets),
    "needs --force": lambda n: impact_blocks.force_needed(
        "prod", action(n).targets, may_force=True, note="x" * 500
    ),
    "timeline": lambda n: blocks.audit_timeline(
        [dataclasses.replace(finished(n), id=f"a{k}", created_at=NOW + k) for k in range(n)],
        scope="in <#C1>",
        markdown=False,
    ),
    "timeline markdown": lambda n: blocks.audit_timeline(
        [dataclasses.replace(finished(n), id=f"a{k}", created_at=NOW + k) for k in range(n)],
        scope="in <#C1>",
        markdown=True,
    ),
    "denied": lambda n: blocks.denied(
        Decision(False, "denied: " + ", ".join(d.deployment_id for d in action(n).targets)),
        "/ml-stop dep-*",
    ),
    "nothing matched": lambda n: blocks.nothing_matched(
        "dep-*", "prod", [d.deployment_id for d in action(n).targets], ["did you mean x"] * n
    ),
    "error": lambda n: blocks.error("; ".join(["es said no"] * n * 10), error_id="e1", hint="h"),
    "locked": lambda n: blocks.locked(
        action(n), [d.deployment_id for d in action(n).targets], now=NOW
    ),
}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("family", sorted(RENDERERS))
def test_every_message_fits_what_slack_takes(family: str, n: int) -> None:
    message = RENDERERS[family](n)
    problems = check_message(dict(message))
    assert not problems, (family, n, problems)
    assert blocks.to_text(message).strip()  # the shell shows the same message as text


def shown_ids(message: Message) -> set[str]:
    text = "\n".join(
        str(node["text"]) for node in _walk(message["blocks"]) if isinstance(node.get("text"), str)
    )
    found: set[str] = set()
    for span in re.findall(r"`([^`]+)`", text):
        group = re.fullmatch(r"(.*)\{(.*)\}(.*)", span)
        found |= {group[1] + x + group[3] for x in group[2].split(",")} if group else {span}
    return found


def _walk(node: object) -> list[dict[str, object]]:
    if isinstance(node, dict):
        return [node, *(d for v in node.values() for d in _walk(v))]
    if isinstance(node, list):
        return [d for v in node for d in _walk(v)]
    return []


@pytest.mark.parametrize("n", SIZES)
def test_a_preview_names_every_target_and_says_what_breaks(n: int) -> None:
    message = blocks.proposal(action(n), now=NOW)
    assert shown_ids(message) >= {d.deployment_id for d in action(n).targets}
    text = str(message["blocks"])
    assert "stops working" in text  # the worst target's detail is there
    if n > 1:
        assert f"{n:,} of {n:,} break something when stopped" in text
    assert blocks.button_labels(message)  # Stop and Cancel are never dropped


def test_a_preview_of_1000_unrelated_ids_fits_and_counts_the_ones_it_cannot_name() -> None:
    # Ids that share no part cannot be grouped: past the budget they become an exact count.
    targets = tuple(
        dataclasses.replace(heavy(i), deployment_id=f"{i:04d}{'x' * 59}") for i in range(1000)
    )
    message = blocks.proposal(action(1, targets=targets), now=NOW)
    assert not check_message(dict(message))
    named = {t.deployment_id for t in targets} & shown_ids(message)
    left = re.search(r"… \+([\d,]+) more \(all listed by `/ml-deployments dep-\*`\)", str(message))
    assert left is not None and len(named) + int(left[1].replace(",", "")) == 1000


@pytest.mark.parametrize("n", SIZES)
def test_the_details_modal_fits_and_its_pages_name_every_target_once(n: int) -> None:
    pending = action(n)
    seen: list[str] = []
    for page in range(blocks.page_count(pending)):
        view = blocks.details_modal(pending, page)
        assert not check_message(view, surface="view"), (n, page)
        assert len(view["title"]["text"]) <= 24
        seen += re.findall(r"^\*`([^`]+)`\*", "\n".join(_mrkdwn(view["blocks"])), re.M)
    assert sorted(seen) == sorted(d.deployment_id for d in pending.targets)


def _mrkdwn(view_blocks: list[dict[str, object]]) -> list[str]:
    return [str(n["text"]) for n in _walk(view_blocks) if n.get("type") == "mrkdwn"]
