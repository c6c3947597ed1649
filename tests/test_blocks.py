"""Unit tests for bot.slack.blocks: content, escaping, Slack limits, terminal rendering."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from support.slack_limits import check_message

from bot.core.commands import UsageError
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
from bot.slack import blocks
from bot.slack.blocks import Message

NOW = 1_700_000_000.0  # 22:13:20 UTC
EXPIRES = NOW + 600  # 22:23:20 UTC


def dep(name: str = "elser-prod", **changes: Any) -> Deployment:
    base = Deployment(
        deployment_id=name,
        model_id=".elser_model_2",
        state="started",
        allocations=2,
        target_allocations=2,
        threads_per_allocation=1,
        priority="normal",
        inference_count=1234,
        pending_requests=0,
    )
    return dataclasses.replace(base, **changes)


def many(n: int) -> tuple[Deployment, ...]:
    return tuple(
        dep(f"search-model-{i:04d}", pipelines=(f"pipe-{i}",) if i % 7 == 0 else ())
        for i in range(n)
    )


def make_action(targets: tuple[Deployment, ...] = (dep(),), **changes: Any) -> PendingAction:
    spec = changes.pop("spec", StopSpec(expression="elser-prod", reason="runaway memory"))
    base = PendingAction(
        id="act-1234",
        requester_id="U123",
        requester_name="alice",
        team_id="T1",
        channel_id="C1",
        cluster="prod",
        spec=spec,
        targets=targets,
        created_at=NOW,
        expires_at=EXPIRES,
        decision="allowed: role ml-admin via user U123",
    )
    return dataclasses.replace(base, **changes)


# --------------------------------------------------------------------------- validators


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict inside a block tree."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def mrkdwn_texts(message: Message) -> list[str]:
    return [d["text"] for d in walk(message["blocks"]) if d.get("type") == "mrkdwn"]


ALLOWED_MARKUP = re.compile(
    r"<@U[A-Z0-9]+>"
    r"|<!subteam\^S[A-Z0-9]+>"  # a user group, named by a denial (who can help)
    r"|<#C[A-Z0-9]+>"  # a channel, named by a denial (where it would work)
    r"|<!date\^\d+\^\{time\}\|[0-9:]+ UTC>"
    r"|<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9-]+ [0-9:]+ UTC>"
)


def assert_no_markup(text: str) -> None:
    """Only our own mentions and dates may use `<…>`; no raw `&` that isn't an entity."""
    rest = ALLOWED_MARKUP.sub("", text)
    assert "<" not in rest and ">" not in rest, rest
    assert not re.search(r"&(?!(?:amp|lt|gt);)", rest), rest


def validate(message: Message) -> None:
    """Every Block Kit limit we know of, via slack_sdk's models and our own checks."""
    assert set(message) == {"text", "blocks"}
    assert message["text"].strip(), "a text fallback is required"
    assert not check_message(dict(message)), check_message(dict(message))  # what Slack refuses
    assert len(message["text"]) <= blocks.FALLBACK_TEXT_MAX
    assert_no_markup(message["text"])
    assert 1 <= len(message["blocks"]) <= 50
    for block in message["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.to_dict()  # raises SlackObjectFormationError when over a limit
        check_block(block)
    for text in mrkdwn_texts(message):
        assert_no_markup(text)
    for node in walk(message["blocks"]):
        if node.get("type") in ("plain_text", "mrkdwn"):
            assert node["text"], "empty text objects are rejected by Slack"


def check_block(block: dict[str, Any]) -> None:
    kind = block["type"]
    if kind == "header":
        assert len(block["text"]["text"]) <= 150
    elif kind == "section":
        assert "text" in block or "fields" in block
        if "text" in block:
            assert len(block["text"]["text"]) <= 3000
        assert len(block.get("fields", [])) <= 10
        assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
    elif kind == "context":
        assert 1 <= len(block["elements"]) <= 10
        assert all(len(e["text"]) <= 2000 for e in block["elements"])
    elif kind == "actions":
        assert len(block["elements"]) <= 25
        for button in block["elements"]:
            check_button(button)


def check_button(button: dict[str, Any]) -> None:
    assert len(button["text"]["text"]) <= 75
    assert len(button["action_id"]) <= 255
    assert len(button["value"]) <= 2000
    confirm = button.get("confirm")
    if confirm:
        assert len(confirm["title"]["text"]) <= 100
        assert len(confirm["text"]["text"]) <= 300
        assert len(confirm["confirm"]["text"]) <= 30
        assert len(confirm["deny"]["text"]) <= 30


def all_text(message: Message) -> str:
    parts = [d["text"] for d in walk(message["blocks"]) if isinstance(d.get("text"), str)]
    return "\n".join(parts)


def shown_ids(message: Message) -> set[str]:
    """Every id a reader finds in inline code, `prefix{a,b}` groups expanded."""
    found: set[str] = set()
    for span in re.findall(r"`([^`]+)`", all_text(message)):
        group = re.fullmatch(r"(.*)\{(.*)\}(.*)", span)
        found |= {group[1] + x + group[3] for x in group[2].split(",")} if group else {span}
    return found


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    return {d["action_id"]: d for d in walk(message["blocks"]) if d.get("type") == "button"}


# --------------------------------------------------------------------------- helpers


def test_escape_neutralises_markup_and_escapes_every_ampersand() -> None:
    assert blocks.escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    # Text arrives unescaped (bot/slack/slash_text.py): a typed `&lt;` is shown as typed.
    assert blocks.escape("a &lt; b &amp; c") == "a &amp;lt; b &amp;amp; c"
    assert blocks.escape("&foo;") == "&amp;foo;"


def test_clip_cuts_at_a_word_boundary_and_never_inside_an_entity() -> None:
    text = "alpha beta gamma delta epsilon"
    clipped = blocks.clip(text, 20)
    assert clipped == "alpha beta gamma…"
    assert len(blocks.clip(text, 20)) <= 20
    assert blocks.clip("short", 20) == "short"
    assert not blocks.clip("x" * 30 + "&amp;" * 10, 33).endswith("&…")
    assert len(blocks.clip("y" * 500, 100)) == 100  # one giant word: cut, still within limit


def test_join_limited_keeps_whole_items_and_counts_the_rest() -> None:
    items = [f"id-{i}" for i in range(100)]
    joined = blocks._join_limited(items, 60)
    assert len(joined) <= 60
    shown = [p for p in joined.split(", ") if p.startswith("id-")]
    assert shown == items[: len(shown)]
    assert joined.endswith(f"… +{100 - len(shown)} more")
    assert blocks._join_limited(["a", "b"], 60) == "a, b"


# --------------------------------------------------------------------------- proposal


def test_proposal_names_everything_a_person_needs() -> None:
    target = dep(pending_requests=3, inference_count=1234)
    message = blocks.proposal(make_action((target,), unmatched=("elsr-prod",)), now=NOW)
    validate(message)
    text = all_text(message)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Stop elser-prod on prod?", "emoji": True},
    }
    for needle in (
        "`elser-prod`",
        "`.elser_model_2`",
        "`prod`",
        "state *started*",
        "allocations 2/2",
        "1 thread per allocation",
        "priority normal",
        "1,234 inferences",
        "3 queued",
        "runaway memory",
        "queued inference requests will fail",
        "*Not found, will not be touched:* `elsr-prod`",
        "<!date^1700000600^{time}|22:23 UTC> (in 10 min)",
    ):
        assert needle in text, needle
    assert "Stop elser-prod on prod?" in message["text"]
    assert "(expires in 10 min)" in message["text"]


