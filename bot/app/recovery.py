"""Recovery: an action left `executing` by a process that died becomes `unknown`.

Run at start and by every sweep. Only the caller whose compare-and-set moves the action
out of `executing` audits and notifies, so several replicas recovering at once say it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from bot.app.ports import ActionStore, AuditRecorder
from bot.core.audit import AuditEvent
from bot.core.model import ActionState, PendingAction

log = logging.getLogger(__name__)

EXPLANATION = (
    "the bot process running this action stopped before recording its outcome; "
    "check the deployments' state with /ml-deployments"
)


class Notify(Protocol):
    """Tells people about an action whose outcome is unknown."""

    async def outcome_unknown(self, action: PendingAction) -> None:
        """Update the action's message and tell the channel."""


async def recover(
    store: ActionStore,
    audit: AuditRecorder,
    clock: Callable[[], float],
    notify: Notify | None = None,
) -> list[PendingAction]:
    """Mark every orphaned `executing` action `unknown`; audit and notify each; return them."""
    recovered = []
    for orphan in await store.orphans():
        moved = await store.transition(
            orphan.id, ActionState.EXECUTING, ActionState.UNKNOWN, finished_at=clock()
        )
        if moved is None:  # it finished after all, or another replica recovered it first
            continue
        recovered.append(moved)
        log.warning(
            "action %s was executing when its process died: outcome unknown",
            moved.id,
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
                    "explanation": EXPLANATION,
                },
            )
        )
        if notify is not None:
            try:
                await notify.outcome_unknown(moved)
            except Exception:  # the state and the audit are what matter; Slack may be down
                log.exception("could not tell Slack about action %s", moved.id)
    return recovered
