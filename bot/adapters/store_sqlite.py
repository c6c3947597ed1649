"""Pending-action store: the SQLite backend of `bot.app.ports.ActionStore` (Redis: store_redis).

Every state change is a compare-and-set on the current state, so a double click
or two replicas racing on one action can move it to `executing` only once.
The store also records which process moved an action to `executing` (its owner)
and keeps a lease for each live owner, so recovery can find actions whose owner died.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from bot.app.ports import ActionStore as ActionStore
from bot.app.ports import Change as Change
from bot.app.ports import StoreUnavailable
from bot.core.model import ActionState, PendingAction

S = TypeVar("S")

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
CREATE TABLE IF NOT EXISTS owners (
    action_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    key TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    owner TEXT PRIMARY KEY,
    until REAL NOT NULL
);
"""

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0  # an owner silent this long is dead (renewed every third of it)


# ---- owners and leases -------------------------------------------------------------------

_process_owner: tuple[int, str] | None = None


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]" on Linux
    except OSError:
        return ""


def process_owner() -> str:
    """This process's owner id, `host|pid-namespace|pid|random` (new after a fork or restart)."""
    global _process_owner
    pid = os.getpid()
    if _process_owner is None or _process_owner[0] != pid:
        owner = "|".join((socket.gethostname(), _pid_namespace(), str(pid), secrets.token_hex(4)))
        _process_owner = (pid, owner)
    return _process_owner[1]


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _owner_parts(owner: str) -> tuple[str, str, str, str]:
    host, ns, pid, token = ([*owner.split("|"), "", "", ""])[:4]
    return host, ns, pid, token


def owner_alive(owner: str | None, me: str, lease_live: bool) -> bool:
    """Whether `owner` may still be executing: its lease is live and, on this host, its pid runs.

    The pid check (same host and pid namespace only) makes a restart on the same machine
    recover at once instead of after the lease runs out.
    """
    if not owner:
        return False
    if owner == me:
        return True
    if not lease_live:
        return False
    host, ns, pid, _ = _owner_parts(owner)
    my_host, my_ns, my_pid, _ = _owner_parts(me)
    if ns and pid.isdigit() and (host, ns) == (my_host, my_ns):
        return pid != my_pid and _pid_running(int(pid))
    return True


