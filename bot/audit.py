"""Audit events: ECS-style JSON documents, one per decision, click, call and outcome."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO


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

    def to_ecs(self, at: float) -> dict[str, Any]:
        """The ECS-style document."""
        doc: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "event": {
                "action": self.action,
                "outcome": self.outcome,
                "dataset": "ml_chatops.audit",
            },
            "user": {"id": self.user_id, "name": self.user_name},
            "slack": {"team": {"id": self.team_id}, "channel": {"id": self.channel_id}},
            "ml_chatops": {
                "action_id": self.action_id,
                "cluster": self.cluster,
                "deployment_ids": list(self.deployments),
                **self.extra,
            },
        }
        return doc


class AuditSink(Protocol):
    """Somewhere audit documents go."""

    async def write(self, doc: dict[str, Any]) -> None:
        """Persist one document."""


class JsonLinesSink:
    """JSON lines to a file (appended) or to stdout."""

    def __init__(self, path: str | Path | None = None, stream: TextIO | None = None) -> None:
        self._path = Path(path) if path else None
        self._stream = stream
        self._lock = asyncio.Lock()

    async def write(self, doc: dict[str, Any]) -> None:
        """Append one line."""
        line = json.dumps(doc, ensure_ascii=False, default=str) + "\n"
        async with self._lock:
            if self._path is not None:
                await asyncio.to_thread(self._append, line)
            else:
                out = self._stream or sys.stdout
                out.write(line)
                out.flush()

    def _append(self, line: str) -> None:
        assert self._path is not None
        with self._path.open("a", encoding="utf-8") as fh:
            fh.write(line)


class MemorySink:
    """Keeps documents in memory (the local shell and tests read them back)."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    async def write(self, doc: dict[str, Any]) -> None:
        """Keep the document."""
        self.docs.append(doc)


class AuditLog:
    """Fans each event out to every sink, timestamped by the given clock."""

    def __init__(self, sinks: list[AuditSink], clock: Callable[[], float]) -> None:
        self.sinks = sinks
        self.clock = clock

    async def record(self, event: AuditEvent) -> None:
        """Write the event to every sink."""
        doc = event.to_ecs(self.clock())
        for sink in self.sinks:
            await sink.write(doc)