def test_proposal_buttons_and_confirmation_dialog() -> None:
    message = blocks.proposal(make_action(), now=NOW)
    found = buttons(message)
    stop, cancel = found[blocks.CONFIRM_ACTION_ID], found[blocks.CANCEL_ACTION_ID]
    assert blocks.CONFIRM_ACTION_ID == "ml_stop.confirm"
    assert blocks.CANCEL_ACTION_ID == "ml_stop.cancel"
    assert stop["value"] == cancel["value"] == "act-1234"
    assert stop["style"] == "danger"
    assert "style" not in cancel and "confirm" not in cancel
    confirm = stop["confirm"]
    assert confirm["title"]["text"] == "Stop elser-prod?"
    assert "elser-prod" in confirm["text"]["text"] and "prod" in confirm["text"]["text"]
    assert confirm["confirm"]["text"] == "Stop"
    assert confirm["deny"]["text"] == "Keep running"
    assert confirm["style"] == "danger"


def test_confirmation_dialog_for_several_deployments() -> None:
    targets = (dep("a"), dep("b", pipelines=("p",)), dep("c"))
    message = blocks.proposal(make_action(targets), now=NOW)
    confirm = buttons(message)[blocks.CONFIRM_ACTION_ID]["confirm"]
    assert confirm["title"]["text"] == "Stop 3 deployments?"
    assert "3 deployments on prod: a, b, c." in confirm["text"]["text"]
    assert "pipelines" in confirm["text"]["text"]
    assert message["blocks"][0]["text"]["text"] == "Stop 3 deployments on prod?"


@pytest.mark.parametrize(
    ("spec", "present", "absent"),
    [
        (
            StopSpec("x"),
            ["*Options:* none", "queued inference requests will fail"],
            ["--force`:"],
        ),
        (
            StopSpec("x", force=True),
            ["`--force`: stops even if ingest pipelines or inference endpoints use it"],
            ["*Options:* none"],
        ),
        (
            StopSpec("x", finish_pending_work=True),
            ["`--finish-pending-work`: waits for queued inference requests to finish"],
            ["requests will fail"],
        ),
        (
            StopSpec("x", allow_no_match=False),
            ["`--no-allow-no-match`"],
            [],
        ),
    ],
)
def test_proposal_explains_flags_in_plain_words(
    spec: StopSpec, present: list[str], absent: list[str]
) -> None:
    text = all_text(blocks.proposal(make_action(spec=spec), now=NOW))
    for needle in present:
        assert needle in text
    for needle in absent:
        assert needle not in text


def test_proposal_warns_about_ingest_pipelines() -> None:
    target = dep(pipelines=("ingest-a", "ingest-b"))
    text = all_text(blocks.proposal(make_action((target,)), now=NOW))
    assert "⚠ used by ingest pipeline(s) `ingest-a`, `ingest-b` — they stop working" in text
    assert "without `--force`" in text
    forced = make_action((target,), spec=StopSpec("elser-prod", force=True))
    assert "without `--force`" not in all_text(blocks.proposal(forced, now=NOW))


def test_proposal_without_reason() -> None:
    action = make_action(spec=StopSpec("elser-prod"))
    assert "no reason given" in all_text(blocks.proposal(action, now=NOW))


def test_hostile_reason_cannot_ping_or_link() -> None:
    reason = "<!channel> <!here> <@U999> <https://evil.example|click> & `x` *b*"
    action = make_action(spec=StopSpec("elser-prod", reason=reason))
    for message in (blocks.proposal(action, now=NOW), blocks.result(action, now=NOW)):
        validate(message)  # includes: no `<…>` but our own mentions and dates
        text = all_text(message)
        assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U999&gt;" in text
        assert "&amp;" in text


def test_expiry_wording() -> None:
    action = make_action()
    assert "(in 10 min)" in all_text(blocks.proposal(action, now=NOW))
    assert "(in 1 min)" in all_text(blocks.proposal(action, now=EXPIRES - 50 - 10))
    assert "less than a minute" in all_text(blocks.proposal(action, now=EXPIRES - 5))
    assert "(now)" in all_text(blocks.proposal(action, now=EXPIRES + 1))


@pytest.mark.parametrize("n", [1, 49, 200, 1000])
def test_proposal_respects_limits_and_summarises(n: int) -> None:
    reason = " ".join(["because"] * 500)  # 3999 characters
    unmatched = tuple(f"typo-{i}" for i in range(300))
    action = make_action(many(n), spec=StopSpec("search-*", reason=reason), unmatched=unmatched)
    message = blocks.proposal(action, now=NOW)
    validate(message)
    text = all_text(message)
    detailed_all = "… and" not in text
    show_all = set() if detailed_all else {blocks.SHOW_ALL_ACTION_ID}  # the rest, in a modal
    assert set(buttons(message)) == {blocks.CONFIRM_ACTION_ID, blocks.CANCEL_ACTION_ID} | show_all
    # Worst first: the deployments that break something (pipelines on every 7th) lead.
    detailed = re.findall(r"\*`(search-model-\d{4})`\*", text)
    assert 1 <= len(detailed) <= min(n, blocks.DETAILED_TARGETS)
    breaking = [f"search-model-{i:04d}" for i in range(n) if i % 7 == 0]
    assert detailed[: len(breaking)] == breaking[: len(detailed)]
    # Every target that will change is named, detailed or in the compact list after them.
    assert shown_ids(message) >= {d.deployment_id for d in action.targets}
    if n > 1:
        used = len(breaking)
        assert f"{used:,} of {n:,} break something when stopped" in text
    title = "Stop search-model-0000" if n == 1 else f"Stop {n:,} deployments"
    assert message["blocks"][0]["text"]["text"] == f"{title} on prod?"


def test_long_reason_is_clipped_at_a_word_boundary() -> None:
    words = [f"word{i}" for i in range(600)]
    reason = " ".join(words)  # > 3000 characters
    message = blocks.proposal(make_action(spec=StopSpec("x", reason=reason)), now=NOW)
    validate(message)
    shown = next(t for t in mrkdwn_texts(message) if t.startswith("*Reason:*"))
    body = shown.removeprefix("*Reason:* ")
    assert body.endswith("…")
    kept = body.removesuffix("…").split(" ")
    assert kept == words[: len(kept)]
    assert len(kept) > 100


def test_huge_expression_and_cluster_names_stay_within_limits() -> None:
    action = make_action(
        (dep("a" * 64),),
        cluster="c" * 300,
        spec=StopSpec("e" * 5000, reason="&" * 4000),
        unmatched=("u" * 5000,),
    )
    for message in (
        blocks.proposal(action, now=NOW),
        blocks.progress(action),
        blocks.result(action, now=NOW),
        blocks.final_preview(action),
        blocks.already(action),
    ):
        validate(message)


