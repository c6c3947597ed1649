"""The requester cancels a pending action."""

from __future__ import annotations

from bot.app import context
from bot.app.context import Deps
from bot.core.model import (
    ActionState,
    PendingAction,
)
from bot.core.outcomes import (
    ClickResult,
    Who,
)


@context.store_down_fails
async def cancel(deps: Deps, action_id: str, who: Who) -> ClickResult:
    """The requester clicked Cancel."""
    found = await context.clickable(deps, action_id, who)
    if not isinstance(found, PendingAction):
        return found
    return await context.end(deps, action_id, who, ActionState.CANCELLED, "cancel")
