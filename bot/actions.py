"""Use cases: propose, confirm, execute, cancel, expire a stop; list deployments.

Knows nothing of Slack: the Slack adapter and the local shell both drive it and
render its results with `blocks`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.audit import AuditEvent, AuditLog
from bot.commands import ListRequest, StopRequest
from bot.elastic import ClusterGateway, Clusters, ElasticError
from bot.model import ActionState, Deployment, MessageRef, PendingAction, StopOutcome, StopSpec
from bot.policy import Caller, Decision, RoleMap, authorize
from bot.store import ActionStore
from bot.usergroups import UsergroupResolver

log = logging.getLogger(__name__)

STOP_CONCURRENCY = 4


@dataclass(frozen=True)
class Who:
    """The Slack person (or shell user) behind a command or click."""

    user_id: str
    user_name: str
    team_id: str
    channel_id: str


@dataclass(frozen=True)
class Denied:
    """The role map said no."""

    decision: Decision


@dataclass(frozen=True)
class Failed:
    """Something outside the role map went wrong; nothing was changed."""

    message: str


@dataclass(frozen=True)
class NothingMatched:
    """The id expression matched no deployment: nothing will be stopped."""

    expression: str
    cluster: str
    unmatched: tuple[str, ...]
    hints: tuple[str, ...]


@dataclass(frozen=True)
class Proposed:
    """A preview is ready to show, with its pending action saved."""

    action: PendingAction


@dataclass(frozen=True)
class Listing:
    """The read-only deployments table."""

    cluster: str
    pattern: str | None
    deployments: tuple[Deployment, ...]
    hidden: int = 0


@dataclass(frozen=True)
class NotRequester:
    """Someone other than the requester clicked."""

    action: PendingAction
    clicker_id: str


@dataclass(frozen=True)
class Already:
    """The action is no longer waiting for a click (running, finished, expired)."""

    action: PendingAction


@dataclass(frozen=True)
class Unknown:
    """No pending action has that id."""

    action_id: str


@dataclass(frozen=True)
class Started:
    """This click won the move to `executing`; run `execute()` next."""

    action: PendingAction


@dataclass(frozen=True)
class Ended:
    """The action reached a final state by this call (cancelled or expired)."""

    action: PendingAction


ProposeResult = Denied | Failed | NothingMatched | Proposed
ClickResult = Denied | NotRequester | Already | Unknown | Started | Ended


def new_action_id() -> str:
    """A short, unguessable action id (also the button value)."""
    return "a" + secrets.token_hex(8)


def opaque_id(who: Who, action_id: str) -> str:
    """X-Opaque-Id so the cluster's own logs name the Slack user."""
    return f"ml-chatops/{who.team_id}/{who.user_id}/{action_id}"


