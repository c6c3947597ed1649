"""Use cases: propose, approve, confirm, execute, cancel and expire stops and starts.

Knows nothing of Slack: the Slack adapter and the local shell both drive it and
render its results with `blocks`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from bot.app.ports import (
    ActionStore,
    AuditRecorder,
    CallContext,
    ClusterDirectory,
    Directory,
    Gateway,
)
from bot.core.audit import AuditEvent
from bot.core.commands import AuditRequest, FreezeRequest, ListRequest, StartRequest, StopRequest
from bot.core.errors import ClusterError
from bot.core.model import (
    ActionState,
    Approval,
    Deployment,
    MessageRef,
    PendingAction,
    Resolution,
    StopOutcome,
    StopSpec,
)
from bot.core.outcomes import (
    Already,
    Approved,
    ApproveResult,
    Changed,
    ClickResult,
    Denied,
    Ended,
    Failed,
    FreezeChanged,
    Frozen,
    Listing,
    Locked,
    NeedsApproval,
    NothingMatched,
    NotRequester,
    Proposed,
    ProposeResult,
    SelfApproval,
    Started,
    Timeline,
    Unknown,
    Who,
)
from bot.core.policy import (
    Action,
    ApprovalRule,
    Caller,
    Decision,
    RoleMap,
    approvals_required,
    authorize,
    can_approve,
)

__all__ = [
    "Already",
    "ApproveResult",
    "Approved",
    "Changed",
    "ClickResult",
    "Denied",
    "Ended",
    "Failed",
    "FreezeChanged",
    "Frozen",
    "Listing",
    "Locked",
    "NeedsApproval",
    "NotRequester",
    "NothingMatched",
    "ProposeResult",
    "Proposed",
    "SelfApproval",
    "Service",
    "Started",
    "Timeline",
    "Unknown",
    "Who",
]

log = logging.getLogger(__name__)

STOP_CONCURRENCY = 4
FREEZE_FLAG = "freeze"


def new_action_id() -> str:
    """A short, unguessable action id (also the button value)."""
    return "a" + secrets.token_hex(8)


def opaque_id(who: Who, action_id: str) -> str:
    """X-Opaque-Id so the cluster's own logs name the Slack user (and the incident)."""
    base = f"ml-chatops/{who.team_id}/{who.user_id}/{action_id}"
    return f"{base}/{who.incident_id}" if who.incident_id else base


def lock_keys(cluster: str, deployment_ids: Sequence[str]) -> list[str]:
    """One lock per deployment per cluster."""
    return [f"{cluster}/{d}" for d in deployment_ids]


def _fingerprint(deployments: Sequence[Deployment]) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    # What makes a preview stale: a different set, a state change, other pipelines.
    # Inference counts and allocations move all the time and are left out.
    return {d.deployment_id: (d.model_id, d.state, d.pipelines) for d in deployments}


def describe_change(old: Sequence[Deployment], new: Sequence[Deployment]) -> str | None:
    """A one-line account of what changed since the preview, or None if nothing did."""
    before, after = _fingerprint(old), _fingerprint(new)
    if before == after:
        return None
    notes = [f"`{d}` is gone" for d in before if d not in after]
    notes += [f"`{d}` now matches too" for d in after if d not in before]
    for dep_id in before.keys() & after.keys():
        (_, old_state, old_pipes), (_, new_state, new_pipes) = before[dep_id], after[dep_id]
        if old_state != new_state:
            notes.append(f"`{dep_id}` is now {new_state} (was {old_state})")
        if old_pipes != new_pipes:
            pipes = ", ".join(f"`{p}`" for p in new_pipes) or "none"
            notes.append(f"`{dep_id}` is now used by pipelines: {pipes}")
    return "; ".join(sorted(notes))


def _action_of(action: PendingAction) -> Action:
    return "start" if action.kind == "start" else "stop"


def _approval_fields(rule: ApprovalRule | None) -> dict[str, Any]:
    """What a pending action stores of its approval rule."""
    return {
        "required_approvals": rule.required if rule else 0,
        "approver_roles": tuple(rule.approvers) if rule else (),
        "auto_run": rule.auto_run if rule else False,
    }


