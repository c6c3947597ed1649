"""`/ml-deployments`: the deployments the caller may see."""

from __future__ import annotations

from bot.app import context, timed
from bot.app.context import Deps
from bot.core.commands import ListRequest
from bot.core.errors import ClusterError
from bot.core.outcomes import (
    Denied,
    Failed,
    Listing,
    Who,
)
from bot.core.policy import (
    authorize,
)


async def list_deployments(deps: Deps, request: ListRequest, who: Who) -> Denied | Failed | Listing:
    """The deployments the caller may see, with their state."""
    gateway = context.gateway(deps, request.cluster)
    if isinstance(gateway, Failed):
        return gateway
    role_map = deps.role_map()
    caller = await context.caller(deps, who)
    pre = authorize(role_map, caller, "status", gateway.name, None)
    if not pre.allowed:
        return Denied(pre)
    try:
        found = await gateway.list(request.pattern, context.call_context(deps, who, "list"))
    except ClusterError as exc:
        return Failed(exc.message)
    visible = tuple(
        d
        for d in found
        if authorize(role_map, caller, "status", gateway.name, [d.deployment_id]).allowed
    )
    patterns = request.pattern.split(",") if request.pattern else None
    reverts = await timed.pending(deps, gateway.name, who, patterns)
    return Listing(
        gateway.name, request.pattern, visible, hidden=len(found) - len(visible), reverts=reverts
    )
