"""Timed changes (issue 22): the preview's revert line, the live line, heads-up and reports."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.model import ActionState, Deployment, PendingAction, ScaleSpec
from bot.core.timing import human
from bot.slack import ids
from bot.slack.blocks.common import (
    Block,
    Message,
    _code,
    _context,
    _ids_md,
    _make_message,
    _mention,
    _plural,
    _relative,
    _section,
    _slack_date,
    clip,
    escape,
)
from bot.slack.blocks.preview import _button, _trusted_mrkdwn

EXTEND_ACTION_IDS = dict(zip((1800, 3600, 7200), ids.EXTEND_ACTION_IDS, strict=True))
EXTEND_LABELS = {1800: "+30 min", 3600: "+1 h", 7200: "+2 h"}


LATE_AFTER = 5 * 60.0  # later than a few sweeps: the bot was down (or could not reach the store)


def settings_text(dep: Deployment) -> str:
    """`1 allocation, adaptive off` / `adaptive on (min 1, max 4)`: what a restart brings back."""
    adaptive = dep.adaptive_allocations or {}
    if adaptive.get("enabled"):
        low = adaptive.get("min_number_of_allocations", "?")
        high = adaptive.get("max_number_of_allocations", "?")
        return f"adaptive on (min {low}, max {high})"
    count = dep.target_allocations or dep.allocations or 1
    return f"{_plural(count, 'allocation')}, adaptive off"


def _settings_md(targets: Sequence[Deployment], limit: int = 3) -> str:
    shown = [f"{_code(d.deployment_id)}: {settings_text(d)}" for d in targets[:limit]]
    more = f"; and {len(targets) - limit} more" if len(targets) > limit else ""
    return "; ".join(shown) + more


def window_md(action: PendingAction, now: float) -> str:
    """The preview's line: what happens now, and what happens when (the revert is approved too)."""
    when = action.revert_due(now)
    assert when is not None
    after = (
        f" ({human(action.revert_seconds)} after it runs)"
        if action.revert_seconds is not None
        else ""
    )
    now_verb, back, prep = (
        ("Scale now", "scale back", "to") if _is_scale(action) else ("Stop now", "restart", "with")
    )
    return (
        f"⏱ *{now_verb}; at {_slack_date(when)}{after} {back}* {prep} the settings it has now "
        f"({_settings_md(action.targets)}). The {back} is part of what you confirm"
        + (" and what approvers approve." if action.required_approvals else ".")
    )


def _is_scale(action: PendingAction) -> bool:
    return isinstance(action.spec, ScaleSpec)


def _value(revert: PendingAction, extra: str = "") -> str:
    return f"{revert.id}:{int(revert.expires_at)}{extra}"


def revert_buttons(revert: PendingAction) -> Block:
    """Revert now, Extend (+30 min, +1 h, +2 h), Keep: each against the due time shown."""
    elements = [_button("Revert now", ids.REVERT_NOW_ACTION_ID, _value(revert), style="primary")]
    elements += [
        _button(EXTEND_LABELS[s], action_id, _value(revert, f":{s}"))
        for s, action_id in EXTEND_ACTION_IDS.items()
    ]
    elements.append(_button("Keep (no revert)", ids.KEEP_ACTION_ID, _value(revert), style="danger"))
    return {"type": "actions", "block_id": "ml_revert.buttons", "elements": elements}


def _what(revert: PendingAction) -> str:
    verb = "scale back" if _is_scale(revert) else "restart"
    return f"{verb} {_ids_md(list(revert.deployment_ids), 600)}"


def what_text(revert: PendingAction) -> str:
    """`restart `ner-prod``: what a revert does, as mrkdwn with the ids escaped."""
    return _what(revert)


def _log_context(revert: PendingAction) -> Block:
    parts = [f"timed change {_code(revert.revert_of or '?')}", f"revert {_code(revert.id)}"]
    # Entries are our own words with `<@U…>` mentions: shown as mentions, the rest escaped.
    parts += [_trusted_mrkdwn(entry, 200) for entry in revert.revert_log[-3:]]
    return _context(*parts)


def revert_line(revert: PendingAction, now: float) -> Message:
    """The live line in the change's thread: when it reverts, or what became of the revert."""
    state = revert.state
    if state is ActionState.SCHEDULED and revert.held:
        line = f"⏸ *Revert waiting:* {_what(revert)} — {escape(clip(revert.held, 600))}"
        plain = f"Revert waiting: {clip(revert.held, 300)}"
    elif state is ActionState.SCHEDULED:
        due = revert.expires_at
        line = f"↩ *Reverts at {_slack_date(due)}* ({_relative(due - now)}): {_what(revert)}"
        line += f" with {_settings_md(revert.targets)}"
        plain = f"Reverts {_relative(due - now)}"
    elif state is ActionState.EXECUTING:
        line, plain = f"↩ *Reverting now:* {_what(revert)}…", "Reverting now…"
    elif state is ActionState.SUCCEEDED:
        at = revert.finished_at or now
        line = f"✅ *Reverted* at {_slack_date(at)}: {_what(revert)}"
        plain = "Reverted"
    elif state is ActionState.CANCELLED:
        why = revert.revert_log[-1] if revert.revert_log else "cancelled"
        line = f"⏹ *No revert:* {_trusted_mrkdwn(why, 600)}"
        plain = f"No revert: {clip(why, 300)}"
    elif state is ActionState.UNKNOWN:
        line = f"❓ *Revert outcome unknown:* {_what(revert)}; check `/ml-deployments`"
        plain = "Revert outcome unknown"
    else:
        reasons = "; ".join(f"{o.deployment_id}: {o.message}" for o in revert.outcomes)
        line = f"❌ *Revert failed:* {escape(clip(reasons or state.value, 800))}"
        plain = "Revert failed"
    blocks: list[Block] = [_section(line), _log_context(revert)]
    if state is ActionState.SCHEDULED:
        blocks.append(revert_buttons(revert))
    return _make_message(escape(plain), blocks)


