"""Audit events: what happened, who did it, where; the ECS-style document is a pure view of it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ECS_VERSION = "8.11.0"
# Events that change a cluster (or the bot's own switches): summarised in the audit channel.
MUTATING_ACTIONS = frozenset(
    {"stop", "start", "elasticsearch.stop", "elasticsearch.start", "freeze", "unfreeze", "recover"}
)
# The audit channel gets one line per action, not one per Elasticsearch call.
CHANNEL_SUMMARY_ACTIONS = frozenset({"stop", "start", "freeze", "unfreeze", "recover"})
_FLAG_FIELDS = {
    "force": "--force",
    "finish_pending_work": "--finish-pending-work",
    "no_allow_no_match": "--no-allow-no-match",
}


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, with who, where and what."""

    action: str  # event.action, e.g. "command", "decision", "confirm", "stop"
    outcome: str  # event.outcome: success | failure | unknown
    user_id: str | None = None
    user_name: str | None = None
    team_id: str | None = None
    channel_id: str | None = None
    cluster: str | None = None
    action_id: str | None = None
    deployments: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def to_ecs(self, at: float, event_id: str | None = None) -> dict[str, Any]:
        """The ECS-style document; `extra` lands under `ml_chatops`, mirrored in ECS fields."""
        event: dict[str, Any] = {
            "id": event_id or uuid.uuid4().hex,
            "kind": "event",
            "type": ["change"] if self.action in MUTATING_ACTIONS else ["info"],
            "action": self.action,
            "outcome": self.outcome,
            "dataset": "ml_chatops.audit",
        }
        extra = dict(self.extra)
        if isinstance(extra.get("duration_s"), int | float):
            event["duration"] = int(extra["duration_s"] * 1_000_000_000)  # ECS: nanoseconds
        if extra.get("reason"):
            event["reason"] = str(extra["reason"])
        flags = [flag for key, flag in _FLAG_FIELDS.items() if extra.get(key) is True]
        if flags:
            extra["flags"] = flags
        doc: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "ecs": {"version": ECS_VERSION},
            "event": event,
            "user": {"id": self.user_id, "name": self.user_name},
            "slack": {"team": {"id": self.team_id}, "channel": {"id": self.channel_id}},
            "ml_chatops": {
                "action_id": self.action_id,
                "cluster": self.cluster,
                "deployment_ids": list(self.deployments),
                **extra,
            },
        }
        if self.outcome == "failure" and (extra.get("error") or extra.get("message")):
            doc["error"] = {"message": str(extra.get("error") or extra.get("message"))}
        return doc
