"""The preview a requester confirms or cancels, its buttons and the progress line."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.core.impact import pipeline_names
from bot.core.model import Deployment, PendingAction, ScaleSpec, StartSpec, StopSpec
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    BUTTON_TEXT_MAX,
    CONFIRM_BUTTON_MAX,
    CONFIRM_TEXT_MAX,
    CONFIRM_TITLE_MAX,
    DETAILED_TARGETS,
    EXPRESSION_MAX,
    SECTION_TEXT_MAX,
    SHOW_ALL_ACTION_ID,
    Block,
    Message,
    _code,
    _code_whole,
    _context,
    _deployment_md,
    _divider,
    _header,
    _ids_md,
    _join_limited,
    _make_message,
    _mention,
    _options_md,
    _plain,
    _plural,
    _reason_md,
    _relative,
    _section,
    _slack_date,
    _target_name,
    _target_name_md,
    _verbs,
    _word,
    clip,
    escape,
)
from bot.slack.blocks.scale import (
    DETAILED_SCALE_TARGETS,
    change_md,
    scale_extra_blocks,
    scale_target_md,
)
from bot.slack.impact_blocks import impact_lines, impact_md, impact_tally, restores_md


def window_md(action: PendingAction, now: float) -> str:
    """A timed change's line (bot/slack/blocks/timed.py; imported late: it uses `_button`)."""
    from bot.slack.blocks.timed import window_md as line

    return line(action, now)


# --------------------------------------------------------------------------- the stop flow


def _start_settings_md(dep: Deployment) -> str:
    """The settings a start will use, mirroring what the gateway sends."""
    adaptive = dep.adaptive_allocations
    if adaptive and adaptive.get("enabled"):
        low = adaptive.get("min_number_of_allocations")
        high = adaptive.get("max_number_of_allocations")
        shown = [_word(str(v)) if v is not None else "?" for v in (low, high)]
        allocations = f"adaptive allocations (min {shown[0]}, max {shown[1]})"
    elif adaptive:
        allocations = "adaptive allocations disabled (default allocations)"
    elif dep.target_allocations:
        allocations = _plural(dep.target_allocations, "allocation")
    else:
        allocations = "default allocations"
    threads = dep.threads_per_allocation
    facts = [
        allocations,
        f"{_plural(threads, 'thread')} per allocation" if threads else "default threads",
        f"priority {_word(dep.priority)}",
        f"queue capacity {dep.queue_capacity:,}" if dep.queue_capacity else "default queue",
        f"cache size {_code(dep.cache_size, 40)}" if dep.cache_size else "default cache size",
    ]
    head = f"*{_code(dep.deployment_id)}* — model {_code(dep.model_id)}"
    return f"{head}\n{' · '.join(facts)}"


def _target_md(action: PendingAction, dep: Deployment) -> str:
    """One target as the preview shows it: stop facts or start settings, and their impact."""
    if isinstance(action.spec, StartSpec):
        return "\n".join(filter(None, [_start_settings_md(dep), restores_md(dep.impact)]))
    if isinstance(action.spec, ScaleSpec):
        return scale_target_md(action.spec, dep)
    if dep.impact is None:  # stored before impacts were read: the pipeline warning only
        return _deployment_md(dep, action.spec)
    facts = _deployment_md(replace(dep, pipelines=()), action.spec)
    force = isinstance(action.spec, StopSpec) and action.spec.force
    return "\n".join(filter(None, [facts, impact_md(dep.impact, force=force)]))


def _restart_md(action: PendingAction) -> str:
    """`Restart of the deployments stopped by action `x` with their previous settings`."""
    return (
        f"*Restart* of the deployments stopped by action {_code(action.source_action_id or '?')}"
        " with their previous settings"
    )


def _roles_md(roles: Sequence[str]) -> str:
    """`from role `a``, `from roles `a`, `b``, or `from an approver`."""
    if not roles:
        return "from an approver"
    word = "role" if len(roles) == 1 else "roles"
    return f"from {word} {_join_limited([_code(r) for r in roles], 600)}"


