"""The use cases' shared context: their collaborators (`Deps`) and the checks they share."""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from bot.app.ports import (
    ActionStore,
    AuditRecorder,
    CallContext,
    ClusterDirectory,
    Directory,
    Gateway,
)
from bot.core.audit import AuditEvent
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.model import (
    ActionState,
    PendingAction,
)
from bot.core.outcomes import (
    Already,
    ClickResult,
    Ended,
    Failed,
    Frozen,
    NotRequester,
    Unknown,
    Who,
)
from bot.core.policy import (
    Action,
    ApprovalRule,
    Caller,
    Decision,
    RoleMap,
    authorize,
    groups_that_matter,
)
from bot.core.text import cap

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

FREEZE_FLAG = "freeze"
AUDIT_TEXT_MAX = 2000  # characters of command text an audit event keeps


@dataclass(frozen=True)
class Deps:
    """What every use case may use: the ports, the current rules and the clock."""

    store: ActionStore
    clusters: ClusterDirectory
    role_map: Callable[[], RoleMap]  # re-read at each call: the config file may change
    groups: Directory
    audit: AuditRecorder
    expire_after: float = 600.0
    verify_within: float = 30.0
    config_frozen: Callable[[], bool] = lambda: False
    clock: Callable[[], float] = time.time
    timezone: str = "UTC"  # `--until HH:MM` is read in it (config `timezone`)
    revert_max: float = 7 * 86_400.0  # the longest `--for` / `--until` window
    heads_up: float = 600.0  # a timed change's heads-up comes this long before its revert


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


def action_of(action: PendingAction) -> Action:
    """The policy action a pending action asks for."""
    return action.kind


def approval_fields(rule: ApprovalRule | None) -> dict[str, Any]:
    """What a pending action stores of its approval rule."""
    return {
        "required_approvals": rule.required if rule else 0,
        "approver_roles": tuple(rule.approvers) if rule else (),
        "auto_run": rule.auto_run if rule else False,
    }


def store_down_fails(
    use_case: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | Failed]]:
    """A click's use case answers "cannot reach the state store; nothing was done" when it is down.

    Every store write comes before any cluster call, so nothing ran that the store did not record.
    """

    @functools.wraps(use_case)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Failed:
        try:
            return await use_case(*args, **kwargs)
        except StoreUnavailable as exc:
            log.warning("state store unavailable: %s", exc)
            return Failed(exc.message)

    return guarded


class Authorizer:
    """The role map's answers for one person in one channel, read lazily.

    Roles only add permissions, so what the grants held without user groups (by id, by
    channel) allow is allowed: only a request they do not allow waits for group lookups.
    """

    def __init__(self, deps: Deps, user_id: str, channel_id: str) -> None:
        self._deps = deps
        self.role_map = deps.role_map()
        self._direct = Caller(user_id, channel_id)
        self._full: Caller | None = None

    async def authorize(
        self,
        action: Action,
        cluster: str,
        deployments: Sequence[str] | None,
        options: Iterable[str] = (),
        *,
        allocations: Sequence[int] = (),
    ) -> Decision:
        """`authorize()` for this person, looking groups up only if it takes them."""
        opts, numbers = frozenset(options), tuple(allocations)
        decision = authorize(
            self.role_map, self._direct, action, cluster, deployments, opts, allocations=numbers
        )
        if decision.allowed:
            return decision
        full = await self.caller()
        if full is self._direct:
            return decision
        return authorize(
            self.role_map, full, action, cluster, deployments, opts, allocations=numbers
        )

    async def caller(self) -> Caller:
        """The Caller with the groups that could matter looked up (once)."""
        if self._full is None:
            user, channel = self._direct.user_id, self._direct.channel_id
            groups = groups_that_matter(self.role_map, user, channel)
            self._full = (
                await self._deps.groups.caller(user, channel, groups) if groups else self._direct
            )
        return self._full


def authorizer(deps: Deps, who: Who) -> Authorizer:
    """An Authorizer for the person behind a command or click."""
    return Authorizer(deps, who.user_id, who.channel_id)


