"""A partly refused stop: every match named, and a button for the preview of the others."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.model import Deployment
from bot.slack.blocks.common import (
    MAX_BLOCKS,
    Message,
    _ids_md,
    _plural,
    _section,
    escape,
)
from bot.slack.blocks.preview import _button
from bot.slack.ids import NARROW_ACTION_ID


def with_the_others(
    message: Message,
    matched: Sequence[str],
    refused: Sequence[Deployment],
    narrower: str | None,
) -> Message:
    """`message` (why ES refuses some) plus every match and what can be stopped without them."""
    refusing = {d.deployment_id for d in refused}
    others = [i for i in matched if i not in refusing]
    if not others:
        return message
    head = (
        f"*Matched {_plural(len(matched), 'deployment')}:* {_ids_md(list(matched), 600)}\n"
        f"*{len(others):,} of them can be stopped without `--force`:* {_ids_md(others, 600)}"
    )
    block = _section(head)
    if narrower is not None:
        label = f"Preview stopping {others[0]}" if len(others) == 1 else "Preview stopping these"
        block["accessory"] = _button(label, NARROW_ACTION_ID, narrower)
    else:
        block = _section(head + "\nYour role does not grant stopping just these.")
    blocks = [*message["blocks"][: MAX_BLOCKS - 1], block]
    text = f"{message['text']} Can be stopped without --force: {escape(', '.join(others))}"
    return {"text": text[:3000], "blocks": blocks}
