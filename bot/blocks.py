"""Block Kit messages for prompts, results, errors and help, as plain dicts.

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
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from bot.commands import UsageError, usage
from bot.model import ActionState, Deployment, PendingAction, StopOutcome, StopSpec

if TYPE_CHECKING:  # only its attributes are read; the module graph stays commands → blocks
    from bot.policy import Decision

CONFIRM_ACTION_ID = "ml_stop.confirm"
CANCEL_ACTION_ID = "ml_stop.cancel"

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


# --------------------------------------------------------------------------- domain wording


def _target_name(action: PendingAction) -> str:
    """`elser-prod` for one target, `3 deployments` for several (plain, unescaped)."""
    ids = action.deployment_ids
    return clip(ids[0], ID_MAX) if len(ids) == 1 else _plural(len(ids), "deployment")


def _target_name_md(action: PendingAction) -> str:
    """`target_name` as mrkdwn: the single id in code, or the count in bold."""
    ids = action.deployment_ids
    return _code(ids[0]) if len(ids) == 1 else f"*{_plural(len(ids), 'deployment')}*"


def _flags_suffix(spec: StopSpec) -> str:
    """` (--force)` or the empty string."""
    flags = spec.flags_text()
    return f" ({flags})" if flags else ""


def _option_lines(spec: StopSpec) -> list[str]:
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


def _options_md(spec: StopSpec) -> str:
    """`*Options:* --force` followed by what each option does."""
    flags = " ".join(f"`{f}`" for f in spec.flags_text().split()) or "none"
    return "\n".join([f"*Options:* {flags}", *_option_lines(spec)])


def _reason_md(spec: StopSpec) -> str:
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


def _pipeline_warning(dep: Deployment, spec: StopSpec) -> str:
    """`⚠ used by ingest pipeline(s) …` or the empty string."""
    if not dep.pipelines:
        return ""
    refusal = "" if spec.force else " (without `--force` Elasticsearch refuses to stop it)"
    return (
        f"⚠ used by ingest pipeline(s) {_pipelines_md(dep.pipelines)} — they stop working{refusal}"
    )


def _deployment_md(dep: Deployment, spec: StopSpec) -> str:
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


def _more_targets_md(rest: Sequence[Deployment]) -> str:
    """`… and 180 more (12 used by ingest pipelines): a, b, … +150 more`."""
    used = sum(1 for d in rest if d.pipelines)
    note = f" ({used:,} used by ingest pipelines)" if used else ""
    head = f"*… and {len(rest):,} more{note}:* "
    return head + _ids_md([d.deployment_id for d in rest], SECTION_TEXT_MAX - len(head))


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


def proposal(action: PendingAction, *, now: float) -> Message:
    """The preview the requester confirms or cancels (seen only by them)."""
    spec, targets = action.spec, action.targets
    cluster = _code(action.cluster)
    title = f"Stop {_target_name(action)} on {clip(action.cluster, 40)}?"
    summary = (
        f"*Cluster:* {cluster}\n"
        f"*You typed:* {_code(spec.expression, EXPRESSION_MAX)} → "
        f"{_plural(len(targets), 'deployment')}\n{_options_md(spec)}"
    )
    blocks = [
        _header(title),
        _section(summary),
        _section(f"*Reason:* {_reason_md(spec)}"),
        _divider(),
    ]
    blocks += [_section(_deployment_md(d, spec)) for d in targets[:DETAILED_TARGETS]]
    if len(targets) > DETAILED_TARGETS:
        blocks.append(_section(_more_targets_md(targets[DETAILED_TARGETS:])))
    if action.unmatched:
        blocks.append(
            _section(f"❓ *Not found, will not be touched:* {_ids_md(action.unmatched, 2500)}")
        )
    blocks += [_divider(), _expiry_context(action, now), _stop_buttons(action)]
    expires = _relative(action.expires_at - now)
    return _make_message(f"{escape(title)} Confirm or cancel (expires {expires}).", blocks)


def _expiry_context(action: PendingAction, now: float) -> Block:
    """When the prompt expires, and who may answer it."""
    when = f"⏱ Expires at {_slack_date(action.expires_at)} ({_relative(action.expires_at - now)})"
    return _context(
        when, f"only {_mention(action.requester_id)} can confirm", f"action {_code(action.id)}"
    )


def _stop_buttons(action: PendingAction) -> Block:
    """The Stop (danger, with a confirmation dialog) and Cancel buttons."""
    stop = {
        "type": "button",
        "text": _plain("Stop"),
        "action_id": CONFIRM_ACTION_ID,
        "value": action.id,
        "style": "danger",
        "confirm": _confirm_dialog(action),
    }
    cancel = {
        "type": "button",
        "text": _plain("Cancel"),
        "action_id": CANCEL_ACTION_ID,
        "value": action.id,
    }
    return {"type": "actions", "block_id": "ml_stop.buttons", "elements": [stop, cancel]}


def _confirm_dialog(action: PendingAction) -> dict[str, Any]:
    """The `Stop <id>?` dialog naming the deployment(s) and the cluster, in plain text."""
    ids, cluster = action.deployment_ids, clip(action.cluster, 40)
    single = len(ids) == 1 and len(ids[0]) <= CONFIRM_TITLE_MAX - 6
    title = f"Stop {ids[0]}?" if single else f"Stop {_plural(len(ids), 'deployment')}?"
    notes = []
    if any(d.pipelines for d in action.targets):
        notes.append("Ingest pipelines that use them stop working.")
    if not action.spec.finish_pending_work:
        notes.append("Queued inference requests will fail.")
    tail = " " + " ".join(notes) if notes else ""
    if len(ids) == 1:
        head, listed = f"This stops {clip(ids[0], 150)} on {cluster}", ""
    else:
        head = f"This stops {_plural(len(ids), 'deployment')} on {cluster}: "
        listed = _join_limited(list(ids), CONFIRM_TEXT_MAX - len(head) - len(tail) - 1)
    return {
        "title": _plain(clip(title, CONFIRM_TITLE_MAX)),
        "text": _plain(clip(f"{head}{listed}.{tail}", CONFIRM_TEXT_MAX)),
        "confirm": _plain("Stop"),
        "deny": _plain("Keep running"),
        "style": "danger",
    }


def progress(action: PendingAction) -> Message:
    """Replaces the preview while the stop runs; no buttons."""
    what = f"Stopping {_target_name_md(action)} on {_code(action.cluster)}…"
    blocks = [_section(f"⏳ {what}"), _context(f"confirmed by {_mention(action.actor_id)}")]
    if len(action.targets) > 1:
        blocks.insert(1, _section(_ids_md(action.deployment_ids, 2500)))
    return _make_message(
        f"Stopping {escape(_target_name(action))} on {escape(action.cluster)}…", blocks
    )


_EMOJI = {
    ActionState.PROPOSED: "❔",
    ActionState.EXECUTING: "⏳",
    ActionState.SUCCEEDED: "✅",
    ActionState.FAILED: "❌",
    ActionState.CANCELLED: "🚫",
    ActionState.EXPIRED: "⌛",
}


def _state_phrase(action: PendingAction) -> str:
    """`stopped`, `failed (1 of 3 stopped)`, `cancelled by <@U>`, `expired …`."""
    state = action.state
    if state is ActionState.SUCCEEDED:
        return "stopped"
    if state is ActionState.FAILED:
        done = sum(1 for o in action.outcomes if o.ok)
        return f"failed ({done} of {len(action.targets)} stopped)" if action.outcomes else "failed"
    if state is ActionState.CANCELLED:
        return f"cancelled by {_mention(action.actor_id)}" if action.actor_id else "cancelled"
    if state is ActionState.EXPIRED:
        return "expired: nothing was stopped"
    if state is ActionState.EXECUTING:
        return "stopping…"
    return "waiting for confirmation"


def final_preview(action: PendingAction) -> Message:
    """Replaces the preview once the action ended: its state word, no live buttons."""
    phrase = _state_phrase(action)
    what = f"Stop {_target_name_md(action)} on {_code(action.cluster)}"
    blocks = [
        _section(f"{_EMOJI[action.state]} {what}: *{phrase}*"),
        _context(f"action {_code(action.id)}", f"requested by {_mention(action.requester_id)}"),
    ]
    if len(action.targets) > 1:
        blocks.insert(1, _section(_ids_md(action.deployment_ids, 2500)))
    plain_what = f"Stop {escape(_target_name(action))} on {escape(action.cluster)}"
    return _make_message(f"{plain_what}: {phrase}", blocks)


def _duration(action: PendingAction) -> float | None:
    """Wall time of the stop: the slowest outcome (deployments stop concurrently)."""
    return max((o.seconds for o in action.outcomes), default=None)


def _outcome_line(dep_id: str, outcome: StopOutcome | None) -> str:
    """`✅ `a` stopped` / `❌ `b`: <message> (409)` / `◻️ `c` not stopped`."""
    if outcome is None:
        return f"◻️ {_code(dep_id)} not stopped"
    if outcome.ok:
        return f"✅ {_code(dep_id)} stopped"
    status = f" ({outcome.status})" if outcome.status else ""
    return f"❌ {_code(dep_id)}: {clip(escape(outcome.message), MESSAGE_MAX)}{status}"


def _outcome_blocks(action: PendingAction) -> list[Block]:
    """Per-deployment outcomes, failures first, summarised past DETAILED_OUTCOMES."""
    by_id = {o.deployment_id: o for o in action.outcomes}
    ids = sorted(action.deployment_ids, key=lambda i: by_id[i].ok if i in by_id else 2)
    lines = [_outcome_line(i, by_id.get(i)) for i in ids[:DETAILED_OUTCOMES]]
    rest = ids[DETAILED_OUTCOMES:]
    if rest:
        counts = Counter(
            "stopped" if by_id.get(i) and by_id[i].ok else "failed" if i in by_id else "not stopped"
            for i in rest
        )
        tally = ", ".join(f"{n:,} {word}" for word, n in counts.most_common())
        head = f"*… and {len(rest):,} more ({tally}):* "
        lines.append(head + _ids_md(rest, SECTION_TEXT_MAX - len(head)))
    return _packed_sections(lines)


def result(action: PendingAction, *, now: float) -> Message:
    """The record posted in the channel for everyone: who, what, where, why, how it went."""
    verb = "stopped" if action.state is ActionState.SUCCEEDED else "tried to stop"
    who, phrase = _mention(action.requester_id), _state_phrase(action)
    headline = f"{who} {verb} {_target_name_md(action)} on {_code(action.cluster)}"
    took = _duration(action)
    fields = [
        f"*Cluster*\n{_code(action.cluster)}",
        f"*Expression*\n{_code(action.spec.expression, EXPRESSION_MAX)}",
        f"*Options*\n{' '.join(f'`{f}`' for f in action.spec.flags_text().split()) or 'none'}",
        f"*Result*\n{phrase}",
        f"*Reason*\n{_reason_md(action.spec)}",
    ]
    if took is not None:
        fields.append(f"*Took*\n{took:.1f} s")
    blocks = [_section(f"{_EMOJI[action.state]} {headline}"), _fields_section(fields)]
    blocks += _outcome_blocks(action)[: MAX_BLOCKS - 3]
    finished = action.finished_at if action.finished_at is not None else now
    blocks.append(
        _context(
            f"action {_code(action.id)}",
            f"confirmed by {_mention(action.actor_id)}" if action.actor_id else "",
            f"finished {_slack_date(finished)}",
        )
    )
    plain_what = escape(_target_name(action))
    if len(action.targets) > 1:
        plain_what += f" ({escape(clip(action.spec.expression, EXPRESSION_MAX))})"
    text = f"{who} {verb} {plain_what} on {escape(action.cluster)}"
    return _make_message(f"{text}{escape(_flags_suffix(action.spec))}: {phrase}", blocks)


def not_requester(action: PendingAction, clicker_id: str) -> Message:
    """Told to someone else who clicked: only the requester can answer."""
    text = f"Only {_mention(action.requester_id)} can confirm or cancel this stop."
    return _make_message(
        text, [_section(f"✋ {text}"), _context(f"you are {_mention(clicker_id)}")]
    )


def already(action: PendingAction) -> Message:
    """A click on an action that is executing, finished or expired: says its state."""
    phrase = {
        ActionState.PROPOSED: "is still waiting for confirmation",
        ActionState.EXECUTING: "is already running",
        ActionState.SUCCEEDED: "already ran: stopped",
        ActionState.FAILED: f"already ran: {_state_phrase(action)}",
        ActionState.CANCELLED: f"was {_state_phrase(action)}",
        ActionState.EXPIRED: "expired: nothing was stopped",
    }[action.state]
    text = f"This stop of {escape(_target_name(action))} on {escape(action.cluster)} {phrase}."
    return _make_message(text, [_section(f"{_EMOJI[action.state]} {text}")])


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