def _approvers_md(action: PendingAction, *, with_time: bool, limit: int = 1500) -> str:
    """`<@U1> (22:14 UTC), <@U2> (…)`, or `none yet`."""
    if not action.approvals:
        return "none yet"
    items = [
        f"{_mention(a.user_id)} ({_slack_date(a.at)})" if with_time else _mention(a.user_id)
        for a in action.approvals
    ]
    return _join_limited(items, limit)


def _approval_lines(action: PendingAction) -> str:
    """The proposal's approval status: what is needed, who approved so far."""
    needed = _plural(action.required_approvals, "approval")
    head = f"👥 *Needs {needed}* {_roles_md(action.approver_roles)}"
    if action.approved:
        return (
            f"{head} — ✅ *approved* by {_approvers_md(action, with_time=False)}; "
            f"press {_verbs(action).title} to run it."
        )
    missing = _plural(action.missing_approvals, "more approval")
    return (
        f"{head} (an approval card is in the channel)\n"
        f"Approved so far: {_approvers_md(action, with_time=False)} · {missing} needed"
    )


_OUR_MARKUP = re.compile(r"<@[A-Z0-9]+>|<!date\^\d+\^[^|<>]*\|[^<>]*>")


def _trusted_mrkdwn(text: str, limit: int = 1000) -> str:
    """Mrkdwn from our own code: keeps our mentions and dates, escapes every other `<`, `&`."""
    raw = clip(text.strip(), limit)
    parts: list[str] = []
    pos = 0
    for match in _OUR_MARKUP.finditer(raw):
        parts += [escape(raw[pos : match.start()]), match.group()]
        pos = match.end()
    shown = "".join([*parts, escape(raw[pos:])])
    return shown if len(shown) <= SECTION_TEXT_MAX else clip(escape(raw), SECTION_TEXT_MAX)


def proposal(action: PendingAction, *, now: float, note: str | None = None) -> Message:
    """The preview the requester confirms or cancels (seen only by them).

    `note` is mrkdwn from our own code (say, what changed since an earlier preview) shown
    first; anything in it but `<@U…>` mentions and Slack dates is escaped.
    """
    spec, targets, verbs = action.spec, action.targets, _verbs(action)
    cluster = _code(action.cluster)
    title = f"{verbs.title} {_target_name(action)} on {clip(action.cluster, 40)}?"
    if isinstance(action.spec, StartSpec) and action.source_action_id:
        typed = _restart_md(action)
    else:
        typed = (
            f"*You typed:* {_code(spec.expression, EXPRESSION_MAX)} → "
            f"{_plural(len(targets), 'deployment')}"
        )
    summary = f"*Cluster:* {cluster}\n{typed}"
    if action.incident_id:
        summary += f"\n*Incident:* {_code(action.incident_id, 80)}"
    if isinstance(action.spec, ScaleSpec):
        summary += f"\n{change_md(action)}"
    elif not isinstance(action.spec, StartSpec):
        summary += f"\n{_options_md(spec)}"
    blocks = [_section(_trusted_mrkdwn(note))] if note and note.strip() else []
    blocks += [_header(title), _section(summary)]
    if action.is_timed:  # the revert is part of what is confirmed (and approved)
        blocks.append(_section(window_md(action, now)))
    if action.required_approvals > 0:
        blocks.append(_section(_approval_lines(action)))
    blocks.append(_section(f"*Reason:* {_reason_md(spec)}"))
    if len(targets) > 1 and (breaks := _breaks_md(action)):
        blocks.append(_section(breaks))
    blocks.append(_divider())

    def tail(show_all: bool) -> list[Block]:
        end = [_divider(), _expiry_context(action, now), _confirm_buttons(action, show_all)]
        if action.unmatched:
            missing = _ids_md(action.unmatched, 1500)
            end.insert(0, _section(f"❓ *Not found, will not be touched:* {missing}"))
        if isinstance(action.spec, ScaleSpec):
            end[:0] = scale_extra_blocks(action.spec)
        return end

    blocks = _fit_targets(action, blocks, tail)
    expires = _relative(action.expires_at - now)
    text = f"{escape(title)} Confirm or cancel (expires {expires})."
    if action.required_approvals > 0 and not action.approved:
        text += f" Needs {_plural(action.missing_approvals, 'more approval')}."
    if note and note.strip():
        text = f"{_trusted_mrkdwn(note, 500)} {text}"
    return _make_message(text, blocks)