# --------------------------------------------------------------------------- after the click


def test_progress_has_no_buttons() -> None:
    message = blocks.progress(make_action(actor_id="U123"))
    validate(message)
    assert blocks.button_labels(message) == []
    assert "Stopping `elser-prod` on `prod`…" in all_text(message)
    assert message["text"] == "Stopping elser-prod on prod…"


@pytest.mark.parametrize(
    ("state", "word"),
    [
        (ActionState.SUCCEEDED, "stopped"),
        (ActionState.FAILED, "failed (0 of 1 stopped)"),
        (ActionState.CANCELLED, "cancelled by <@U777>"),
        (ActionState.EXPIRED, "expired"),
    ],
)
def test_final_preview_states(state: ActionState, word: str) -> None:
    outcomes = (
        (StopOutcome("elser-prod", False, "boom", 500),) if state is ActionState.FAILED else ()
    )
    action = make_action(state=state, actor_id="U777", outcomes=outcomes)
    message = blocks.final_preview(action)
    validate(message)
    assert word in all_text(message)
    assert word in message["text"]
    assert blocks.button_labels(message) == []


def finished(n: int = 1, *, failed: int = 0, **changes: Any) -> PendingAction:
    targets = many(n) if n > 1 else (dep(),)
    outcomes = tuple(
        StopOutcome(
            d.deployment_id,
            i >= failed,
            "stopped" if i >= failed else "<conflict>",
            409,
            1.4 if i == 0 else 0.2,
        )
        for i, d in enumerate(targets)
    )
    state = ActionState.FAILED if failed else ActionState.SUCCEEDED
    return make_action(
        targets,
        state=state,
        outcomes=outcomes,
        actor_id="U123",
        finished_at=NOW + 60,
        spec=StopSpec("elser-prod" if n == 1 else "search-*", force=True, reason="INC-42"),
        **changes,
    )


def test_result_says_who_what_where_why_and_how() -> None:
    message = blocks.result(finished(), now=NOW + 90)
    validate(message)
    assert message["text"] == "<@U123> stopped elser-prod on prod (--force): stopped"
    text = all_text(message)
    for needle in (
        "<@U123> stopped `elser-prod` on `prod`",
        "*Expression*\n`elser-prod`",
        "*Options*\n`--force`",
        "*Reason*\nINC-42",
        "✅ `elser-prod` stopped",
        "*Took*\n1.4 s",
        "<!date^1700000060^{time}|22:14 UTC>",
    ):
        assert needle in text, needle
    assert blocks.button_labels(message) == [
        ("Restart with previous settings", blocks.RESTART_ACTION_ID, "act-1234")
    ]


def test_result_lists_failures_first() -> None:
    message = blocks.result(finished(5, failed=2), now=NOW)
    validate(message)
    assert (
        "tried to stop 5 deployments (search-*) on prod (--force): failed (3 of 5 stopped)"
        in (message["text"])
    )
    lines = [ln for t in mrkdwn_texts(message) for ln in t.splitlines() if "`search-model" in ln]
    assert [ln[0] for ln in lines] == ["❌", "❌", "✅", "✅", "✅"]
    assert "❌ `search-model-0000`: &lt;conflict&gt; (409)" in lines


