"""Propose a start (`/ml-start`) or a restart (the Restart button) for confirmation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from bot.app import context
from bot.app import propose as propose_uc
from bot.app.context import Deps
from bot.core.commands import StartRequest
from bot.core.errors import ClusterError
from bot.core.impact import StartPlan, StartSettings, follow_endpoint, start_impact
from bot.core.model import (
    Deployment,
    PendingAction,
    Resolution,
    StartSpec,
    StopSpec,
)
from bot.core.outcomes import (
    Denied,
    Failed,
    Proposed,
    ProposeResult,
    Unknown,
    Who,
)
from bot.core.policy import (
    approvals_required,
)
from bot.core.stopped import RECENT_SECONDS, last_stops, restart_reason, stopped_deployment
from bot.core.suggest import nearest


async def propose_start(deps: Deps, request: StartRequest, who: Who) -> ProposeResult:
    """`/ml-start`: authorize and save a start of one deployment for confirmation.

    A deployment id the bot stopped (Elasticsearch forgets it) starts again with the model
    and settings it ran with, as the Restart button does; typed settings still win."""
    typed = request.allocations is not None or request.threads is not None
    gateway = context.gateway(deps, request.cluster)
    if isinstance(gateway, Failed):
        return gateway
    history = await deps.store.history(deps.clock() - RECENT_SECONDS)
    found = stopped_deployment(history, gateway.name, request.target_id)
    if found is not None and (
        request.deployment_id is None or found[1].model_id == request.model_id
    ):
        stop, ran = found
        target = _as_typed(replace(ran, state="stopped"), request)
        retyped = typed or request.priority is not None
        return await propose_start_of(
            deps,
            [target],
            request.cluster,
            request.reason or restart_reason(stop),
            who,
            source=None if retyped else stop.id,
            history=history,
        )
    target = Deployment(
        deployment_id=request.target_id,
        model_id=request.model_id,
        state="not deployed",
        target_allocations=request.allocations or 1,
        threads_per_allocation=request.threads or 1,
        priority=request.priority or "normal",
    )
    return await propose_start_of(
        deps,
        [target],
        request.cluster,
        request.reason,
        who,
        source=None,
        typed=typed,
        history=history,
    )


def _as_typed(ran: Deployment, request: StartRequest) -> Deployment:
    """A stopped deployment's settings with what the person typed instead."""
    if request.allocations is not None:
        ran = replace(ran, target_allocations=request.allocations, adaptive_allocations=None)
    if request.threads is not None:
        ran = replace(ran, threads_per_allocation=request.threads)
    if request.priority is not None:
        ran = replace(ran, priority=request.priority)
    return ran


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
    return await propose_start_of(
        deps, targets, stopped.cluster, restart_reason(stopped), who, source=stopped.id
    )


async def propose_start_of(
    deps: Deps,
    targets: Sequence[Deployment],
    cluster_name: str | None,
    reason: str | None,
    who: Who,
    *,
    source: str | None,
    typed: bool = True,
    history: Sequence[PendingAction] = (),
) -> ProposeResult:
    """Authorize, check nothing runs yet, and save a start of `targets`.

    `typed`: the settings are the person's (or a restart's captured ones), not defaults.
    A restart (`source`) starts those of its targets that are not running again already.
    `history`: the bot's recent actions, for "did you mean" when a model is unknown."""
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
    up = {d.deployment_id for d in running}
    if source is not None and len(up) < len(targets):
        targets, ids = (
            [t for t in targets if t.deployment_id not in up],
            [i for i in ids if i not in up],
        )
    elif running:
        listed = ", ".join(f"`{d.deployment_id}` ({d.state})" for d in running)
        return Failed(f"already deployed on `{cluster}`: {listed}; nothing to start")
    missing = [t for t in targets if not plans[t.deployment_id].model_known]
    if missing:
        return Failed(no_model(cluster, missing, plans, history))
    skipped = [f"`{i}`" for i in sorted(up)] if source is not None else []
    notes = [f"↺ Already running again, left as it is: {', '.join(skipped)}."] if skipped else []
    note = "\n".join([*notes, stays_down(targets, plans) or ""]).strip() or None
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
    saved = await propose_uc.save(deps, action, who, ids)
    return replace(saved, note=note) if note and isinstance(saved, Proposed) else saved


def no_model(
    cluster: str,
    missing: Sequence[Deployment],
    plans: Mapping[str, StartPlan],
    history: Sequence[PendingAction],
) -> str:
    """No such model: say so, and point at what the person most likely meant."""
    names = ", ".join(f"`{m}`" for m in sorted({t.model_id for t in missing}))
    hints: list[str] = []
    stopped = last_stops(history, cluster)
    for target in missing:
        plan = plans[target.deployment_id]
        hints += [
            f"`{target.deployment_id}` is the deployment of inference endpoint "
            f"`{e.inference_id}` (model `{e.model_id}`): "
            f"`/ml-start {e.model_id} --deployment-id {target.deployment_id}` brings it back"
            for e in plan.restores[:1]
        ]
        close = [f"`/ml-start {d}` (stopped by the bot)" for d in nearest(target.model_id, stopped)]
        close += [f"model `{m}`" for m in plan.near]
        if close:
            hints.append(f"did you mean {' or '.join(close)}?")
    if not hints:
        hints.append(
            "`/ml-deployments` lists what runs and what the bot stopped; "
            "give the model id, or the id of a deployment the bot stopped"
        )
    return f"no trained model {names} on `{cluster}`, so there is nothing to start; " + "; ".join(
        hints
    )


def stays_down(targets: Sequence[Deployment], plans: Mapping[str, StartPlan]) -> str | None:
    """A start that leaves inference endpoints of its model down: which, and how to bring them."""
    lines = []
    for target in targets:
        plan = plans[target.deployment_id]
        lines += [
            f"💡 Inference endpoint `{e.inference_id}` of model `{e.model_id}` runs on deployment "
            f"`{e.deployment_id}`, which is down, and this start does not bring it back: "
            f"`/ml-start {e.model_id} --deployment-id {e.deployment_id}` does."
            for e in plan.elsewhere[:3]
        ]
    return "\n".join(lines) or None
