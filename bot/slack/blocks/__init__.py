"""Block Kit messages for prompts, approvals, results, errors and help, as plain dicts.

Pure functions of their inputs (the functional core): nothing here imports Slack.
Every message has a plain `text` fallback and respects Slack's Block Kit limits:
long lists are summarised with an exact count, never cut in the middle of a word,
and user-controlled text is escaped so it cannot ping (`<!channel>`) or inject links.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from bot.core.commands import UsageError, usage
from bot.core.model import ActionSpec, ActionState, Deployment, Outcome, PendingAction

if TYPE_CHECKING:  # only its attributes are read; the module graph stays commands → blocks
    from bot.core.policy import Decision

CONFIRM_ACTION_ID = "ml_stop.confirm"
CANCEL_ACTION_ID = "ml_stop.cancel"
START_CONFIRM_ACTION_ID = "ml_start.confirm"
START_CANCEL_ACTION_ID = "ml_start.cancel"
APPROVE_ACTION_ID = "ml_stop.approve"
REJECT_ACTION_ID = "ml_stop.reject"
RESTART_ACTION_ID = "ml_deployment.restart"

# Slack limits (docs.slack.dev Block Kit reference; enforced by slack_sdk.models.blocks).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
HEADER_TEXT_MAX = 150
BUTTON_TEXT_MAX = 75
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300
CONFIRM_BUTTON_MAX = 30
FIELDS_MAX = 10
FIELD_TEXT_MAX = 2000
CONTEXT_TEXT_MAX = 2000  # not documented; kept well below the section limit
FALLBACK_TEXT_MAX = 3000  # chat.postMessage advises keeping `text` under 4000

# Our own budgets, chosen to stay far below the limits above.
DETAILED_TARGETS = 20  # deployments a proposal shows in full; the rest are listed by id
DETAILED_OUTCOMES = 40  # outcome lines a result shows in full
TABLE_ROWS = 100  # rows /ml-deployments shows in full
ID_MAX = 100  # a displayed id (ES ids are at most 64 characters)
REASON_MAX = 1800
MESSAGE_MAX = 300  # one ES error message in an outcome line
EXPRESSION_MAX = 200

Block = dict[str, Any]


class Message(TypedDict):
    """A Slack message: the plain `text` fallback and its Block Kit `blocks`."""

    text: str
    blocks: list[dict[str, Any]]


# --------------------------------------------------------------------------- text helpers


_BARE_AMPERSAND = re.compile(r"&(?!(?:amp|lt|gt);)")


def escape(text: str) -> str:
    """Escape `&`, `<`, `>` for mrkdwn; Slack's own `&lt;` etc. (slash-command text) stay as is."""
    return _BARE_AMPERSAND.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")


def clip(text: str, limit: int) -> str:
    """Shorten to at most `limit` characters at a space or comma, ending with `…`."""
    if len(text) <= limit:
        return text
    room = text[: max(limit - 1, 0)]
    cut = max(room.rfind(" "), room.rfind("\n"), room.rfind(","))
    if cut > limit // 2:
        room = room[:cut]
    return _PARTIAL_ENTITY.sub("", room.rstrip(" ,\n")) + "…"


def _code(text: str, limit: int = ID_MAX) -> str:
    """User text as escaped inline code; a backtick inside cannot end the span."""
    shown = clip(text.replace("`", "'").replace("\n", " "), limit) or " "
    return f"`{escape(shown)}`"


def _join_limited(items: Sequence[str], limit: int, sep: str = ", ") -> str:
    """Join whole items up to `limit` characters, then `… +N more` (exact count)."""
    out: list[str] = []
    size = 0
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = len(f"{sep}… +{len(items)} more") if rest else 0
        if size + len(sep) * bool(out) + len(item) + tail > limit:
            more = f"… +{len(items) - index} more"
            return sep.join([*out, more]) if out else more
        out.append(item)
        size += len(sep) * (len(out) > 1) + len(item)
    return sep.join(out)


def _word(text: str) -> str:
    """A short value from Elasticsearch (a state, a priority), escaped and bounded."""
    return escape(clip(text, 40))


