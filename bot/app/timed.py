"""Timed changes (issue 22): a change that reverts itself, as a pending action of its own.

A `/ml-stop <id> --for 30m` carries its window on the stop (so the preview shows it and the
approvals cover it). When the stop has run, `schedule` saves the revert: a restart with the
captured settings, in state `scheduled`, whose `expires_at` is its due time. The sweep that
expires previews finds due reverts through the store's `due` too; `run_due` claims each with
the same compare-and-set that claims a click (scheduled → executing, with the owner's lease),
so one replica runs it once, and a replica that dies mid-run leaves it `unknown` for recovery.
No timers live in memory. Buttons (Revert now, Extend, Keep) carry the due time they were
shown with: a click against a due time that moved loses, so of two racing clicks one wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase

from bot.app import context
from bot.app import start as start_uc
from bot.app.context import Deps
from bot.core.commands.tokens import SCALE, START
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.model import (
    ActionSpec,
    ActionState,
    Deployment,
    MessageRef,
    PendingAction,
    ScaleSpec,
    StartSpec,
    StopSpec,
)
from bot.core.outcomes import (
    Already,
    Denied,
    Failed,
    Frozen,
    Started,
    Unknown,
    Who,
)
from bot.core.policy import Action, authorize
from bot.core.scale import ScalePlan, Settings, plan_scale
from bot.core.timing import duration_text, human

log = logging.getLogger(__name__)

LATE_AFTER = 60.0  # a revert run this long after its due time says how late it is
EXTENSIONS = (1800, 3600, 7200)  # the Extend buttons: +30 min, +1 h, +2 h


@dataclass(frozen=True)
class Rescheduled:
    """A click moved a revert: extended (new due time) or kept (cancelled)."""

    revert: PendingAction
    change: str  # "extended by 30 min", "kept: it will not revert"


@dataclass(frozen=True)
class HeadsUp:
    """A revert falls due soon; this call won the right to say so."""

    revert: PendingAction


@dataclass(frozen=True)
class NotRun:
    """A due revert the sweep did not run, and why (frozen, the world moved, unreachable)."""

    revert: PendingAction
    reason: str
    final: bool  # True: the revert ended (nothing left to do); False: waits for a click
    # Previews offered instead, as command text a person could type: (command, text).
    offers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Due:
    """A due revert this replica claimed: run it (`late` seconds after its due time)."""

    revert: PendingAction
    late: float


SweepItem = HeadsUp | NotRun | Due


def requester(action: PendingAction) -> Who:
    """The person a change (and its revert) belongs to: the revert runs as them."""
    return Who(
        action.requester_id,
        action.requester_name,
        action.team_id,
        action.channel_id,
        incident_id=action.incident_id,
    )


def _revert_spec(change: PendingAction, targets: tuple[Deployment, ...]) -> ActionSpec | None:
    """A stop's revert restarts with the captured settings; a scale's scales back to them."""
    ids = ",".join(d.deployment_id for d in targets)
    why = f"timed revert of {change.id}" + (f": {change.spec.reason}" if change.spec.reason else "")
    if isinstance(change.spec, StopSpec):
        return StartSpec(expression=ids, reason=why)
    if isinstance(change.spec, ScaleSpec):
        per_target = tuple((d.deployment_id, Settings.of(d).revert()) for d in targets)
        return ScaleSpec(ids, per_target[0][1], reason=why, per_target=per_target)
    return None


def revert_of(deps: Deps, change: PendingAction, now: float) -> PendingAction | None:
    """The scheduled revert of a timed change that ran: restart what a stop stopped, or
    scale back what a scale changed, to the settings captured before it."""
    due = change.revert_due(now)
    if due is None:
        return None
    ok = {o.deployment_id for o in change.outcomes if o.ok}
    targets = tuple(d for d in change.targets if d.deployment_id in ok)
    if isinstance(change.spec, StopSpec):
        targets = tuple(replace(d, state="stopped") for d in targets)
    spec = _revert_spec(change, targets) if targets else None
    if spec is None:
        return None
    return PendingAction(
        id=context.new_action_id(),
        requester_id=change.requester_id,
        requester_name=change.requester_name,
        team_id=change.team_id,
        channel_id=change.channel_id,
        cluster=change.cluster,
        spec=spec,
        targets=targets,
        created_at=now,
        expires_at=max(due, now),
        decision=change.decision,
        state=ActionState.SCHEDULED,
        actor_id=change.actor_id,
        approvals=change.approvals,
        required_approvals=change.required_approvals,
        approver_roles=change.approver_roles,
        source_action_id=change.id,  # its reports go in the change's thread
        incident_id=change.incident_id,
        revert_of=change.id,
    )


async def prepare(deps: Deps, ran: PendingAction) -> PendingAction | None:
    """Before a timed change that ran is saved as final: save its revert (None: nothing to
    revert). Saved first, so no crash can leave a finished change without its revert; only
    the execution that claimed the change gets here, so it is saved once."""
    if not ran.is_timed or ran.revert_id is not None:
        return None
    revert = revert_of(deps, ran, ran.finished_at or deps.clock())
    if revert is not None:
        await deps.store.put(revert)
    return revert


async def scheduled(deps: Deps, change: PendingAction, revert: PendingAction) -> None:
    """Audit a revert saved with its change (`prepare`, then the change's final save)."""
    await context.record(
        deps,
        requester(change),
        "revert.schedule",
        "success",
        action_id=revert.id,
        cluster=revert.cluster,
        deployments=revert.deployment_ids,
        revert_of=change.id,
        due_at=revert.expires_at,
    )


# ---- the sweep ------------------------------------------------------------------------


async def sweep(deps: Deps, heads_up: float = 600.0) -> list[SweepItem]:
    """Heads-ups for reverts due within `heads_up` s, and the due ones claimed (or not run)."""
    now = deps.clock()
    items: list[SweepItem] = []
    for revert in await deps.store.due(now + heads_up):
        if revert.state is not ActionState.SCHEDULED or revert.held is not None:
            continue
        if revert.expires_at > now:
            warned = await _warn_once(deps, revert)
            if warned is not None:
                items.append(HeadsUp(warned))
            continue
        items.append(await _due(deps, revert, now))
    return [i for i in items if not (isinstance(i, NotRun) and i.reason == "")]


async def _warn_once(deps: Deps, revert: PendingAction) -> PendingAction | None:
    due = revert.expires_at
    return await deps.store.mutate(
        revert.id,
        lambda a: (
            replace(a, heads_up_at=deps.clock())
            if a.state is ActionState.SCHEDULED and a.heads_up_at is None and a.expires_at == due
            else None
        ),
    )


async def _due(deps: Deps, revert: PendingAction, now: float) -> SweepItem:
    """Frozen: hold it. The world moved: say what was found. Else claim it to run."""
    if frozen := await context.frozen(deps):
        why = f"the bot is frozen ({frozen.reason or 'no reason given'})"
        why += "; press Revert now after unfreezing"
        return await _hold(deps, revert, why)
    checked = await recheck(deps, revert)
    if isinstance(checked, NotRun):
        return checked
    claimed = await claim(deps, checked, revert.expires_at, actor="timer")
    if claimed is None:
        return NotRun(revert, "", final=False)  # another replica (or a click) took it
    return Due(claimed, late=now - revert.expires_at)


async def _hold(deps: Deps, revert: PendingAction, why: str) -> NotRun:
    """Leave a due revert for a click, once (the replica that holds it tells)."""
    held = await deps.store.mutate(
        revert.id,
        lambda a: (
            replace(a, held=why) if a.state is ActionState.SCHEDULED and a.held is None else None
        ),
    )
    if held is None:
        return NotRun(revert, "", final=False)
    await context.record(
        deps,
        requester(revert),
        "revert.hold",
        "failure",
        action_id=revert.id,
        cluster=revert.cluster,
        revert_of=revert.revert_of,
        reason=why,
    )
    return NotRun(held, why, final=False)


async def recheck(deps: Deps, revert: PendingAction) -> PendingAction | NotRun:
    """Re-read the deployments before a revert; if the world moved, say what was found."""
    if isinstance(revert.spec, ScaleSpec):
        return await _recheck_scale(deps, revert)
    return await _recheck_restart(deps, revert)


async def _recheck_scale(deps: Deps, revert: PendingAction) -> PendingAction | NotRun:
    """Scale back only deployments that still have what the timed scale set."""
    change = await deps.store.get(revert.revert_of or "")
    try:
        gateway = deps.clusters.get(revert.cluster)
        ctx = context.call_context(deps, requester(revert), revert.revert_of or revert.id)
        fresh = await gateway.resolve(list(revert.deployment_ids), ctx)
    except ClusterError as exc:
        return await _hold(deps, revert, f"could not read the cluster: {exc.message}; press Retry")
    now = {d.deployment_id: d for d in fresh.deployments}
    found: list[str] = []
    offers: list[tuple[str, str]] = []
    for before in revert.targets:
        current = now.get(before.deployment_id)
        expected = _after_change(change, before)
        if current is None:
            found.append(f"`{before.deployment_id}` is gone (deleted or stopped)")
        elif expected is not None and Settings.of(current).text() != expected:
            found.append(
                f"`{before.deployment_id}` now has {Settings.of(current).text()} "
                f"(the timed scale set {expected}): someone scaled it since"
            )
            offers.append(_scale_back(revert, before))
    if found:
        why = "; ".join(found) + "; nothing was scaled back"
        why += ": preview the scale back with its button" if offers else ""
        return await _end(deps, revert, why, tuple(offers))
    return replace(revert, targets=tuple(now[d.deployment_id] for d in revert.targets))


def _after_change(change: PendingAction | None, before: Deployment) -> str | None:
    """The settings the timed scale left `before` with, as text (None: cannot tell)."""
    if change is None or not isinstance(change.spec, ScaleSpec):
        return None
    plan = plan_scale(before, change.spec.change_for(before.deployment_id))
    return plan.after.text() if isinstance(plan, ScalePlan) else None


async def _recheck_restart(deps: Deps, revert: PendingAction) -> PendingAction | NotRun:
    """Restart only what is still stopped and still has its model."""
    try:
        gateway = deps.clusters.get(revert.cluster)
        ctx = context.call_context(deps, requester(revert), revert.revert_of or revert.id)
        running, plans = await gateway.plan_starts(revert.targets, ctx)
    except ClusterError as exc:
        return await _hold(deps, revert, f"could not read the cluster: {exc.message}; press Retry")
    found: list[str] = []
    run_ids = {d.deployment_id: d.state for d in running}
    for dep in revert.targets:
        if dep.deployment_id in run_ids:
            found.append(
                f"`{dep.deployment_id}` is {run_ids[dep.deployment_id]} already"
                " (someone started it)"
            )
        elif not plans[dep.deployment_id].model_known:
            found.append(f"the model `{dep.model_id}` of `{dep.deployment_id}` is gone")
    left = [
        start_uc.follow(d, plans[d.deployment_id], typed=True)
        for d in revert.targets
        if d.deployment_id not in run_ids and plans[d.deployment_id].model_known
    ]
    if not found:
        return replace(revert, targets=tuple(left))
    note = "; ".join(found)
    # The world moved: restart nothing blindly; offer previews instead (a restart for what
    # is still stopped, a scale back to the captured settings for what was started by hand).
    offers = [(START, f"{d.deployment_id} --cluster {revert.cluster}") for d in left]
    offers += [_scale_back(revert, d) for d in revert.targets if d.deployment_id in run_ids]
    if left:
        return await _end(
            deps,
            revert,
            f"{note}; nothing was restarted: preview the rest with its button",
            tuple(offers),
        )
    if offers:
        return await _end(
            deps,
            revert,
            f"{note}; nothing was changed: preview a scale back to the settings it had"
            " with its button",
            tuple(offers),
        )
    return await _end(deps, revert, f"{note}; nothing to revert")


def _scale_back(revert: PendingAction, before: Deployment) -> tuple[str, str]:
    """The `/ml-scale` text that brings `before` back to its captured settings."""
    change = Settings.of(before).revert().text()
    return (SCALE, f"{before.deployment_id} {change} --cluster {revert.cluster}")


async def _end(
    deps: Deps, revert: PendingAction, why: str, offers: tuple[tuple[str, str], ...] = ()
) -> NotRun:
    ended = await deps.store.mutate(
        revert.id,
        lambda a: (
            replace(
                a,
                state=ActionState.CANCELLED,
                finished_at=deps.clock(),
                held=why,
                revert_log=(*a.revert_log, f"not run: {why}"),
            )
            if a.state is ActionState.SCHEDULED
            else None
        ),
    )
    if ended is None:
        return NotRun(revert, "", final=True)
    await context.record(
        deps,
        requester(revert),
        "revert",
        "failure",
        action_id=revert.id,
        cluster=revert.cluster,
        revert_of=revert.revert_of,
        reason=why,
    )
    return NotRun(ended, why, final=True, offers=offers)


async def claim(
    deps: Deps, revert: PendingAction, due: float, *, actor: str
) -> PendingAction | None:
    """scheduled → executing once, if its due time is still `due` (the owner's lease starts)."""
    now = deps.clock()
    return await deps.store.mutate(
        revert.id,
        _while_due(
            due,
            lambda a: replace(
                a,
                state=ActionState.EXECUTING,
                targets=revert.targets,
                started_at=now,
                actor_id=actor if actor != "timer" else a.actor_id,
                held=None,
            ),
        ),
    )


def _while_due(
    due: float, change: Callable[[PendingAction], PendingAction]
) -> Callable[[PendingAction], PendingAction | None]:
    """`change` for the store's compare-and-set, only while the revert is still scheduled at
    `due` (the time the sweep read or a button showed): of two racing clicks, one wins."""
    return lambda a: (
        change(a) if a.state is ActionState.SCHEDULED and int(a.expires_at) == int(due) else None
    )


# ---- the buttons --------------------------------------------------------------------------


async def _clickable(
    deps: Deps, revert_id: str, who: Who
) -> PendingAction | Unknown | Denied | Already:
    """The revert if `who` may act on it: the role map's action of the change it undoes."""
    revert = await deps.store.get(revert_id)
    if revert is None or revert.revert_of is None:
        return Unknown(revert_id)
    caller = await context.caller(deps, who)
    # The role map's action of the change it undoes: `stop` for a timed stop, `scale` (with
    # the numbers it scales back to) for a timed scale.
    action: Action = "stop"
    options: frozenset[str] = frozenset()
    numbers: tuple[int, ...] = ()
    if isinstance(revert.spec, ScaleSpec):
        action, options = "scale", revert.spec.options()
        numbers = tuple(sorted({n for d in revert.targets for n in Settings.of(d).numbers()}))
    decision = authorize(
        deps.role_map(),
        caller,
        action,
        revert.cluster,
        revert.deployment_ids,
        options,
        allocations=numbers,
    )
    if not decision.allowed:
        await context.record(
            deps,
            who,
            "revert.click",
            "failure",
            action_id=revert_id,
            explanation=decision.explanation,
        )
        return Denied(decision)
    if revert.state is not ActionState.SCHEDULED:
        return Already(revert)
    return revert


@context.store_down_fails
async def revert_now(
    deps: Deps, revert_id: str, shown: str, who: Who
) -> Started | Frozen | Failed | Already | Unknown | Denied:
    """Revert now (or Retry): the same checks as the sweep, claimed against the due time shown.

    `shown` is the due time the button was drawn with, or `retry` (a failed revert's button).
    """
    if shown == "retry":
        retried = await _retry(deps, revert_id, who)
        if not isinstance(retried, PendingAction):
            return retried
        revert_id, shown = retried.id, str(int(retried.expires_at))
    found = await _clickable(deps, revert_id, who)
    if not isinstance(found, PendingAction):
        return found
    if frozen := await context.frozen(deps):
        return frozen
    if not shown.isdigit() or int(found.expires_at) != int(shown):
        return Already(found)
    shown_due = int(shown)
    checked = await recheck(deps, found)
    if isinstance(checked, NotRun):
        return Failed(checked.reason or "this revert moved meanwhile")
    claimed = await context.settled(
        deps, revert_id, await claim(deps, checked, shown_due, actor=who.user_id)
    )
    if not isinstance(claimed, PendingAction):
        return claimed
    await context.record(
        deps,
        who,
        "revert.now",
        "success",
        action_id=revert_id,
        cluster=claimed.cluster,
        deployments=claimed.deployment_ids,
        revert_of=claimed.revert_of,
    )
    return Started(claimed)


async def _retry(deps: Deps, revert_id: str, who: Who) -> PendingAction | Unknown | Already:
    """A failed revert's Retry: a fresh revert of the same targets, due now, claimed once."""
    failed = await deps.store.get(revert_id)
    if failed is None or failed.revert_of is None:
        return Unknown(revert_id)
    if failed.state is not ActionState.FAILED:
        return Already(failed)
    retried_by = f"retry-{failed.id}"
    if await deps.store.seen(f"revert-retry:{failed.id}:{len(failed.revert_log)}", deps.revert_max):
        return Already(failed)  # someone pressed Retry first
    now = deps.clock()
    fresh = replace(
        failed,
        id=context.new_action_id(),
        state=ActionState.SCHEDULED,
        outcomes=(),
        created_at=now,
        expires_at=now,
        started_at=None,
        finished_at=None,
        held=None,
        revert_log=(*failed.revert_log, f"retried by <@{who.user_id}> ({retried_by})"),
        message=MessageRef(),
        result_ref=None,
    )
    await deps.store.put(fresh)
    return fresh


@context.store_down_fails
async def extend(
    deps: Deps, revert_id: str, shown_due: int, seconds: int, who: Who
) -> Rescheduled | Failed | Already | Unknown | Denied:
    """Extend: the due time moves later by `seconds`, if it is still the one shown."""
    found = await _clickable(deps, revert_id, who)
    if not isinstance(found, PendingAction):
        return found
    if seconds not in EXTENSIONS:
        return Failed(f"an extension is one of {', '.join(duration_text(s) for s in EXTENSIONS)}")
    new_due = found.expires_at + seconds
    if new_due - deps.clock() > deps.revert_max:
        return Failed(f"that would be more than {human(deps.revert_max)} away, the longest window")
    note = f"extended by {human(seconds)} by <@{who.user_id}>"
    extended = _while_due(
        shown_due,
        lambda a: replace(
            a,
            expires_at=a.expires_at + seconds,
            heads_up_at=None,
            held=None,
            revert_log=(*a.revert_log, note),
        ),
    )
    moved = await context.settled(deps, revert_id, await deps.store.mutate(revert_id, extended))
    if not isinstance(moved, PendingAction):
        return moved
    await context.record(
        deps,
        who,
        "revert.extend",
        "success",
        action_id=revert_id,
        cluster=moved.cluster,
        revert_of=moved.revert_of,
        seconds=seconds,
        due_at=moved.expires_at,
    )
    return Rescheduled(moved, f"extended by {human(seconds)}")


@context.store_down_fails
async def keep(
    deps: Deps, revert_id: str, shown_due: int, who: Who
) -> Rescheduled | Failed | Already | Unknown | Denied:
    """Keep: the change stays; the revert is cancelled (if its due time is the one shown)."""
    found = await _clickable(deps, revert_id, who)
    if not isinstance(found, PendingAction):
        return found
    note = f"kept by <@{who.user_id}>: it will not revert"
    kept = _while_due(
        shown_due,
        lambda a: replace(
            a,
            state=ActionState.CANCELLED,
            actor_id=who.user_id,
            finished_at=deps.clock(),
            revert_log=(*a.revert_log, note),
        ),
    )
    moved = await context.settled(deps, revert_id, await deps.store.mutate(revert_id, kept))
    if not isinstance(moved, PendingAction):
        return moved
    await context.record(
        deps,
        who,
        "revert.keep",
        "success",
        action_id=revert_id,
        cluster=moved.cluster,
        revert_of=moved.revert_of,
    )
    return Rescheduled(moved, "kept: it will not revert")


async def pending(
    deps: Deps, cluster: str, who: Who, patterns: Sequence[str] | None = None
) -> tuple[PendingAction, ...]:
    """Scheduled reverts on `cluster` whose deployments `who` may see (and `patterns` match),
    soonest first (for `/ml-status` and `/ml-deployments`)."""
    try:
        waiting = await deps.store.due(float("inf"))
    except StoreUnavailable:  # a read-only listing still answers; only the reverts are missing
        return ()
    role_map, caller = deps.role_map(), await context.caller(deps, who)
    reverts = [
        a
        for a in waiting
        if a.state is ActionState.SCHEDULED
        and a.cluster == cluster
        and (not patterns or any(fnmatchcase(d, p) for d in a.deployment_ids for p in patterns))
        and authorize(role_map, caller, "status", cluster, a.deployment_ids).allowed
    ]
    return tuple(sorted(reverts, key=lambda a: a.expires_at))
