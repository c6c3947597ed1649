"""Propose a stop: authorize, resolve, save the pending action with its locks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from bot.app import context
from bot.app.context import Deps
from bot.app.ports import Gateway
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
)
from bot.core.stopped import RECENT_SECONDS, last_stops
from bot.core.suggest import nearest
from bot.core.timing import Window, resolve_at

NARROW_TEXT_MAX = 2000  # a button value holds at most 2,000 characters


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
        return Locked(holder, busy, who.user_id)
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


async def _narrower(
    request: StopRequest, ids: Sequence[str], policy: context.Authorizer, cluster: str
) -> str | None:
    """The command that previews only `ids` (the ones a plain stop may stop), if allowed."""
    if not ids:
        return None
    narrow = replace(request, ids=tuple(ids))
    if not (await policy.authorize("stop", cluster, ids, narrow.options())).allowed:
        return None
    text = narrow.as_text()
    return text if len(text) <= NARROW_TEXT_MAX else None


async def _suggestions(
    deps: Deps,
    gateway: Gateway,
    who: Who,
    action_id: str,
    unmatched: Sequence[str],
    policy: context.Authorizer,
) -> tuple[str, ...]:
    """For ids that matched nothing: the nearest deployment ids the caller may see, and
    whether the bot itself stopped one (then `/ml-start` brings it back)."""
    if not unmatched:
        return ()
    try:
        running = await gateway.list(None, context.call_context(deps, who, action_id))
    except ClusterError:
        running = []  # a hint is a courtesy: the answer stands without it
    visible = [
        d.deployment_id
        for d in running
        if (await policy.authorize("status", gateway.name, [d.deployment_id])).allowed
    ]
    stopped = last_stops(await deps.store.history(deps.clock() - RECENT_SECONDS), gateway.name)
    hints: list[str] = []
    for typed in unmatched:
        stop = stopped.get(typed)
        if stop is not None and typed not in visible:
            hints.append(
                f"`{typed}` was stopped by the bot (action `{stop.id}`); "
                f"`/ml-start {typed}` brings it back with its previous settings"
            )
        elif close := nearest(typed, [*visible, *stopped]):
            down = set(stopped) - set(visible)
            shown = [f"`{c}`" + (" (stopped by the bot)" if c in down else "") for c in close]
            hints.append(f"`{typed}`: did you mean {' or '.join(shown)}?")
    return tuple(hints)


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
    policy = context.authorizer(deps, who)
    pre = await policy.authorize("stop", cluster, None, options)
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
        # An id the cluster already explained (a model id, say) needs no second read.
        unexplained = [
            u
            for u in resolution.unmatched
            if not any(h.startswith(f"`{u}`") for h in resolution.hints)
        ]
        hints = await _suggestions(deps, gateway, who, action_id, unexplained, policy)
        return NothingMatched(
            request.expression, cluster, resolution.unmatched, resolution.hints + hints
        )
    if resolution.unmatched and not request.allow_no_match:
        missing = ", ".join(f"`{u}`" for u in resolution.unmatched)
        await context.record(deps, who, "resolve", "failure", error="partial match", **ctx)
        hints = await _suggestions(deps, gateway, who, action_id, resolution.unmatched, policy)
        return Failed(
            f"{missing} matched no deployment on `{cluster}`; with `--no-allow-no-match` "
            "nothing is stopped unless every id matches" + "".join(f"; {h}" for h in hints)
        )
    ids = [d.deployment_id for d in resolution.deployments]
    decision = await policy.authorize("stop", cluster, ids, options)
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
        forced = await policy.authorize("stop", cluster, ids, options | {"force"})
        await context.record(
            deps, who, "propose", "failure", error="force needed", deployments=ids, **ctx
        )
        ids_ok = [i for i in ids if i not in {d.deployment_id for d in refused}]
        return ForceNeeded(
            cluster,
            refused,
            forced.allowed,
            matched=tuple(ids),
            narrower=await _narrower(request, ids_ok, policy, cluster),
        )
    spec = StopSpec(
        expression=request.expression,
        force=request.force,
        finish_pending_work=request.finish_pending_work,
        allow_no_match=request.allow_no_match,
        reason=request.reason or who.incident_id,  # in an incident, the incident is why
    )
    rule = approvals_required(policy.role_map, "stop", cluster, ids)
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
