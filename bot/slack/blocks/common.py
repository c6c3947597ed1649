"""What every message family shares: Slack's limits, escaping and clipping, block builders,
the action-kind wording and the domain phrases (targets, flags, reasons, pipelines).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from bot.core.model import ActionSpec, Deployment, PendingAction, ScaleSpec, StartSpec, StopSpec
from bot.slack import ids
from bot.slack.blocks import budget

# Re-exported so `blocks.CONFIRM_ACTION_ID` keeps working; bot.slack.ids owns them.
APPROVE_ACTION_ID = ids.APPROVE_ACTION_ID
CANCEL_ACTION_ID = ids.CANCEL_ACTION_ID
CONFIRM_ACTION_ID = ids.CONFIRM_ACTION_ID
NARROW_ACTION_ID = ids.NARROW_ACTION_ID
REJECT_ACTION_ID = ids.REJECT_ACTION_ID
RESTART_ACTION_ID = ids.RESTART_ACTION_ID
SHOW_ALL_ACTION_ID = ids.SHOW_ALL_ACTION_ID
DETAILS_PREV_ACTION_ID = ids.DETAILS_PREV_ACTION_ID
DETAILS_NEXT_ACTION_ID = ids.DETAILS_NEXT_ACTION_ID
START_CANCEL_ACTION_ID = ids.START_CANCEL_ACTION_ID
START_CONFIRM_ACTION_ID = ids.START_CONFIRM_ACTION_ID
SCALE_CONFIRM_ACTION_ID = ids.SCALE_CONFIRM_ACTION_ID
SCALE_CANCEL_ACTION_ID = ids.SCALE_CANCEL_ACTION_ID
REVERT_ACTION_ID = ids.REVERT_ACTION_ID
STATUS_SCALE_ACTION_ID = ids.STATUS_SCALE_ACTION_ID
STATUS_STOP_ACTION_ID = ids.STATUS_STOP_ACTION_ID

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


def escape(text: str) -> str:
    """Escape `&`, `<`, `>` for mrkdwn, every one: text arrives unescaped (bot/slack/slash_text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_PARTIAL_ENTITY = re.compile(r"&[a-z]*$")
# mrkdwn has no escape character: a zero-width space on each side of a marker keeps `*bold*`,
# `_it_`, `~s~`, backticks and `:emoji:` from pairing up, and `https:` from auto-linking.
_MARKERS = re.compile(r"([*_~`:])")
_ZWSP = "\u200b"


def literal(text: str) -> str:
    """User text (a reason, a note) for mrkdwn, shown as typed: escaped, markers inert."""
    return _MARKERS.sub(_ZWSP + r"\1" + _ZWSP, escape(text))


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


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object; `verbatim` so Slack links only what we wrote as `<url|text>`."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> Block:
    """A mrkdwn section, clipped to Slack's 3000 characters as a last resort."""
    return {"type": "section", "text": _mrkdwn(clip(text, SECTION_TEXT_MAX))}


def _fields_section(fields: Sequence[str]) -> Block:
    """A section of at most 10 mrkdwn fields of at most 2000 characters each."""
    texts = [_mrkdwn(clip(f, FIELD_TEXT_MAX)) for f in fields[:FIELDS_MAX]]
    return {"type": "section", "fields": texts}


def _context(*parts: str) -> Block:
    """A context block with one mrkdwn line joined by ` · `."""
    text = clip(" · ".join(p for p in parts if p), CONTEXT_TEXT_MAX)
    return {"type": "context", "elements": [_mrkdwn(text)]}


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
    """A message from escaped text, within Slack's limits, always keeping the last block.

    Families size themselves with `budget.fit`; this is the last resort should one not:
    blocks from the middle give way to a count (never the first or the last, the buttons).
    """
    if len(blocks) > MAX_BLOCKS or budget.text_size(blocks) > budget.BLOCKS_TEXT_MAX:
        blocks = budget.fit(
            blocks[:1],
            blocks[1:-1],
            blocks[-1:],
            more=lambda n: [_context(f"… {n:,} more part(s) of this message not shown")],
        )
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


_VERBS: dict[type[ActionSpec], _Verbs] = {
    StopSpec: _Verbs(
        "stop", "stopping", "stopped", CONFIRM_ACTION_ID, CANCEL_ACTION_ID, "danger", "Keep running"
    ),
    StartSpec: _Verbs(
        "start",
        "starting",
        "started",
        START_CONFIRM_ACTION_ID,
        START_CANCEL_ACTION_ID,
        "primary",
        "Don't start",
    ),
    ScaleSpec: _Verbs(
        "scale",
        "scaling",
        "scaled",
        ids.SCALE_CONFIRM_ACTION_ID,
        ids.SCALE_CANCEL_ACTION_ID,
        "primary",
        "Don't scale",
    ),
}


def _verbs(action: PendingAction) -> _Verbs:
    """The words for the action's spec type; an unknown one reads as a stop (never claims less)."""
    return _VERBS.get(type(action.spec), _VERBS[StopSpec])


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
        lines.append("• `--force`: stops even if ingest pipelines or inference endpoints use it")
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
    return clip(literal(reason), REASON_MAX) if reason else "_no reason given_"


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
    """Ids in code in at most `limit` characters: shared parts written once beyond a glance
    (`d-{001,002}-prod`), then `… +N more` only if they still do not fit."""
    return budget.compact_ids(ids, limit, code=_code_whole, more=lambda n: f"… +{n:,} more")


def _code_whole(text: str) -> str:
    """`_code` without the clipping: for a `prefix{a,b}` group of ids that must stay whole."""
    return f"`{escape(text.replace('`', chr(39)).replace(chr(10), ' ')) or ' '}`"