class Service:
    """The core use cases, wired to the store, the clusters, the audit log and the directory."""

    def __init__(
        self,
        *,
        store: ActionStore,
        clusters: Clusters,
        role_map: Callable[[], RoleMap],
        groups: UsergroupResolver,
        audit: AuditLog,
        expire_after: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.role_map = role_map
        self.groups = groups
        self.audit = audit
        self.expire_after = expire_after
        self.clock = clock

    async def caller(self, who: Who) -> Caller:
        """Resolve the person's user groups for the policy check."""
        return await self.groups.caller(who.user_id, who.channel_id, self.role_map().usergroups())

    async def _audit(self, who: Who, action: str, outcome: str, **fields: object) -> None:
        await self.audit.record(
            AuditEvent(
                action=action,
                outcome=outcome,
                user_id=who.user_id,
                user_name=who.user_name,
                team_id=who.team_id,
                channel_id=who.channel_id,
                cluster=fields.pop("cluster", None),  # type: ignore[arg-type]
                action_id=fields.pop("action_id", None),  # type: ignore[arg-type]
                deployments=tuple(fields.pop("deployments", ())),  # type: ignore[arg-type]
                extra=dict(fields),
            )
        )

    def _gateway(self, name: str | None) -> ClusterGateway | Failed:
        try:
            return self.clusters.get(name)
        except ElasticError as exc:
            return Failed(exc.message)

    async def propose(self, request: StopRequest, who: Who) -> ProposeResult:
        """Authorize, resolve and save a stop for confirmation."""
        gateway = self._gateway(request.cluster)
        if isinstance(gateway, Failed):
            return gateway
        cluster = gateway.name
        options = request.options()
        action_id = new_action_id()
        ctx = {"cluster": cluster, "action_id": action_id, "request": request.expression}
        role_map = self.role_map()
        caller = await self.caller(who)
        pre = authorize(role_map, caller, "stop", cluster, None, options)
        if not pre.allowed:
            await self._audit(who, "decision", "failure", explanation=pre.explanation, **ctx)
            return Denied(pre)
        try:
            resolution = await gateway.resolve(request.ids, opaque_id(who, action_id))
        except ElasticError as exc:
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
        now = self.clock()
        action = PendingAction(
            id=action_id,
            requester_id=who.user_id,
            requester_name=who.user_name,
            team_id=who.team_id,
            channel_id=who.channel_id,
            cluster=cluster,
            spec=StopSpec(
                expression=request.expression,
                force=request.force,
                finish_pending_work=request.finish_pending_work,
                allow_no_match=request.allow_no_match,
                reason=request.reason,
            ),
            targets=resolution.deployments,
            unmatched=resolution.unmatched,
            created_at=now,
            expires_at=now + self.expire_after,
            decision=decision.explanation,
        )
        await self.store.put(action)
        await self._audit(who, "propose", "success", deployments=ids, **ctx)
        return Proposed(action)

    async def attach_message(self, action_id: str, ref: MessageRef) -> None:
        """Remember where the preview is shown, so it can be replaced later."""
        await self.store.update(action_id, message=ref)

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
        """The requester clicked Stop: re-check the role map, then win `executing` at most once."""
        found = await self._clickable(action_id, who)
        if not isinstance(found, PendingAction):
            return found
        caller = await self.caller(who)
        options = _options_of(found.spec)
        decision = authorize(
            self.role_map(), caller, "stop", found.cluster, found.deployment_ids, options
        )
        if not decision.allowed:
            await self._audit(
                who, "confirm", "failure", action_id=action_id, explanation=decision.explanation
            )
            return Denied(decision)
        moved = await self.store.transition(
            action_id, ActionState.PROPOSED, ActionState.EXECUTING, actor_id=who.user_id
        )
        if moved is None:
            latest = await self.store.get(action_id)
            assert latest is not None
            return Already(latest)
        await self._audit(
            who,
            "confirm",
            "success",
            action_id=action_id,
            cluster=moved.cluster,
            deployments=moved.deployment_ids,
        )
        return Started(moved)

    async def execute(self, action: PendingAction, who: Who) -> PendingAction:
        """Stop every target once; record each outcome; move to succeeded or failed."""
        gateway = self.clusters.get(action.cluster)
        limit = asyncio.Semaphore(STOP_CONCURRENCY)

        async def stop_one(dep: Deployment) -> StopOutcome:
            async with limit:
                outcome = await gateway.stop(
                    dep,
                    force=action.spec.force,
                    finish_pending_work=action.spec.finish_pending_work,
                    opaque_id=opaque_id(who, action.id),
                )
            await self._audit(
                who,
                "stop",
                "success" if outcome.ok else "failure",
                action_id=action.id,
                cluster=action.cluster,
                deployments=[dep.deployment_id],
                force=action.spec.force,
                finish_pending_work=action.spec.finish_pending_work,
                reason=action.spec.reason,
                status=outcome.status,
                message=outcome.message,
                duration_s=round(outcome.seconds, 3),
            )
            return outcome

        outcomes = tuple(await asyncio.gather(*(stop_one(d) for d in action.targets)))
        final = ActionState.SUCCEEDED if all(o.ok for o in outcomes) else ActionState.FAILED
        done = await self.store.transition(
            action.id, ActionState.EXECUTING, final, outcomes=outcomes, finished_at=self.clock()
        )
        if done is None:  # only possible if the store was tampered with; keep what we know
            done = replace(action, state=final, outcomes=outcomes, finished_at=self.clock())
        return done

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

    async def expire_due(self) -> list[PendingAction]:
        """Expire every proposed action past its expiry; returns those this call expired."""
        expired = []
        for action in await self.store.due(self.clock()):
            moved = await self._expire_if_due(action)
            if moved is not None:
                expired.append(moved)
        return expired

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
            found = await gateway.list(request.pattern, opaque_id(who, "list"))
        except ElasticError as exc:
            return Failed(exc.message)
        visible = tuple(
            d
            for d in found
            if authorize(role_map, caller, "status", gateway.name, [d.deployment_id]).allowed
        )
        return Listing(gateway.name, request.pattern, visible, hidden=len(found) - len(visible))


def _options_of(spec: StopSpec) -> frozenset[str]:
    return StopRequest(
        ids=tuple(spec.expression.split(",")),
        force=spec.force,
        finish_pending_work=spec.finish_pending_work,
        allow_no_match=spec.allow_no_match,
        reason=spec.reason,
    ).options()