@pytest.mark.parametrize("n", [49, 200, 1000])
def test_result_respects_limits(n: int) -> None:
    message = blocks.result(finished(n, failed=n // 3), now=NOW)
    validate(message)
    text = all_text(message)
    if n > blocks.DETAILED_OUTCOMES:
        assert f"… and {n - blocks.DETAILED_OUTCOMES:,} more (" in text


def test_result_without_outcomes_names_what_was_not_stopped() -> None:
    action = make_action(state=ActionState.EXPIRED)
    message = blocks.result(action, now=NOW)
    validate(message)
    assert "◻️ `elser-prod` not stopped" in all_text(message)
    assert "expired" in message["text"]


def test_not_requester() -> None:
    message = blocks.not_requester(make_action(), "U999")
    validate(message)
    assert message["text"] == "Only <@U123> can confirm or cancel this stop."


@pytest.mark.parametrize(
    ("state", "phrase"),
    [
        (ActionState.EXECUTING, "is already running"),
        (ActionState.SUCCEEDED, "already ran: stopped"),
        (ActionState.FAILED, "already ran: failed"),
        (ActionState.CANCELLED, "was cancelled by <@U5>"),
        (ActionState.EXPIRED, "expired: nothing was stopped"),
    ],
)
def test_already(state: ActionState, phrase: str) -> None:
    message = blocks.already(make_action(state=state, actor_id="U5"))
    validate(message)
    assert phrase in message["text"]
    assert "elser-prod" in message["text"]


# --------------------------------------------------------------------------- other messages


def test_usage_error() -> None:
    err = UsageError(
        command="/ml-stop",
        message="missing the deployment id: `/ml-stop <deployment_id>`",
        usage="/ml-stop <deployment_id> [--force]",
    )
    message = blocks.usage_error(err)
    validate(message)
    first = message["blocks"][0]["text"]["text"]
    assert first.startswith("*missing the deployment id: `/ml-stop &lt;deployment_id&gt;`*")
    assert "```/ml-stop &lt;deployment_id&gt; [--force]```" in first
    assert "`/ml-stop help`" in all_text(message)
    assert "missing the deployment id" in message["text"]


@pytest.mark.parametrize("command", ["/ml-stop", "/ml-deployments", "ml-stop"])
def test_help_message(command: str) -> None:
    message = blocks.help_message(command)
    validate(message)
    rendered = blocks.to_text(message)
    assert "Usage: /ml-" in rendered
    assert "/ml-" in message["text"]
    if "stop" in command:
        assert "--finish-pending-work" in rendered


def test_denied() -> None:
    decision = Decision(allowed=False, explanation="denied: no role grants stop on prod")
    message = blocks.denied(decision, "/ml-stop elser-* --force")
    validate(message)
    text = all_text(message)
    assert "You can't run `/ml-stop elser-* --force`" in text
    assert "denied: no role grants stop on prod" in text
    assert "denied: no role grants stop on prod" in message["text"]
    other = blocks.denied(decision, "the confirmed stop")
    assert "You can't run the confirmed stop" in other["text"]


def test_error_with_id_and_hint() -> None:
    message = blocks.error("Elasticsearch said <no>", error_id="abc123", hint="try again later")
    validate(message)
    text = all_text(message)
    assert "Elasticsearch said &lt;no&gt;" in text
    assert "error id `abc123`" in text
    assert "try again later" in text
    assert "abc123" in message["text"]
    plain = blocks.error("cluster `prod` is unreachable")
    validate(plain)
    assert len(plain["blocks"]) == 1


def test_nothing_matched_says_nothing_was_stopped() -> None:
    hints = ["`elser` is a model, not a deployment; its deployments: elser-a, elser-b"]
    message = blocks.nothing_matched("elsr-prod", "prod", ["elsr-prod"], hints)
    validate(message)
    text = all_text(message)
    assert "Nothing was stopped" in text
    assert "`elsr-prod`" in text and "`prod`" in text
    assert hints[0] in text
    assert "nothing was stopped" in message["text"]
    assert blocks.button_labels(message) == []


def test_deployments_table() -> None:
    deployments = (dep(pipelines=("ingest-a",)), dep("ner", model_id="bert", state="starting"))
    message = blocks.deployments_table("prod", "elser-*", deployments)
    validate(message)
    text = all_text(message)
    for needle in (
        "`elser-prod`",
        "`.elser_model_2`",
        "*started*",
        "2/2 allocations",
        "1,234 inferences",
        "pipelines `ingest-a`",
        "`ner`",
        "*starting*",
    ):
        assert needle in text, needle
    assert "2 deployments matching `elser-*` on `prod`" in message["text"]


def test_deployments_table_empty() -> None:
    message = blocks.deployments_table("prod", "x", ())
    validate(message)
    assert message["text"] == "No deployments matching `x` on `prod`."
    assert blocks.deployments_table("prod", None, ())["text"] == "No deployments on `prod`."


@pytest.mark.parametrize("n", [1, 49, 200, 1000])
def test_deployments_table_limits(n: int) -> None:
    message = blocks.deployments_table("prod", None, many(n))
    validate(message)
    text = all_text(message)
    rows = len(re.findall(r"^`search-model-\d{4}` · model", text, re.M))
    assert 1 <= rows <= min(n, blocks.TABLE_ROWS)
    if rows < n:  # the rest as an exact count, with how to narrow the list
        assert f"… and {n - rows:,} more:" in text and "/ml-deployments elser-*" in text


# --------------------------------------------------------------------------- terminal


def test_mrkdwn_to_text() -> None:
    convert = blocks.mrkdwn_to_text
    assert convert("by <@U123> at <!date^1700000600^{time}|22:23 UTC>") == "by @U123 at 22:23 UTC"
    assert convert("<@U1|alice> in <#C1|ops>") == "@alice in #ops"
    assert (
        convert("<https://x.example|docs> &lt;b&gt; &amp;lt;")
        == "docs (https://x.example) <b> &lt;"
    )


def test_to_text_renders_a_readable_proposal() -> None:
    action = make_action(spec=StopSpec("elser-prod", reason="a <b> & c"))
    rendered = blocks.to_text(blocks.proposal(action, now=NOW))
    lines = rendered.splitlines()
    assert lines[0] == "Stop elser-prod on prod?"
    assert lines[1].startswith("===")
    assert "*Reason:* a <b> & c" in lines
    assert "-" * 40 in lines
    assert any("Expires at 22:23 UTC (in 10 min)" in ln and "@U123" in ln for ln in lines)
    assert lines[-1] == "[Stop]  [Cancel]"


def test_to_text_of_a_result_shows_fields_and_outcomes() -> None:
    rendered = blocks.to_text(blocks.result(finished(), now=NOW))
    assert "@U123 stopped `elser-prod` on `prod`" in rendered
    assert "*Cluster* `prod`" in rendered
    assert "✅ `elser-prod` stopped" in rendered
    assert "<@" not in rendered


def test_to_text_without_blocks_uses_the_text() -> None:
    assert blocks.to_text({"text": "hi <@U1> &amp; bye", "blocks": []}) == "hi @U1 & bye"


def test_button_labels() -> None:
    labels = blocks.button_labels(blocks.proposal(make_action(), now=NOW))
    assert labels == [
        ("Stop", "ml_stop.confirm", "act-1234"),
        ("Cancel", "ml_stop.cancel", "act-1234"),
    ]
    accessory = {
        "text": "x",
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "x"},
                "accessory": {
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Go"},
                    "action_id": "go",
                    "value": "1",
                },
            }
        ],
    }
    assert blocks.button_labels(accessory) == [("Go", "go", "1")]  # type: ignore[arg-type]
    assert blocks.button_labels(blocks.error("x")) == []


# --------------------------------------------------------------------------- property


ES_ID = st.from_regex(r"[a-z0-9](?:[a-z0-9_.\-]{0,62}[a-z0-9])?", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(ES_ID, min_size=1, max_size=80, unique=True),
    reason=st.one_of(st.none(), st.text(max_size=4000)),
    pipelines=st.lists(ES_ID, max_size=30),
    unmatched=st.lists(st.text(min_size=1, max_size=200), max_size=20),
    cluster=ES_ID,
    force=st.booleans(),
    finish=st.booleans(),
)
def test_proposal_never_exceeds_a_limit(
    ids: list[str],
    reason: str | None,
    pipelines: list[str],
    unmatched: list[str],
    cluster: str,
    force: bool,
    finish: bool,
) -> None:
    targets = tuple(
        dep(i, model_id=i, pipelines=tuple(pipelines) if n % 2 else ()) for n, i in enumerate(ids)
    )
    spec = StopSpec(",".join(ids), force=force, finish_pending_work=finish, reason=reason)
    action = make_action(targets, spec=spec, cluster=cluster, unmatched=tuple(unmatched))
    message = blocks.proposal(action, now=NOW)
    validate(message)
    assert [b[1] for b in blocks.button_labels(message)] == [
        blocks.CONFIRM_ACTION_ID,
        blocks.CANCEL_ACTION_ID,
    ]
    assert message["blocks"][-1]["type"] == "actions"


def test_over_long_block_lists_keep_the_last_block() -> None:
    many_blocks = [blocks._divider() for _ in range(60)] + [blocks._context("last")]
    message = blocks._make_message("x", many_blocks)
    assert len(message["blocks"]) == 50
    assert message["blocks"][-1] == blocks._context("last")
    assert "12 more part(s) of this message not shown" in str(message["blocks"][-2])


def test_a_family_over_the_text_budget_is_cut_in_the_middle_as_a_last_resort() -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}
    sections = [section] * 6  # 17,400 characters
    header = {"type": "header", "text": {"type": "plain_text", "text": "first"}}
    message = blocks._make_message("x", [header, *sections, blocks._divider()])
    validate(message)
    assert message["blocks"][0]["type"] == "header" and message["blocks"][-1]["type"] == "divider"
    assert "3 more part(s)" in str(message["blocks"][-2])


