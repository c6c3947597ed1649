"""The use cases behind one object, for the adapters that hold a `service` (Slack, shell).

Each method delegates to its use-case module; the outcome types are in `bot.core.outcomes`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.app import approve as approve_uc
from bot.app import (
    audit_query,
    cancel,
    confirm,
    context,
    dispatch,
    expire,
    freeze,
    listing,
    scale,
    start,
    timed,
)
from bot.app import propose as propose_uc
from bot.app.context import Deps
from bot.app.ports import ActionStore, AuditRecorder, ClusterDirectory, Directory
from bot.app.recovery import OwnActions
from bot.core.commands import (
    AuditRequest,
    FreezeRequest,
    ListRequest,
    Request,
    StartRequest,
    StopRequest,
    UsageError,
)
from bot.core.errors import StoreUnavailable
from bot.core.model import MessageRef, PendingAction
from bot.core.outcomes import (
    ApproveResult,
    ClickResult,
    Denied,
    Failed,
    FreezeChanged,
    Frozen,
    Listing,
    ProposeResult,
    Started,
    Timeline,
    Unknown,
    Who,
)
from bot.core.policy import Caller, RoleMap

__all__ = ["Service"]

log = logging.getLogger(__name__)


class Service:
    """A facade over the use-case modules, sharing one `Deps`."""

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
        timezone: str = "UTC",
        revert_max: float = 7 * 86_400.0,
        heads_up: float = 600.0,
    ) -> None:
        self.deps = Deps(
            store=store,
            clusters=clusters,
            role_map=role_map,
            groups=groups,
            audit=audit,
            expire_after=expire_after,
            verify_within=verify_within,
            config_frozen=config_frozen,
            clock=clock,
            timezone=timezone,
            revert_max=revert_max,
            heads_up=heads_up,
        )
        # The actions this process claimed and runs; the sweep's recovery reads it.
        self.own = OwnActions()

    @property
    def store(self) -> ActionStore:
        """The pending-action store."""
        return self.deps.store

    @property
    def clock(self) -> Callable[[], float]:
        """The clock every use case reads."""
        return self.deps.clock

    async def caller(self, who: Who) -> Caller:
        """Resolve the person's user groups for the policy check."""
        return await context.caller(self.deps, who)

    async def frozen(self) -> Frozen | None:
        """The kill switch, from the store (`/ml-stop freeze`) or the config file."""
        return await context.frozen(self.deps)

    async def dispatch(self, command: str, text: str, who: Who) -> object:
        """A slash command through the one table: audit, parse, gate, run (see `dispatch`)."""
        return await dispatch.dispatch(self.deps, command, text, who)

    async def dispatch_request(
        self, request: Request, who: Who, *, command: str, text: str, execution_id: str | None
    ) -> object:
        """An already-parsed request (the workflow step) through the same table."""
        return await dispatch.dispatch_request(
            self.deps, request, who, command=command, text=text, execution_id=execution_id
        )

    async def record_command(self, who: Who, command: str, text: str) -> None:
        """Every slash command is an audit event, whatever comes of it."""
        await context.record_command(self.deps, who, command, text)

    async def propose(
        self, request: StopRequest, who: Who, *, execution_id: str | None = None
    ) -> ProposeResult | UsageError:
        """Authorize, resolve and save a stop for confirmation."""
        return await propose_uc.propose(self.deps, request, who, execution_id=execution_id)

    async def propose_start(self, request: StartRequest, who: Who) -> ProposeResult:
        """`/ml-start`: authorize and save a start of one deployment for confirmation."""
        return await start.propose_start(self.deps, request, who)

    async def propose_restart(self, stop_action_id: str, who: Who) -> ProposeResult | Unknown:
        """The result's Restart button: start what that stop stopped, with its settings."""
        return await start.propose_restart(self.deps, stop_action_id, who)

    async def propose_revert(self, scale_action_id: str, who: Who) -> ProposeResult | Unknown:
        """The scale result's "Revert to previous": a new scale preview."""
        return await scale.propose_revert(self.deps, scale_action_id, who)

    async def attach_message(self, action_id: str, ref: MessageRef) -> None:
        """Remember where the preview is shown, so it can be replaced later."""
        await self._remember(action_id, message=ref)

    async def attach_card(self, action_id: str, ref: MessageRef) -> None:
        """Remember where the approval card is, so it can be updated."""
        await self._remember(action_id, approval_card=ref)

    async def attach_result(self, action_id: str, ref: MessageRef) -> None:
        """Remember the channel message that reports the outcome (follow-ups thread on it)."""
        await self._remember(action_id, result_ref=ref)

    async def _remember(self, action_id: str, **refs: MessageRef) -> None:
        # Where a message is matters for later edits, not for safety: a store outage
        # here must not stop a claimed action from running.
        try:
            await self.deps.store.update(action_id, **refs)
        except StoreUnavailable as exc:
            log.warning("could not record a message reference: %s", exc)

    async def get(self, action_id: str) -> PendingAction | None:
        """An action by id."""
        return await self.deps.store.get(action_id)

    async def approve(self, action_id: str, who: Who) -> ApproveResult:
        """An approver clicked Approve on the in-channel card."""
        return await approve_uc.approve(self.deps, action_id, who)

    async def reject(self, action_id: str, who: Who) -> ApproveResult:
        """An approver (or the requester) clicked Reject: the action ends."""
        return await approve_uc.reject(self.deps, action_id, who)

    async def confirm(self, action_id: str, who: Who) -> ClickResult:
        """The requester pressed Stop (or Start): re-check everything, then run at most once."""
        return self._claimed(await confirm.confirm(self.deps, action_id, who))

    async def run_approved(self, action: PendingAction, who: Who) -> ClickResult:
        """Auto-run after the last approval (the approver's click), with the same checks."""
        return self._claimed(await confirm.run_approved(self.deps, action, who))

    def _claimed(self, outcome: ClickResult) -> ClickResult:
        # Remember what this process must run, so recovery finds it if the run breaks.
        if isinstance(outcome, Started):
            self.own.claimed(outcome.action.id, self.deps.clock())
        return outcome

    async def cancel(self, action_id: str, who: Who) -> ClickResult:
        """The requester clicked Cancel."""
        return await cancel.cancel(self.deps, action_id, who)

    async def execute(self, action: PendingAction, who: Who) -> PendingAction:
        """Run every target once; record each outcome; move to succeeded or failed."""
        with self.own.running(action.id):
            return await confirm.execute(self.deps, action, who)

    async def expire_due(self) -> list[PendingAction]:
        """Expire every proposed action past its expiry; returns those this call expired."""
        return await expire.expire_due(self.deps)

    async def freeze(self, request: FreezeRequest, who: Who) -> Denied | FreezeChanged | UsageError:
        """`/ml-stop freeze|unfreeze`: only a role granted `freeze` may."""
        return await freeze.freeze(self.deps, request, who)

    async def timeline(self, request: AuditRequest, who: Who) -> Denied | Timeline:
        """`/ml-audit`: the actions of this channel, or of one incident, since a moment."""
        return await audit_query.timeline(self.deps, request, who)

    async def list_deployments(self, request: ListRequest, who: Who) -> Denied | Failed | Listing:
        """The deployments the caller may see, with their state."""
        return await listing.list_deployments(self.deps, request, who)

    # ---- timed changes (issue 22) ------------------------------------------------------

    async def revert_now(self, revert_id: str, shown: str, who: Who) -> object:
        """Revert now (or Retry a failed revert): claimed against the due time shown."""
        return await timed.revert_now(self.deps, revert_id, shown, who)

    async def extend_revert(self, revert_id: str, shown: int, seconds: int, who: Who) -> object:
        """Move a revert later, if its due time is still the one shown."""
        return await timed.extend(self.deps, revert_id, shown, seconds, who)

    async def keep_change(self, revert_id: str, shown: int, who: Who) -> object:
        """Cancel a revert: the change stays."""
        return await timed.keep(self.deps, revert_id, shown, who)

    async def sweep_timed(self) -> list[timed.SweepItem]:
        """Heads-ups and due reverts (claimed once across replicas)."""
        return await timed.sweep(self.deps, self.deps.heads_up)

    async def unfreeze_due(self) -> FreezeChanged | None:
        """A timed freeze whose time came, unfrozen once."""
        return await freeze.unfreeze_due(self.deps)
