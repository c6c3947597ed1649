"""What became of an action: results, final previews, unknown outcomes, repeated clicks."""

from __future__ import annotations

from collections import Counter

from bot.core.model import ActionState, Outcome, PendingAction, ScaleSpec, StartSpec, StopSpec
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    DETAILED_OUTCOMES,
    EXPRESSION_MAX,
    MESSAGE_MAX,
    Block,
    Message,
    _code,
    _code_whole,
    _context,
    _fields_section,
    _flags_md,
    _flags_suffix,
    _ids_md,
    _make_message,
    _mention,
    _packed_sections,
    _plural,
    _reason_md,
    _section,
    _slack_date,
    _target_name,
    _target_name_md,
    _Verbs,
    _verbs,
    clip,
    escape,
)
from bot.slack.blocks.preview import _approvers_md, _button
from bot.slack.ids import RESTART_ACTION_ID, REVERT_ACTION_ID

_EMOJI = {
    ActionState.PROPOSED: "❔",
    ActionState.EXECUTING: "⏳",
    ActionState.SUCCEEDED: "✅",
    ActionState.FAILED: "❌",
    ActionState.CANCELLED: "🚫",
    ActionState.EXPIRED: "⌛",
    ActionState.REJECTED: "⛔",
    ActionState.UNKNOWN: "❓",
    ActionState.SCHEDULED: "⏲",
}


def _unverified(action: PendingAction) -> int:
    """Outcomes Elasticsearch answered but the follow-up check did not confirm."""
    return sum(1 for o in action.outcomes if o.ok and o.verified is False)


def _state_phrase(action: PendingAction) -> str:
    """`stopped`, `failed (1 of 3 stopped)`, `cancelled by <@U>`, `expired …`."""
    state, verbs = action.state, _verbs(action)
    if state is ActionState.SUCCEEDED:
        unverified = _unverified(action)
        return f"{verbs.done} ({unverified:,} not verified)" if unverified else verbs.done
    if state is ActionState.FAILED:
        scaled = isinstance(action.spec, ScaleSpec) and action.outcomes
        if scaled and all(o.ok for o in action.outcomes):  # accepted, not yet in place
            return "requested, not yet placed"
        done = sum(1 for o in action.outcomes if o.ok)
        counted = f" ({done} of {len(action.targets)} {verbs.done})" if action.outcomes else ""
        return f"failed{counted}"
    if state is ActionState.CANCELLED:
        return f"cancelled by {_mention(action.actor_id)}" if action.actor_id else "cancelled"
    if state is ActionState.EXPIRED:
        return f"expired: nothing was {verbs.done}"
    if state is ActionState.REJECTED:
        by = f" by {_mention(action.actor_id)}" if action.actor_id else ""
        return f"rejected{by}: nothing was {verbs.done}"
    if state is ActionState.UNKNOWN and action.outcomes:
        unknown = sum(1 for o in action.outcomes if o.unknown)
        of = f" for {unknown} of {len(action.targets)}" if len(action.targets) > 1 else ""
        return f"outcome unknown{of}: check /ml-deployments"
    if state is ActionState.UNKNOWN:
        return f"outcome unknown (the bot restarted while {verbs.doing})"
    if state is ActionState.EXECUTING:
        return f"{verbs.doing}…"
    if not action.approved:
        return f"waiting for {_plural(action.missing_approvals, 'more approval')}"
    return "waiting for confirmation"


def final_preview(action: PendingAction) -> Message:
    """Replaces the preview once the action ended: its state word, no live buttons."""
    phrase, verbs = _state_phrase(action), _verbs(action)
    what = f"{verbs.title} {_target_name_md(action)} on {_code(action.cluster)}"
    blocks = [
        _section(f"{_EMOJI[action.state]} {what}: *{phrase}*"),
        _context(f"action {_code(action.id)}", f"requested by {_mention(action.requester_id)}"),
    ]
    if len(action.targets) > 1:
        blocks.insert(1, _section(_ids_md(action.deployment_ids, 2500)))
    plain_what = f"{verbs.title} {escape(_target_name(action))} on {escape(action.cluster)}"
    return _make_message(f"{plain_what}: {phrase}", blocks)


