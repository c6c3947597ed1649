"""The kill switch: `/ml-stop freeze|unfreeze`."""

from __future__ import annotations

from typing import Any

from bot.app import context
from bot.app.context import Deps
from bot.core.commands import FreezeRequest, UsageError
from bot.core.commands.tokens import STOP
from bot.core.commands.usage import error
from bot.core.outcomes import (
    Denied,
    FreezeChanged,
    Who,
)
from bot.core.policy import (
    authorize,
)
from bot.core.timing import resolve_at


async def freeze(
    deps: Deps, request: FreezeRequest, who: Who
) -> Denied | FreezeChanged | UsageError:
    """`/ml-stop freeze|unfreeze`: only a role granted `freeze` may."""
    caller = await context.caller(deps, who)
    decision = authorize(deps.role_map(), caller, "freeze", deps.clusters.default, None)
    if not decision.allowed:
        await context.record(deps, who, "freeze", "failure", explanation=decision.explanation)
        return Denied(decision)
    until: float | None = None
    if request.freeze and request.window is not None:
        at = resolve_at(request.window, deps.clock(), tz=deps.timezone, max_seconds=deps.revert_max)
        if isinstance(at, str):
            return error(STOP, at)
        until = at
    value: dict[str, Any] | None = None
    if request.freeze:
        value = {
            "by": who.user_id,
            "since": deps.clock(),
            "reason": request.reason,
            "channel": who.channel_id,
        }
        if until is not None:
            value["until"] = until
    await deps.store.set_flag(context.FREEZE_FLAG, value)
    await context.record(
        deps, who, "freeze" if request.freeze else "unfreeze", "success", reason=request.reason
    )
    return FreezeChanged(
        request.freeze, who.user_id, request.reason, until=until, channel=who.channel_id
    )


async def unfreeze_due(deps: Deps) -> FreezeChanged | None:
    """A timed freeze whose time came: unfreeze it, once across replicas (the store's `seen`)."""
    flag = await deps.store.get_flag(context.FREEZE_FLAG)
    until = flag.get("until") if flag else None
    if flag is None or not isinstance(until, int | float) or until > deps.clock():
        return None
    if await deps.store.seen(f"unfreeze:{flag.get('since')}:{flag.get('by')}", deps.revert_max):
        return None  # another replica (or an earlier sweep) unfroze this freeze
    if await deps.store.get_flag(context.FREEZE_FLAG) != flag:
        return None  # unfrozen or frozen anew meanwhile: leave it to whoever did that
    await deps.store.set_flag(context.FREEZE_FLAG, None)
    who = Who(str(flag.get("by")), "timed freeze", "", "")
    await context.record(deps, who, "unfreeze", "success", reason="the timed freeze ended")
    channel = flag.get("channel")
    return FreezeChanged(
        False,
        str(flag.get("by")),
        flag.get("reason"),
        timed=True,
        channel=channel if isinstance(channel, str) else None,
    )
