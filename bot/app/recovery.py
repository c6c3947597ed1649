"""Recovery: an action left `executing` by a process that died becomes `unknown`.

Run at start and by every sweep. Only the caller whose compare-and-set moves the action
out of `executing` audits and notifies, so several replicas recovering at once say it once.
The notice names the process that stopped: this host's bot restarted, or another replica
stopped answering (its lease ran out). An action this process claimed but is no longer
running (its run broke on our side) is recovered the same way once it is older than a
lease (`OwnActions`): a live process never strands its own action.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

from bot.app.ports import ActionStore, AuditRecorder
from bot.core.audit import AuditEvent
from bot.core.model import ActionState, PendingAction

log = logging.getLogger(__name__)

CHECK_HINT = "check the deployments' state with /ml-deployments"
# The store's owner lease (bot/adapters/store_sqlite.py LEASE_SECONDS): a claimed action
# this process is not running after this long is stranded.
STRANDED_AFTER = 30.0
STRANDED_CAUSE = "An internal error on my side interrupted me"


class OwnActions:
    """The actions this process claimed (moved to `executing`) and which it is running now."""

    def __init__(self) -> None:
        self._claimed: dict[str, float] = {}
        self._running: set[str] = set()

    def claimed(self, action_id: str, at: float) -> None:
        """This process moved the action to `executing` at `at` (the service's clock)."""
        self._claimed[action_id] = at

    @contextmanager
    def running(self, action_id: str) -> Iterator[None]:
        """Mark the action as being run; it is forgotten when the run returns normally."""
        self._running.add(action_id)
        try:
            yield
        finally:
            self._running.discard(action_id)
        self._claimed.pop(action_id, None)

    def stranded(self, now: float, after: float = STRANDED_AFTER) -> list[str]:
        """Claimed at least `after` seconds ago and not running now."""
        return [
            i for i, at in self._claimed.items() if i not in self._running and now - at >= after
        ]

    def forget(self, action_id: str) -> None:
        """Recovery settled it."""
        self._claimed.pop(action_id, None)


def cause_of(owner: str | None, host: str) -> str:
    """Who stopped mid-action, as a sentence's subject, from the store's owner id.

    Owner ids are `host|pid-namespace|pid|token` (bot/adapters/store_sqlite.py process_owner).
    """
    parts = (owner or "").split("|")
    if len(parts) != 4 or not parts[0] or not parts[2]:
        return "The bot restarted"  # no owner recorded: the most likely story
    owner_host, _, pid, _ = parts
    if owner_host == host:
        return f"The bot restarted (its process {pid} on {owner_host} ended)"
    return f"Replica {owner_host} (pid {pid}) stopped answering"


def explanation(cause: str) -> str:
    """The audit record's explanation of an unknown outcome."""
    return f"{cause} before recording the outcome; {CHECK_HINT}"


class Notify(Protocol):
    """Tells people about an action whose outcome is unknown."""

    async def outcome_unknown(self, action: PendingAction, cause: str) -> None:
        """Update the action's message and tell the channel; `cause` from cause_of()."""


async def _stranded(
    store: ActionStore, own: OwnActions | None, now: float, known: set[str]
) -> list[PendingAction]:
    """This process's own stranded actions still `executing` in the store."""
    if own is None:
        return []
    found = []
    for action_id in own.stranded(now):
        action = await store.get(action_id)
        if action is None or action.state is not ActionState.EXECUTING:
            own.forget(action_id)
        elif action_id not in known:
            found.append(action)
    return found


async def recover(
    store: ActionStore,
    audit: AuditRecorder,
    clock: Callable[[], float],
    notify: Notify | None = None,
    own: OwnActions | None = None,
) -> list[PendingAction]:
    """Mark every orphaned `executing` action `unknown`; audit and notify each; return them.

    Orphans are actions whose owner died, and (with `own`) this process's stranded ones.
    """
    recovered = []
    orphans = await store.orphans()
    stranded = await _stranded(store, own, clock(), {a.id for a in orphans})
    causes = {a.id: STRANDED_CAUSE for a in stranded}
    for orphan in [*orphans, *stranded]:
        # Read before the transition: leaving `executing` forgets the owner.
        owner = await store.owner_of(orphan.id)
        cause = causes.get(orphan.id) or cause_of(owner, socket.gethostname())
        moved = await store.transition(
            orphan.id, ActionState.EXECUTING, ActionState.UNKNOWN, finished_at=clock()
        )
        if own is not None:
            own.forget(orphan.id)
        if moved is None:  # it finished after all, or another replica recovered it first
            continue
        recovered.append(moved)
        log.warning(
            "action %s: outcome unknown: %s",
            moved.id,
            cause,
            extra={"ml_chatops.action_id": moved.id},
        )
        await audit.record(
            AuditEvent(
                action="recover",
                outcome="unknown",
                user_id=moved.requester_id,
                user_name=moved.requester_name,
                team_id=moved.team_id,
                channel_id=moved.channel_id,
                cluster=moved.cluster,
                action_id=moved.id,
                deployments=moved.deployment_ids,
                extra={
                    "kind": moved.kind,
                    "confirmed_by": moved.actor_id,
                    "approvers": [a.user_id for a in moved.approvals],
                    "force": moved.spec.force,
                    "finish_pending_work": moved.spec.finish_pending_work,
                    "reason": moved.spec.reason,
                    "started_at": moved.started_at,
                    "explanation": explanation(cause),
                },
            )
        )
        if notify is not None:
            try:
                await notify.outcome_unknown(moved, cause)
            except Exception:  # the state and the audit are what matter; Slack may be down
                log.exception("could not tell Slack about action %s", moved.id)
    return recovered
