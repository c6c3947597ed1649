"""The four-eyes approval card and the messages around it."""

from __future__ import annotations

from bot.core.impact import pipeline_names
from bot.core.model import ActionState, PendingAction, ScaleSpec, StartSpec
from bot.slack.blocks.common import (
    MAX_BLOCKS,
    Block,
    Message,
    _code,
    _context,
    _flags_suffix,
    _ids_md,
    _join_limited,
    _make_message,
    _mention,
    _options_md,
    _packed_sections,
    _pipelines_md,
    _plural,
    _reason_md,
    _relative,
    _section,
    _slack_date,
    _target_name,
    _target_name_md,
    _verbs,
    clip,
    escape,
)
from bot.slack.blocks.preview import (
    _approvers_md,
    _button,
    _dialog,
    _restart_md,
    _roles_md,
    _start_settings_md,
    window_md,
)
from bot.slack.blocks.result import _EMOJI, _state_phrase
from bot.slack.blocks.scale import scale_target_md
from bot.slack.ids import APPROVE_ACTION_ID, REJECT_ACTION_ID

# --------------------------------------------------------------------------- approvals


def _targets_line(action: PendingAction, limit: int = 2000) -> str:
    """`*Deployments (3):* `a`, `b`, `c``."""
    ids = action.deployment_ids
    head = f"*{'Deployment' if len(ids) == 1 else f'Deployments ({len(ids):,})'}:* "
    return head + _ids_md(ids, limit - len(head))


def _card_status(action: PendingAction) -> str:
    """The card's status line once it takes no more approvals."""
    verbs = _verbs(action)
    if action.state is ActionState.PROPOSED:
        if action.auto_run:
            return f"✅ *approved* — {verbs.doing} it now"
        return f"✅ *approved* — waiting for {_mention(action.requester_id)} to press {verbs.title}"
    if action.state is ActionState.EXECUTING:
        since = action.started_at if action.started_at is not None else action.created_at
        return f"⏳ *running* — {verbs.doing} since {_slack_date(since)}"
    return f"{_EMOJI[action.state]} *{_state_phrase(action)}*"


def _card_buttons(action: PendingAction) -> Block:
    """Approve (primary) and Reject (danger, confirmed)."""
    verbs = _verbs(action)
    what = f"{verbs.verb} {_target_name(action)} on {clip(action.cluster, 40)}"
    approve_confirm = None
    if action.auto_run and action.missing_approvals == 1:
        approve_confirm = _dialog(
            f"Approve this {verbs.verb}?",
            f"Yours is the last approval needed: this will {what} right away.",
            f"Approve and {verbs.verb}",
            "Not yet",
            verbs.style,
        )
    approve = _button(
        "Approve", APPROVE_ACTION_ID, action.id, style="primary", confirm=approve_confirm
    )
    reject_confirm = _dialog(
        f"Reject this {verbs.verb}?",
        f"The request to {what} ends; nothing is {verbs.done}.",
        "Reject",
        "Back",
        "danger",
    )
    reject = _button("Reject", REJECT_ACTION_ID, action.id, style="danger", confirm=reject_confirm)
    return {"type": "actions", "block_id": "ml_stop.approval", "elements": [approve, reject]}


def approval_card(action: PendingAction, *, now: float) -> Message:
    """The channel message approvers answer; later edited to show how it ended."""
    verbs, spec = _verbs(action), action.spec
    who = _mention(action.requester_id)
    what = f"{verbs.verb} {_target_name_md(action)} on {_code(action.cluster)}"
    lines = [f"🔐 {who} asks to {what}", _targets_line(action)]
    if isinstance(action.spec, ScaleSpec):
        lines += [scale_target_md(action.spec, d) for d in action.targets[:3]]
        if len(action.targets) > 3:
            lines.append(f"… and {len(action.targets) - 3:,} more")
    elif isinstance(action.spec, StartSpec):
        if action.source_action_id:
            lines.append(_restart_md(action))
        lines += [_start_settings_md(d) for d in action.targets[:3]]
        if len(action.targets) > 3:
            lines.append(f"… and {len(action.targets) - 3:,} more with their own settings")
    else:
        used = [
            f"{_code(d.deployment_id)} ({_pipelines_md(names, 200)})"
            for d in action.targets
            if (names := pipeline_names(d.impact, d.pipelines))
        ]
        if used:
            head = "⚠ *Used by ingest pipelines, which stop working:* "
            lines.append(head + _join_limited(used, 1200))
        lines.append(_options_md(spec))
    if action.is_timed:  # four eyes cover the revert too: approvers see when it comes
        lines.append(window_md(action, action.started_at or now))
    lines.append(f"*Reason:* {_reason_md(spec)}")
    open_ = action.state is ActionState.PROPOSED and not action.approved
    blocks = _packed_sections(lines)[: MAX_BLOCKS - 4]
    approvals = f"*Approvals:* {_approvers_md(action, with_time=True)}"
    if open_:
        missing = _plural(action.missing_approvals, "more approval")
        approvals += f" · *{missing} needed* {_roles_md(action.approver_roles)}"
        blocks.append(_section(approvals))
        expiry = f"⏱ Expires at {_slack_date(action.expires_at)}"
        blocks.append(
            _context(
                f"{expiry} ({_relative(action.expires_at - now)})",
                f"the requester can't approve their own {verbs.verb}",
                f"action {_code(action.id)}",
            )
        )
        blocks.append(_card_buttons(action))
        status = f"{_plural(action.missing_approvals, 'more approval')} needed"
    else:
        blocks.append(_section(f"{approvals}\n{_card_status(action)}"))
        blocks.append(_context(f"action {_code(action.id)}"))
        status = _card_status(action).replace("*", "")
    plain = f"{verbs.verb} {escape(_target_name(action))} on {escape(action.cluster)}"
    flags = escape(_flags_suffix(spec))  # a start has no flags
    return _make_message(f"{who} asks for approval to {plain}{flags}: {status}", blocks)


def needs_approval(action: PendingAction) -> Message:
    """Told to the requester who pressed Stop too early."""
    verb = _verbs(action).verb
    missing = _plural(action.missing_approvals, "more approval")
    text = f"This {verb} needs {missing} {_roles_md(action.approver_roles)} before it can run."
    blocks = [
        _section(f"👥 {text}"),
        _context(
            f"approved so far: {_approvers_md(action, with_time=False)}",
            "the approval card is in the channel",
        ),
    ]
    return _make_message(text, blocks)


def approval_recorded(action: PendingAction, approver_id: str) -> Message:
    """Told to the requester when someone approved."""
    verbs = _verbs(action)
    head = (
        f"{_mention(approver_id)} approved your {verbs.verb} of "
        f"{_target_name_md(action)} on {_code(action.cluster)}"
    )
    if not action.approved:
        missing = _plural(action.missing_approvals, "more approval")
        tail = f"{missing} needed {_roles_md(action.approver_roles)}"
    elif action.auto_run:
        tail = "running it now"
    else:
        tail = f"press {verbs.title} in your preview to run it"
    text = f"✅ {head}; {tail}."
    plain = (
        f"{_mention(approver_id)} approved your {verbs.verb} of "
        f"{escape(_target_name(action))} on {escape(action.cluster)}; {tail}."
    )
    return _make_message(plain, [_section(text), _context(f"action {_code(action.id)}")])


def self_approval(action: PendingAction) -> Message:
    """Told to a requester who pressed Approve on their own request."""
    text = f"You asked for this {_verbs(action).verb}; someone else has to approve it."
    return _make_message(text, [_section(f"✋ {text}")])