def _severity(action: PendingAction, dep: Deployment) -> int:
    """0: a plain stop is refused; 1: the stop breaks something; 2: nothing known breaks."""
    if isinstance(action.spec, StartSpec | ScaleSpec):
        return 2  # nothing breaks when a deployment starts or changes capacity
    if dep.impact is not None and dep.impact.refuses:
        return 0
    if pipeline_names(dep.impact, dep.pipelines) or (
        dep.impact is not None and impact_lines(dep.impact, force=True)
    ):
        return 1
    return 2


def _breaks_md(action: PendingAction) -> str:
    """`⚠ 12 of 71 break something when stopped: …` (the fact a summary never drops)."""
    if isinstance(action.spec, StartSpec | ScaleSpec):
        return ""
    breaking = [d for d in action.targets if _severity(action, d) < 2]
    if not breaking:
        return ""
    used = sum(1 for d in breaking if pipeline_names(d.impact, d.pipelines))
    parts = [impact_tally(breaking)] + ([f"{used:,} used by ingest pipelines"] if used else [])
    what = ", ".join(p for p in parts if p)
    head = f"⚠ *{len(breaking):,} of {len(action.targets):,} break something when stopped*"
    return f"{head}{': ' + what if what else ''} (worst first below)"


def _fit_targets(
    action: PendingAction, head: list[Block], tail: Callable[[bool], list[Block]]
) -> list[Block]:
    """The targets in detail, worst first, as many as fit; every other id listed after them,
    and a `Show all` button (a modal with every target in detail) when some were left out."""
    ordered = sorted(action.targets, key=lambda d: _severity(action, d))
    detail = [_section(_target_md(action, d)) for d in ordered]
    ids_room = max(budget.room(head, tail(True)) - 1500, 500)

    def more(left: int) -> list[Block]:
        return _more_targets(action, ordered[len(ordered) - left :], ids_room)

    plain = tail(False)
    most = DETAILED_SCALE_TARGETS if isinstance(action.spec, ScaleSpec) else DETAILED_TARGETS
    fitted = budget.fit(head, detail, plain, more=more, max_body=most)
    if len(fitted) == len(head) + len(detail) + len(plain):
        return fitted  # every target in detail: nothing more to show
    return budget.fit(head, detail, tail(True), more=more, max_body=most)


def _more_targets(action: PendingAction, rest: Sequence[Deployment], chars: int) -> list[Block]:
    """`… and 51 more: a, b, …` in as many sections as the ids need, ids compacted to fit."""
    stop = isinstance(action.spec, StopSpec)
    used = sum(1 for d in rest if pipeline_names(d.impact, d.pipelines)) if stop else 0
    note = f" ({used:,} used by ingest pipelines)" if used else ""
    head = f"*… and {len(rest):,} more{note}:* "
    expression = action.spec.expression
    see = f"`/ml-deployments {escape(clip(expression, 80))}`" if "*" in expression else ""
    ids = budget.compact_ids(
        [d.deployment_id for d in rest],
        chars - len(head),
        code=_code_whole,
        more=lambda n: f"… +{n:,} more" + (f" (all listed by {see})" if see else ""),
    )
    pieces = budget.split_list(head + ids, SECTION_TEXT_MAX)
    return [_section(p) for p in pieces]  # at most ~6: chars stays under the message budget


