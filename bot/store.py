"""Pending-action store: the `ActionStore` protocol and its SQLite backend.

Every state change is a compare-and-set on the current state, so a double click
or two replicas racing on one action can move it to `executing` only once.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bot.model import ActionState, PendingAction

SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    expires_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_state_expiry ON actions (state, expires_at);
CREATE TABLE IF NOT EXISTS locks (
    key TEXT PRIMARY KEY,
    action_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flags (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


# A pure function of the current action: the new action, or None to leave it unchanged.
Change = Callable[[PendingAction], PendingAction | None]


def holds_lock(action: PendingAction, now: float) -> bool:
    """Whether an action still holds its deployment locks (pending and live, or running)."""
    if action.state is ActionState.EXECUTING:
        return True
    return action.state is ActionState.PROPOSED and action.expires_at > now


def cas(expected: ActionState | None, changes: dict[str, Any]) -> Change:
    """A change that applies `changes` only while the action is in `expected` (any if None)."""

    def change(current: PendingAction) -> PendingAction | None:
        if expected is not None and current.state != expected:
            return None
        return replace(current, **changes)

    return change


class ActionStore(Protocol):
    """Durable pending actions with atomic state transitions."""

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

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """A small shared JSON value (e.g. the freeze switch), or None."""

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        """Set or clear a shared JSON value."""

    async def due(self, now: float) -> list[PendingAction]:
        """Proposed actions whose expiry has passed."""

    async def close(self) -> None:
        """Release the backend."""


class SQLiteStore:
    """The embedded default: one file, WAL mode, safe for many tasks in one process."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        """`sqlite:///relative.db`, `sqlite:////abs/path.db` or `sqlite:///:memory:`."""
        return cls(url.removeprefix("sqlite:///"))

    def _put(self, action: PendingAction) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO actions (id, state, expires_at, data) VALUES (?, ?, ?, ?)",
                (action.id, action.state.value, action.expires_at, json.dumps(action.to_json())),
            )

    def _get(self, action_id: str) -> PendingAction | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM actions WHERE id = ?", (action_id,)).fetchone()
        return PendingAction.from_json(json.loads(row[0])) if row else None

    def _mutate(self, action_id: str, change: Change) -> PendingAction | None:
        with self._lock:
            # BEGIN IMMEDIATE takes the write lock first, so another process cannot
            # interleave between our read and our conditional write.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT data FROM actions WHERE id = ?", (action_id,)
                ).fetchone()
                if row is None:
                    return None
                updated = change(PendingAction.from_json(json.loads(row[0])))
                if updated is None:
                    return None
                self._db.execute(
                    "UPDATE actions SET state = ?, expires_at = ?, data = ? WHERE id = ?",
                    (
                        updated.state.value,
                        updated.expires_at,
                        json.dumps(updated.to_json()),
                        action_id,
                    ),
                )
                return updated
            finally:
                self._db.execute("COMMIT")

    def _put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key in keys:
                    row = self._db.execute(
                        "SELECT a.data FROM locks l JOIN actions a ON a.id = l.action_id"
                        " WHERE l.key = ?",
                        (key,),
                    ).fetchone()
                    holder = PendingAction.from_json(json.loads(row[0])) if row else None
                    if holder is not None and holds_lock(holder, now):
                        return holder
                self._db.execute(
                    "INSERT INTO actions (id, state, expires_at, data) VALUES (?, ?, ?, ?)",
                    (
                        action.id,
                        action.state.value,
                        action.expires_at,
                        json.dumps(action.to_json()),
                    ),
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO locks (key, action_id) VALUES (?, ?)",
                    [(key, action.id) for key in keys],
                )
                return None
            finally:
                self._db.execute("COMMIT")

    def _get_flag(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def _set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM flags WHERE name = ?", (name,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO flags (name, value) VALUES (?, ?)",
                    (name, json.dumps(value)),
                )

    def _due(self, now: float) -> list[PendingAction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM actions WHERE state = ? AND expires_at <= ?",
                (ActionState.PROPOSED.value, now),
            ).fetchall()
        return [PendingAction.from_json(json.loads(r[0])) for r in rows]

    async def put(self, action: PendingAction) -> None:
        """Insert a new action."""
        await asyncio.to_thread(self._put, action)

    async def get(self, action_id: str) -> PendingAction | None:
        """The action, or None."""
        return await asyncio.to_thread(self._get, action_id)

    async def transition(
        self, action_id: str, expected: ActionState, new: ActionState, **changes: Any
    ) -> PendingAction | None:
        """Compare-and-set on the state."""
        return await self.mutate(action_id, cas(expected, {**changes, "state": new}))

    async def update(self, action_id: str, **changes: Any) -> PendingAction | None:
        """Change non-state fields."""
        if "state" in changes:
            raise ValueError("use transition() to change the state")
        return await self.mutate(action_id, cas(None, changes))

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        """Read, change and write in one transaction."""
        return await asyncio.to_thread(self._mutate, action_id, change)

    async def put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Insert holding `keys`, or return the live holder of one of them."""
        return await asyncio.to_thread(self._put_exclusive, action, keys, now)

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """A shared JSON value."""
        return await asyncio.to_thread(self._get_flag, name)

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        """Set or clear a shared JSON value."""
        await asyncio.to_thread(self._set_flag, name, value)

    async def due(self, now: float) -> list[PendingAction]:
        """Proposed actions past their expiry."""
        return await asyncio.to_thread(self._due, now)

    async def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


def open_store(url: str) -> ActionStore:
    """The store an `ML_CHATOPS_STATE` URL names."""
    if url.startswith("sqlite:///"):
        return SQLiteStore.from_url(url)
    raise ValueError(f"ML_CHATOPS_STATE: unsupported store {url.split(':', 1)[0]!r} (yet)")
