"""The kill switch: `/ml-stop freeze|unfreeze`."""

from __future__ import annotations

from bot.app import context
from bot.app.context import Deps
from bot.core.commands import FreezeRequest
from bot.core.outcomes import (
    Denied,
    FreezeChanged,
    Who,
)
from bot.core.policy import (
    authorize,
)


async def freeze(deps: Deps, request: FreezeRequest, who: Who) -> Denied | FreezeChanged:
    """`/ml-stop freeze|unfreeze`: only a role granted `freeze` may."""
    caller = await context.caller(deps, who)
    decision = authorize(deps.role_map(), caller, "freeze", deps.clusters.default, None)
    if not decision.allowed:
        await context.record(deps, who, "freeze", "failure", explanation=decision.explanation)
        return Denied(decision)
    value = None
    if request.freeze:
        value = {"by": who.user_id, "since": deps.clock(), "reason": request.reason}
    await deps.store.set_flag(context.FREEZE_FLAG, value)
    await context.record(
        deps, who, "freeze" if request.freeze else "unfreeze", "success", reason=request.reason
    )
    return FreezeChanged(request.freeze, who.user_id, request.reason)
