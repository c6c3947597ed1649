"""Recovery: an action left `executing` by a process that died becomes `unknown`.

Run at start and by every sweep. Only the caller whose compare-and-set moves the action
out of `executing` audits and notifies, so several replicas recovering at once say it once.
The notice names the process that stopped: this host's bot restarted, or another replica
stopped answering (its lease ran out).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Protocol

from bot.app.ports import ActionStore, AuditRecorder
from bot.core.audit import AuditEvent
from bot.core.model import ActionState, PendingAction

log = logging.getLogger(__name__)

CHECK_HINT = "check the deployments' state with /ml-deployments"


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


async def recover(
    store: ActionStore,
    audit: AuditRecorder,
    clock: Callable[[], float],
    notify: Notify | None = None,
) -> list[PendingAction]:
    """Mark every orphaned `executing` action `unknown`; audit and notify each; return them."""
    recovered = []
    for orphan in await store.orphans():
        # Read before the transition: leaving `executing` forgets the owner.
        cause = cause_of(await store.owner_of(orphan.id), socket.gethostname())
        moved = await store.transition(
            orphan.id, ActionState.EXECUTING, ActionState.UNKNOWN, finished_at=clock()
        )
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
