"""`/ml-deployments`: the deployments the caller may see, and what the bot stopped lately."""

from __future__ import annotations

from collections.abc import Sequence

from bot.app import context, timed
from bot.app.context import Deps
from bot.core.commands import ListRequest
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.model import Deployment
from bot.core.outcomes import (
    Denied,
    Failed,
    Listing,
    Who,
)
from bot.core.policy import (
    Caller,
    RoleMap,
    authorize,
)
from bot.core.stopped import RECENT_SECONDS, Stopped, recently_stopped

HISTORY_UNREAD = "could not read the bot's history, so recently stopped deployments are not shown"


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
    stopped, note = await _stopped(deps, gateway.name, request.pattern, found, role_map, caller)
    patterns = request.pattern.split(",") if request.pattern else None
    reverts = await timed.pending(deps, gateway.name, who, patterns)
    return Listing(
        gateway.name,
        request.pattern,
        visible,
        hidden=len(found) - len(visible),
        stopped=stopped,
        stopped_note=note,
        reverts=reverts,
    )


async def _stopped(
    deps: Deps,
    cluster: str,
    pattern: str | None,
    running: Sequence[Deployment],
    role_map: RoleMap,
    caller: Caller,
) -> tuple[tuple[Stopped, ...], str | None]:
    """The bot's recent stops still down, as far as the caller may see them."""
    try:
        history = await deps.store.history(deps.clock() - RECENT_SECONDS)
    except StoreUnavailable:
        return (), HISTORY_UNREAD  # the listing itself needs no store
    found = recently_stopped(history, cluster, [d.deployment_id for d in running], pattern)
    shown = []
    for entry in found:
        ids = [d.deployment_id for d in entry.deployments]
        if authorize(role_map, caller, "status", cluster, ids).allowed:
            shown.append(entry)
    return tuple(shown), None