class LeaseKeeper:
    """Renews an owner's lease in the background while the store is open."""

    def __init__(self, renew: Callable[[], Awaitable[None]], seconds: float) -> None:
        self._renew = renew
        self._seconds = seconds
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start renewing (idempotent); called once the owner holds an executing action."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._seconds / 3)
            try:
                await self._renew()
            except Exception as exc:  # the next round retries; recovery elsewhere waits
                log.warning("lease renewal failed: %s", exc)

    async def stop(self) -> None:
        """Stop renewing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


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


def unavailable_on(*errors: type[BaseException]) -> Callable[[type[S]], type[S]]:
    """Class decorator: the store's public coroutines raise `StoreUnavailable` for `errors`."""

    def guard(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except errors as exc:
                # The detail (a path, a host) stays in the chain for the log, not the user.
                raise StoreUnavailable(f"{type(exc).__name__}: {exc}") from exc

        return guarded

    def decorate(cls: type[S]) -> type[S]:
        for name, value in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(value):
                setattr(cls, name, guard(value))
        return cls

    return decorate


class Transitions:
    """`transition` and `update` for any backend, both built on its atomic `mutate`."""

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        """Read, change and write one action atomically (each backend's own)."""
        raise NotImplementedError

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


@unavailable_on(sqlite3.OperationalError)
class SQLiteStore(Transitions):
    """The embedded default: one file, WAL mode, safe for many tasks in one process."""

    def __init__(
        self, path: str | Path, *, owner: str | None = None, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL survives a process crash (only a power loss can drop the last
        # commits) and makes each commit ~25x cheaper on these disks (bench/).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self.owner = owner or process_owner()
        self._lease_seconds = lease_seconds
        self._keeper = LeaseKeeper(self._renew_lease, lease_seconds)

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
                current = PendingAction.from_json(json.loads(row[0]))
                updated = change(current)
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
                self._record_owner(current, updated)
                return updated
            finally:
                self._db.execute("COMMIT")

    def _put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                holder = self._live_holder(keys, now, action.id)
                if holder is not None:
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

    def _live_holder(self, keys: Sequence[str], now: float, mine: str) -> PendingAction | None:
        """Another action that still holds one of `keys` (call inside a transaction)."""
        for key in keys:
            row = self._db.execute(
                "SELECT a.data FROM locks l JOIN actions a ON a.id = l.action_id WHERE l.key = ?",
                (key,),
            ).fetchone()
            holder = PendingAction.from_json(json.loads(row[0])) if row else None
            if holder is not None and holder.id != mine and holds_lock(holder, now):
                return holder
        return None

    def _lock_more(self, action_id: str, keys: Sequence[str], now: float) -> PendingAction | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                holder = self._live_holder(keys, now, action_id)
                if holder is None:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO locks (key, action_id) VALUES (?, ?)",
                        [(key, action_id) for key in keys],
                    )
                return holder
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

    def _seen(self, key: str, ttl: float, now: float) -> bool:
        with self._lock:
            # One statement: an expired mark is renewed, a live one kept; no row changed = seen.
            cursor = self._db.execute(
                "INSERT INTO seen (key, until) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET until = excluded.until WHERE seen.until <= ?",
                (key, now + ttl, now),
            )
            if cursor.rowcount and secrets.randbelow(64) == 0:  # prune now and then
                self._db.execute("DELETE FROM seen WHERE until <= ?", (now,))
            return cursor.rowcount == 0

    def _record_owner(self, current: PendingAction, updated: PendingAction) -> None:
        # Inside _mutate's transaction: the claim and its owner are one atomic write.
        if updated.state is ActionState.EXECUTING and current.state is not ActionState.EXECUTING:
            self._db.execute(
                "INSERT OR REPLACE INTO owners (action_id, owner) VALUES (?, ?)",
                (updated.id, self.owner),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO leases (owner, until) VALUES (?, ?)",
                (self.owner, time.time() + self._lease_seconds),
            )
        elif updated.state is not ActionState.EXECUTING:
            self._db.execute("DELETE FROM owners WHERE action_id = ?", (updated.id,))

    def _renew_lease_sync(self) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO leases (owner, until) VALUES (?, ?)",
                (self.owner, time.time() + self._lease_seconds),
            )

    async def _renew_lease(self) -> None:
        await asyncio.to_thread(self._renew_lease_sync)

    def _orphans(self) -> list[PendingAction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT a.data, o.owner, l.until FROM actions a"
                " LEFT JOIN owners o ON o.action_id = a.id"
                " LEFT JOIN leases l ON l.owner = o.owner WHERE a.state = ?",
                (ActionState.EXECUTING.value,),
            ).fetchall()
        now = time.time()
        return [
            PendingAction.from_json(json.loads(data))
            for data, owner, until in rows
            if not owner_alive(owner, self.owner, until is not None and until > now)
        ]

    def _due(self, now: float) -> list[PendingAction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM actions WHERE state IN (?, ?) AND expires_at <= ?",
                (ActionState.PROPOSED.value, ActionState.SCHEDULED.value, now),
            ).fetchall()
        return [PendingAction.from_json(json.loads(r[0])) for r in rows]

    async def put(self, action: PendingAction) -> None:
        """Insert a new action."""
        await asyncio.to_thread(self._put, action)

    async def get(self, action_id: str) -> PendingAction | None:
        """The action, or None."""
        return await asyncio.to_thread(self._get, action_id)

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        """Read, change and write in one transaction."""
        updated = await asyncio.to_thread(self._mutate, action_id, change)
        if updated is not None and updated.state is ActionState.EXECUTING:
            self._keeper.ensure_running()
        return updated

    async def put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Insert holding `keys`, or return the live holder of one of them."""
        return await asyncio.to_thread(self._put_exclusive, action, keys, now)

    async def lock_more(
        self, action_id: str, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Extend an action's locks, or return the live holder of one of `keys`."""
        return await asyncio.to_thread(self._lock_more, action_id, keys, now)

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """A shared JSON value."""
        return await asyncio.to_thread(self._get_flag, name)

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        """Set or clear a shared JSON value."""
        await asyncio.to_thread(self._set_flag, name, value)

    async def seen(self, key: str, ttl: float) -> bool:
        """Mark `key` for `ttl` seconds; True if it was already marked (a replay)."""
        return await asyncio.to_thread(self._seen, key, ttl, time.time())

    async def due(self, now: float) -> list[PendingAction]:
        """Proposed actions past their expiry, and timed reverts past their due time."""
        return await asyncio.to_thread(self._due, now)

    async def orphans(self) -> list[PendingAction]:
        """Executing actions whose owner is gone."""
        return await asyncio.to_thread(self._orphans)

    def _history(self, since: float) -> list[PendingAction]:
        # expires_at is created_at + expiry, so it bounds the scan from below.
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM actions WHERE expires_at >= ?", (since,)
            ).fetchall()
        found = (PendingAction.from_json(json.loads(r[0])) for r in rows)
        return [a for a in found if a.created_at >= since]

    async def history(self, since: float) -> list[PendingAction]:
        """Actions created since `since`."""
        return await asyncio.to_thread(self._history, since)

    def _owner_of(self, action_id: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT owner FROM owners WHERE action_id = ?", (action_id,)
            ).fetchone()
        return str(row[0]) if row else None

    async def owner_of(self, action_id: str) -> str | None:
        """The owner recorded for an executing action."""
        return await asyncio.to_thread(self._owner_of, action_id)

    async def close(self) -> None:
        """Close the database; this owner's lease ends with it."""
        await self._keeper.stop()
        with self._lock:
            # A clean exit leaves nothing running: drop the lease so recovery need not wait.
            self._db.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))
            self._db.close()


def open_store(url: str) -> ActionStore:
    """The store an `ML_CHATOPS_STATE` URL names."""
    if url.startswith("sqlite:///"):
        return SQLiteStore.from_url(url)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from bot.adapters.store_redis import RedisStore  # imported only for a redis:// store

        return RedisStore.from_url(url)
    raise ValueError(f"ML_CHATOPS_STATE: unsupported store {url.split(':', 1)[0]!r} (yet)")