def test_blocks_module_imports_no_slack_or_http_library() -> None:
    for module in sorted(Path(blocks.__file__).parent.glob("*.py")):
        tree = ast.parse(module.read_text())
        imported = {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        banned = ("slack_sdk", "slack_bolt", "aiohttp")
        assert not {m for m in imported if m.split(".")[0] in banned}, module.name


# --------------------------------------------------------------------------- kinds: start


def start_action(targets: tuple[Deployment, ...] | None = None, **changes: Any) -> PendingAction:
    settings_dep = dep(queue_capacity=1024, cache_size="1gb", pipelines=("ingest-a",))
    return make_action(
        targets if targets is not None else (settings_dep,),
        spec=changes.pop("spec", StartSpec("elser-prod", reason="incident over")),
        **changes,
    )


def test_new_action_ids() -> None:
    assert blocks.START_CONFIRM_ACTION_ID == "ml_start.confirm"
    assert blocks.START_CANCEL_ACTION_ID == "ml_start.cancel"
    assert blocks.APPROVE_ACTION_ID == "ml_stop.approve"
    assert blocks.REJECT_ACTION_ID == "ml_stop.reject"
    assert blocks.RESTART_ACTION_ID == "ml_deployment.restart"


def test_start_proposal_shows_settings_and_no_stop_wording() -> None:
    message = blocks.proposal(start_action(), now=NOW)
    validate(message)
    assert message["blocks"][0]["text"]["text"] == "Start elser-prod on prod?"
    assert message["text"].startswith("Start elser-prod on prod? Confirm or cancel")
    text = all_text(message)
    for needle in (
        "*`elser-prod`* — model `.elser_model_2`",
        "2 allocations",
        "1 thread per allocation",
        "priority normal",
        "queue capacity 1,024",
        "cache size `1gb`",
        "*You typed:* `elser-prod`",
        "incident over",
    ):
        assert needle in text, needle
    for absent in ("Options:", "ingest pipeline", "queued inference", "--force", "Stop"):
        assert absent not in text, absent


def test_start_proposal_buttons_and_dialog() -> None:
    message = blocks.proposal(start_action(), now=NOW)
    found = buttons(message)
    assert set(found) == {blocks.START_CONFIRM_ACTION_ID, blocks.START_CANCEL_ACTION_ID}
    start, cancel = found[blocks.START_CONFIRM_ACTION_ID], found[blocks.START_CANCEL_ACTION_ID]
    assert start["value"] == cancel["value"] == "act-1234"
    assert start["style"] == "primary"
    assert "style" not in cancel and "confirm" not in cancel
    confirm = start["confirm"]
    assert confirm["title"]["text"] == "Start elser-prod?"
    assert confirm["text"]["text"] == "This starts elser-prod on prod."
    assert confirm["confirm"]["text"] == "Start"
    assert confirm["style"] == "primary"
    assert blocks.button_labels(message) == [
        ("Start", "ml_start.confirm", "act-1234"),
        ("Cancel", "ml_start.cancel", "act-1234"),
    ]
    assert blocks.to_text(message).splitlines()[-1] == "[Start]  [Cancel]"


def test_restart_proposal_names_its_source_and_each_deployments_settings() -> None:
    adaptive = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 8}
    targets = (
        dep("a", target_allocations=3, threads_per_allocation=4, priority="low"),
        dep("b", adaptive_allocations=adaptive, threads_per_allocation=None),
    )
    action = start_action(targets, source_action_id="act-0001")
    message = blocks.proposal(action, now=NOW)
    validate(message)
    text = all_text(message)
    assert (
        "Restart* of the deployments stopped by action `act-0001` with their previous settings"
        in text
    )
    assert "You typed" not in text
    assert "3 allocations · 4 threads per allocation · priority low" in text
    assert "adaptive allocations (min 1, max 8) · default threads" in text
    assert "default queue" in text and "default cache size" in text
    confirm = buttons(message)[blocks.START_CONFIRM_ACTION_ID]["confirm"]
    assert confirm["title"]["text"] == "Start 2 deployments?"
    assert "This starts 2 deployments on prod: a, b." in confirm["text"]["text"]
    assert "previous settings" in confirm["text"]["text"]


@pytest.mark.parametrize("n", [1, 49, 200, 1000])
def test_start_proposal_respects_limits(n: int) -> None:
    action = start_action(many(n), source_action_id="x" * 64, spec=StartSpec("search-*"))
    message = blocks.proposal(action, now=NOW)
    validate(message)
    assert "ingest pipelines" not in all_text(message)
    if n > blocks.DETAILED_TARGETS:
        assert f"… and {n - blocks.DETAILED_TARGETS:,} more:*" in all_text(message)


def test_start_wording_after_the_click() -> None:
    action = start_action(actor_id="U123")
    progress = blocks.progress(action)
    validate(progress)
    assert progress["text"] == "Starting elser-prod on prod…"
    done = start_action(
        state=ActionState.SUCCEEDED,
        actor_id="U123",
        outcomes=(StopOutcome("elser-prod", True, "started", None, 12.0),),
    )
    preview = blocks.final_preview(done)
    validate(preview)
    assert preview["text"] == "Start elser-prod on prod: started"
    result = blocks.result(done, now=NOW)
    validate(result)
    assert result["text"] == "<@U123> started elser-prod on prod: started"
    assert "✅ `elser-prod` started" in all_text(result)
    assert "*Options*" not in all_text(result)
    assert blocks.button_labels(result) == []  # no restart of a start
    failed = start_action(
        state=ActionState.FAILED,
        outcomes=(StopOutcome("elser-prod", False, "not enough memory", 429),),
    )
    assert blocks.result(failed, now=NOW)["text"].startswith("<@U123> tried to start elser-prod")
    assert "failed (0 of 1 started)" in blocks.final_preview(failed)["text"]
    expired = blocks.already(start_action(state=ActionState.EXPIRED))
    assert expired["text"] == "This start of elser-prod on prod expired: nothing was started."
    assert blocks.not_requester(action, "U9")["text"].endswith("cancel this start.")
    assert "◻️ `elser-prod` not started" in all_text(
        blocks.result(start_action(state=ActionState.EXPIRED), now=NOW)
    )


def test_restart_result_names_the_stop_it_undoes() -> None:
    action = start_action(
        state=ActionState.SUCCEEDED,
        source_action_id="act-0001",
        outcomes=(StopOutcome("elser-prod", True, "started"),),
    )
    text = all_text(blocks.result(action, now=NOW))
    assert "*Restart of*\naction `act-0001`" in text


# --------------------------------------------------------------------------- note, approvals


def test_note_is_shown_first_and_sanitised() -> None:
    note = "⚠ *Changed since your preview:* `elser-prod` is now stopping (<@U42>) <!here> & co"
    message = blocks.proposal(make_action(), now=NOW, note=note)
    validate(message)
    first = message["blocks"][0]
    assert first["type"] == "section"
    shown = first["text"]["text"]
    assert shown.startswith("⚠ *Changed since your preview:* `elser-prod` is now stopping")
    assert "<@U42>" in shown  # our own mention stays
    assert "&lt;!here&gt; &amp; co" in shown  # anything else cannot ping
    assert message["blocks"][1]["type"] == "header"
    assert message["text"].startswith("⚠ *Changed since your preview:*")
    assert blocks.proposal(make_action(), now=NOW, note="  ")["blocks"][0]["type"] == "header"
    validate(blocks.proposal(make_action(), now=NOW, note="x " * 5000))


def approvals(n: int) -> tuple[Approval, ...]:
    return tuple(Approval(f"U{i:03d}", f"user{i}", NOW + 30 + i) for i in range(n))