def _expiry_context(action: PendingAction, now: float) -> Block:
    """When the prompt expires, and who may answer it."""
    when = f"⏱ Expires at {_slack_date(action.expires_at)} ({_relative(action.expires_at - now)})"
    return _context(
        when, f"only {_mention(action.requester_id)} can confirm", f"action {_code(action.id)}"
    )


def _button(
    label: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> Block:
    """A button; `style` and `confirm` only when given."""
    button: Block = {
        "type": "button",
        "text": _plain(clip(label, BUTTON_TEXT_MAX)),
        "action_id": action_id,
        "value": value,
    }
    if style:
        button["style"] = style
    if confirm:
        button["confirm"] = confirm
    return button


def _confirm_buttons(action: PendingAction, show_all: bool = False) -> Block:
    """Stop (danger) or Start (primary), with a confirmation dialog, Cancel, and `Show all N`
    when the preview could not show every target in detail."""
    verbs = _verbs(action)
    go = _button(
        verbs.title,
        verbs.confirm_id,
        action.id,
        style=verbs.style,
        confirm=_confirm_dialog(action),
    )
    cancel = _button("Cancel", verbs.cancel_id, action.id)
    buttons = [go, cancel]
    if show_all:
        buttons.append(_button(f"Show all {len(action.targets):,}", SHOW_ALL_ACTION_ID, action.id))
    return {"type": "actions", "block_id": f"ml_{verbs.verb}.buttons", "elements": buttons}


def _dialog(title: str, text: str, yes: str, no: str, style: str) -> dict[str, Any]:
    """A confirmation dialog object within Slack's limits."""
    return {
        "title": _plain(clip(title, CONFIRM_TITLE_MAX)),
        "text": _plain(clip(text, CONFIRM_TEXT_MAX)),
        "confirm": _plain(clip(yes, CONFIRM_BUTTON_MAX)),
        "deny": _plain(clip(no, CONFIRM_BUTTON_MAX)),
        "style": style,
    }


def _confirm_dialog(action: PendingAction) -> dict[str, Any]:
    """The `Stop <id>?` / `Start <id>?` dialog naming the deployment(s) and the cluster."""
    verbs = _verbs(action)
    ids, cluster = action.deployment_ids, clip(action.cluster, 40)
    single = len(ids) == 1 and len(ids[0]) <= CONFIRM_TITLE_MAX - 7
    name = ids[0] if single else _plural(len(ids), "deployment")
    notes = []
    if isinstance(action.spec, StartSpec):
        if action.source_action_id:
            notes.append("They get their previous settings.")
    elif isinstance(action.spec, ScaleSpec):
        notes.append("Nothing stops; only capacity changes.")
    else:
        if any(pipeline_names(d.impact, d.pipelines) for d in action.targets):
            notes.append("Ingest pipelines that use them stop working.")
        if not action.spec.finish_pending_work:
            notes.append("Queued inference requests will fail.")
    tail = " " + " ".join(notes) if notes else ""
    if len(ids) == 1:
        head, listed = f"This {verbs.verb}s {clip(ids[0], 150)} on {cluster}", ""
    else:
        head = f"This {verbs.verb}s {_plural(len(ids), 'deployment')} on {cluster}: "
        listed = _join_limited(list(ids), CONFIRM_TEXT_MAX - len(head) - len(tail) - 1)
    return _dialog(
        f"{verbs.title} {name}?", f"{head}{listed}.{tail}", verbs.title, verbs.deny, verbs.style
    )


def progress(action: PendingAction) -> Message:
    """Replaces the preview while the action runs; no buttons."""
    doing = _verbs(action).doing.capitalize()
    what = f"{doing} {_target_name_md(action)} on {_code(action.cluster)}…"
    blocks = [_section(f"⏳ {what}"), _context(f"confirmed by {_mention(action.actor_id)}")]
    if len(action.targets) > 1:
        blocks.insert(1, _section(_ids_md(action.deployment_ids, 2500)))
    return _make_message(
        f"{doing} {escape(_target_name(action))} on {escape(action.cluster)}…", blocks
    )
