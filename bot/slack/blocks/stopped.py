"""`/ml-deployments`' second part: what the bot stopped lately and is still down, with Restart."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.stopped import Stopped
from bot.slack.blocks.common import (
    MAX_BLOCKS,
    Block,
    Message,
    _code,
    _context,
    _ids_md,
    _mention,
    _plural,
    _reason_md,
    _section,
    _slack_date,
    clip,
    escape,
)
from bot.slack.blocks.preview import _button
from bot.slack.ids import RESTART_ACTION_ID, nth

STOPPED_ROWS = 10  # stops shown with their own Restart button; the rest are counted
ROW_MAX = 600  # characters of one row (ids and reason are clipped to fit)
# Slack refuses a message whose blocks hold more than ~12,000 characters of text in all
# (reference/slack.md §8): rows are added only while the whole message stays below this.
MESSAGE_TEXT_BUDGET = 11_000


def _stopped_row(entry: Stopped, n: int) -> Block:
    """One stop (the n-th row): what it stopped, by whom, when, why; its Restart button."""
    action = entry.action
    ids = [d.deployment_id for d in entry.deployments]
    models = sorted({d.model_id for d in entry.deployments})
    model = f" (model {_code(models[0])})" if len(models) == 1 else ""
    by = _mention(action.actor_id or action.requester_id)
    text = (
        f"⏹ {_ids_md(ids, 200)}{model} — stopped by {by} {_slack_date(entry.when)}"
        f" · *Reason:* {clip(_reason_md(action.spec), 200)}"
    )
    block = _section(text)
    block["accessory"] = _button("Restart", nth(RESTART_ACTION_ID, n), action.id)
    return block


def _text_size(blocks: Sequence[Block]) -> int:
    """Characters of text in blocks, as Slack counts them against its total."""
    size = 0
    for block in blocks:
        texts = [block.get("text"), *block.get("elements", []), *block.get("fields", [])]
        size += sum(len(str(t.get("text", ""))) for t in texts if isinstance(t, dict))
        accessory = block.get("accessory") or {}
        size += len(str((accessory.get("text") or {}).get("text", "")))
    return size


def recently_stopped(
    stopped: Sequence[Stopped], note: str | None, *, room: int, chars: int = MESSAGE_TEXT_BUDGET
) -> list[Block]:
    """At most `room` blocks and `chars` characters of text: a heading, one row per stop
    (with Restart), a count of the rest."""
    if note:
        return [_context(f"⚠ {escape(note)}")][:room]
    if not stopped or room < 1:
        return []
    if room < 2 or chars < 2 * ROW_MAX:  # a long table: name them in one short line
        ids = [d.deployment_id for s in stopped for d in s.deployments]
        return [
            _context(
                f"⏹ *Stopped by the bot and still down:* {_ids_md(ids, 300)} — "
                "`/ml-start &lt;deployment_id&gt;` brings one back"
            )
        ]
    fits = (chars - ROW_MAX) // ROW_MAX - 1  # the heading and the count take one row each
    rows = max(0, min(len(stopped), STOPPED_ROWS, room - 1, fits))
    if rows < len(stopped) and rows + 2 > room:
        rows -= 1  # keep a block for the count of the rest
    head = _context(
        f"*Stopped by the bot and still down* ({_plural(len(stopped), 'stop')}): "
        "Restart brings a deployment back with its previous settings, "
        "as `/ml-start &lt;deployment_id&gt;` does"
    )
    blocks = [head, *(_stopped_row(s, n) for n, s in enumerate(stopped[:rows]))]
    rest = stopped[rows:]
    if rest:
        ids = [d.deployment_id for s in rest for d in s.deployments]
        blocks.append(_context(f"… and {_plural(len(rest), 'more stop')}: {_ids_md(ids, 500)}"))
    return blocks


def with_recently_stopped(
    message: Message, stopped: Sequence[Stopped], note: str | None
) -> Message:
    """The deployments table followed by what the bot stopped lately (within 50 blocks)."""
    room = MAX_BLOCKS - len(message["blocks"])
    chars = MESSAGE_TEXT_BUDGET - _text_size(message["blocks"])
    extra = recently_stopped(stopped, note, room=room, chars=chars)
    if not extra:
        return message
    ids = [d.deployment_id for s in stopped for d in s.deployments]
    text = message["text"]
    if ids:
        text += f" Stopped by the bot and still down: {', '.join(escape(i) for i in ids[:20])}"
        text += f" +{len(ids) - 20} more" if len(ids) > 20 else ""
    return {"text": text[:3000], "blocks": [*message["blocks"], *extra]}
