"""Propose a scale (`/ml-scale`, a status button, "Revert to previous"); re-check it at the
click; run it and verify it. The same gate, store transitions, locks and audit as a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.app import context, timed
from bot.app import propose as propose_uc
from bot.app.context import Deps
from bot.app.ports import CallContext, Gateway
from bot.core.commands import ScaleRequest, StatusRequest, UsageError
from bot.core.commands.tokens import SCALE
from bot.core.commands.usage import error
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.health import DeploymentHealth, assess
from bot.core.model import (
    ActionState,
    Deployment,
    PendingAction,
    Resolution,
    ScaleChange,
    ScaleOutcome,
    ScaleSpec,
)
from bot.core.outcomes import (
    Changed,
    Denied,
    Ended,
    Failed,
    NothingMatched,
    ProposeResult,
    StatusReport,
    Unknown,
    Who,
)
from bot.core.policy import approvals_required, authorize
from bot.core.scale import Refusal, ScalePlan, Settings, memory_line, plan_scale


def plans_of(spec: ScaleSpec, targets: Sequence[Deployment]) -> list[ScalePlan | Refusal]:
    """Each target's plan under the spec (a revert: each its own change)."""
    return [plan_scale(d, spec.change_for(d.deployment_id)) for d in targets]


def numbers_of(plans: Sequence[ScalePlan | Refusal]) -> tuple[int, ...]:
    """Every allocation number the plans end with: the role map's bounds apply to each."""
    return tuple(sorted({n for p in plans if isinstance(p, ScalePlan) for n in p.after.numbers()}))


async def propose_scale(
    deps: Deps, request: ScaleRequest, who: Who, *, execution_id: str | None = None
) -> ProposeResult | UsageError:
    """`/ml-scale`: authorize, resolve, plan each target and save the scale for confirmation.

    `execution_id` is the Workflow Builder step's function execution that asked."""
    timing = propose_uc.window_fields(deps, request.window)
    if isinstance(timing, str):  # a bad `--for` / `--until`: nothing is read or saved
        return error(SCALE, timing)
    change = ScaleChange(
        request.allocations, request.adaptive, request.min_allocations, request.max_allocations
    )
    spec = ScaleSpec(request.expression, change, reason=request.reason or who.incident_id)
    return await propose_scale_of(
        deps,
        request.ids,
        spec,
        request.cluster,
        who,
        source=None,
        execution_id=execution_id,
        timing=timing,
    )


@context.store_down_fails
async def propose_revert(deps: Deps, scale_action_id: str, who: Who) -> ProposeResult | Unknown:
    """The result's "Revert to previous": a scale back to each target's settings before."""
    done = await deps.store.get(scale_action_id)
    if done is None or not isinstance(done.spec, ScaleSpec):
        return Unknown(scale_action_id)
    changed = {o.deployment_id for o in done.outcomes if o.ok}
    targets = [d for d in done.targets if d.deployment_id in changed]
    if not targets:
        return Failed("that scale changed nothing, so there is nothing to revert")
    per_target = tuple((d.deployment_id, Settings.of(d).revert()) for d in targets)
    ids = [d.deployment_id for d in targets]
    spec = ScaleSpec(
        ",".join(ids),
        per_target[0][1],
        reason=f"revert of action {done.id}",
        per_target=per_target,
    )
    return await propose_scale_of(deps, ids, spec, done.cluster, who, source=done.id)