def _plural(count: int, word: str) -> str:
    """`1 deployment`, `2 deployments`."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _slack_date(epoch: float) -> str:
    """Slack date formatting: the reader's local time, with a UTC fallback."""
    fallback = time.strftime("%H:%M UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{time}}|{fallback}>"


def _relative(seconds: float) -> str:
    """`in 10 min`, `in less than a minute`, `now` (when already past)."""
    if seconds <= 0:
        return "now"
    if seconds < 60:
        return "in less than a minute"
    minutes = math.ceil(seconds / 60 - 1e-9)
    return f"in {minutes} min" if minutes < 120 else f"in {round(minutes / 60)} h"


def _mention(user_id: str | None) -> str:
    """`<@U123>`, or `someone` when the id is unknown."""
    return f"<@{escape(user_id)}>" if user_id else "someone"


# --------------------------------------------------------------------------- block helpers


def _header(text: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {"type": "header", "text": _plain(clip(text, HEADER_TEXT_MAX))}


def _plain(text: str) -> dict[str, Any]:
    """A plain_text object (never empty)."""
    return {"type": "plain_text", "text": text or " ", "emoji": True}


def _section(text: str) -> Block:
    """A mrkdwn section, clipped to Slack's 3000 characters as a last resort."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def _fields_section(fields: Sequence[str]) -> Block:
    """A section of at most 10 mrkdwn fields of at most 2000 characters each."""
    texts = [{"type": "mrkdwn", "text": clip(f, FIELD_TEXT_MAX)} for f in fields[:FIELDS_MAX]]
    return {"type": "section", "fields": texts}


def _context(*parts: str) -> Block:
    """A context block with one mrkdwn line joined by ` · `."""
    text = clip(" · ".join(p for p in parts if p), CONTEXT_TEXT_MAX)
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _divider() -> Block:
    """A divider block."""
    return {"type": "divider"}


def _packed_sections(lines: Iterable[str], limit: int = SECTION_TEXT_MAX) -> list[Block]:
    """As few sections as hold `lines`, one per line break."""
    chunks: list[str] = []
    for line in lines:
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return [_section(chunk) for chunk in chunks]


def _make_message(text: str, blocks: list[Block]) -> Message:
    """A message from escaped text; at most 50 blocks, always keeping the last (the buttons)."""
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], blocks[-1]]
    return {"text": clip(text, FALLBACK_TEXT_MAX), "blocks": blocks}


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _Verbs:
    """The words and controls of one action kind (`stop` or `start`)."""

    verb: str  # "stop"
    doing: str  # "stopping"
    done: str  # "stopped"
    confirm_id: str
    cancel_id: str
    style: str  # of the confirm button and its dialog
    deny: str  # the dialog's "no" button

    @property
    def title(self) -> str:
        """`Stop`, `Start`."""
        return self.verb.capitalize()

    @property
    def tried(self) -> str:
        """`tried to stop`."""
        return f"tried to {self.verb}"


_VERBS = {
    "stop": _Verbs(
        "stop", "stopping", "stopped", CONFIRM_ACTION_ID, CANCEL_ACTION_ID, "danger", "Keep running"
    ),
    "start": _Verbs(
        "start",
        "starting",
        "started",
        START_CONFIRM_ACTION_ID,
        START_CANCEL_ACTION_ID,
        "primary",
        "Don't start",
    ),
}


def _verbs(action: PendingAction) -> _Verbs:
    """The words for `action.kind`; an unknown kind reads as a stop (never claims less)."""
    return _VERBS.get(action.kind, _VERBS["stop"])


# --------------------------------------------------------------------------- domain wording


def _target_name(action: PendingAction) -> str:
    """`elser-prod` for one target, `3 deployments` for several (plain, unescaped)."""
    ids = action.deployment_ids
    return clip(ids[0], ID_MAX) if len(ids) == 1 else _plural(len(ids), "deployment")


def _target_name_md(action: PendingAction) -> str:
    """`target_name` as mrkdwn: the single id in code, or the count in bold."""
    ids = action.deployment_ids
    return _code(ids[0]) if len(ids) == 1 else f"*{_plural(len(ids), 'deployment')}*"


def _flags_suffix(spec: ActionSpec) -> str:
    """` (--force)` or the empty string."""
    flags = spec.flags_text()
    return f" ({flags})" if flags else ""


def _option_lines(spec: ActionSpec) -> list[str]:
    """The options in plain words, one bullet each."""
    lines = []
    if spec.force:
        lines.append("• `--force`: stops even if ingest pipelines use it")
    if spec.finish_pending_work:
        lines.append(
            "• `--finish-pending-work`: waits for queued inference requests to finish "
            "before stopping"
        )
    else:
        lines.append(
            "• queued inference requests will fail (`--finish-pending-work` lets them finish)"
        )
    if not spec.allow_no_match:
        lines.append("• `--no-allow-no-match`: fails if an id matches no deployment")
    return lines


def _flags_md(spec: ActionSpec) -> str:
    """The flags as inline code (`--force` `--finish-pending-work`), or empty."""
    return " ".join(f"`{f}`" for f in spec.flags_text().split())


def _options_md(spec: ActionSpec) -> str:
    """`*Options:* --force` followed by what each option does."""
    flags = _flags_md(spec) or "none"
    return "\n".join([f"*Options:* {flags}", *_option_lines(spec)])


def _reason_md(spec: ActionSpec) -> str:
    """The escaped, clipped reason, or `_no reason given_`."""
    reason = (spec.reason or "").strip()
    return clip(escape(reason), REASON_MAX) if reason else "_no reason given_"


def _allocations(dep: Deployment) -> str:
    """`2/2`, `2/?` or `?`."""
    if dep.allocations is None and dep.target_allocations is None:
        return "?"
    now = "?" if dep.allocations is None else str(dep.allocations)
    target = "?" if dep.target_allocations is None else str(dep.target_allocations)
    return f"{now}/{target}"


def _pipelines_md(pipelines: Sequence[str], limit: int = 600) -> str:
    """Pipeline ids in code, summarised beyond `limit` characters."""
    return _join_limited([_code(p) for p in pipelines], limit)


def _pipeline_warning(dep: Deployment, spec: ActionSpec) -> str:
    """`⚠ used by ingest pipeline(s) …` or the empty string."""
    if not dep.pipelines:
        return ""
    refusal = "" if spec.force else " (without `--force` Elasticsearch refuses to stop it)"
    return (
        f"⚠ used by ingest pipeline(s) {_pipelines_md(dep.pipelines)} — they stop working{refusal}"
    )


def _deployment_md(dep: Deployment, spec: ActionSpec) -> str:
    """Everything a person needs to judge stopping one deployment."""
    facts = [
        f"state *{_word(dep.state)}*",
        f"allocations {_allocations(dep)}",
    ]
    if dep.threads_per_allocation is not None:
        facts.append(f"{_plural(dep.threads_per_allocation, 'thread')} per allocation")
    if dep.adaptive_allocations and dep.adaptive_allocations.get("enabled"):
        facts.append("adaptive allocations")
    facts += [f"priority {_word(dep.priority)}", _plural(dep.inference_count, "inference")]
    if dep.pending_requests:
        facts.append(f"{dep.pending_requests:,} queued")
    lines = [f"*{_code(dep.deployment_id)}* — model {_code(dep.model_id)}", " · ".join(facts)]
    warning = _pipeline_warning(dep, spec)
    return "\n".join([*lines, warning] if warning else lines)


def _ids_md(ids: Sequence[str], limit: int) -> str:
    """Ids in code, comma separated, summarised beyond `limit` characters."""
    return _join_limited([_code(i) for i in ids], limit)


# --------------------------------------------------------------------------- errors, help


def usage_error(err: UsageError) -> Message:
    """What is wrong (bold), then the usage line in code."""
    what = clip(escape(err.message.strip() or "That command is not valid."), 1000)
    line = escape(clip(err.usage, 1500)).replace("```", "'''")
    blocks = [_section(f"*{what}*\n```{line}```")]
    command = err.command.strip()
    if command.startswith("/") and " " not in command:
        blocks.append(_context(f"{_code(command + ' help')} shows every option."))
    return _make_message(f"{what} Usage: {line}", blocks)


def help_message(command: str) -> Message:
    """The full usage text of `/ml-stop` or `/ml-deployments`."""
    name = "/" + command.lstrip("/")
    text = escape(usage(command)).replace("```", "'''")
    chunks = [f"```{chunk}```" for chunk in _line_chunks(text, SECTION_TEXT_MAX - 6)]
    blocks = [_header(f"{name} — help"), *(_section(c) for c in chunks[: MAX_BLOCKS - 1])]
    return _make_message(f"Help for {name}: {text}", blocks)


def _line_chunks(text: str, limit: int) -> list[str]:
    """Split text at line breaks into chunks of at most `limit` characters."""
    chunks: list[str] = []
    for line in text.splitlines() or [""]:
        line = clip(line, limit)
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def denied(decision: Decision, command_text: str) -> Message:
    """Says the caller can't run `/ml-stop …`, with the decision's one-line explanation."""
    text = command_text.strip()
    typed = _code(text, 300) if text.startswith("/") else clip(escape(text), 300)
    why = clip(escape(decision.explanation), 1000)
    blocks = [_section(f"🚫 You can't run {typed}\n{why}")]
    return _make_message(f"You can't run {typed}: {why}", blocks)


def error(message: str, *, error_id: str | None = None, hint: str | None = None) -> Message:
    """An error a person can act on; `error_id` names an unexpected failure in the logs."""
    what = clip(escape(message.strip() or "Something went wrong."), 2500)
    notes = [
        escape(clip(hint, 1500)) if hint else "",
        f"error id {_code(error_id)}" if error_id else "",
    ]
    blocks = [_section(f"⚠️ {what}")]
    if any(notes):
        blocks.append(_context(*notes))
    suffix = f" (error id {error_id})" if error_id else ""
    return _make_message(f"{what}{escape(suffix)}", blocks)


def nothing_matched(
    expression: str, cluster: str, unmatched: Sequence[str], hints: Sequence[str]
) -> Message:
    """A typo'd id or an empty wildcard: clearly says nothing was stopped."""
    what = f"No deployment matches {_code(expression, EXPRESSION_MAX)} on {_code(cluster)}"
    lines = [f"❓ *{what}.* Nothing was stopped."]
    if unmatched:
        lines.append(f"Not found: {_ids_md(unmatched, 1200)}")
    lines += [f"• {clip(escape(h), 500)}" for h in hints[:5]]
    lines.append(f"{_code(f'/ml-deployments --cluster {cluster}', 200)} lists what exists.")
    return _make_message(f"{what}: nothing was stopped.", [_section("\n".join(lines))])


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
    """One target as the preview shows it: stop facts or start settings."""
    if action.kind == "start":
        return _start_settings_md(dep)
    return _deployment_md(dep, action.spec)


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
    if action.kind == "start" and action.source_action_id:
        typed = _restart_md(action)
    else:
        typed = (
            f"*You typed:* {_code(spec.expression, EXPRESSION_MAX)} → "
            f"{_plural(len(targets), 'deployment')}"
        )
    summary = f"*Cluster:* {cluster}\n{typed}"
    if action.incident_id:
        summary += f"\n*Incident:* {_code(action.incident_id, 80)}"
    if action.kind != "start":
        summary += f"\n{_options_md(spec)}"
    blocks = [_section(_trusted_mrkdwn(note))] if note and note.strip() else []
    blocks += [_header(title), _section(summary)]
    if action.required_approvals > 0:
        blocks.append(_section(_approval_lines(action)))
    blocks += [_section(f"*Reason:* {_reason_md(spec)}"), _divider()]
    blocks += [_section(_target_md(action, d)) for d in targets[:DETAILED_TARGETS]]
    if len(targets) > DETAILED_TARGETS:
        blocks.append(_section(_more_targets_md(action, targets[DETAILED_TARGETS:])))
    if action.unmatched:
        blocks.append(
            _section(f"❓ *Not found, will not be touched:* {_ids_md(action.unmatched, 2500)}")
        )
    blocks += [_divider(), _expiry_context(action, now), _confirm_buttons(action)]
    expires = _relative(action.expires_at - now)
    text = f"{escape(title)} Confirm or cancel (expires {expires})."
    if action.required_approvals > 0 and not action.approved:
        text += f" Needs {_plural(action.missing_approvals, 'more approval')}."
    if note and note.strip():
        text = f"{_trusted_mrkdwn(note, 500)} {text}"
    return _make_message(text, blocks)


def _more_targets_md(action: PendingAction, rest: Sequence[Deployment]) -> str:
    """`… and 180 more (12 used by ingest pipelines): a, b, … +150 more`."""
    used = sum(1 for d in rest if d.pipelines) if action.kind != "start" else 0
    note = f" ({used:,} used by ingest pipelines)" if used else ""
    head = f"*… and {len(rest):,} more{note}:* "
    return head + _ids_md([d.deployment_id for d in rest], SECTION_TEXT_MAX - len(head))


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


def _confirm_buttons(action: PendingAction) -> Block:
    """Stop (danger) or Start (primary), with a confirmation dialog, and Cancel."""
    verbs = _verbs(action)
    go = _button(
        verbs.title,
        verbs.confirm_id,
        action.id,
        style=verbs.style,
        confirm=_confirm_dialog(action),
    )
    cancel = _button("Cancel", verbs.cancel_id, action.id)
    return {"type": "actions", "block_id": f"ml_{verbs.verb}.buttons", "elements": [go, cancel]}


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
    if action.kind == "start":
        if action.source_action_id:
            notes.append("They get their previous settings.")
    else:
        if any(d.pipelines for d in action.targets):
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


_EMOJI = {
    ActionState.PROPOSED: "❔",
    ActionState.EXECUTING: "⏳",
    ActionState.SUCCEEDED: "✅",
    ActionState.FAILED: "❌",
    ActionState.CANCELLED: "🚫",
    ActionState.EXPIRED: "⌛",
    ActionState.REJECTED: "⛔",
    ActionState.UNKNOWN: "❓",
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


def unknown_outcome(action: PendingAction) -> Message:
    """Replaces the preview of an action found `executing` after the bot restarted."""
    verbs = _verbs(action)
    ids = ",".join(action.deployment_ids)
    if len(ids) > 400 or not ids:
        ids = clip(action.spec.expression, EXPRESSION_MAX)
    check = f"/ml-deployments {ids} --cluster {action.cluster}"
    what = f"{_target_name_md(action)} on {_code(action.cluster)}"
    line = (
        f"❓ The bot restarted while {verbs.doing} {what}; *the outcome is unknown.* "
        f"Check {_code(check, 600)}."
    )
    blocks = [_section(line)]
    if len(action.targets) > 1:
        blocks.append(_section(_ids_md(action.deployment_ids, 2500)))
    blocks.append(
        _context(f"action {_code(action.id)}", f"requested by {_mention(action.requester_id)}")
    )
    text = (
        f"The bot restarted while {verbs.doing} {escape(_target_name(action))} on "
        f"{escape(action.cluster)}; the outcome is unknown. Check {_code(check, 600)}."
    )
    return _make_message(text, blocks)


def _duration(action: PendingAction) -> float | None:
    """Wall time of the action: the slowest outcome (deployments run concurrently)."""
    return max((o.seconds for o in action.outcomes), default=None)


def _outcome_rank(outcome: Outcome | None) -> int:
    """Failures first, then unverified, then done, then not run."""
    if outcome is None:
        return 3
    if not outcome.ok:
        return 0
    return 1 if outcome.verified is False else 2


def _outcome_line(dep_id: str, outcome: Outcome | None, verbs: _Verbs) -> str:
    """`✅ `a` stopped (verified)` / `⚠️ `b`: still stopping…` / `❌ `c`: <message> (409)`."""
    if outcome is None:
        return f"◻️ {_code(dep_id)} not {verbs.done}"
    message = clip(escape(outcome.message.strip()), MESSAGE_MAX)
    if outcome.ok:
        emoji = "⚠️" if outcome.verified is False else "✅"
        if not message:
            return f"{emoji} {_code(dep_id)} {verbs.done}"
        sep = " " if message.startswith(verbs.done) else ": "
        return f"{emoji} {_code(dep_id)}{sep}{message}"
    status = f" ({outcome.status})" if outcome.status else ""
    return f"❌ {_code(dep_id)}: {message or 'failed'}{status}"


def _outcome_blocks(action: PendingAction) -> list[Block]:
    """Per-deployment outcomes, failures first, summarised past DETAILED_OUTCOMES."""
    verbs = _verbs(action)
    by_id = {o.deployment_id: o for o in action.outcomes}
    ids = sorted(action.deployment_ids, key=lambda i: _outcome_rank(by_id.get(i)))
    lines = [_outcome_line(i, by_id.get(i), verbs) for i in ids[:DETAILED_OUTCOMES]]
    rest = ids[DETAILED_OUTCOMES:]
    if rest:
        words = ("failed", "not verified", verbs.done, f"not {verbs.done}")
        counts = Counter(words[_outcome_rank(by_id.get(i))] for i in rest)
        tally = ", ".join(f"{n:,} {word}" for word, n in counts.most_common())
        head = f"*… and {len(rest):,} more ({tally}):* "
        lines.append(head + _ids_md(rest, SECTION_TEXT_MAX - len(head)))
    return _packed_sections(lines)


def _restart_button(action: PendingAction) -> Block | None:
    """`Restart with previous settings` after a stop that stopped something."""
    if action.kind != "stop" or not any(o.ok for o in action.outcomes):
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
    if action.kind == "start" and action.source_action_id:
        fields.append(f"*Restart of*\naction {_code(action.source_action_id)}")
    else:
        fields.append(f"*Expression*\n{_code(action.spec.expression, EXPRESSION_MAX)}")
    if action.kind != "start":
        fields.append(f"*Options*\n{_flags_md(action.spec) or 'none'}")
    fields += [f"*Result*\n{phrase}", f"*Reason*\n{_reason_md(action.spec)}"]
    if action.incident_id:
        fields.append(f"*Incident*\n{_code(action.incident_id, 80)}")
    if action.approvals:
        fields.append(f"*Approved by*\n{_approvers_md(action, with_time=False, limit=1800)}")
    if took is not None:
        fields.append(f"*Took*\n{took:.1f} s")
    restart = _restart_button(action)
    room = MAX_BLOCKS - 3 - (restart is not None)
    blocks = [_section(f"{_EMOJI[action.state]} {headline}"), _fields_section(fields)]
    blocks += _outcome_blocks(action)[:room]
    finished = action.finished_at if action.finished_at is not None else now
    blocks.append(
        _context(
            f"action {_code(action.id)}",
            f"confirmed by {_mention(action.actor_id)}" if action.actor_id else "",
            f"finished {_slack_date(finished)}",
        )
    )
    if restart is not None:
        blocks.append(restart)
    plain_what = escape(_target_name(action))
    if len(action.targets) > 1:
        plain_what += f" ({escape(clip(action.spec.expression, EXPRESSION_MAX))})"
    text = f"{who} {verb} {plain_what} on {escape(action.cluster)}"
    flags = escape(_flags_suffix(action.spec)) if action.kind != "start" else ""
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
        ActionState.UNKNOWN: f"has an unknown outcome (the bot restarted while {verbs.doing})",
    }[action.state]
    what = f"{escape(_target_name(action))} on {escape(action.cluster)}"
    text = f"This {verbs.verb} of {what} {phrase}."
    return _make_message(text, [_section(f"{_EMOJI[action.state]} {text}")])


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
    if action.kind == "start":
        if action.source_action_id:
            lines.append(_restart_md(action))
        lines += [_start_settings_md(d) for d in action.targets[:3]]
        if len(action.targets) > 3:
            lines.append(f"… and {len(action.targets) - 3:,} more with their own settings")
    else:
        used = [
            f"{_code(d.deployment_id)} ({_pipelines_md(d.pipelines, 200)})"
            for d in action.targets
            if d.pipelines
        ]
        if used:
            head = "⚠ *Used by ingest pipelines, which stop working:* "
            lines.append(head + _join_limited(used, 1200))
        lines.append(_options_md(spec))
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
    flags = escape(_flags_suffix(spec)) if action.kind != "start" else ""
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


# --------------------------------------------------------------------------- locks, freeze


def locked(holder: PendingAction, deployment_ids: Sequence[str], *, now: float) -> Message:
    """A new request overlaps deployments that `holder` (proposed or executing) holds."""
    verb = _verbs(holder).verb
    held = set(holder.deployment_ids)
    conflicts = [i for i in deployment_ids if i in held] or list(holder.deployment_ids)
    ids = _ids_md(conflicts, 1500) if conflicts else "these deployments"
    has = "has" if len(conflicts) == 1 else "have"
    by = _mention(holder.requester_id)
    plain_ids = _join_limited([escape(clip(i, ID_MAX)) for i in conflicts], 1000)
    if holder.state is ActionState.EXECUTING:
        since = holder.started_at if holder.started_at is not None else holder.created_at
        rest = f"already {has} a {verb} by {by} running since"
        when, plain_when = _slack_date(since), _utc(since)
        retry = "try again when it ends"
    else:
        rest = f"already {has} a {verb} pending by {by} since"
        expires = f"expires {_slack_date(holder.expires_at)}, {_relative(holder.expires_at - now)}"
        plain_expires = f"expires {_utc(holder.expires_at)}"
        when = f"{_slack_date(holder.created_at)} ({expires})"
        plain_when = f"{_utc(holder.created_at)} ({plain_expires})"
        retry = "try again when it ends or expires"
    line = f"🔒 {ids} {rest} {when}; {retry}."
    blocks = [
        _section(line),
        _context(f"action {_code(holder.id)}", f"cluster {_code(holder.cluster)}"),
    ]
    return _make_message(f"{plain_ids} {rest} {plain_when}; {retry}.", blocks)


def _utc(epoch: float) -> str:
    """`22:23 UTC` for plain-text fallbacks."""
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _slack_datetime(epoch: float) -> str:
    """Date and time in the reader's zone (for things that may be days old)."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def frozen(by: str | None, since: float | None, reason: str | None) -> Message:
    """Why a stop or start was refused: the kill switch is on."""
    when = f" since {_slack_datetime(since)}" if since is not None else ""
    plain_when = (
        f" since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(since))}"
        if since is not None
        else ""
    )
    why = f" ({clip(escape(reason.strip()), 1000)})" if reason and reason.strip() else ""
    if by:
        who = f"by {_mention(by)}"
        how = "An admin can `/ml-stop unfreeze`."
    else:
        who = "by the config file (`freeze: true`)"
        how = "An admin has to remove `freeze: true` from the config to unfreeze."
    line = f"ML stops and starts are frozen {who}{{when}}{why}. {how}"
    return _make_message(line.format(when=plain_when), [_section("🧊 " + line.format(when=when))])


def freeze_notice(freeze: bool, by: str, reason: str | None, *, now: float) -> Message:
    """The channel notice that someone froze or unfroze stops and starts."""
    why = f": {clip(escape(reason.strip()), 1500)}" if reason and reason.strip() else ""
    if freeze:
        text = f"🧊 {_mention(by)} froze ML stops and starts{why}"
        hint = "nothing can be stopped or started until an admin runs `/ml-stop unfreeze`"
    else:
        text = f"✅ {_mention(by)} unfroze ML stops and starts{why}"
        hint = "stops and starts work again"
    blocks = [_section(text), _context(hint, f"at {_slack_date(now)}")]
    return _make_message(text, blocks)


# --------------------------------------------------------------------------- /ml-deployments


def _table_row(dep: Deployment) -> str:
    """One line of the deployments table."""
    facts = [
        f"{_code(dep.deployment_id)}",
        f"model {_code(dep.model_id)}",
        f"*{_word(dep.state)}*",
        f"{_allocations(dep)} allocations",
        _word(dep.priority),
        _plural(dep.inference_count, "inference"),
    ]
    if dep.pipelines:
        facts.append(f"⚠ pipelines {_pipelines_md(dep.pipelines, 300)}")
    return " · ".join(facts)


def deployments_table(
    cluster: str, pattern: str | None, deployments: Sequence[Deployment]
) -> Message:
    """Read-only table of the deployments matching `pattern` on `cluster`."""
    matching = f"matching {_code(pattern, EXPRESSION_MAX)} " if pattern else ""
    where = f"{matching}on {_code(cluster)}"
    if not deployments:
        text = f"No deployments {where}."
        return _make_message(text, [_section(text)])
    title = f"Deployments on {cluster}" + (f" matching {pattern}" if pattern else "")
    states = Counter(d.state for d in deployments)
    tally = ", ".join(f"{n:,} {escape(clip(s, 40))}" for s, n in states.most_common(8))
    blocks = [_header(title), _context(f"{_plural(len(deployments), 'deployment')} {where}", tally)]
    blocks += _packed_sections(_table_row(d) for d in deployments[:TABLE_ROWS])
    rest = deployments[TABLE_ROWS:]
    if rest:
        head = f"*… and {len(rest):,} more:* "
        tail = " — narrow the list with a pattern, e.g. `/ml-deployments elser-*`"
        ids = _ids_md([d.deployment_id for d in rest], SECTION_TEXT_MAX - len(head) - len(tail))
        blocks.append(_section(head + ids + tail))
    summary = _join_limited(
        [f"{escape(d.deployment_id)} ({escape(d.state)})" for d in deployments], 2500
    )
    return _make_message(f"{_plural(len(deployments), 'deployment')} {where}: {summary}", blocks)


# --------------------------------------------------------------------------- terminal rendering

_MRKDWN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<!date\^[^|>]*\|([^>]*)>"), r"\1"),
    (re.compile(r"<@([A-Z0-9]+)\|([^>]+)>"), r"@\2"),
    (re.compile(r"<@([A-Z0-9]+)>"), r"@\1"),
    (re.compile(r"<#([A-Z0-9]+)\|([^>]+)>"), r"#\2"),
    (re.compile(r"<#([A-Z0-9]+)>"), r"#\1"),
    (re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]+))?>"), r"@\1"),
    (re.compile(r"<!(\w+)(?:\|[^>]*)?>"), r"@\1"),
    (re.compile(r"<([a-z]+://[^|>]+)\|([^>]+)>"), r"\2 (\1)"),
    (re.compile(r"<([a-z]+://[^>]+)>"), r"\1"),
)


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn as a terminal shows it: mentions and dates readable, entities decoded."""
    for pattern, replacement in _MRKDWN_RULES:
        text = pattern.sub(replacement, text)
    text = text.replace("```", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_text(block: Block) -> list[str]:
    """The lines a terminal shows for one block."""
    kind = block.get("type")
    if kind == "header":
        title = str(block["text"]["text"])
        return [title, "=" * min(len(title), 72)]
    if kind == "divider":
        return ["-" * 40]
    if kind == "context":
        parts = [str(e.get("text", e.get("alt_text", ""))) for e in block.get("elements", [])]
        return [mrkdwn_to_text("  ".join(parts))]
    if kind == "actions":
        labels = [f"[{e['text']['text']}]" for e in block.get("elements", []) if "text" in e]
        return ["  ".join(labels)]
    if kind == "section":
        lines = [mrkdwn_to_text(block["text"]["text"])] if "text" in block else []
        fields = [str(f["text"]).replace("\n", " ", 1) for f in block.get("fields", [])]
        return lines + [mrkdwn_to_text(f) for f in fields]
    return []


def to_text(message: Message) -> str:
    """A readable plain-text rendering of a message for the local shell."""
    if not message["blocks"]:
        return mrkdwn_to_text(message["text"])
    return "\n".join(line for block in message["blocks"] for line in _block_text(block))


def button_labels(message: Message) -> list[tuple[str, str, str]]:
    """`(label, action_id, value)` of every button, in display order."""
    found = []
    for block in message["blocks"]:
        elements = list(block.get("elements", []))
        if "accessory" in block:
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found.append(
                    (element["text"]["text"], element["action_id"], element.get("value", ""))
                )
    return found


# --------------------------------------------------------------------------- audit timeline

TIMELINE_MAX_ROWS = 200


def _timeline_when(action: PendingAction) -> float:
    return action.started_at or action.finished_at or action.created_at


def _timeline_row(action: PendingAction, link: str | None) -> str:
    """One mrkdwn line: time, who, what, flags, reason, approvals, outcome, link."""
    parts = [
        _slack_date(_timeline_when(action)),
        _mention(action.requester_id),
        f"{_verbs(action).verb} {_target_name_md(action)} on {_code(action.cluster)}",
    ]
    if action.kind != "start" and action.spec.flags_text():
        parts.append(_flags_md(action.spec))
    parts.append(f"_{_reason_md(action.spec)}_")
    if action.approvals:
        parts.append("approved by " + ", ".join(_mention(a.user_id) for a in action.approvals))
    parts.append(f"{_EMOJI[action.state]} {_state_phrase(action)}")
    if link:
        parts.append(f"<{link}|message>")
    return " · ".join(parts)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")


def _markdown_row(action: PendingAction, link: str | None) -> str:
    """A Markdown table row for a postmortem: no Slack markup at all."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(_timeline_when(action)))
    outcome = {o.deployment_id: o.message for o in action.outcomes}
    results = "; ".join(f"{d}: {outcome.get(d, 'not run')}" for d in action.deployment_ids)
    cells = [
        when,
        "@" + action.requester_name,
        f"{_verbs(action).verb} {', '.join(action.deployment_ids)} on {action.cluster}",
        action.spec.flags_text() if action.kind != "start" else "",
        action.spec.reason or "",
        ", ".join("@" + a.user_name for a in action.approvals),
        f"{action.state.value}" + (f" ({results})" if action.outcomes else ""),
        f"[message]({link})" if link else "",
    ]
    return "| " + " | ".join(_markdown_cell(clip(c, 300)) for c in cells) + " |"


def audit_timeline(
    actions: Sequence[PendingAction],
    *,
    scope: str,
    markdown: bool,
    links: Mapping[str, str] | None = None,
) -> Message:
    """The bot's actions, oldest first: a readable list, or a Markdown table to paste."""
    links = links or {}
    ordered = sorted(actions, key=_timeline_when)[-TIMELINE_MAX_ROWS:]
    title = f"ML actions {scope}"
    if not ordered:
        text = f"No ML actions {scope}."
        return _make_message(escape(text), [_section(f"📜 {escape(text)}")])
    if markdown:
        head = "| time (UTC) | who | what | flags | reason | approvals | outcome | link |"
        rows = [head, "|---|---|---|---|---|---|---|---|"]
        rows += [_markdown_row(a, links.get(a.id)) for a in ordered]
        table = "\n".join(rows)
        chunks = _packed_sections([escape(r) for r in rows], SECTION_TEXT_MAX - 8)
        blocks = [_header(title)] + [
            _section("```\n" + str(c["text"]["text"]) + "\n```") for c in chunks
        ]
        return _make_message(escape(table), blocks[:MAX_BLOCKS])
    lines = [_timeline_row(a, links.get(a.id)) for a in ordered]
    blocks = [_header(title), *_packed_sections(lines)]
    return _make_message(
        f"{_plural(len(ordered), 'ML action')} {escape(scope)}", blocks[:MAX_BLOCKS]
    )
