"""A long preview's targets in full, page by page, in a modal (`Show all N` on the preview).

The preview shows the worst few targets in detail and names the rest (budget.py); this modal
gives every target the same detail, PAGE_SIZE at a time, with Previous / Next. Pages are cut
by size too: a modal holds 100 blocks, and the same text budget as a message is kept.
"""

from __future__ import annotations

from typing import Any

from bot.core.model import PendingAction
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    DETAILS_NEXT_ACTION_ID,
    DETAILS_PREV_ACTION_ID,
    Block,
    _context,
    _plain,
    _plural,
    _section,
    _verbs,
    clip,
)
from bot.slack.blocks.preview import _button, _severity, _target_md

PAGE_SIZE = 10
MODAL_BLOCKS = 100  # a modal's limit; a page holds at most PAGE_SIZE + 2 blocks
_TITLE_MAX = 24  # a modal's title (Block Kit: plain_text, at most 24 characters)


def page_count(action: PendingAction) -> int:
    """How many pages the action's targets fill (at least one)."""
    return max(len(_pages(action)), 1)


def _pages(action: PendingAction) -> list[list[Block]]:
    """The targets' detail sections, worst first, cut into pages that each fit the budget."""
    ordered = sorted(action.targets, key=lambda d: _severity(action, d))
    room = budget.BLOCKS_TEXT_MAX - 400  # the page line and the buttons
    pages: list[list[Block]] = []
    used = 0
    for dep in ordered:
        section = _section(_target_md(action, dep))
        size = budget.text_size([section])
        if not pages or len(pages[-1]) >= PAGE_SIZE or used + size > room:
            pages.append([])
            used = 0
        pages[-1].append(section)
        used += size
    return pages


def page_value(action_id: str, page: int) -> str:
    """A Previous / Next button's value: the action and the page it opens."""
    return f"{action_id}:{page}"


def parse_page_value(value: str) -> tuple[str, int] | None:
    """`(action id, page)` from a page button's value, or None when it is not one."""
    action_id, _, page = value.rpartition(":")
    return (action_id, int(page)) if action_id and page.isdigit() else None


def details_page(action: PendingAction, page: int) -> list[Block]:
    """One page of targets in detail, worst first (the preview's order), and where it is."""
    pages = _pages(action) or [[]]
    page = min(max(page, 0), len(pages) - 1)
    first = sum(len(p) for p in pages[:page])
    where = _context(
        f"page {page + 1} of {len(pages)}",
        f"{first + 1} to {first + len(pages[page])} of "
        f"{_plural(len(action.targets), 'deployment')}",
        "worst first",
    )
    return [where, *pages[page]]


def details_modal(action: PendingAction, page: int = 0) -> dict[str, Any]:
    """The modal: a page of targets and, when there are several pages, Previous / Next."""
    pages = page_count(action)
    page = min(max(page, 0), pages - 1)
    title = f"{_verbs(action).title} {len(action.targets):,} deployments"
    blocks = details_page(action, page)
    nav = []
    if page > 0:
        nav.append(_button("◀ Previous", DETAILS_PREV_ACTION_ID, page_value(action.id, page - 1)))
    if page + 1 < pages:
        nav.append(_button("Next ▶", DETAILS_NEXT_ACTION_ID, page_value(action.id, page + 1)))
    if nav:
        blocks.append({"type": "actions", "block_id": "ml_stop.details_nav", "elements": nav})
    return {
        "type": "modal",
        "callback_id": "ml_stop.details",
        "title": _plain(clip(title, _TITLE_MAX)),
        "close": _plain("Close"),
        "private_metadata": action.id,
        "blocks": blocks,
    }