def unknown_outcome(action: PendingAction, cause: str = "The bot restarted") -> Message:
    """Replaces the preview of an action whose running process died; `cause` says which."""
    verbs = _verbs(action)
    ids = ",".join(action.deployment_ids)
    if len(ids) > 400 or not ids:
        ids = clip(action.spec.expression, EXPRESSION_MAX)
    check = f"/ml-deployments {ids} --cluster {action.cluster}"
    what = f"{_target_name_md(action)} on {_code(action.cluster)}"
    line = (
        f"❓ {cause} while {verbs.doing} {what}; *the outcome is unknown.* "
        f"Check {_code(check, 600)}."
    )
    blocks = [_section(line)]
    if len(action.targets) > 1:
        blocks.append(_section(_ids_md(action.deployment_ids, 2500)))
    blocks.append(
        _context(f"action {_code(action.id)}", f"requested by {_mention(action.requester_id)}")
    )
    text = (
        f"{cause} while {verbs.doing} {escape(_target_name(action))} on "
        f"{escape(action.cluster)}; the outcome is unknown. Check {_code(check, 600)}."
    )
    return _make_message(text, blocks)


def _duration(action: PendingAction) -> float | None:
    """Wall time of the action: the slowest outcome (deployments run concurrently)."""
    return max((o.seconds for o in action.outcomes), default=None)


def _outcome_rank(outcome: Outcome | None) -> int:
    """Failures first, then unknown, then unverified, then done, then not run."""
    if outcome is None:
        return 4
    if outcome.unknown:
        return 1
    if not outcome.ok:
        return 0
    return 2 if outcome.verified is False else 3


def _outcome_line(dep_id: str, outcome: Outcome | None, verbs: _Verbs) -> str:
    """`✅ `a` stopped (verified)` / `⚠️ `b`: still stopping…` / `❌ `c`: <message> (409)`."""
    if outcome is None:
        return f"◻️ {_code(dep_id)} not {verbs.done}"
    message = clip(escape(outcome.message.strip()), MESSAGE_MAX)
    if outcome.unknown:
        return f"❓ {_code(dep_id)}: outcome unknown: {message or 'no readable answer'}"
    if outcome.ok:
        emoji = "⚠️" if outcome.verified is False else "✅"
        if not message:
            return f"{emoji} {_code(dep_id)} {verbs.done}"
        sep = " " if message.startswith(verbs.done) else ": "
        return f"{emoji} {_code(dep_id)}{sep}{message}"
    status = f" ({outcome.status})" if outcome.status else ""
    return f"❌ {_code(dep_id)}: {message or 'failed'}{status}"


def _outcome_blocks(action: PendingAction, head: list[Block], tail: list[Block]) -> list[Block]:
    """Per-deployment outcomes, failures first, as many as fit; the rest counted and by id."""
    verbs = _verbs(action)
    by_id = {o.deployment_id: o for o in action.outcomes}
    ids = sorted(action.deployment_ids, key=lambda i: _outcome_rank(by_id.get(i)))
    lines = [_outcome_line(i, by_id.get(i), verbs) for i in ids]
    words = ("failed", "outcome unknown", "not verified", verbs.done, f"not {verbs.done}")

    def more(left: int) -> str:
        rest = ids[len(ids) - left :]
        counts = Counter(words[_outcome_rank(by_id.get(i))] for i in rest)
        tally = ", ".join(f"{n:,} {word}" for word, n in counts.most_common())
        first = f"*… and {len(rest):,} more ({tally}):* "
        return first + budget.compact_ids(
            rest,
            2500 - len(first),
            code=_code_whole,
            more=lambda n: f"… +{n:,} more",
        )

    return budget.fit_lines(
        head, lines, tail, pack=_packed_sections, more=more, max_lines=DETAILED_OUTCOMES
    )


def _restart_button(action: PendingAction) -> Block | None:
    """`Restart with previous settings` after a stop that stopped something; `Revert to
    previous` after a scale that changed something."""
    if isinstance(action.spec, ScaleSpec) and any(o.ok for o in action.outcomes):
        button = _button("Revert to previous", REVERT_ACTION_ID, action.id)
        return {"type": "actions", "block_id": "ml_scale.revert", "elements": [button]}
    if not isinstance(action.spec, StopSpec) or not any(o.ok for o in action.outcomes):
        return None
    button = _button("Restart with previous settings", RESTART_ACTION_ID, action.id)
    return {"type": "actions", "block_id": "ml_deployment.restart", "elements": [button]}