def test_proposal_says_how_many_approvals_it_needs() -> None:
    action = make_action(
        required_approvals=2, approver_roles=("ml-admin", "sre"), approvals=approvals(1)
    )
    message = blocks.proposal(action, now=NOW)
    validate(message)
    text = all_text(message)
    assert (
        "*Needs 2 approvals* from roles `ml-admin`, `sre` (an approval card is in the channel)"
        in text
    )
    assert "Approved so far: <@U000> · 1 more approval needed" in text
    assert "Needs 1 more approval." in message["text"]
    assert set(buttons(message)) == {blocks.CONFIRM_ACTION_ID, blocks.CANCEL_ACTION_ID}
    none_yet = all_text(
        blocks.proposal(make_action(required_approvals=1, approver_roles=("ml-admin",)), now=NOW)
    )
    assert "*Needs 1 approval* from role `ml-admin`" in none_yet
    assert "Approved so far: none yet" in none_yet
    anyone = all_text(blocks.proposal(make_action(required_approvals=1), now=NOW))
    assert "from an approver" in anyone


def test_proposal_once_approved_says_press_stop() -> None:
    action = make_action(required_approvals=2, approver_roles=("sre",), approvals=approvals(2))
    message = blocks.proposal(action, now=NOW)
    validate(message)
    text = all_text(message)
    assert "✅ *approved* by <@U000>, <@U001>; press Stop to run it." in text
    assert "Needs" not in message["text"]


def test_proposal_without_approvals_has_no_approval_line() -> None:
    assert "approval" not in all_text(blocks.proposal(make_action(), now=NOW))


def test_proposal_with_many_approvers_and_roles_stays_within_limits() -> None:
    action = make_action(
        many(300),
        required_approvals=500,
        approver_roles=tuple(f"role-{i}" for i in range(200)),
        approvals=approvals(400),
    )
    message = blocks.proposal(action, now=NOW, note="note")
    validate(message)
    assert "… +" in all_text(message)


# --------------------------------------------------------------------------- approval card


def card_action(**changes: Any) -> PendingAction:
    defaults: dict[str, Any] = {
        "required_approvals": 2,
        "approver_roles": ("ml-admin",),
        "approvals": approvals(1),
        "spec": StopSpec("elser-prod", force=True, reason="runaway memory"),
    }
    targets = changes.pop("targets", (dep(pipelines=("ingest-a",)),))
    return make_action(targets, **{**defaults, **changes})


def test_approval_card_says_who_what_where_why_and_when() -> None:
    message = blocks.approval_card(card_action(), now=NOW)
    validate(message)
    text = all_text(message)
    for needle in (
        "🔐 <@U123> asks to stop `elser-prod` on `prod`",
        "*Deployment:* `elser-prod`",
        "`elser-prod` (`ingest-a`)",
        "`--force`: stops even if ingest pipelines or inference endpoints use it",
        "*Reason:* runaway memory",
        "*Approvals:* <@U000> (<!date^1700000030^{time}|22:13 UTC>)",
        "*1 more approval needed* from role `ml-admin`",
        "Expires at <!date^1700000600^{time}|22:23 UTC> (in 10 min)",
        "action `act-1234`",
    ):
        assert needle in text, needle
    assert message["text"] == (
        "<@U123> asks for approval to stop elser-prod on prod (--force): 1 more approval needed"
    )


def test_approval_card_buttons() -> None:
    message = blocks.approval_card(card_action(), now=NOW)
    assert blocks.button_labels(message) == [
        ("Approve", blocks.APPROVE_ACTION_ID, "act-1234"),
        ("Reject", blocks.REJECT_ACTION_ID, "act-1234"),
    ]
    found = buttons(message)
    approve, reject = found[blocks.APPROVE_ACTION_ID], found[blocks.REJECT_ACTION_ID]
    assert approve["style"] == "primary" and "confirm" not in approve
    assert reject["style"] == "danger"
    assert reject["confirm"]["title"]["text"] == "Reject this stop?"
    assert reject["confirm"]["confirm"]["text"] == "Reject"
    assert blocks.to_text(message).splitlines()[-1] == "[Approve]  [Reject]"


def test_approval_card_asks_to_confirm_the_last_approval_of_an_auto_run() -> None:
    last = buttons(blocks.approval_card(card_action(auto_run=True), now=NOW))
    dialog = last[blocks.APPROVE_ACTION_ID]["confirm"]
    assert dialog["title"]["text"] == "Approve this stop?"
    assert "right away" in dialog["text"]["text"]
    not_last = card_action(auto_run=True, approvals=())
    assert (
        "confirm" not in buttons(blocks.approval_card(not_last, now=NOW))[blocks.APPROVE_ACTION_ID]
    )


def test_approval_card_once_approved_waits_for_the_requester() -> None:
    message = blocks.approval_card(card_action(approvals=approvals(2)), now=NOW)
    validate(message)
    assert blocks.button_labels(message) == []
    assert "approved* — waiting for <@U123> to press Stop" in all_text(message)
    assert "<@U001> (<!date^1700000031^{time}|22:13 UTC>)" in all_text(message)
    auto = blocks.approval_card(card_action(approvals=approvals(2), auto_run=True), now=NOW)
    assert blocks.button_labels(auto) == []
    assert "stopping it now" in all_text(auto)


@pytest.mark.parametrize(
    ("state", "phrase"),
    [
        (ActionState.EXECUTING, "*running* — stopping since <!date^1700000100^{time}|22:15 UTC>"),
        (ActionState.SUCCEEDED, "*stopped*"),
        (ActionState.FAILED, "*failed (0 of 1 stopped)*"),
        (ActionState.REJECTED, "*rejected by <@U777>: nothing was stopped*"),
        (ActionState.EXPIRED, "*expired: nothing was stopped*"),
        (ActionState.CANCELLED, "*cancelled by <@U777>*"),
        (ActionState.UNKNOWN, "*outcome unknown (the bot restarted while stopping)*"),
    ],
)
def test_approval_card_final_states(state: ActionState, phrase: str) -> None:
    outcomes = (StopOutcome("elser-prod", False, "x", 500),) if state is ActionState.FAILED else ()
    action = card_action(state=state, actor_id="U777", started_at=NOW + 100, outcomes=outcomes)
    message = blocks.approval_card(action, now=NOW)
    validate(message)
    assert phrase in all_text(message)
    assert blocks.button_labels(message) == []
    assert "Expires" not in all_text(message)


def test_executing_card_without_started_at_uses_created_at() -> None:
    message = blocks.approval_card(card_action(state=ActionState.EXECUTING), now=NOW)
    assert "since <!date^1700000000^{time}|22:13 UTC>" in all_text(message)


def test_approval_card_for_a_start() -> None:
    action = start_action(required_approvals=1, source_action_id="act-0001")
    message = blocks.approval_card(action, now=NOW)
    validate(message)
    text = all_text(message)
    assert "asks to start `elser-prod` on `prod`" in text
    assert "queue capacity 1,024" in text
    assert "previous settings" in text
    assert "ingest" not in text and "Options" not in text
    assert buttons(message)[blocks.REJECT_ACTION_ID]["confirm"]["title"]["text"] == (
        "Reject this start?"
    )


