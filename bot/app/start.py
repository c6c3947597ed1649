"""Propose a start (`/ml-start`) or a restart (the Restart button) for confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.app import context
from bot.app import propose as propose_uc
from bot.app.context import Deps
from bot.core.commands import StartRequest
from bot.core.errors import ClusterError
from bot.core.impact import StartPlan, StartSettings, follow_endpoint, start_impact
from bot.core.model import (
    Deployment,
    Resolution,
    StartSpec,
    StopSpec,
)
from bot.core.outcomes import (
    Denied,
    Failed,
    ProposeResult,
    Unknown,
    Who,
)
from bot.core.policy import (
    approvals_required,
)


async def propose_start(deps: Deps, request: StartRequest, who: Who) -> ProposeResult:
    """`/ml-start`: authorize and save a start of one deployment for confirmation."""
    target = Deployment(
        deployment_id=request.target_id,
        model_id=request.model_id,
        state="not deployed",
        target_allocations=request.allocations or 1,
        threads_per_allocation=request.threads or 1,
        priority=request.priority or "normal",
    )
    typed = request.allocations is not None or request.threads is not None
    return await propose_start_of(
        deps, [target], request.cluster, request.reason, who, source=None, typed=typed
    )


def follow(target: Deployment, plan: StartPlan, *, typed: bool) -> Deployment:
    """The target as it will start: an endpoint's settings unless typed, and what comes back."""
    endpoint = plan.restores[0] if plan.restores else None
    have = StartSettings(
        target.target_allocations, target.threads_per_allocation, target.adaptive_allocations
    )
    settings = follow_endpoint(have, endpoint, given=typed)
    return replace(
        target,
        target_allocations=settings.allocations,
        threads_per_allocation=settings.threads,
        adaptive_allocations=settings.adaptive_allocations,
        impact=start_impact(plan, target.impact),
    )


@context.store_down_fails
async def propose_restart(deps: Deps, stop_action_id: str, who: Who) -> ProposeResult | Unknown:
    """The result's Restart button: start what that stop stopped, with its settings."""
    stopped = await deps.store.get(stop_action_id)
    if stopped is None or not isinstance(stopped.spec, StopSpec):
        return Unknown(stop_action_id)
    ok = {o.deployment_id for o in stopped.outcomes if o.ok}
    targets = [replace(d, state="stopped") for d in stopped.targets if d.deployment_id in ok]
    if not targets:
        return Failed("that stop stopped nothing, so there is nothing to restart")
    reason = f"restart after action {stopped.id}"
    return await propose_start_of(deps, targets, stopped.cluster, reason, who, source=stopped.id)


async def propose_start_of(
    deps: Deps,
    targets: Sequence[Deployment],
    cluster_name: str | None,
    reason: str | None,
    who: Who,
    *,
    source: str | None,
    typed: bool = True,
) -> ProposeResult:
    """Authorize, check nothing runs yet, and save a start of `targets`.

    `typed`: the settings are the person's (or a restart's captured ones), not defaults."""
    if frozen := await context.frozen(deps):
        return frozen
    gateway = context.gateway(deps, cluster_name)
    if isinstance(gateway, Failed):
        return gateway
    cluster, action_id = gateway.name, context.new_action_id()
    ids = [d.deployment_id for d in targets]
    role_map = deps.role_map()
    decision = await context.authorizer(deps, who).authorize("start", cluster, ids)
    await context.record(
        deps,
        who,
        "decision",
        "success" if decision.allowed else "failure",
        explanation=decision.explanation,
        cluster=cluster,
        action_id=action_id,
        deployments=ids,
        kind="start",
    )
    if not decision.allowed:
        return Denied(decision)
    try:
        running, plans = await gateway.plan_starts(
            targets, context.call_context(deps, who, action_id)
        )
    except ClusterError as exc:
        return Failed(exc.message)
    if running:
        listed = ", ".join(f"`{d.deployment_id}` ({d.state})" for d in running)
        return Failed(f"already deployed on `{cluster}`: {listed}; nothing to start")
    missing = sorted({t.model_id for t in targets if not plans[t.deployment_id].model_known})
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        return Failed(
            f"no trained model {names} on `{cluster}`, so there is nothing to start; "
            "check the model id (`GET _ml/trained_models`)"
        )
    targets = [follow(t, plans[t.deployment_id], typed=typed) for t in targets]
    spec = StartSpec(expression=",".join(ids), reason=reason or who.incident_id)
    rule = approvals_required(role_map, "start", cluster, ids)
    resolution = Resolution(tuple(targets))
    action = propose_uc.new_action(
        deps,
        who,
        action_id,
        cluster,
        spec,
        resolution,
        decision,
        rule,
        source_action_id=source,
    )
    return await propose_uc.save(deps, action, who, ids)
