"""The `/ml-audit` timeline of a channel or an incident."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence

from bot.core.model import PendingAction
from bot.core.timing import human
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    FALLBACK_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    Block,
    Message,
    _code,
    _flags_md,
    _header,
    _ids_md,
    _make_message,
    _mention,
    _packed_sections,
    _plural,
    _reason_md,
    _section,
    _slack_date,
    _target_name_md,
    _verbs,
    clip,
    escape,
)
from bot.slack.blocks.preview import _trusted_mrkdwn
from bot.slack.blocks.result import _EMOJI, _state_phrase

# --------------------------------------------------------------------------- audit timeline

TIMELINE_MAX_ROWS = 200
_MENTION = re.compile(r"<@(\w+)>")


def _timeline_when(action: PendingAction) -> float:
    return action.started_at or action.finished_at or action.created_at


def _timeline_row(action: PendingAction, link: str | None) -> str:
    """One mrkdwn line: time, who, what, flags, reason, approvals, outcome, link."""
    parts = [
        _slack_date(_timeline_when(action)),
        _mention(action.requester_id),
        f"{_verbs(action).verb} {_targets_md(action)} on {_code(action.cluster)}",
    ]
    if action.spec.flags_text():  # a start has none
        parts.append(_flags_md(action.spec))
    parts.append(_timeline_reason(action))
    if action.approvals:
        parts.append("approved by " + ", ".join(_mention(a.user_id) for a in action.approvals))
    parts.append(f"{_EMOJI[action.state]} {_state_phrase(action)}")
    parts += _timed_parts(action)
    if link:
        parts.append(f"<{link}|message>")
    return " · ".join(parts)


def _timed_parts(action: PendingAction) -> list[str]:
    """A timed change's window, or a revert's due time and who extended or kept it."""
    parts: list[str] = []
    if action.revert_seconds is not None:
        parts.append(f"timed: reverts {human(action.revert_seconds)} after it ran")
    elif action.revert_at is not None:
        parts.append(f"timed: reverts at {_slack_date(action.revert_at)}")
    if action.revert_of:
        due = f", due {_slack_date(action.expires_at)}" if action.state.value == "scheduled" else ""
        parts.append(f"↩ timed revert of {_code(action.revert_of)}{due}")
        parts += [_trusted_mrkdwn(entry, 200) for entry in action.revert_log]
    return parts


def _targets_md(action: PendingAction) -> str:
    """Every deployment by id (`a`, `b`, … +N more), not just how many there were."""
    return _ids_md(action.deployment_ids, 600) or _target_name_md(action)


def _timeline_reason(action: PendingAction) -> str:
    """The reason in italics, or `no reason given` (already italic: not wrapped twice)."""
    shown = _reason_md(action.spec)
    return f"_{shown}_" if (action.spec.reason or "").strip() else shown


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
        action.spec.flags_text(),
        action.spec.reason or "",
        ", ".join("@" + a.user_name for a in action.approvals),
        f"{action.state.value}"
        + (f" ({results})" if action.outcomes else "")
        + (f"; timed revert of {action.revert_of}" if action.revert_of else "")
        + "".join("; " + _MENTION.sub(r"@\1", entry) for entry in action.revert_log),
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
        body = [escape(r) for r in rows[2:]]
        shown, earlier = _newest_that_fit([_header(title)], body, table_head=rows[:2])
        table = "\n".join([*rows[:2], *shown])
        chunks = _packed_sections([escape(r) for r in rows[:2]] + shown, SECTION_TEXT_MAX - 8)
        blocks = [_header(title), *earlier] + [
            _section("```\n" + str(c["text"]["text"]) + "\n```") for c in chunks
        ]
        return _make_message(clip(escape(table), FALLBACK_TEXT_MAX), blocks[:MAX_BLOCKS])
    lines = [_timeline_row(a, links.get(a.id)) for a in ordered]
    shown, earlier = _newest_that_fit([_header(title)], lines)
    blocks = [_header(title), *earlier, *_packed_sections(shown)]
    return _make_message(
        f"{_plural(len(ordered), 'ML action')} {escape(scope)}", blocks[:MAX_BLOCKS]
    )


def _newest_that_fit(
    head: list[Block], lines: list[str], table_head: Sequence[str] = ()
) -> tuple[list[str], list[Block]]:
    """The newest `lines` the message holds, oldest first, and a note on the earlier ones."""
    note_room = 200
    spare = budget.room(head, []) - note_room - sum(len(r) + 9 for r in table_head)
    # Each packed section costs its fence (```\n … \n```) and a block: keep 10% aside.
    count = budget.take_lines(lines[::-1], spare - spare // 10)
    count = min(count, (budget.MAX_BLOCKS - len(head) - 2) * 5)
    earlier = len(lines) - count
    if earlier == 0:
        return lines, []
    note = (
        f"_{_plural(earlier, 'earlier action')} not shown: narrow with "
        "`/ml-audit --since 2h` or `--incident ID`_"
    )
    return lines[len(lines) - count :], [_section(note)]
