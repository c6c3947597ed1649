"""`/ml-audit`: the bot's actions in a channel or an incident."""

from __future__ import annotations

from bot.app import context
from bot.app.context import Deps
from bot.core.commands import AuditRequest
from bot.core.incidents import is_incident
from bot.core.outcomes import (
    Denied,
    Timeline,
    Who,
)
from bot.core.policy import (
    authorize,
)

# Where an action's incident comes from, said wherever incidents are matched.
SOURCES = "(from incident channels, `incidents:` in the config, and reasons naming it)"


async def timeline(deps: Deps, request: AuditRequest, who: Who) -> Denied | Timeline:
    """`/ml-audit`: the actions of this channel, or of one incident, since a moment."""
    caller = await context.caller(deps, who)
    decision = authorize(deps.role_map(), caller, "status", deps.clusters.default, None)
    if not decision.allowed:
        return Denied(decision)
    found = await deps.store.history(deps.clock() - request.since_seconds)
    if request.incident:
        chosen = [a for a in found if is_incident(a.incident_id, a.spec.reason, request.incident)]
        scope = f"for incident {request.incident}"
    else:
        chosen = [a for a in found if a.channel_id == who.channel_id]
        scope = "in this channel"
    hours = request.since_seconds / 3600
    scope += f" in the last {hours:g} h" if hours < 48 else f" in the last {hours / 24:g} days"
    if request.incident:
        scope += f" {SOURCES}"
    await context.record(deps, who, "timeline", "success", count=len(chosen))
    return Timeline(tuple(chosen), scope, request.markdown)
