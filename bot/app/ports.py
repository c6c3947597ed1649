"""Ports: what the use cases need from the outside world, as Protocols the adapters implement.

The use cases import only `bot.core` and this module; `bootstrap` wires the adapters in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.audit import AuditEvent
from bot.core.errors import StoreUnavailable as StoreUnavailable
from bot.core.health import DeploymentHealth, MlMemory
from bot.core.impact import StartPlan
from bot.core.model import (
    ActionState,
    Deployment,
    PendingAction,
    Resolution,
    ScaleOutcome,
    StartOutcome,
    StopOutcome,
)
from bot.core.policy import Caller
from bot.core.scale import ScalePlan

# A pure function of the current action: the new action, or None to leave it unchanged.
Change = Callable[[PendingAction], PendingAction | None]


class ActionStore(Protocol):
    """Durable pending actions with atomic state transitions.

    Every method raises `StoreUnavailable` when the backend cannot be reached.
    """

    async def put(self, action: PendingAction) -> None:
        """Insert a new action (its id must be new)."""

    async def get(self, action_id: str) -> PendingAction | None:
        """The action, or None for an unknown id."""

    async def transition(
        self, action_id: str, expected: ActionState, new: ActionState, **changes: Any
    ) -> PendingAction | None:
        """Move expected → new atomically; None if the state was not `expected`."""

    async def update(self, action_id: str, **changes: Any) -> PendingAction | None:
        """Change non-state fields (e.g. the message reference)."""

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        """Apply `change` to the current action atomically; None if it declined or no action."""

    async def put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Insert `action` holding `keys`; if a live action holds any key, return it instead.

        Locks are released implicitly: a key whose holder is final or expired is free.
        """

    async def lock_more(
        self, action_id: str, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Add `keys` to an existing action's locks, or return another live holder of one."""

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """A small shared JSON value (e.g. the freeze switch), or None."""

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        """Set or clear a shared JSON value."""

    async def seen(self, key: str, ttl: float) -> bool:
        """Mark `key` for `ttl` seconds; True if it was already marked (a replay)."""

    async def due(self, now: float) -> list[PendingAction]:
        """Proposed actions whose expiry has passed."""

    async def orphans(self) -> list[PendingAction]:
        """Executing actions whose owner process is gone (no live lease, or a dead local pid)."""

    async def owner_of(self, action_id: str) -> str | None:
        """Who moved an executing action there: `host|pid-namespace|pid|token`, if recorded."""

    async def history(self, since: float) -> list[PendingAction]:
        """Every action created at or after `since` (for the `/ml-audit` timeline)."""

    async def close(self) -> None:
        """Release the backend."""


@dataclass(frozen=True)
class CallContext:
    """Who a request is for: its X-Opaque-Id and, on run_as clusters, the Slack user."""

    opaque_id: str | None = None
    slack_user: str | None = None
    # A click's re-check: never queued behind previews' reads (a burst must not delay it).
    urgent: bool = False


@dataclass(frozen=True)
class Verification:
    """What `_stats` said after a stop answered."""

    gone: bool
    state: str | None
    waited: float


class Gateway(Protocol):
    """One Elasticsearch cluster; failures raise `bot.core.errors.ClusterError`."""

    @property
    def name(self) -> str:
        """The cluster's configured name."""

    async def resolve(self, ids: Sequence[str], ctx: CallContext | None = None) -> Resolution:
        """What the id expressions match now."""

    async def list(self, pattern: str | None, ctx: CallContext | None = None) -> list[Deployment]:
        """Deployments matching `pattern` (all when None)."""

    async def plan_starts(
        self, targets: Sequence[Deployment], ctx: CallContext | None = None
    ) -> tuple[tuple[Deployment, ...], dict[str, StartPlan]]:
        """The targets already running, and per target id what a start would bring back."""

    async def stop(
        self,
        deployment: Deployment,
        *,
        force: bool,
        finish_pending_work: bool,
        ctx: CallContext | None = None,
    ) -> StopOutcome:
        """Stop one concrete deployment exactly once; failures are in the outcome."""

    async def start(self, deployment: Deployment, ctx: CallContext | None = None) -> StartOutcome:
        """Start one deployment with its captured settings; failures are in the outcome."""

    async def verify_gone(
        self, deployment_id: str, *, within: float, ctx: CallContext | None = None
    ) -> Verification:
        """Poll until the deployment is gone or `within` seconds pass."""

    async def scale(self, plan: ScalePlan, ctx: CallContext | None = None) -> ScaleOutcome:
        """Send one update through the plan's API exactly once; refusals are in the outcome."""

    async def verify_scaled(
        self, plan: ScalePlan, *, within: float, ctx: CallContext | None = None
    ) -> tuple[Deployment | None, bool, float]:
        """Poll `_stats` until the plan is reflected and placed: (last read, reflected, waited)."""

    async def ml_memory(self, ctx: CallContext | None = None) -> MlMemory | str:
        """The ML nodes' memory, or why it could not be read."""

    async def health(
        self, ids: Sequence[str] | None, ctx: CallContext | None = None
    ) -> Sequence[tuple[DeploymentHealth, Deployment]]:
        """Each matching deployment's health, with its impact (what uses it)."""


class ClusterDirectory(Protocol):
    """The configured clusters by name."""

    @property
    def default(self) -> str:
        """The default cluster's name."""

    def get(self, name: str | None) -> Gateway:
        """The named cluster (or the default); `UnknownCluster` for an unknown name."""


class Directory(Protocol):
    """Who someone is for the policy: their user groups (Slack usergroups)."""

    async def caller(self, user_id: str, channel_id: str, groups: Iterable[str]) -> Caller:
        """A policy Caller with the groups the user is in and those that could not be checked."""


class AuditRecorder(Protocol):
    """Where audit events go (every sink, never raising)."""

    async def record(self, event: AuditEvent) -> None:
        """Write the event."""


class CommandMetrics(Protocol):
    """Counts commands by outcome."""

    def command(self, command: str, outcome: str) -> None:
        """Count one command."""


class PermanentDeliveryError(Exception):
    """Raised by a delivery function for a failure that retrying cannot fix."""


PostLine = Callable[[str, str], Awaitable[None]]  # (channel, text); PermanentDeliveryError