async def caller(deps: Deps, who: Who, *, approvers: Collection[str] | None = None) -> Caller:
    """Resolve the person's user groups for the policy check."""
    return await caller_of(deps, who.user_id, who.channel_id, approvers=approvers)


async def caller_of(
    deps: Deps, user_id: str, channel_id: str, *, approvers: Collection[str] | None = None
) -> Caller:
    """A policy Caller, looking up only the user groups that could change a decision.

    A person granted directly (by id or channel) never waits for Slack's group lookups;
    `approvers`: checking an approval, which needs one of these roles.
    """
    groups = groups_that_matter(deps.role_map(), user_id, channel_id, approvers=approvers)
    return await deps.groups.caller(user_id, channel_id, groups)


async def record(deps: Deps, who: Who, event: str, outcome: str, **fields: Any) -> None:
    """Write one audit event for `who`; `cluster`, `action_id`, `deployments` get ECS fields."""
    await deps.audit.record(
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
        ),
    )


def gateway(deps: Deps, name: str | None) -> Gateway | Failed:
    """The named cluster (or the default), or a Failed naming the known ones."""
    try:
        return deps.clusters.get(name)
    except ClusterError as exc:
        return Failed(exc.message)


def call_context(deps: Deps, who: Who, action_id: str, *, urgent: bool = False) -> CallContext:
    """The opaque id and run-as user for this person's calls about this action."""
    return CallContext(opaque_id=opaque_id(who, action_id), slack_user=who.user_id, urgent=urgent)


async def frozen(deps: Deps) -> Frozen | None:
    """The kill switch, from the store (`/ml-stop freeze`) or the config file."""
    flag = await deps.store.get_flag(FREEZE_FLAG)
    if flag is not None:
        return Frozen(flag.get("by"), flag.get("since"), flag.get("reason"))
    if deps.config_frozen():
        return Frozen(None, None, "`freeze: true` in the config file")
    return None


async def expire_if_due(deps: Deps, action: PendingAction) -> PendingAction | None:
    """Move a proposed action past its expiry to `expired`; None if not due (or lost the race)."""
    if action.state is ActionState.PROPOSED and deps.clock() >= action.expires_at:
        return await deps.store.transition(
            action.id, ActionState.PROPOSED, ActionState.EXPIRED, finished_at=deps.clock()
        )
    return None


async def settled(
    deps: Deps, action_id: str, moved: PendingAction | None
) -> PendingAction | Already | Unknown:
    """A compare-and-set's result: the moved action, or the action as another click left it."""
    if moved is not None:
        return moved
    latest = await deps.store.get(action_id)
    return Unknown(action_id) if latest is None else Already(latest)


async def end(
    deps: Deps, action_id: str, who: Who, state: ActionState, event: str
) -> Ended | Already | Unknown:
    """Move a proposed action to the final `state` once (cancel, reject), audited as `event`."""
    moved = await settled(
        deps,
        action_id,
        await deps.store.transition(
            action_id,
            ActionState.PROPOSED,
            state,
            actor_id=who.user_id,
            finished_at=deps.clock(),
        ),
    )
    if not isinstance(moved, PendingAction):
        return moved
    await record(deps, who, event, "success", action_id=action_id, cluster=moved.cluster)
    return Ended(moved)


async def clickable(deps: Deps, action_id: str, who: Who) -> PendingAction | ClickResult:
    """The action if `who` may press its buttons now, or the outcome that says why not."""
    action = await deps.store.get(action_id)
    if action is None:
        return Unknown(action_id)
    if who.user_id != action.requester_id:
        await record(deps, who, "click", "failure", action_id=action_id, error="not requester")
        return NotRequester(action, who.user_id)
    expired = await expire_if_due(deps, action)
    if expired is not None:
        await record(deps, who, "expire", "success", action_id=action_id, cluster=action.cluster)
        return Ended(expired)
    if action.state is not ActionState.PROPOSED:
        return Already(action)
    return action


async def record_command(deps: Deps, who: Who, command: str, text: str) -> None:
    """Every slash command is an audit event, whatever comes of it."""
    await record(deps, who, "command", "success", command=command, text=cap(text, AUDIT_TEXT_MAX))
