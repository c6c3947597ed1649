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
    Ended,
    Who,
)


@context.store_down_fails
async def cancel(deps: Deps, action_id: str, who: Who) -> ClickResult:
    """The requester clicked Cancel."""
    found = await context.clickable(deps, action_id, who)
    if not isinstance(found, PendingAction):
        return found
    moved = await context.settled(
        deps,
        action_id,
        await deps.store.transition(
            action_id,
            ActionState.PROPOSED,
            ActionState.CANCELLED,
            actor_id=who.user_id,
            finished_at=deps.clock(),
        ),
    )
    if not isinstance(moved, PendingAction):
        return moved
    await context.record(deps, who, "cancel", "success", action_id=action_id, cluster=moved.cluster)
    return Ended(moved)