class Service:
    """The core use cases, wired to the store, the clusters, the audit log and the directory."""

    def __init__(
        self,
        *,
        store: ActionStore,
        clusters: ClusterDirectory,
        role_map: Callable[[], RoleMap],
        groups: Directory,
        audit: AuditRecorder,
        expire_after: float = 600.0,
        verify_within: float = 30.0,
        config_frozen: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.role_map = role_map
        self.groups = groups
        self.audit = audit
        self.expire_after = expire_after
        self.verify_within = verify_within
        self.config_frozen = config_frozen
        self.clock = clock

    # ------------------------------------------------------------------ helpers

    async def caller(self, who: Who) -> Caller:
        """Resolve the person's user groups for the policy check."""
        return await self.groups.caller(who.user_id, who.channel_id, self.role_map().usergroups())

    async def _audit(self, who: Who, event: str, outcome: str, **fields: Any) -> None:
        await self.audit.record(
            AuditEvent(
                action=event,
                outcome=outcome,
                user_id=who.user_id,
                user_name=who.user_name,
                team_id=who.team_id,
                channel_id=who.channel_id,
                cluster=fields.pop("cluster", None),
                action_id=fields.pop("action_id", None),
                deployments=tuple(fields.pop("deployments", ())),
                extra={**fields, "incident_id": who.incident_id} if who.incident_id else fields,
            )
        )

    def _gateway(self, name: str | None) -> Gateway | Failed:
        try:
            return self.clusters.get(name)
        except ClusterError as exc:
            return Failed(exc.message)

    def _ctx(self, who: Who, action_id: str) -> CallContext:
        return CallContext(opaque_id=opaque_id(who, action_id), slack_user=who.user_id)

    async def frozen(self) -> Frozen | None:
        """The kill switch, from the store (`/ml-stop freeze`) or the config file."""
        flag = await self.store.get_flag(FREEZE_FLAG)
        if flag is not None:
            return Frozen(flag.get("by"), flag.get("since"), flag.get("reason"))
        if self.config_frozen():
            return Frozen(None, None, "`freeze: true` in the config file")
        return None

    async def _save(self, action: PendingAction, who: Who, ids: Sequence[str]) -> Proposed | Locked:
        holder = await self.store.put_exclusive(
            action, lock_keys(action.cluster, ids), self.clock()
        )
        if holder is not None:
            busy = tuple(d for d in holder.deployment_ids if d in ids)
            await self._audit(
                who,
                "propose",
                "failure",
                action_id=action.id,
                cluster=action.cluster,
                deployments=ids,
                error=f"locked by action {holder.id}",
            )
            return Locked(holder, busy)
        await self._audit(
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

    def _new_action(
        self,
        who: Who,
        action_id: str,
        cluster: str,
        spec: StopSpec,
        resolution: Resolution,
        decision: Decision,
        rule: ApprovalRule | None,
        **extra: Any,
    ) -> PendingAction:
        now = self.clock()
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
            expires_at=now + self.expire_after,
            decision=decision.explanation,
            required_approvals=rule.required if rule else 0,
            approver_roles=tuple(rule.approvers) if rule else (),
            auto_run=rule.auto_run if rule else False,
            incident_id=who.incident_id,
            **extra,
        )

    # ------------------------------------------------------------------ proposing

    async def propose(
        self, request: StopRequest, who: Who, *, execution_id: str | None = None
    ) -> ProposeResult:
        """Authorize, resolve and save a stop for confirmation.

        `execution_id` is the Workflow Builder step's function execution that asked.
        """
        if frozen := await self.frozen():
            return frozen
        gateway = self._gateway(request.cluster)
        if isinstance(gateway, Failed):
            return gateway
        cluster, options, action_id = gateway.name, request.options(), new_action_id()
        ctx = {"cluster": cluster, "action_id": action_id, "request": request.expression}
        role_map = self.role_map()
        caller = await self.caller(who)
        pre = authorize(role_map, caller, "stop", cluster, None, options)
        if not pre.allowed:
            await self._audit(who, "decision", "failure", explanation=pre.explanation, **ctx)
            return Denied(pre)
        try:
            resolution = await gateway.resolve(request.ids, self._ctx(who, action_id))
        except ClusterError as exc:
            await self._audit(who, "resolve", "failure", error=exc.message, **ctx)
            return Failed(exc.message)
        if not resolution.deployments:
            await self._audit(who, "resolve", "failure", error="nothing matched", **ctx)
            return NothingMatched(
                request.expression, cluster, resolution.unmatched, resolution.hints
            )
        if resolution.unmatched and not request.allow_no_match:
            missing = ", ".join(f"`{u}`" for u in resolution.unmatched)
            await self._audit(who, "resolve", "failure", error="partial match", **ctx)
            return Failed(
                f"{missing} matched no deployment on `{cluster}`; with `--no-allow-no-match` "
                "nothing is stopped unless every id matches"
            )
        ids = [d.deployment_id for d in resolution.deployments]
        decision = authorize(role_map, caller, "stop", cluster, ids, options)
        await self._audit(
            who,
            "decision",
            "success" if decision.allowed else "failure",
            explanation=decision.explanation,
            deployments=ids,
            **ctx,
        )
        if not decision.allowed:
            return Denied(decision)
        spec = StopSpec(
            expression=request.expression,
            force=request.force,
            finish_pending_work=request.finish_pending_work,
            allow_no_match=request.allow_no_match,
            reason=request.reason or who.incident_id,  # in an incident, the incident is why
        )
        rule = approvals_required(role_map, "stop", cluster, ids)
        action = self._new_action(
            who,
            action_id,
            cluster,
            spec,
            resolution,
            decision,
            rule,
            function_execution_id=execution_id,
        )
        return await self._save(action, who, ids)

    async def propose_start(self, request: StartRequest, who: Who) -> ProposeResult:
        """`/ml-start`: authorize and save a start of one deployment for confirmation."""
        target = Deployment(
            deployment_id=request.target_id,
            model_id=request.model_id,
            state="not deployed",
            target_allocations=request.allocations or 1,
            threads_per_allocation=request.threads or 1,
            priority=request.priority or "normal",
        )
        return await self._propose_start(
            [target], request.cluster, request.reason, who, source=None
        )

    async def propose_restart(self, stop_action_id: str, who: Who) -> ProposeResult | Unknown:
        """The result's Restart button: start what that stop stopped, with its settings."""
        stopped = await self.store.get(stop_action_id)
        if stopped is None or stopped.kind != "stop":
            return Unknown(stop_action_id)
        ok = {o.deployment_id for o in stopped.outcomes if o.ok}
        targets = [replace(d, state="stopped") for d in stopped.targets if d.deployment_id in ok]
        if not targets:
            return Failed("that stop stopped nothing, so there is nothing to restart")
        reason = f"restart after action {stopped.id}"
        return await self._propose_start(targets, stopped.cluster, reason, who, source=stopped.id)

    async def _propose_start(
        self,
        targets: Sequence[Deployment],
        cluster_name: str | None,
        reason: str | None,
        who: Who,
        *,
        source: str | None,
    ) -> ProposeResult:
        if frozen := await self.frozen():
            return frozen
        gateway = self._gateway(cluster_name)
        if isinstance(gateway, Failed):
            return gateway
        cluster, action_id = gateway.name, new_action_id()
        ids = [d.deployment_id for d in targets]
        role_map = self.role_map()
        decision = authorize(role_map, await self.caller(who), "start", cluster, ids)
        await self._audit(
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
            running = await gateway.resolve(ids, self._ctx(who, action_id))
        except ClusterError as exc:
            return Failed(exc.message)
        if running.deployments:
            listed = ", ".join(f"`{d.deployment_id}` ({d.state})" for d in running.deployments)
            return Failed(f"already deployed on `{cluster}`: {listed}; nothing to start")
        spec = StopSpec(expression=",".join(ids), reason=reason or who.incident_id)
        rule = approvals_required(role_map, "start", cluster, ids)
        resolution = Resolution(tuple(targets))
        action = self._new_action(
            who,
            action_id,
            cluster,
            spec,
            resolution,
            decision,
            rule,
            kind="start",
            source_action_id=source,
        )
        return await self._save(action, who, ids)

    async def attach_message(self, action_id: str, ref: MessageRef) -> None:
        """Remember where the preview is shown, so it can be replaced later."""
        await self.store.update(action_id, message=ref)

    async def attach_card(self, action_id: str, ref: MessageRef) -> None:
        """Remember where the approval card is, so it can be updated."""
        await self.store.update(action_id, approval_card=ref)

    async def attach_result(self, action_id: str, ref: MessageRef) -> None:
        """Remember the channel message that reports the outcome (follow-ups thread on it)."""
        await self.store.update(action_id, result_ref=ref)

    async def get(self, action_id: str) -> PendingAction | None:
        """An action by id."""
        return await self.store.get(action_id)

    # ------------------------------------------------------------------ approvals

    async def approve(self, action_id: str, who: Who) -> ApproveResult:
        """An approver clicked Approve on the in-channel card."""
        action = await self.store.get(action_id)
        if action is None:
            return Unknown(action_id)
        if expired := await self._expire_if_due(action):
            return Ended(expired)
        if action.state is not ActionState.PROPOSED or action.approved:
            return Already(action)
        if who.user_id == action.requester_id:
            await self._audit(who, "approve", "failure", action_id=action_id, error="self")
            return SelfApproval(action)
        decision = await self._may_approve(action, who)
        if not decision.allowed:
            await self._audit(
                who, "approve", "failure", action_id=action_id, explanation=decision.explanation
            )
            return Denied(decision)
        approval = Approval(who.user_id, who.user_name, self.clock())

        def add(current: PendingAction) -> PendingAction | None:
            if current.state is not ActionState.PROPOSED or current.approved:
                return None
            if any(a.user_id == who.user_id for a in current.approvals):
                return None
            return replace(current, approvals=(*current.approvals, approval))

        updated = await self.store.mutate(action_id, add)
        if updated is None:
            latest = await self.store.get(action_id)
            assert latest is not None
            return Already(latest)
        await self._audit(
            who,
            "approve",
            "success",
            action_id=action_id,
            cluster=updated.cluster,
            deployments=updated.deployment_ids,
            approvers=[a.user_id for a in updated.approvals],
        )
        return Approved(updated, who.user_id)

    async def _may_approve(self, action: PendingAction, who: Who) -> Decision:
        rule = ApprovalRule(
            approvers=list(action.approver_roles),
            actions=[_action_of(action)],
            required=max(1, action.required_approvals),
        )
        return can_approve(self.role_map(), await self.caller(who), rule, action.cluster)

    async def reject(self, action_id: str, who: Who) -> ApproveResult:
        """An approver (or the requester) clicked Reject: the action ends."""
        action = await self.store.get(action_id)
        if action is None:
            return Unknown(action_id)
        if expired := await self._expire_if_due(action):
            return Ended(expired)
        if action.state is not ActionState.PROPOSED:
            return Already(action)
        if who.user_id != action.requester_id:
            decision = await self._may_approve(action, who)
            if not decision.allowed:
                return Denied(decision)
        moved = await self.store.transition(
            action_id,
            ActionState.PROPOSED,
            ActionState.REJECTED,
            actor_id=who.user_id,
            finished_at=self.clock(),
        )
        if moved is None:
            latest = await self.store.get(action_id)
            assert latest is not None
            return Already(latest)
        await self._audit(who, "reject", "success", action_id=action_id, cluster=moved.cluster)
        return Ended(moved)

    # ------------------------------------------------------------------ clicks

    async def _expire_if_due(self, action: PendingAction) -> PendingAction | None:
        if action.state is ActionState.PROPOSED and self.clock() >= action.expires_at:
            return await self.store.transition(
                action.id, ActionState.PROPOSED, ActionState.EXPIRED, finished_at=self.clock()
            )
        return None

    async def _clickable(self, action_id: str, who: Who) -> PendingAction | ClickResult:
        action = await self.store.get(action_id)
        if action is None:
            return Unknown(action_id)
        if who.user_id != action.requester_id:
            await self._audit(who, "click", "failure", action_id=action_id, error="not requester")
            return NotRequester(action, who.user_id)
        expired = await self._expire_if_due(action)
        if expired is not None:
            await self._audit(who, "expire", "success", action_id=action_id, cluster=action.cluster)
            return Ended(expired)
        if action.state is not ActionState.PROPOSED:
            return Already(action)
        return action

    async def confirm(self, action_id: str, who: Who) -> ClickResult:
        """The requester pressed Stop (or Start): re-check everything, then run at most once."""
        found = await self._clickable(action_id, who)
        if not isinstance(found, PendingAction):
            return found
        return await self._recheck_and_claim(found, who, who.user_id)

    async def _recheck_and_claim(
        self, action: PendingAction, who: Who, actor_id: str
    ) -> ClickResult:
        if frozen := await self.frozen():
            return frozen
        caller = await self.groups.caller(
            action.requester_id, action.channel_id, self.role_map().usergroups()
        )
        options = action.spec.request().options() if action.kind == "stop" else frozenset()
        decision = authorize(
            self.role_map(),
            caller,
            _action_of(action),
            action.cluster,
            action.deployment_ids,
            options,
        )
        if not decision.allowed:
            await self._audit(
                who, "confirm", "failure", action_id=action.id, explanation=decision.explanation
            )
            return Denied(decision)
        if action.kind == "stop":
            stale = await self._recheck_targets(action, who)
            if stale is not None:
                return stale
        # Four eyes against the current targets and the current rules, at every click.
        action = await self._reapprove(action, who)
        if action.state is not ActionState.PROPOSED:
            return Already(action)
        if not action.approved:
            return NeedsApproval(action)
        needed = (action.required_approvals, action.approver_roles, action.approvals)
        moved = await self.store.mutate(
            action.id,
            lambda a: (
                replace(a, state=ActionState.EXECUTING, actor_id=actor_id, started_at=self.clock())
                # Compare-and-set: nothing about its approvals moved since the check above.
                if a.state is ActionState.PROPOSED
                and (a.required_approvals, a.approver_roles, a.approvals) == needed
                else None
            ),
        )
        if moved is None:
            latest = await self.store.get(action.id)
            assert latest is not None
            return Already(latest)
        await self._audit(
            who,
            "confirm",
            "success",
            action_id=action.id,
            cluster=moved.cluster,
            deployments=moved.deployment_ids,
            kind=moved.kind,
        )
        return Started(moved)

    async def _recheck_targets(
        self, action: PendingAction, who: Who
    ) -> Changed | Failed | Locked | None:
        """Re-resolve at the click; if the world moved since the preview, ask again."""
        try:
            gateway = self.clusters.get(action.cluster)
            fresh = await gateway.resolve(
                action.spec.expression.split(","), self._ctx(who, action.id)
            )
        except ClusterError as exc:
            return Failed(exc.message)
        note = describe_change(action.targets, fresh.deployments)
        if note is None:
            return None
        if not fresh.deployments:
            await self.store.transition(
                action.id,
                ActionState.PROPOSED,
                ActionState.CANCELLED,
                finished_at=self.clock(),
            )
            return Failed(f"nothing to stop any more: {note}")
        now = self.clock()
        fresh_ids = [d.deployment_id for d in fresh.deployments]
        # The new targets may fall under an approval rule the old ones did not.
        rule = approvals_required(self.role_map(), _action_of(action), action.cluster, fresh_ids)
        # A wildcard that matches more now must hold those deployments too before it asks.
        held = set(action.deployment_ids)
        added = [d.deployment_id for d in fresh.deployments if d.deployment_id not in held]
        holder = await self.store.lock_more(action.id, lock_keys(action.cluster, added), now)
        if holder is not None:
            return Locked(holder, tuple(d for d in holder.deployment_ids if d in added))
        updated = await self.store.mutate(
            action.id,
            lambda a: (
                replace(
                    a,
                    targets=fresh.deployments,
                    unmatched=fresh.unmatched,
                    expires_at=now + self.expire_after,
                    approvals=(),
                    **_approval_fields(rule),
                )
                if a.state is ActionState.PROPOSED
                else None
            ),
        )
        if updated is None:
            latest = await self.store.get(action.id)
            assert latest is not None
            return Failed(f"this stop is {latest.state.value} now")
        await self._audit(who, "recheck", "failure", action_id=action.id, change=note)
        return Changed(updated, note)

    async def _reapprove(self, action: PendingAction, who: Who) -> PendingAction:
        """Recompute the approval rule now; void approvals whose approver may no longer approve."""
        role_map = self.role_map()
        rule = approvals_required(
            role_map, _action_of(action), action.cluster, action.deployment_ids
        )
        kept: list[Approval] = []
        for approval in action.approvals if rule else ():
            assert rule is not None
            caller = await self.groups.caller(
                approval.user_id, action.channel_id, role_map.usergroups()
            )
            if approval.user_id != action.requester_id and can_approve(
                role_map, caller, rule, action.cluster
            ):
                kept.append(approval)
        fields = {**_approval_fields(rule), "approvals": tuple(kept)}
        if all(getattr(action, k) == v for k, v in fields.items()):
            return action
        updated = await self.store.mutate(
            action.id,
            lambda a: replace(a, **fields) if a.state is ActionState.PROPOSED else None,
        )
        if updated is None:
            latest = await self.store.get(action.id)
            assert latest is not None
            return latest
        await self._audit(
            who,
            "reapprove",
            "success",
            action_id=action.id,
            cluster=action.cluster,
            required_approvals=updated.required_approvals,
            approvers=[a.user_id for a in updated.approvals],
        )
        return updated

    async def run_approved(self, action: PendingAction, who: Who) -> ClickResult:
        """Auto-run after the last approval (the approver's click), with the same checks."""
        latest = await self.store.get(action.id)
        if latest is None:
            return Unknown(action.id)
        if latest.state is not ActionState.PROPOSED:
            return Already(latest)
        return await self._recheck_and_claim(latest, who, who.user_id)

    async def cancel(self, action_id: str, who: Who) -> ClickResult:
        """The requester clicked Cancel."""
        found = await self._clickable(action_id, who)
        if not isinstance(found, PendingAction):
            return found
        moved = await self.store.transition(
            action_id,
            ActionState.PROPOSED,
            ActionState.CANCELLED,
            actor_id=who.user_id,
            finished_at=self.clock(),
        )
        if moved is None:
            latest = await self.store.get(action_id)
            assert latest is not None
            return Already(latest)
        await self._audit(who, "cancel", "success", action_id=action_id, cluster=moved.cluster)
        return Ended(moved)

    # ------------------------------------------------------------------ running

    async def execute(self, action: PendingAction, who: Who) -> PendingAction:
        """Run every target once; record each outcome; move to succeeded or failed."""
        gateway = self.clusters.get(action.cluster)
        limit = asyncio.Semaphore(STOP_CONCURRENCY)
        # Calls carry the requester's identity: they asked, and run_as acts as them.
        requester = replace(who, user_id=action.requester_id, user_name=action.requester_name)
        ctx = self._ctx(requester, action.id)

        async def one(dep: Deployment) -> StopOutcome:
            async with limit:
                if action.kind == "start":
                    outcome = await gateway.start(dep, ctx)
                else:
                    outcome = await self._stop_and_verify(gateway, action, dep, ctx)
            # One event per Elasticsearch call; the action's own outcome event follows.
            await self._audit(
                who,
                f"elasticsearch.{action.kind}",
                "success" if outcome.ok else "failure",
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
        good = all(o.ok and o.verified is not False for o in outcomes)
        final = ActionState.SUCCEEDED if good else ActionState.FAILED
        done = await self.store.transition(
            action.id, ActionState.EXECUTING, final, outcomes=outcomes, finished_at=self.clock()
        )
        if done is None:  # recovery marked it unknown meanwhile; keep what we know
            done = replace(action, state=final, outcomes=outcomes, finished_at=self.clock())
        await self._audit(
            who,
            action.kind,
            "success" if good else "failure",
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

    async def _stop_and_verify(
        self, gateway: Gateway, action: PendingAction, dep: Deployment, ctx: CallContext
    ) -> StopOutcome:
        outcome = await gateway.stop(
            dep,
            force=action.spec.force,
            finish_pending_work=action.spec.finish_pending_work,
            ctx=ctx,
        )
        if not outcome.ok:
            return outcome
        try:
            check = await gateway.verify_gone(dep.deployment_id, within=self.verify_within, ctx=ctx)
        except ClusterError as exc:
            return replace(outcome, message=f"stopped (could not verify: {exc.message})")
        if check.gone:
            return replace(outcome, message="stopped (verified)", verified=True)
        return replace(
            outcome,
            message=(
                f"stop answered but the deployment is still {check.state} "
                f"after {check.waited:.0f} s"
            ),
            verified=False,
        )

    async def expire_due(self) -> list[PendingAction]:
        """Expire every proposed action past its expiry; returns those this call expired."""
        expired = []
        for action in await self.store.due(self.clock()):
            moved = await self._expire_if_due(action)
            if moved is None:
                continue
            expired.append(moved)
            requester = Who(
                moved.requester_id,
                moved.requester_name,
                moved.team_id,
                moved.channel_id,
                incident_id=moved.incident_id,
            )
            await self._audit(
                requester,
                "expire",
                "success",
                action_id=moved.id,
                cluster=moved.cluster,
                deployments=moved.deployment_ids,
            )
        return expired

    async def record_command(self, who: Who, command: str, text: str) -> None:
        """Every slash command is an audit event, whatever comes of it."""
        await self._audit(who, "command", "success", command=command, text=text)

    # ------------------------------------------------------------------ kill switch, listing

    async def freeze(self, request: FreezeRequest, who: Who) -> Denied | FreezeChanged:
        """`/ml-stop freeze|unfreeze`: only a role granted `freeze` may."""
        caller = await self.caller(who)
        decision = authorize(self.role_map(), caller, "freeze", self.clusters.default, None)
        if not decision.allowed:
            await self._audit(who, "freeze", "failure", explanation=decision.explanation)
            return Denied(decision)
        value = None
        if request.freeze:
            value = {"by": who.user_id, "since": self.clock(), "reason": request.reason}
        await self.store.set_flag(FREEZE_FLAG, value)
        await self._audit(
            who, "freeze" if request.freeze else "unfreeze", "success", reason=request.reason
        )
        return FreezeChanged(request.freeze, who.user_id, request.reason)

    async def timeline(self, request: AuditRequest, who: Who) -> Denied | Timeline:
        """`/ml-audit`: the actions of this channel, or of one incident, since a moment."""
        caller = await self.caller(who)
        decision = authorize(self.role_map(), caller, "status", self.clusters.default, None)
        if not decision.allowed:
            return Denied(decision)
        found = await self.store.history(self.clock() - request.since_seconds)
        if request.incident:
            chosen = [a for a in found if a.incident_id == request.incident]
            scope = f"for incident {request.incident}"
        else:
            chosen = [a for a in found if a.channel_id == who.channel_id]
            scope = "in this channel"
        hours = request.since_seconds / 3600
        scope += f" in the last {hours:g} h" if hours < 48 else f" in the last {hours / 24:g} days"
        await self._audit(who, "timeline", "success", count=len(chosen))
        return Timeline(tuple(chosen), scope, request.markdown)

    async def list_deployments(self, request: ListRequest, who: Who) -> Denied | Failed | Listing:
        """The deployments the caller may see, with their state."""
        gateway = self._gateway(request.cluster)
        if isinstance(gateway, Failed):
            return gateway
        role_map = self.role_map()
        caller = await self.caller(who)
        pre = authorize(role_map, caller, "status", gateway.name, None)
        if not pre.allowed:
            return Denied(pre)
        try:
            found = await gateway.list(request.pattern, self._ctx(who, "list"))
        except ClusterError as exc:
            return Failed(exc.message)
        visible = tuple(
            d
            for d in found
            if authorize(role_map, caller, "status", gateway.name, [d.deployment_id]).allowed
        )
        return Listing(gateway.name, request.pattern, visible, hidden=len(found) - len(visible))