def heads_up(revert: PendingAction, now: float) -> Message:
    """Ten minutes before: the requester is mentioned, with the same buttons."""
    due = revert.expires_at
    line = (
        f"⏰ {_mention(revert.requester_id)} the timed change reverts at {_slack_date(due)} "
        f"({_relative(due - now)}): {_what(revert)}. Extend it or keep the change if it "
        "should last longer."
    )
    blocks = [_section(line), _log_context(revert), revert_buttons(revert)]
    return _make_message(f"Reverts {_relative(due - now)}", blocks)


def revert_report(revert: PendingAction, late: float) -> Message:
    """The channel line once a revert ran: its outcome and, if so, how late it ran."""
    ok = revert.state is ActionState.SUCCEEDED
    head = "✅ Timed revert done" if ok else f"❌ Timed revert {revert.state.value}"
    outcomes = "; ".join(f"{o.deployment_id}: {o.message}" for o in revert.outcomes)
    line = f"{head}: {_what(revert)} — {escape(clip(outcomes, 800))}"
    if late >= LATE_AFTER:
        line += f" (ran {human(late)} late: the bot was not running at its time)"
    elif late >= 60:
        line += f" (ran {human(late)} after its time)"
    blocks: list[Block] = [_section(line), _log_context(revert)]
    if not ok:
        blocks.append(
            {
                "type": "actions",
                "block_id": "ml_revert.retry",
                "elements": [_button("Retry", ids.REVERT_NOW_ACTION_ID, f"{revert.id}:retry")],
            }
        )
    return _make_message(escape(f"{head}: {outcomes}")[:300], blocks)


OFFERS_SHOWN = 5  # preview buttons on a not-run report; the rest can be typed
_OFFER_KINDS = {
    "/ml-start": (ids.REVERT_PREVIEW_START_ACTION_ID, "Preview restart"),
    "/ml-scale": (ids.REVERT_PREVIEW_SCALE_ACTION_ID, "Preview scale back"),
}


def offer_buttons(offers: Sequence[tuple[str, str]]) -> Block | None:
    """One preview button per offer (command text dispatched as if typed), ids kept unique."""
    elements: list[Block] = []
    seen: dict[str, int] = {}
    for command, text in offers:
        kind = _OFFER_KINDS.get(command)
        if kind is None or len(elements) >= OFFERS_SHOWN:
            continue
        action_id, label = kind
        n = seen.get(action_id, 0)
        seen[action_id] = n + 1
        name = text.split(" ", 1)[0]
        elements.append(_button(f"{label}: {name}", ids.nth(action_id, n), text))
    if not elements:
        return None
    return {"type": "actions", "block_id": "ml_revert.offers", "elements": elements}


def not_run(revert: PendingAction, reason: str, offers: Sequence[tuple[str, str]] = ()) -> Message:
    """A due revert the bot did not run: what it found, the buttons if it still waits, and
    the previews it offers instead when the world moved."""
    line = f"⚠ *Timed revert not run:* {_what(revert)} — {escape(clip(reason, 1200))}"
    blocks: list[Block] = [_section(line), _log_context(revert)]
    if revert.state is ActionState.SCHEDULED:
        blocks.append(revert_buttons(revert))
    elif (offered := offer_buttons(offers)) is not None:
        blocks.append(offered)
    return _make_message(escape(f"Timed revert not run: {clip(reason, 300)}"), blocks)


PENDING_SHOWN = 10  # reverts listed by name; the rest are counted


def _pending_line(revert: PendingAction, now: float) -> str:
    due = revert.expires_at
    what = _what(revert)
    if revert.held:
        return f"⏸ {what} — waiting: {escape(clip(revert.held, 200))}"
    by = _mention(revert.requester_id)
    return (
        f"⏲ {what} at {_slack_date(due)} ({_relative(due - now)}) — timed change "
        f"{_code(revert.revert_of or '?')} by {by}"
    )


def with_pending(message: Message, reverts: Sequence[PendingAction], now: float) -> Message:
    """`/ml-status` and `/ml-deployments` with the timed changes' pending reverts added."""
    if not reverts:
        return message
    lines = [_pending_line(r, now) for r in reverts[:PENDING_SHOWN]]
    if len(reverts) > PENDING_SHOWN:
        lines.append(f"… and {len(reverts) - PENDING_SHOWN:,} more")
    section = _section(clip("*Pending reverts:*\n" + "\n".join(lines), 2900))
    blocks = list(message["blocks"])
    at = len(blocks) - 1 if blocks and blocks[-1].get("type") == "actions" else len(blocks)
    blocks.insert(at, section)
    text = f"{message['text']} Pending reverts: {len(reverts):,}."
    return _make_message(text, blocks)
