"""Propose a stop: authorize, resolve, save the pending action with its locks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.app import context
from bot.app.context import Deps
from bot.core.commands import StopRequest, UsageError
from bot.core.commands.tokens import STOP
from bot.core.commands.usage import error
from bot.core.errors import ClusterError
from bot.core.model import (
    ActionSpec,
    PendingAction,
    Resolution,
    StopSpec,
)
from bot.core.outcomes import (
    Denied,
    Failed,
    ForceNeeded,
    Locked,
    NothingMatched,
    Proposed,
    ProposeResult,
    Who,
)
from bot.core.policy import (
    ApprovalRule,
    Decision,
    approvals_required,
    authorize,
)
from bot.core.timing import Window, resolve_at


async def save(
    deps: Deps, action: PendingAction, who: Who, ids: Sequence[str]
) -> Proposed | Locked:
    """Save the action holding its deployment locks, or name the action that holds one."""
    holder = await deps.store.put_exclusive(
        action, context.lock_keys(action.cluster, ids), deps.clock()
    )
    if holder is not None:
        busy = tuple(d for d in holder.deployment_ids if d in ids)
        await context.record(
            deps,
            who,
            "propose",
            "failure",
            action_id=action.id,
            cluster=action.cluster,
            deployments=ids,
            error=f"locked by action {holder.id}",
        )
        return Locked(holder, busy)
    await context.record(
        deps,
        who,
        "propose",
        "success",
        action_id=action.id,
        cluster=action.cluster,
        deployments=ids,
        kind=action.kind,
        required_approvals=action.required_approvals,
    )
    return Proposed(action)


def new_action(
    deps: Deps,
    who: Who,
    action_id: str,
    cluster: str,
    spec: ActionSpec,
    resolution: Resolution,
    decision: Decision,
    rule: ApprovalRule | None,
    **extra: Any,
) -> PendingAction:
    """A new pending action for `who`, expiring after `deps.expire_after`."""
    now = deps.clock()
    return PendingAction(
        id=action_id,
        requester_id=who.user_id,
        requester_name=who.user_name,
        team_id=who.team_id,
        channel_id=who.channel_id,
        cluster=cluster,
        spec=spec,
        targets=resolution.deployments,
        unmatched=resolution.unmatched,
        created_at=now,
        expires_at=now + deps.expire_after,
        decision=decision.explanation,
        required_approvals=rule.required if rule else 0,
        approver_roles=tuple(rule.approvers) if rule else (),
        auto_run=rule.auto_run if rule else False,
        incident_id=who.incident_id,
        **extra,
    )


async def propose(
    deps: Deps, request: StopRequest, who: Who, *, execution_id: str | None = None
) -> ProposeResult | UsageError:
    """Authorize, resolve and save a stop for confirmation.

    `execution_id` is the Workflow Builder step's function execution that asked.
    """
    if frozen := await context.frozen(deps):
        return frozen
    timing = window_fields(deps, request.window)
    if isinstance(timing, str):
        return error(STOP, timing)
    gateway = context.gateway(deps, request.cluster)
    if isinstance(gateway, Failed):
        return gateway
    cluster, options, action_id = gateway.name, request.options(), context.new_action_id()
    ctx = {"cluster": cluster, "action_id": action_id, "request": request.expression}
    role_map = deps.role_map()
    caller = await context.caller(deps, who)
    pre = authorize(role_map, caller, "stop", cluster, None, options)
    if not pre.allowed:
        await context.record(deps, who, "decision", "failure", explanation=pre.explanation, **ctx)
        return Denied(pre)
    try:
        resolution = await gateway.resolve(request.ids, context.call_context(deps, who, action_id))
    except ClusterError as exc:
        await context.record(deps, who, "resolve", "failure", error=exc.message, **ctx)
        return Failed(exc.message)
    if not resolution.deployments:
        await context.record(deps, who, "resolve", "failure", error="nothing matched", **ctx)
        return NothingMatched(request.expression, cluster, resolution.unmatched, resolution.hints)
    if resolution.unmatched and not request.allow_no_match:
        missing = ", ".join(f"`{u}`" for u in resolution.unmatched)
        await context.record(deps, who, "resolve", "failure", error="partial match", **ctx)
        return Failed(
            f"{missing} matched no deployment on `{cluster}`; with `--no-allow-no-match` "
            "nothing is stopped unless every id matches"
        )
    ids = [d.deployment_id for d in resolution.deployments]
    decision = authorize(role_map, caller, "stop", cluster, ids, options)
    await context.record(
        deps,
        who,
        "decision",
        "success" if decision.allowed else "failure",
        explanation=decision.explanation,
        deployments=ids,
        **ctx,
    )
    if not decision.allowed:
        return Denied(decision)
    refused = tuple(d for d in resolution.deployments if d.impact and d.impact.refuses)
    if refused and not request.force:
        # A Stop button bound to fail with 409 helps nobody: say why, and whether --force may.
        forced = authorize(role_map, caller, "stop", cluster, ids, options | {"force"})
        await context.record(
            deps, who, "propose", "failure", error="force needed", deployments=ids, **ctx
        )
        return ForceNeeded(cluster, refused, forced.allowed)
    spec = StopSpec(
        expression=request.expression,
        force=request.force,
        finish_pending_work=request.finish_pending_work,
        allow_no_match=request.allow_no_match,
        reason=request.reason or who.incident_id,  # in an incident, the incident is why
    )
    rule = approvals_required(role_map, "stop", cluster, ids)
    action = new_action(
        deps,
        who,
        action_id,
        cluster,
        spec,
        resolution,
        decision,
        rule,
        function_execution_id=execution_id,
        **timing,
    )
    return await save(deps, action, who, ids)


def window_fields(deps: Deps, window: Window | None) -> dict[str, Any] | str:
    """A timed change's fields (`--for` counts from when it runs), or the usage error."""
    if window is None:
        return {}
    at = resolve_at(window, deps.clock(), tz=deps.timezone, max_seconds=deps.revert_max)
    if isinstance(at, str):
        return at
    if window.seconds is not None:
        return {"revert_seconds": window.seconds}
    return {"revert_at": at}
