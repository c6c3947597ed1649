"""Block Kit of issue 20's answers: within Slack's limits however much there is to say."""

from __future__ import annotations

import dataclasses

from test_blocks import NOW, dep, make_action, many, validate

from bot.core.model import ActionState, StopOutcome
from bot.core.policy import Decision, Holder
from bot.core.stopped import recently_stopped
from bot.slack import blocks
from bot.slack.blocks.narrow import with_the_others
from bot.slack.blocks.stopped import _text_size, with_recently_stopped
from bot.slack.impact_blocks import force_needed


def _stop(i: int, ids: tuple[str, ...], reason: str | None = "INC-1 <!channel> *bold*") -> object:
    spec = dataclasses.replace(make_action().spec, reason=reason)
    return make_action(
        tuple(dep(d) for d in ids),
        id=f"act-{i}",
        spec=spec,
        state=ActionState.SUCCEEDED,
        outcomes=tuple(StopOutcome(d, ok=True, message="stopped") for d in ids),
        finished_at=NOW + i,
    )


def test_a_long_table_and_many_stops_stay_within_fifty_blocks() -> None:
    stops = [_stop(i, (f"gone-{i:03d}", f"gone-{i:03d}-b")) for i in range(60)]
    stopped = recently_stopped(stops, "prod", running=[])  # type: ignore[arg-type]
    assert [s.action.id for s in stopped][:2] == ["act-59", "act-58"]  # newest first
    table = blocks.deployments_table("prod", None, many(300))
    message = with_recently_stopped(table, stopped, None)
    validate(message)
    assert len(message["blocks"]) <= 50
    # The budgeted table leaves room: the section is there, and the stops it leaves out counted.
    assert "Stopped by the bot and still down" in str(message["blocks"][len(table["blocks"]) :])
    assert "more stops" in str(message["blocks"][-1])  # the rest counted, not dropped
    shorter = with_recently_stopped(blocks.deployments_table("prod", None, many(20)), stopped, None)
    validate(shorter)
    assert "ml_deployment.restart" in str(shorter["blocks"])
    alone = with_recently_stopped(blocks.deployments_table("prod", None, ()), stopped, None)
    validate(alone)
    assert "more stop" in str(alone["blocks"])  # the rest are counted, not dropped
    assert "<!channel>" not in str(alone["blocks"])  # a reason cannot ping


def test_the_stops_keep_the_message_within_slacks_total_text() -> None:
    long_reason = "x" * 1800
    stops = [
        _stop(i, tuple(f"gone-{i:03d}-{j}" for j in range(40)), long_reason) for i in range(30)
    ]
    stopped = recently_stopped(stops, "prod", running=[])  # type: ignore[arg-type]
    for table in (blocks.deployments_table("prod", None, many(n)) for n in (0, 30, 60)):
        before = _text_size(table["blocks"])
        message = with_recently_stopped(table, stopped, None)
        validate(message)
        assert _text_size(message["blocks"]) <= max(before, 12_000)


def test_a_deployment_running_again_is_not_listed_as_stopped() -> None:
    stops = [_stop(1, ("a", "b"))]
    found = recently_stopped(stops, "prod", running=["a"])  # type: ignore[arg-type]
    assert [d.deployment_id for s in found for d in s.deployments] == ["b"]
    assert recently_stopped(stops, "other", running=[]) == ()  # type: ignore[arg-type]


def test_the_others_of_a_partly_refused_stop() -> None:
    refused = (dep("elser-prod"),)
    message = force_needed("prod", refused, may_force=True)
    out = with_the_others(message, ["elser-prod", "elser-search"], refused, "elser-search")
    validate(out)
    button = out["blocks"][-1]["accessory"]
    assert button["action_id"] == blocks.NARROW_ACTION_ID and button["value"] == "elser-search"
    assert with_the_others(message, ["elser-prod"], refused, None) is message


def test_a_denial_names_who_can_help_and_stays_valid() -> None:
    helpers = (
        Holder("ml-admin", ("U0A", "U0B"), ("S0SRE",)),
        Holder("ml-operator", (), ("S0OPS",), ("C0INC",)),
        Holder("ml-viewer", (), (), ("C0INC",)),
        Holder("odd", ("not an id <!here>",)),
    )
    decision = Decision(
        False, "denied: role ml-operator does not grant wildcards", None, None, helpers
    )
    message = blocks.denied(decision, "/ml-stop ner-*")
    validate(message)
    text = message["blocks"][0]["text"]["text"]
    assert "Ask one of <@U0A>, <@U0B>, <!subteam^S0SRE> (ml-admin)" in text
    assert "<!subteam^S0OPS> in <#C0INC> (ml-operator)" in text
    assert "run it in <#C0INC> (ml-viewer)" in text
    assert "<!here>" not in text
    nobody = blocks.denied(Decision(False, "denied: no role grants start on prod"), "/ml-start x")
    assert "No role in the role map allows this" in nobody["text"]