def result(action: PendingAction, *, now: float) -> Message:
    """The record posted in the channel for everyone: who, what, where, why, how it went."""
    verbs = _verbs(action)
    verb = verbs.done if action.state is ActionState.SUCCEEDED else verbs.tried
    who, phrase = _mention(action.requester_id), _state_phrase(action)
    headline = f"{who} {verb} {_target_name_md(action)} on {_code(action.cluster)}"
    took = _duration(action)
    fields = [f"*Cluster*\n{_code(action.cluster)}"]
    if isinstance(action.spec, StartSpec) and action.source_action_id:
        fields.append(f"*Restart of*\naction {_code(action.source_action_id)}")
    else:
        fields.append(f"*Expression*\n{_code(action.spec.expression, EXPRESSION_MAX)}")
    if isinstance(action.spec, ScaleSpec):
        fields.append(f"*Change*\n{_code(action.spec.flags_text(), 200)}")
    elif not isinstance(action.spec, StartSpec):
        fields.append(f"*Options*\n{_flags_md(action.spec) or 'none'}")
    fields += [f"*Result*\n{phrase}", f"*Reason*\n{_reason_md(action.spec)}"]
    if action.incident_id:
        fields.append(f"*Incident*\n{_code(action.incident_id, 80)}")
    if action.approvals:
        fields.append(f"*Approved by*\n{_approvers_md(action, with_time=False, limit=1800)}")
    if took is not None:
        fields.append(f"*Took*\n{took:.1f} s")
    restart = _restart_button(action)
    head = [_section(f"{_EMOJI[action.state]} {headline}"), _fields_section(fields)]
    finished = action.finished_at if action.finished_at is not None else now
    tail = [
        _context(
            f"action {_code(action.id)}",
            f"confirmed by {_mention(action.actor_id)}" if action.actor_id else "",
            f"finished {_slack_date(finished)}",
        )
    ]
    if restart is not None:
        tail.append(restart)
    blocks = _outcome_blocks(action, head, tail)
    plain_what = escape(_target_name(action))
    if len(action.targets) > 1:
        plain_what += f" ({escape(clip(action.spec.expression, EXPRESSION_MAX))})"
    text = f"{who} {verb} {plain_what} on {escape(action.cluster)}"
    flags = escape(_flags_suffix(action.spec))  # a start has no flags
    return _make_message(f"{text}{flags}: {phrase}", blocks)


def not_requester(action: PendingAction, clicker_id: str) -> Message:
    """Told to someone else who clicked: only the requester can answer."""
    verb = _verbs(action).verb
    text = f"Only {_mention(action.requester_id)} can confirm or cancel this {verb}."
    return _make_message(
        text, [_section(f"✋ {text}"), _context(f"you are {_mention(clicker_id)}")]
    )


def already(action: PendingAction) -> Message:
    """A click on an action that is executing, finished or expired: says its state."""
    verbs = _verbs(action)
    phrase = {
        ActionState.PROPOSED: f"is still {_state_phrase(action)}",
        ActionState.EXECUTING: "is already running",
        ActionState.SUCCEEDED: f"already ran: {_state_phrase(action)}",
        ActionState.FAILED: f"already ran: {_state_phrase(action)}",
        ActionState.CANCELLED: f"was {_state_phrase(action)}",
        ActionState.EXPIRED: f"expired: nothing was {verbs.done}",
        ActionState.REJECTED: f"was {_state_phrase(action)}",
        ActionState.UNKNOWN: "ran, but its outcome is unknown: check /ml-deployments"
        if action.outcomes
        else f"has an unknown outcome (the bot restarted while {verbs.doing})",
        ActionState.SCHEDULED: f"is a timed revert due at {_slack_date(action.expires_at)}",
    }[action.state]
    what = f"{escape(_target_name(action))} on {escape(action.cluster)}"
    text = f"This {verbs.verb} of {what} {phrase}."
    return _make_message(text, [_section(f"{_EMOJI[action.state]} {text}")])
