"""Confirm: re-check everything at the click, claim the action once, then run it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from bot.app import context, timed
from bot.app import scale as scale_uc
from bot.app.context import Deps
from bot.app.ports import (
    CallContext,
    Gateway,
)
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.impact import impact_changes
from bot.core.model import (
    ActionState,
    Approval,
    Deployment,
    Outcome,
    PendingAction,
    ScaleSpec,
    StartSpec,
    StopOutcome,
    StopSpec,
)
from bot.core.outcomes import (
    Already,
    Changed,
    ClickResult,
    Denied,
    Ended,
    Failed,
    ForceNeeded,
    Locked,
    NeedsApproval,
    Started,
    Unknown,
    Who,
)
from bot.core.policy import (
    approvals_required,
    can_approve,
)

STOP_CONCURRENCY = 4


def _fingerprint(deployments: Sequence[Deployment]) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    # What makes a preview stale: a different set, a state change, other pipelines.
    # Inference counts and allocations move all the time and are left out.
    return {d.deployment_id: (d.model_id, d.state, d.pipelines) for d in deployments}


def describe_change(old: Sequence[Deployment], new: Sequence[Deployment]) -> str | None:
    """A one-line account of what changed since the preview, or None if nothing did."""
    before, after = _fingerprint(old), _fingerprint(new)
    notes = [f"`{d}` is gone" for d in before if d not in after]
    notes += [f"`{d}` now matches too" for d in after if d not in before]
    # An inference endpoint, semantic_text mapping or pipeline that appeared since the preview.
    old_impacts = {d.deployment_id: d.impact for d in old}
    for dep in new:
        if dep.deployment_id in old_impacts:
            notes += impact_changes(dep.deployment_id, old_impacts[dep.deployment_id], dep.impact)
    if not notes and before == after:
        return None
    for dep_id in before.keys() & after.keys():
        (_, old_state, old_pipes), (_, new_state, new_pipes) = before[dep_id], after[dep_id]
        if old_state != new_state:
            notes.append(f"`{dep_id}` is now {new_state} (was {old_state})")
        if old_pipes != new_pipes:
            pipes = ", ".join(f"`{p}`" for p in new_pipes) or "none"
            notes.append(f"`{dep_id}` is now used by pipelines: {pipes}")
    return "; ".join(sorted(notes))


@context.store_down_fails
async def confirm(deps: Deps, action_id: str, who: Who) -> ClickResult:
    """The requester pressed Stop (or Start): re-check everything, then run at most once."""
    found = await context.clickable(deps, action_id, who)
    if not isinstance(found, PendingAction):
        return found
    return await recheck_and_claim(deps, found, who, who.user_id)


async def recheck_and_claim(
    deps: Deps, action: PendingAction, who: Who, actor_id: str
) -> ClickResult:
    """Freeze, role map, targets and approvals again; then move to `executing` once."""
    if frozen := await context.frozen(deps):
        return frozen
    policy = context.Authorizer(deps, action.requester_id, action.channel_id)
    spec = action.spec
    options: frozenset[str] = frozenset()
    numbers: tuple[int, ...] = ()
    if isinstance(spec, StopSpec):
        options = spec.request().options()
    elif isinstance(spec, ScaleSpec):
        options = spec.options()
        numbers = scale_uc.numbers_of(scale_uc.plans_of(spec, action.targets))
    decision = await policy.authorize(
        context.action_of(action),
        action.cluster,
        action.deployment_ids,
        options,
        allocations=numbers,
    )
    if not decision.allowed:
        await context.record(
            deps, who, "confirm", "failure", action_id=action.id, explanation=decision.explanation
        )
        return Denied(decision)
    if isinstance(spec, StopSpec):  # a start's targets are what it was asked to start
        stale = await recheck_targets(deps, action, who)
        if stale is not None:
            return stale
    if isinstance(spec, ScaleSpec):  # its before → after holds only for the settings seen
        moved_on = await scale_uc.recheck_scale(deps, action, who)
        if moved_on is not None:
            return moved_on
    # Four eyes against the current targets and the current rules, at every click.
    action = await reapprove(deps, action, who)
    if action.state is not ActionState.PROPOSED:
        return Already(action)
    if not action.approved:
        return NeedsApproval(action)
    needed = (action.required_approvals, action.approver_roles, action.approvals)
    moved = await deps.store.mutate(
        action.id,
        lambda a: (
            replace(a, state=ActionState.EXECUTING, actor_id=actor_id, started_at=deps.clock())
            # Compare-and-set: nothing about its approvals moved since the check above.
            if a.state is ActionState.PROPOSED
            and (a.required_approvals, a.approver_roles, a.approvals) == needed
            else None
        ),
    )
    claimed = await context.settled(deps, action.id, moved)
    if not isinstance(claimed, PendingAction):
        return claimed
    await context.record(
        deps,
        who,
        "confirm",
        "success",
        action_id=action.id,
        cluster=claimed.cluster,
        deployments=claimed.deployment_ids,
        kind=claimed.kind,
    )
    return Started(claimed)


async def recheck_targets(
    deps: Deps, action: PendingAction, who: Who
) -> Changed | Ended | Failed | ForceNeeded | Locked | None:
    """Re-resolve at the click; if the world moved since the preview, ask again."""
    try:
        gateway = deps.clusters.get(action.cluster)
        fresh = await gateway.resolve(
            action.spec.expression.split(","),
            context.call_context(deps, who, action.id, urgent=True),
        )
    except ClusterError as exc:
        return Failed(exc.message)
    note = describe_change(action.targets, fresh.deployments)
    if note is None:
        return None
    if not fresh.deployments:
        ended = await deps.store.transition(
            action.id,
            ActionState.PROPOSED,
            ActionState.CANCELLED,
            finished_at=deps.clock(),
        )
        if ended is not None and ended.function_execution_id:
            return Ended(ended)  # the workflow step that asked completes (with its error)
        return Failed(f"nothing to stop any more: {note}")
    refused = tuple(d for d in fresh.deployments if d.impact and d.impact.refuses)
    if refused and isinstance(action.spec, StopSpec) and not action.spec.force:
        return await _force_needed(deps, action, who, refused, note)
    now = deps.clock()
    fresh_ids = [d.deployment_id for d in fresh.deployments]
    # The new targets may fall under an approval rule the old ones did not.
    rule = approvals_required(deps.role_map(), context.action_of(action), action.cluster, fresh_ids)
    # A wildcard that matches more now must hold those deployments too before it asks.
    held = set(action.deployment_ids)
    added = [d.deployment_id for d in fresh.deployments if d.deployment_id not in held]
    holder = await deps.store.lock_more(action.id, context.lock_keys(action.cluster, added), now)
    if holder is not None:
        return Locked(holder, tuple(d for d in holder.deployment_ids if d in added))
    updated = await deps.store.mutate(
        action.id,
        lambda a: (
            replace(
                a,
                targets=fresh.deployments,
                unmatched=fresh.unmatched,
                expires_at=now + deps.expire_after,
                approvals=(),
                **context.approval_fields(rule),
            )
            if a.state is ActionState.PROPOSED
            else None
        ),
    )
    if updated is None:
        latest = await deps.store.get(action.id)
        assert latest is not None
        return Failed(f"this stop is {latest.state.value} now")
    await context.record(deps, who, "recheck", "failure", action_id=action.id, change=note)
    return Changed(updated, note)


async def _force_needed(
    deps: Deps, action: PendingAction, who: Who, refused: tuple[Deployment, ...], note: str
) -> ForceNeeded | Failed:
    """The world moved so that ES would refuse the plain stop: end it, say why instead."""
    ended = await deps.store.transition(
        action.id, ActionState.PROPOSED, ActionState.CANCELLED, finished_at=deps.clock()
    )
    if ended is None:
        latest = await deps.store.get(action.id)
        return Failed(f"this stop is {latest.state.value if latest else 'gone'} now")
    policy = context.Authorizer(deps, action.requester_id, action.channel_id)
    assert isinstance(action.spec, StopSpec)
    options = action.spec.request().options() | {"force"}
    ids = [d.deployment_id for d in refused]
    forced = await policy.authorize("stop", action.cluster, ids, options)
    await context.record(deps, who, "recheck", "failure", action_id=action.id, change=note)
    return ForceNeeded(action.cluster, refused, forced.allowed, note)


async def reapprove(deps: Deps, action: PendingAction, who: Who) -> PendingAction:
    """Recompute the approval rule now; void approvals whose approver may no longer approve."""
    role_map = deps.role_map()
    rule = approvals_required(
        role_map, context.action_of(action), action.cluster, action.deployment_ids
    )
    kept: list[Approval] = []
    for approval in action.approvals if rule else ():
        assert rule is not None
        caller = await context.caller_of(
            deps, approval.user_id, action.channel_id, approvers=rule.approvers
        )
        if approval.user_id != action.requester_id and can_approve(
            role_map, caller, rule, action.cluster
        ):
            kept.append(approval)
    fields = {**context.approval_fields(rule), "approvals": tuple(kept)}
    if all(getattr(action, k) == v for k, v in fields.items()):
        return action
    updated = await deps.store.mutate(
        action.id,
        lambda a: replace(a, **fields) if a.state is ActionState.PROPOSED else None,
    )
    if updated is None:
        latest = await deps.store.get(action.id)
        assert latest is not None
        return latest
    await context.record(
        deps,
        who,
        "reapprove",
        "success",
        action_id=action.id,
        cluster=action.cluster,
        required_approvals=updated.required_approvals,
        approvers=[a.user_id for a in updated.approvals],
    )
    return updated


@context.store_down_fails
async def run_approved(deps: Deps, action: PendingAction, who: Who) -> ClickResult:
    """Auto-run after the last approval (the approver's click), with the same checks."""
    latest = await deps.store.get(action.id)
    if latest is None:
        return Unknown(action.id)
    if latest.state is not ActionState.PROPOSED:
        return Already(latest)
    return await recheck_and_claim(deps, latest, who, who.user_id)


async def execute(deps: Deps, action: PendingAction, who: Who) -> PendingAction:
    """Run every target once; record each outcome; move to succeeded or failed."""
    gateway = deps.clusters.get(action.cluster)
    limit = asyncio.Semaphore(STOP_CONCURRENCY)
    # Calls carry the requester's identity: they asked, and run_as acts as them.
    requester = replace(who, user_id=action.requester_id, user_name=action.requester_name)
    # A timed revert is attributed to the change it undoes (X-Opaque-Id names that request).
    ctx = context.call_context(deps, requester, action.revert_of or action.id)

    async def one(dep: Deployment) -> Outcome:
        async with limit:
            outcome: Outcome
            match action.spec:
                case StartSpec():
                    outcome = await gateway.start(dep, ctx)
                case StopSpec() as spec:
                    outcome = await stop_and_verify(deps, gateway, spec, dep, ctx)
                case ScaleSpec() as scale_spec:
                    outcome = await scale_uc.scale_and_verify(deps, gateway, scale_spec, dep, ctx)
        # One event per Elasticsearch call; the action's own outcome event follows.
        await context.record(
            deps,
            who,
            f"elasticsearch.{action.kind}",
            _audit_outcome(outcome),
            action_id=action.id,
            cluster=action.cluster,
            deployments=[dep.deployment_id],
            status=outcome.status,
            message=outcome.message,
            verified=outcome.verified,
            duration_s=round(outcome.seconds, 3),
        )
        return outcome

    outcomes = tuple(await asyncio.gather(*(one(d) for d in action.targets)))
    final = final_state(outcomes)
    good = final is ActionState.SUCCEEDED
    ran = replace(action, state=final, outcomes=outcomes, finished_at=deps.clock())
    revert: PendingAction | None = None
    try:
        # A timed change's revert is saved before the change is final and named by it in the
        # same compare-and-set: a crash between the two leaves a revert, never a lost one.
        revert = await timed.prepare(deps, ran)
        linked = {"revert_id": revert.id} if revert is not None else {}
        done = await deps.store.transition(
            action.id,
            ActionState.EXECUTING,
            final,
            outcomes=outcomes,
            finished_at=ran.finished_at,
            **linked,
        )
    except StoreUnavailable:
        # The calls ran; report them. The store keeps it `executing` until recovery says unknown.
        done = None
    if done is None:  # recovery marked it unknown meanwhile; keep what we know
        done = replace(ran, revert_id=revert.id) if revert is not None else ran
    elif revert is not None:
        await timed.scheduled(deps, done, revert)
    await context.record(
        deps,
        who,
        action.kind,
        "success" if good else "unknown" if final is ActionState.UNKNOWN else "failure",
        action_id=action.id,
        cluster=action.cluster,
        deployments=action.deployment_ids,
        force=action.spec.force,
        finish_pending_work=action.spec.finish_pending_work,
        reason=action.spec.reason,
        approvers=[a.user_id for a in action.approvals],
        requester=action.requester_id,
        state=final.value,
        duration_s=round(max((o.seconds for o in outcomes), default=0.0), 3),
        message="; ".join(f"{o.deployment_id}: {o.message}" for o in outcomes),
    )
    return done


def final_state(outcomes: Sequence[Outcome]) -> ActionState:
    """Succeeded only if every target is known done; unknown if any may or may not be."""
    if any(o.unknown for o in outcomes):
        return ActionState.UNKNOWN
    if all(o.ok and o.verified is not False for o in outcomes):
        return ActionState.SUCCEEDED
    return ActionState.FAILED


def _audit_outcome(outcome: Outcome) -> str:
    if outcome.unknown:
        return "unknown"
    return "success" if outcome.ok else "failure"


async def stop_and_verify(
    deps: Deps, gateway: Gateway, spec: StopSpec, dep: Deployment, ctx: CallContext
) -> StopOutcome:
    """Stop one deployment, then check through `_stats` that it is gone."""
    outcome = await gateway.stop(
        dep,
        force=spec.force,
        finish_pending_work=spec.finish_pending_work,
        ctx=ctx,
    )
    if not outcome.ok and not outcome.unknown:
        return outcome  # Elasticsearch refused: nothing was stopped
    # Stopped, or maybe stopped (an answer that could not be read): only a read tells.
    sent = "" if outcome.ok else f"; {outcome.message}"
    try:
        check = await gateway.verify_gone(dep.deployment_id, within=deps.verify_within, ctx=ctx)
    except ClusterError as exc:
        why = outcome.message if outcome.unknown else "the stop was answered"
        return replace(
            outcome,
            ok=False,
            unknown=True,
            verified=None,
            message=f"{why}; could not check that it is gone: {exc.message}",
        )
    if check.gone:
        return replace(
            outcome, ok=True, unknown=False, message=f"stopped (verified){sent}", verified=True
        )
    answered = outcome.message if outcome.unknown else "the stop was answered"
    return replace(
        outcome,
        ok=False,
        unknown=True,
        verified=False,
        message=f"{answered}, but the deployment is still {check.state} after {check.waited:.0f} s",
    )
