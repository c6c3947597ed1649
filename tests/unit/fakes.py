"""In-memory fakes of the app's ports, for use-case tests that run in milliseconds."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.app.context import Deps
from bot.app.ports import CallContext, Change, Verification
from bot.app.service import Service
from bot.core.audit import AuditEvent
from bot.core.errors import StoreUnavailable, UnknownCluster
from bot.core.impact import StartPlan
from bot.core.model import ActionState, Deployment, PendingAction, Resolution, StopOutcome
from bot.core.outcomes import Who
from bot.core.policy import Caller, RoleMap, parse_role_map

ROLE_MAP = """
roles:
  ml-admin:
    - {action: [stop, start, status, freeze], deployments: ["*"],
       options: [force, finish_pending_work, wildcard, list, all]}
  ml-operator:
    - {action: [stop, status], deployments: ["ner-*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
  - {role: ml-operator, usergroups: [S0OPS]}
"""
APPROVAL = """
approvals:
  - {actions: [stop], deployments: ["ner-guarded"], required: 1, approvers: [ml-admin]}
"""


class FakeStore:
    """A dict of actions with the store's compare-and-set semantics and locks."""

    def __init__(self) -> None:
        self.actions: dict[str, PendingAction] = {}
        self.locks: dict[str, str] = {}
        self.flags: dict[str, dict[str, Any]] = {}
        self.down = False  # True: every call raises StoreUnavailable, like Redis gone

    def _up(self) -> None:
        if self.down:
            raise StoreUnavailable("fake store down")

    async def put(self, action: PendingAction) -> None:
        self._up()
        self.actions[action.id] = action

    async def get(self, action_id: str) -> PendingAction | None:
        self._up()
        return self.actions.get(action_id)

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        self._up()
        current = self.actions.get(action_id)
        updated = change(current) if current is not None else None
        if updated is not None:
            self.actions[action_id] = updated
        return updated

    async def transition(
        self, action_id: str, expected: ActionState, new: ActionState, **changes: Any
    ) -> PendingAction | None:
        return await self.mutate(
            action_id,
            lambda a: replace(a, state=new, **changes) if a.state is expected else None,
        )

    async def update(self, action_id: str, **changes: Any) -> PendingAction | None:
        return await self.mutate(action_id, lambda a: replace(a, **changes))

    def _holder(self, keys: Sequence[str], now: float, me: str) -> PendingAction | None:
        for key in keys:
            holder = self.actions.get(self.locks.get(key, ""))
            if holder is None or holder.id == me:
                continue
            live = holder.state is ActionState.EXECUTING or (
                holder.state is ActionState.PROPOSED and holder.expires_at > now
            )
            if live:
                return holder
        return None

    async def put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        self._up()
        holder = self._holder(keys, now, action.id)
        if holder is not None:
            return holder
        self.actions[action.id] = action
        self.locks.update({k: action.id for k in keys})
        return None

    async def lock_more(
        self, action_id: str, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        self._up()
        holder = self._holder(keys, now, action_id)
        if holder is None:
            self.locks.update({k: action_id for k in keys})
        return holder

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        self._up()
        return self.flags.get(name)

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        self._up()
        if value is None:
            self.flags.pop(name, None)
        else:
            self.flags[name] = value

    async def due(self, now: float) -> list[PendingAction]:
        self._up()
        return [
            a
            for a in self.actions.values()
            if a.state is ActionState.PROPOSED and a.expires_at <= now
        ]

    async def orphans(self) -> list[PendingAction]:
        return []

    async def history(self, since: float) -> list[PendingAction]:
        self._up()
        return [a for a in self.actions.values() if a.created_at >= since]

    async def close(self) -> None:
        return None


@dataclass
class FakeGateway:
    """One cluster's deployments; records every stop and start."""

    name: str = "default"
    deployments: dict[str, Deployment] = field(default_factory=dict)
    stops: list[str] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)

    def deploy(self, *ids: str, pipelines: tuple[str, ...] = ()) -> None:
        """Start deployments (by id; the model id is the same)."""
        for dep_id in ids:
            self.deployments[dep_id] = Deployment(dep_id, dep_id, "started", pipelines=pipelines)

    async def resolve(self, ids: Sequence[str], ctx: CallContext | None = None) -> Resolution:
        chosen: dict[str, Deployment] = {}
        unmatched = []
        for expression in ids:
            pattern = "*" if expression == "_all" else expression
            hits = [d for k, d in sorted(self.deployments.items()) if fnmatch.fnmatch(k, pattern)]
            if not hits:
                unmatched.append(expression)
            chosen.update((d.deployment_id, d) for d in hits)
        return Resolution(tuple(chosen.values()), tuple(unmatched))

    async def plan_starts(
        self, targets: Sequence[Deployment], ctx: CallContext | None = None
    ) -> tuple[tuple[Deployment, ...], dict[str, StartPlan]]:
        running = tuple(
            self.deployments[t.deployment_id]
            for t in targets
            if t.deployment_id in self.deployments
        )
        return running, {t.deployment_id: StartPlan(model_known=True) for t in targets}

    async def list(self, pattern: str | None, ctx: CallContext | None = None) -> list[Deployment]:
        return [d for k, d in self.deployments.items() if fnmatch.fnmatch(k, pattern or "*")]

    async def stop(
        self,
        deployment: Deployment,
        *,
        force: bool,
        finish_pending_work: bool,
        ctx: CallContext | None = None,
    ) -> StopOutcome:
        self.stops.append(deployment.deployment_id)
        self.deployments.pop(deployment.deployment_id, None)
        return StopOutcome(deployment.deployment_id, True, "stopped", status=200)

    async def start(self, deployment: Deployment, ctx: CallContext | None = None) -> StopOutcome:
        self.starts.append(deployment.deployment_id)
        self.deploy(deployment.deployment_id)
        return StopOutcome(deployment.deployment_id, True, "started", status=200)

    async def verify_gone(
        self, deployment_id: str, *, within: float, ctx: CallContext | None = None
    ) -> Verification:
        return Verification(deployment_id not in self.deployments, None, 0.0)


@dataclass
class FakeClusters:
    """One cluster named `default`."""

    gateway: FakeGateway = field(default_factory=FakeGateway)
    default: str = "default"

    def get(self, name: str | None) -> FakeGateway:
        if (name or self.default) != self.gateway.name:
            raise UnknownCluster(f"unknown cluster `{name}` (known: `default`)")
        return self.gateway


@dataclass
class FakeGroups:
    """User groups by member."""

    members: dict[str, set[str]] = field(default_factory=dict)

    async def caller(self, user_id: str, channel_id: str, groups: Iterable[str]) -> Caller:
        mine = frozenset(g for g in groups if user_id in self.members.get(g, set()))
        return Caller(user_id, channel_id, mine)


@dataclass
class FakeAudit:
    """The audit events, in order."""

    events: list[AuditEvent] = field(default_factory=list)

    async def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[tuple[str, str]]:
        """(event action, outcome) pairs."""
        return [(e.action, e.outcome) for e in self.events]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    """A Service over fakes, and the fakes to look at."""

    store: FakeStore = field(default_factory=FakeStore)
    clusters: FakeClusters = field(default_factory=FakeClusters)
    groups: FakeGroups = field(default_factory=FakeGroups)
    audit: FakeAudit = field(default_factory=FakeAudit)
    clock: Clock = field(default_factory=Clock)
    rules: str = ROLE_MAP

    def role_map(self) -> RoleMap:
        """Parsed at each call, as the config file is re-read: tests change `rules`."""
        return parse_role_map(self.rules)

    @property
    def gateway(self) -> FakeGateway:
        return self.clusters.gateway

    @property
    def deps(self) -> Deps:
        return Deps(
            store=self.store,
            clusters=self.clusters,
            role_map=self.role_map,
            groups=self.groups,
            audit=self.audit,
            clock=self.clock,
        )

    @property
    def service(self) -> Service:
        return Service(
            store=self.store,
            clusters=self.clusters,
            role_map=self.role_map,
            groups=self.groups,
            audit=self.audit,
            clock=self.clock,
        )


def who(user: str = "U0ADMIN1", channel: str = "C0CHAN") -> Who:
    """A person in a channel."""
    return Who(user_id=user, user_name=user, team_id="T0", channel_id=channel)