async def propose_scale_of(
    deps: Deps,
    ids: Sequence[str],
    spec: ScaleSpec,
    cluster_name: str | None,
    who: Who,
    *,
    source: str | None,
    execution_id: str | None = None,
    timing: dict[str, Any] | None = None,
) -> ProposeResult:
    """Resolve `ids`, plan each deployment, authorize the numbers, save with locks.

    `timing`: a timed scale's window fields (`revert_seconds` or `revert_at`)."""
    if frozen := await context.frozen(deps):
        return frozen
    gateway = context.gateway(deps, cluster_name)
    if isinstance(gateway, Failed):
        return gateway
    cluster, options, action_id = gateway.name, spec.options(), context.new_action_id()
    ctx = {"cluster": cluster, "action_id": action_id, "request": spec.expression, "kind": "scale"}
    # As a stop's propose: a person granted directly never waits for a user-group lookup.
    policy = context.authorizer(deps, who)
    role_map = policy.role_map
    pre = await policy.authorize("scale", cluster, None, options)
    if not pre.allowed:
        await context.record(deps, who, "decision", "failure", explanation=pre.explanation, **ctx)
        return Denied(pre)
    call = context.call_context(deps, who, action_id)
    try:
        resolution, memory = await asyncio.gather(
            gateway.resolve(list(ids), call), gateway.ml_memory(call)
        )
    except ClusterError as exc:
        await context.record(deps, who, "resolve", "failure", error=exc.message, **ctx)
        return Failed(exc.message)
    if not resolution.deployments:
        await context.record(deps, who, "resolve", "failure", error="nothing matched", **ctx)
        return NothingMatched(spec.expression, cluster, resolution.unmatched, resolution.hints)
    plans = plans_of(spec, resolution.deployments)
    skipped = tuple((p.deployment_id, p.reason) for p in plans if isinstance(p, Refusal))
    chosen = [(d, p) for d, p in zip(resolution.deployments, plans, strict=True)]
    planned = [(d, p) for d, p in chosen if isinstance(p, ScalePlan)]
    if not planned:
        await context.record(deps, who, "propose", "failure", error="nothing to change", **ctx)
        lines = "; ".join(f"`{i}`: {why}" for i, why in skipped)
        return Failed(f"nothing to scale on `{cluster}`: {lines}")
    targets = tuple(d for d, _ in planned)
    target_ids = [d.deployment_id for d in targets]
    numbers = numbers_of([p for _, p in planned])
    decision = await policy.authorize("scale", cluster, target_ids, options, allocations=numbers)
    await context.record(
        deps,
        who,
        "decision",
        "success" if decision.allowed else "failure",
        explanation=decision.explanation,
        deployments=target_ids,
        allocations=list(numbers),
        **ctx,
    )
    if not decision.allowed:
        return Denied(decision)
    spec = replace(spec, skipped=skipped, memory=memory_line(planned, memory))
    rule = approvals_required(role_map, "scale", cluster, target_ids)
    resolution = Resolution(targets, resolution.unmatched, resolution.hints)
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
        function_execution_id=execution_id,
        **(timing or {}),
    )
    return await propose_uc.save(deps, action, who, target_ids)


async def recheck_scale(
    deps: Deps, action: PendingAction, who: Who
) -> Changed | Ended | Failed | None:
    """At the click: the targets must still have the settings and state the preview showed.

    If another change moved them, the action takes the new settings as its "before" and asks
    again (Changed, approvals voided, like a stop's re-check); if a target is gone or can no
    longer be changed so, it is cancelled and says why."""
    assert isinstance(action.spec, ScaleSpec)
    try:
        gateway = deps.clusters.get(action.cluster)
        fresh = await gateway.resolve(
            list(action.deployment_ids), context.call_context(deps, who, action.id, urgent=True)
        )
    except ClusterError as exc:
        return Failed(exc.message)
    now = {d.deployment_id: d for d in fresh.deployments}
    notes: list[str] = []
    for old in action.targets:
        new = now.get(old.deployment_id)
        if new is None:
            notes.append(f"`{old.deployment_id}` is gone")
        elif new.state != old.state:
            notes.append(f"`{old.deployment_id}` is now {new.state} (was {old.state})")
        elif Settings.of(new).text() != Settings.of(old).text():
            notes.append(
                f"`{old.deployment_id}` now has {Settings.of(new).text()} "
                f"(was {Settings.of(old).text()})"
            )
    if not notes:
        return None
    note = "; ".join(notes)
    await context.record(deps, who, "recheck", "failure", action_id=action.id, change=note)
    targets = tuple(now[d.deployment_id] for d in action.targets if d.deployment_id in now)
    plans = plans_of(action.spec, targets)
    if len(targets) < len(action.targets) or any(isinstance(p, Refusal) for p in plans):
        ended = await deps.store.transition(
            action.id, ActionState.PROPOSED, ActionState.CANCELLED, finished_at=deps.clock()
        )
        if ended is not None and ended.function_execution_id:
            return Ended(ended)  # the workflow step that asked completes (with its error)
        why = "; ".join(f"`{p.deployment_id}`: {p.reason}" for p in plans if isinstance(p, Refusal))
        return Failed(
            f"changed since your preview: {note}; nothing was scaled" + (f" ({why})" if why else "")
        )
    rule = approvals_required(deps.role_map(), "scale", action.cluster, action.deployment_ids)
    at = deps.clock()
    updated = await deps.store.mutate(
        action.id,
        lambda a: (
            replace(
                a,
                targets=targets,
                expires_at=at + deps.expire_after,
                approvals=(),
                **context.approval_fields(rule),
            )
            if a.state is ActionState.PROPOSED
            else None
        ),
    )
    if updated is None:
        latest = await deps.store.get(action.id)
        return Failed(f"this scale is {latest.state.value if latest else 'gone'} now")
    return Changed(updated, note)