def test_approval_card_escapes_user_text() -> None:
    reason = "<!channel> <https://evil.example|x> & <@U1>"
    action = card_action(spec=StopSpec("elser-prod", reason=reason), cluster="<!here>")
    message = blocks.approval_card(action, now=NOW)
    validate(message)
    assert "&lt;!channel&gt;" in all_text(message)
    assert "&lt;!here&gt;" in message["text"]


@pytest.mark.parametrize("n", [1, 49, 200, 1000])
def test_approval_card_limits(n: int) -> None:
    action = card_action(
        targets=many(n),
        spec=StopSpec("search-*", reason="because " * 600),
        required_approvals=n + 1,
        approver_roles=tuple(f"role-{i}" for i in range(n)),
        approvals=approvals(n),
    )
    for state in (ActionState.PROPOSED, ActionState.FAILED):
        message = blocks.approval_card(dataclasses.replace(action, state=state), now=NOW)
        validate(message)
    start = start_action(many(n), required_approvals=2, approvals=approvals(n))
    validate(blocks.approval_card(start, now=NOW))


# --------------------------------------------------------------------------- approval replies


def test_needs_approval() -> None:
    message = blocks.needs_approval(card_action())
    validate(message)
    assert message["text"] == (
        "This stop needs 1 more approval from role `ml-admin` before it can run."
    )
    assert "approved so far: <@U000>" in all_text(message)
    two = blocks.needs_approval(card_action(approvals=(), approver_roles=("a", "b")))
    assert "needs 2 more approvals from roles `a`, `b`" in two["text"]


def test_approval_recorded() -> None:
    pending = blocks.approval_recorded(card_action(), "U000")
    validate(pending)
    assert pending["text"] == (
        "<@U000> approved your stop of elser-prod on prod; "
        "1 more approval needed from role `ml-admin`."
    )
    approved = blocks.approval_recorded(card_action(approvals=approvals(2)), "U001")
    assert approved["text"].endswith("; press Stop in your preview to run it.")
    assert "<@U001> approved your stop of `elser-prod` on `prod`" in all_text(approved)
    auto = blocks.approval_recorded(card_action(approvals=approvals(2), auto_run=True), "U001")
    assert auto["text"].endswith("; running it now.")
    start = blocks.approval_recorded(
        start_action(required_approvals=1, approvals=approvals(1)), "U9"
    )
    assert "approved your start of elser-prod" in start["text"]
    assert "press Start in your preview" in start["text"]


def test_self_approval() -> None:
    message = blocks.self_approval(card_action())
    validate(message)
    assert message["text"] == "You asked for this stop; someone else has to approve it."


# --------------------------------------------------------------------------- locks, freeze


def test_locked_by_a_pending_stop() -> None:
    holder = make_action((dep("a"), dep("b"), dep("c")), id="act-9")
    message = blocks.locked(holder, ["b", "x", "c"], now=NOW + 60)
    validate(message)
    text = all_text(message)
    assert (
        "`b`, `c` already have a stop pending by <@U123> since "
        "<!date^1700000000^{time}|22:13 UTC> (expires <!date^1700000600^{time}|22:23 UTC>, "
        "in 9 min); ask <@U123> to Cancel it, or it expires at "
        "<!date^1700000600^{time}|22:23 UTC>." in text
    )
    assert "`x`" not in text
    assert "action `act-9`" in text
    assert message["text"] == (
        "b, c already have a stop pending by <@U123> since 22:13 UTC "
        "(expires 22:23 UTC); ask <@U123> to Cancel it, or it expires at 22:23 UTC."
    )
    one = blocks.locked(holder, ["a"], now=NOW)
    assert one["text"].startswith("a already has a stop pending")
    mine = blocks.locked(holder, ["a"], now=NOW, asker_id="U123")
    assert "pending by you" in mine["text"] and "press Stop or Cancel" in mine["text"]


def test_locked_by_a_running_action() -> None:
    holder = make_action(state=ActionState.EXECUTING, started_at=NOW + 120)
    message = blocks.locked(holder, ["elser-prod"], now=NOW + 130)
    validate(message)
    assert "running since <!date^1700000120^{time}|22:15 UTC>; its result is posted" in (
        all_text(message)
    )
    assert "try again when it ends." in all_text(message)
    assert "expires" not in message["text"]
    no_start = blocks.locked(make_action(state=ActionState.EXECUTING), ["elser-prod"], now=NOW)
    assert "running since 22:13 UTC" in no_start["text"]
    start = blocks.locked(start_action(), ["elser-prod"], now=NOW)
    assert "already has a start pending" in start["text"]


def test_locked_with_many_conflicts_stays_within_limits() -> None:
    holder = make_action(many(1000))
    message = blocks.locked(holder, [d.deployment_id for d in many(1000)], now=NOW)
    validate(message)
    assert "… +" in all_text(message)


def test_frozen_by_a_person() -> None:
    message = blocks.frozen("U42", NOW, "incident <INC-7> & more")
    validate(message)
    text = all_text(message)
    assert text.startswith("🧊 ML stops and starts are frozen by <@U42> since ")
    assert "<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>" in text
    assert "(incident &lt;INC-7&gt; &amp; more)" in text
    assert "An admin can `/ml-stop unfreeze`." in text
    assert message["text"] == (
        "ML stops and starts are frozen by <@U42> since 2023-11-14 22:13 UTC "
        "(incident &lt;INC-7&gt; &amp; more). An admin can `/ml-stop unfreeze`."
    )
    assert "Nov" not in blocks.to_text(message) and "2023-11-14 22:13 UTC" in blocks.to_text(
        message
    )


def test_frozen_by_the_config_file() -> None:
    message = blocks.frozen(None, None, None)
    validate(message)
    assert "frozen by the config file (`freeze: true`)." in message["text"]
    assert "since" not in message["text"] and "()" not in message["text"]


def test_freeze_notice() -> None:
    froze = blocks.freeze_notice(True, "U42", "INC-7 <!channel>", now=NOW)
    validate(froze)
    assert froze["text"] == "🧊 <@U42> froze ML stops and starts: INC-7 &lt;!channel&gt;"
    thawed = blocks.freeze_notice(False, "U42", None, now=NOW)
    validate(thawed)
    assert thawed["text"] == "✅ <@U42> unfroze ML stops and starts"
    validate(blocks.freeze_notice(True, "U42", "x" * 5000, now=NOW))


# --------------------------------------------------------------------------- unknown, rejected


def test_unknown_outcome() -> None:
    action = make_action((dep("a"), dep("b")), state=ActionState.UNKNOWN)
    message = blocks.unknown_outcome(action)
    validate(message)
    assert message["text"] == (
        "The bot restarted while stopping 2 deployments on prod; the outcome is unknown. "
        "Check `/ml-deployments a,b --cluster prod`."
    )
    assert blocks.button_labels(message) == []
    start = blocks.unknown_outcome(start_action(state=ActionState.UNKNOWN))
    assert start["text"].startswith("The bot restarted while starting elser-prod on prod")
    huge = make_action(many(1000), state=ActionState.UNKNOWN, spec=StopSpec("search-*"))
    validate(blocks.unknown_outcome(huge))
    assert "`/ml-deployments search-* --cluster prod`" in blocks.unknown_outcome(huge)["text"]


