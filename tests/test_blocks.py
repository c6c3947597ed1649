"""Unit tests for bot.blocks: content, escaping, Slack limits, terminal rendering."""

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

from bot import blocks
from bot.blocks import Message
from bot.commands import UsageError
from bot.model import ActionState, Deployment, PendingAction, StopOutcome, StopSpec
from bot.policy import Decision

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


ALLOWED_MARKUP = re.compile(r"<@U[A-Z0-9]+>|<!date\^\d+\^\{time\}\|[0-9:]+ UTC>")


def assert_no_markup(text: str) -> None:
    """Only our own mentions and dates may use `<…>`; no raw `&` that isn't an entity."""
    rest = ALLOWED_MARKUP.sub("", text)
    assert "<" not in rest and ">" not in rest, rest
    assert not re.search(r"&(?!(?:amp|lt|gt);)", rest), rest


def validate(message: Message) -> None:
    """Every Block Kit limit we know of, via slack_sdk's models and our own checks."""
    assert set(message) == {"text", "blocks"}
    assert message["text"].strip(), "a text fallback is required"
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


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    return {d["action_id"]: d for d in walk(message["blocks"]) if d.get("type") == "button"}


# --------------------------------------------------------------------------- helpers


def test_escape_neutralises_markup_and_keeps_slack_entities() -> None:
    assert blocks.escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert blocks.escape("a &lt; b &amp; c") == "a &lt; b &amp; c"  # Slack already escaped it
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
            ["`--force`: stops even if ingest pipelines use it"],
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
    assert set(buttons(message)) == {blocks.CONFIRM_ACTION_ID, blocks.CANCEL_ACTION_ID}
    text = all_text(message)
    detailed = min(n, blocks.DETAILED_TARGETS)
    assert all(f"*`search-model-{i:04d}`*" in text for i in range(detailed))
    if n > blocks.DETAILED_TARGETS:
        rest = n - blocks.DETAILED_TARGETS
        used = sum(1 for i in range(blocks.DETAILED_TARGETS, n) if i % 7 == 0)
        assert f"… and {rest:,} more ({used:,} used by ingest pipelines):" in text
        summary = next(t for t in mrkdwn_texts(message) if t.startswith("*… and"))
        listed = re.findall(r"`(search-model-\d{4})`", summary)
        more = re.search(r"… \+(\d+) more", summary)
        assert len(listed) + (int(more.group(1)) if more else 0) == rest
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
    assert blocks.button_labels(message) == []


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
    if n > blocks.TABLE_ROWS:
        assert f"… and {n - blocks.TABLE_ROWS:,} more:" in all_text(message)


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


def test_blocks_module_imports_no_slack_or_http_library() -> None:
    tree = ast.parse(Path(blocks.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if m.split(".")[0] in ("slack_sdk", "slack_bolt", "aiohttp")}
