"""Expire pending actions nobody confirmed in time."""

from __future__ import annotations

from bot.app import context
from bot.app.context import Deps
from bot.core.model import (
    PendingAction,
)
from bot.core.outcomes import (
    Who,
)


async def expire_due(deps: Deps) -> list[PendingAction]:
    """Expire every proposed action past its expiry; returns those this call expired."""
    expired = []
    for action in await deps.store.due(deps.clock()):
        moved = await context.expire_if_due(deps, action)
        if moved is None:
            continue
        expired.append(moved)
        requester = Who(
            moved.requester_id,
            moved.requester_name,
            moved.team_id,
            moved.channel_id,
            incident_id=moved.incident_id,
        )
        await context.record(
            deps,
            requester,
            "expire",
            "success",
            action_id=moved.id,
            cluster=moved.cluster,
            deployments=moved.deployment_ids,
        )
    return expired