@pytest.mark.parametrize(
    ("state", "final", "already"),
    [
        (
            ActionState.UNKNOWN,
            "outcome unknown (the bot restarted while stopping)",
            "has an unknown outcome",
        ),
        (ActionState.REJECTED, "rejected by <@U8>: nothing was stopped", "was rejected by <@U8>"),
    ],
)
def test_unknown_and_rejected_in_every_message(
    state: ActionState, final: str, already: str
) -> None:
    action = make_action(state=state, actor_id="U8")
    for message in (blocks.final_preview(action), blocks.result(action, now=NOW)):
        validate(message)
        assert final in message["text"]
        assert blocks.button_labels(message) == []
    message = blocks.already(action)
    validate(message)
    assert already in message["text"]


def test_proposed_but_unapproved_state_phrase() -> None:
    message = blocks.already(card_action())
    assert message["text"] == (
        "This stop of elser-prod on prod is still waiting for 1 more approval."
    )


# --------------------------------------------------------------------------- outcomes, restart


def test_outcome_lines_render_the_message_and_verification() -> None:
    targets = (dep("ok"), dep("plain"), dep("slow"), dep("bad"))
    outcomes = (
        StopOutcome("ok", True, "stopped (verified)", None, 2.0, True),
        StopOutcome("plain", True, "stopped", None, 1.0, None),
        StopOutcome(
            "slow",
            True,
            "stop answered but the deployment is still stopping after 30 s",
            None,
            30.0,
            False,
        ),
        StopOutcome("bad", False, "conflict <x>", 409),
    )
    action = make_action(targets, state=ActionState.FAILED, outcomes=outcomes)
    message = blocks.result(action, now=NOW)
    validate(message)
    lines = [ln for t in mrkdwn_texts(message) for ln in t.splitlines() if ln[:1] in "✅⚠❌"]
    assert lines[1:] == [
        "❌ `bad`: conflict &lt;x&gt; (409)",
        "⚠️ `slow`: stop answered but the deployment is still stopping after 30 s",
        "✅ `ok` stopped (verified)",
        "✅ `plain` stopped",
    ]
    assert "failed (3 of 4 stopped)" in message["text"]
    unverified = make_action((dep("slow"),), state=ActionState.SUCCEEDED, outcomes=(outcomes[2],))
    assert blocks.final_preview(unverified)["text"].endswith(": stopped (1 not verified)")


def test_outcome_tally_counts_unverified_separately() -> None:
    targets = many(100)
    outcomes = tuple(
        StopOutcome(d.deployment_id, True, "stopped", None, 1.0, i % 2 == 0)
        for i, d in enumerate(targets)
    )
    action = make_action(targets, state=ActionState.SUCCEEDED, outcomes=outcomes)
    message = blocks.result(action, now=NOW)
    validate(message)
    assert "*… and 60 more (" in all_text(message)
    assert "not verified" in all_text(message)


def test_restart_button_after_a_stop_that_stopped_something() -> None:
    message = blocks.result(finished(5, failed=2), now=NOW)
    validate(message)
    restart = buttons(message)[blocks.RESTART_ACTION_ID]
    assert restart["value"] == "act-1234"
    assert restart["text"]["text"] == "Restart with previous settings"
    assert "confirm" not in restart and "style" not in restart
    assert message["blocks"][-1]["type"] == "actions"
    assert blocks.to_text(message).splitlines()[-1] == "[Restart with previous settings]"


@pytest.mark.parametrize(
    "action",
    [
        finished(3, failed=3),  # nothing stopped
        make_action(state=ActionState.EXPIRED),  # never ran
        make_action(state=ActionState.UNKNOWN),
        start_action(
            state=ActionState.SUCCEEDED, outcomes=(StopOutcome("elser-prod", True, "started"),)
        ),
    ],
)
def test_no_restart_button(action: PendingAction) -> None:
    assert blocks.RESTART_ACTION_ID not in buttons(blocks.result(action, now=NOW))


@pytest.mark.parametrize("n", [49, 200, 1000])
def test_result_with_restart_button_respects_limits(n: int) -> None:
    message = blocks.result(finished(n, failed=n // 3, approvals=approvals(300)), now=NOW)
    validate(message)
    assert message["blocks"][-1]["elements"][0]["action_id"] == blocks.RESTART_ACTION_ID


# --------------------------------------------------------------------------- every new message


def every_message() -> list[Message]:
    card = card_action()
    return [
        blocks.proposal(card, now=NOW, note="note"),
        blocks.proposal(start_action(), now=NOW),
        blocks.approval_card(card, now=NOW),
        blocks.approval_card(card_action(approvals=approvals(2)), now=NOW),
        blocks.needs_approval(card),
        blocks.approval_recorded(card, "U9"),
        blocks.self_approval(card),
        blocks.locked(card, ["elser-prod"], now=NOW),
        blocks.frozen("U1", NOW, "r"),
        blocks.frozen(None, None, None),
        blocks.freeze_notice(True, "U1", "r", now=NOW),
        blocks.unknown_outcome(card),
        blocks.result(finished(3, failed=1), now=NOW),
    ]


def test_every_new_message_renders_and_has_unique_labels() -> None:
    for message in every_message():
        validate(message)
        rendered = blocks.to_text(message)
        assert rendered.strip()
        assert "<@" not in rendered and "<!" not in rendered
        labels = [label for label, _, _ in blocks.button_labels(message)]
        assert len(labels) == len(set(labels)), labels


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.lists(ES_ID, min_size=1, max_size=60, unique=True),
    reason=st.one_of(st.none(), st.text(max_size=3000)),
    roles=st.lists(st.text(min_size=1, max_size=80), max_size=20),
    approvers=st.lists(st.from_regex(r"U[A-Z0-9]{1,20}", fullmatch=True), max_size=60),
    required=st.integers(min_value=1, max_value=100),
    kind=st.sampled_from(["stop", "start"]),
    state=st.sampled_from(list(ActionState)),
    auto_run=st.booleans(),
)
def test_approval_card_never_exceeds_a_limit(
    ids: list[str],
    reason: str | None,
    roles: list[str],
    approvers: list[str],
    required: int,
    kind: str,
    state: ActionState,
    auto_run: bool,
) -> None:
    action = make_action(
        tuple(dep(i, pipelines=(i,)) for i in ids),
        state=state,
        auto_run=auto_run,
        spec=(StartSpec if kind == "start" else StopSpec)(",".join(ids), reason=reason),
        required_approvals=required,
        approver_roles=tuple(roles),
        approvals=tuple(Approval(u, u, NOW + n) for n, u in enumerate(approvers)),
        actor_id="U1",
    )
    for message in (
        blocks.approval_card(action, now=NOW),
        blocks.proposal(action, now=NOW),
        blocks.needs_approval(action),
        blocks.approval_recorded(action, "U2"),
        blocks.final_preview(action),
        blocks.result(action, now=NOW),
        blocks.already(action),
    ):
        validate(message)
    has_buttons = bool(blocks.button_labels(blocks.approval_card(action, now=NOW)))
    assert has_buttons == (state is ActionState.PROPOSED and len(approvers) < required)
