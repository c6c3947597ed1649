"""Use-case outcomes → Block Kit messages (pure; shared by the Slack adapter and the shell)."""

from __future__ import annotations

from bot.core.outcomes import (
    Already,
    Approved,
    Changed,
    Denied,
    Ended,
    Failed,
    ForceNeeded,
    FreezeChanged,
    Frozen,
    Listing,
    Locked,
    NeedsApproval,
    NothingMatched,
    NotRequester,
    Proposed,
    SelfApproval,
    StatusReport,
    Unknown,
)
from bot.core.timing import utc_text
from bot.slack import blocks, impact_blocks
from bot.slack.blocks import Message
from bot.slack.blocks.narrow import with_the_others
from bot.slack.blocks.stopped import with_recently_stopped
from bot.slack.blocks.timed import with_pending


def outcome_message(outcome: object, command_text: str, now: float) -> Message:
    """The message for any result of proposing, listing or freezing."""
    if isinstance(outcome, Proposed):
        return blocks.proposal(outcome.action, now=now, note=outcome.note)
    if isinstance(outcome, Denied):
        return blocks.denied(outcome.decision, command_text)
    if isinstance(outcome, NothingMatched):
        return blocks.nothing_matched(
            outcome.expression, outcome.cluster, outcome.unmatched, outcome.hints
        )
    if isinstance(outcome, Failed):
        return blocks.error(outcome.message)
    if isinstance(outcome, ForceNeeded):
        message = impact_blocks.force_needed(
            outcome.cluster, outcome.deployments, may_force=outcome.may_force, note=outcome.note
        )
        return with_the_others(message, outcome.matched, outcome.deployments, outcome.narrower)
    if isinstance(outcome, StatusReport):
        return with_pending(blocks.status_message(outcome, now=now), outcome.reverts, now)
    if isinstance(outcome, Listing):
        table = blocks.deployments_table(outcome.cluster, outcome.pattern, outcome.deployments)
        table = with_recently_stopped(table, outcome.stopped, outcome.stopped_note)
        return with_pending(table, outcome.reverts, now)
    if isinstance(outcome, Locked):
        return blocks.locked(
            outcome.holder, outcome.deployment_ids, now=now, asker_id=outcome.asker_id
        )
    if isinstance(outcome, Frozen):
        return blocks.frozen(outcome.by, outcome.since, outcome.reason)
    if isinstance(outcome, FreezeChanged):
        reason = outcome.reason
        if outcome.until is not None:  # a timed freeze: say when it ends by itself
            ends = f"unfreezes itself at {utc_text(outcome.until)}"
            reason = f"{reason}; {ends}" if reason else ends
        return blocks.freeze_notice(outcome.freeze, outcome.by, reason, now=now)
    if isinstance(outcome, Unknown):
        return unknown_action(outcome.action_id)
    raise TypeError(f"unexpected outcome {outcome!r}")


_LABELS = {
    Proposed: "proposed",
    Denied: "denied",
    NothingMatched: "nothing_matched",
    Failed: "failed",
    ForceNeeded: "force_needed",
    Listing: "listed",
    StatusReport: "status",
    Locked: "locked",
    Frozen: "frozen",
    FreezeChanged: "freeze",
}


def outcome_label(outcome: object) -> str:
    """The metrics label for how a command ended."""
    return _LABELS.get(type(outcome), "other")


def click_message(outcome: object, now: float) -> Message:
    """The message for a click that did not start anything."""
    if isinstance(outcome, NotRequester):
        return blocks.not_requester(outcome.action, outcome.clicker_id)
    if isinstance(outcome, Already):
        return blocks.already(outcome.action)
    if isinstance(outcome, Ended):
        return blocks.final_preview(outcome.action)
    if isinstance(outcome, Denied):
        return blocks.denied(outcome.decision, "this action")
    if isinstance(outcome, NeedsApproval):
        return blocks.needs_approval(outcome.action)
    if isinstance(outcome, Changed):
        note = f"⚠ *Changed since your preview:* {outcome.note}. Check it and confirm again."
        return blocks.proposal(outcome.action, now=now, note=note)
    if isinstance(outcome, SelfApproval):
        return blocks.self_approval(outcome.action)
    if isinstance(outcome, Approved):
        return blocks.approval_recorded(outcome.action, outcome.approver_id)
    return outcome_message(outcome, "this action", now)


def unknown_action(action_id: str) -> Message:
    """A button whose action the bot does not know (any more)."""
    return blocks.error(
        f"this prompt (`{action_id}`) is not known to the bot any more; run the command again"
    )