async def scale_and_verify(
    deps: Deps, gateway: Gateway, spec: ScaleSpec, dep: Deployment, ctx: CallContext
) -> ScaleOutcome:
    """Update one deployment, then poll `_stats` until the request is reflected and placed."""
    plan = plan_scale(dep, spec.change_for(dep.deployment_id))
    if isinstance(plan, Refusal):  # re-checked at the click; kept as a guard
        return ScaleOutcome(dep.deployment_id, ok=False, message=f"not sent: {plan.reason}")
    outcome = await gateway.scale(plan, ctx)
    if not outcome.ok and not outcome.unknown:
        return outcome  # refused: nothing was changed
    try:
        now, done, waited = await gateway.verify_scaled(plan, within=deps.verify_within, ctx=ctx)
    except ClusterError as exc:
        return replace(
            outcome, message=f"{outcome.message}; could not verify: {exc.message}", unknown=True
        )
    if outcome.unknown:
        return _read_back(outcome, plan, now, done)
    if now is None:
        return replace(outcome, message="requested, but the deployment is gone", verified=False)
    target, allocated = now.target_allocations, now.allocations
    counts = f"target {target if target is not None else '?'}, {allocated or 0} allocated"
    if not done:
        return replace(
            outcome,
            message=(
                f"requested, not yet placed after {waited:.0f} s: Elasticsearch still shows "
                f"{Settings.of(now).text()} ({counts})"
            ),
            verified=False,
            target=target,
            allocated=allocated,
        )
    if (allocated or 0) < (target or 0):
        # The target is set, but a scale is done only when Elasticsearch has placed it.
        return replace(
            outcome,
            message=(
                f"requested, not yet placed: {counts} after {waited:.0f} s "
                f"(Elasticsearch is still placing; check `/ml-status {dep.deployment_id}`)"
            ),
            verified=False,
            target=target,
            allocated=allocated,
        )
    return replace(
        outcome,
        message=f"scaled to {plan.after.text()} (verified: {counts})",
        verified=True,
        target=target,
        allocated=allocated,
    )


def _read_back(
    outcome: ScaleOutcome, plan: ScalePlan, now: Deployment | None, done: bool
) -> ScaleOutcome:
    """An update whose answer could not be read: only `_stats` can say it was applied."""
    if now is not None and done and (now.allocations or 0) >= (now.target_allocations or 0):
        counts = f"target {now.target_allocations}, {now.allocations or 0} allocated"
        return replace(
            outcome,
            ok=True,
            unknown=False,
            verified=True,
            message=f"scaled to {plan.after.text()} (verified: {counts}; {outcome.message})",
            target=now.target_allocations,
            allocated=now.allocations,
        )
    seen = "the deployment is gone" if now is None else f"`_stats` shows {Settings.of(now).text()}"
    return replace(
        outcome, message=f"{outcome.message}; {seen}: check `/ml-status {plan.deployment_id}`"
    )


REJECTIONS_FLAG = "status-rejections/{cluster}/{deployment}"


async def _rejections_seen(
    deps: Deps, cluster: str, healths: Sequence[DeploymentHealth]
) -> dict[str, int]:
    """The rejection counts an earlier `/ml-status` saw (shared by replicas through the
    store), and this look's counts remembered for the next. Best effort: a store that is down
    costs only the trend."""
    seen: dict[str, int] = {}
    try:
        for health in healths:
            if not health.rejected:
                continue
            key = REJECTIONS_FLAG.format(cluster=cluster, deployment=health.deployment_id)
            earlier = await deps.store.get_flag(key)
            if earlier is not None and isinstance(earlier.get("rejected"), int):
                seen[health.deployment_id] = earlier["rejected"]
            await deps.store.set_flag(key, {"rejected": health.rejected, "at": deps.clock()})
    except StoreUnavailable:
        return seen
    return seen


async def status(deps: Deps, request: StatusRequest, who: Who) -> Denied | Failed | StatusReport:
    """`/ml-status`: the health of the deployments the caller may see, the worst first."""
    gateway = context.gateway(deps, request.cluster)
    if isinstance(gateway, Failed):
        return gateway
    role_map = deps.role_map()
    caller = await context.caller(deps, who)
    call = context.call_context(deps, who, "status")
    exprs = request.pattern.split(",") if request.pattern else None
    try:
        found, memory = await asyncio.gather(gateway.health(exprs, call), gateway.ml_memory(call))
    except ClusterError as exc:
        return Failed(exc.message)
    allowed = [
        (h, d)
        for h, d in found
        if authorize(role_map, caller, "status", gateway.name, [h.deployment_id]).allowed
    ]
    before = await _rejections_seen(deps, gateway.name, [h for h, _ in allowed])
    visible = [(h, assess(h, before.get(h.deployment_id)), d) for h, d in allowed]
    reverts = await timed.pending(deps, gateway.name, who, exprs)
    if request.pattern and not visible and not found and not reverts:
        return Failed(f"no deployment matches `{request.pattern}` on `{gateway.name}`")
    visible.sort(key=lambda item: (item[1].level, item[0].deployment_id))
    return StatusReport(
        gateway.name,
        request.pattern,
        tuple(visible),
        memory,
        hidden=len(found) - len(visible),
        reverts=reverts,
    )
