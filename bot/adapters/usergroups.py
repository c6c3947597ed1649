"""Slack user group membership with a TTL cache that fails closed.

The cache is in memory by default; replicas sharing Redis share it too (`RedisGroupCache`),
so one `usergroups.users.list` call serves every replica until the TTL runs out.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from bot.core.policy import Caller

if TYPE_CHECKING:
    import redis.asyncio as redis

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[frozenset[str]]]


class UnreadableAnswer(Exception):
    """Slack answered, but not with a member list: membership cannot be told."""


def members_in(answer: Mapping[str, Any]) -> frozenset[str]:
    """The user ids of a `usergroups.users.list` answer.

    An answer without a `users` list (even with `ok: true`) raises, so the group counts as
    unknown and is not cached: read as an empty group it would be cached for the whole TTL."""
    users = answer.get("users")
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise UnreadableAnswer(
            f"usergroups.users.list answered without a users list: {sorted(answer)}"
        )
    return frozenset(users)


class GroupCache(Protocol):
    """Recently fetched user group members, each kept for the cache's TTL."""

    async def get(self, group: str) -> frozenset[str] | None:
        """The members if cached and fresh, else None."""

    async def put(self, group: str, members: frozenset[str]) -> None:
        """Remember the members for the TTL."""

    async def clear(self) -> None:
        """Forget everything."""


class MemoryGroupCache:
    """One process's cache, aged by the injected clock."""

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, frozenset[str]]] = {}

    async def get(self, group: str) -> frozenset[str] | None:
        """Fresh members or None."""
        cached = self._entries.get(group)
        if cached and self._clock() - cached[0] < self._ttl:
            return cached[1]
        return None

    async def put(self, group: str, members: frozenset[str]) -> None:
        """Remember the members."""
        self._entries[group] = (self._clock(), members)

    async def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


class RedisGroupCache:
    """A cache every replica shares; Redis expires the entries after the TTL."""

    def __init__(self, client: redis.Redis, ttl: float, prefix: str = "ml-chatops:") -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = f"{prefix}usergroup:"

    async def get(self, group: str) -> frozenset[str] | None:
        """Fresh members or None; a Redis failure counts as a miss (the fetch decides)."""
        try:
            raw = await self._client.get(self._prefix + group)
        except Exception as exc:
            log.warning("shared usergroup cache unavailable: %s", exc)
            return None
        return frozenset(json.loads(raw)) if raw else None

    async def put(self, group: str, members: frozenset[str]) -> None:
        """Share the members with the other replicas."""
        try:
            await self._client.set(
                self._prefix + group, json.dumps(sorted(members)), px=self._ttl_ms
            )
        except Exception as exc:
            log.warning("shared usergroup cache unavailable: %s", exc)

    async def clear(self) -> None:
        """Forget every group (all replicas)."""
        keys = [k async for k in self._client.scan_iter(match=self._prefix + "*")]
        if keys:
            await self._client.delete(*keys)


class UsergroupResolver:
    """Answers which of the role map's user groups a user is in.

    A group whose members cannot be fetched is reported as unknown, never as
    "not a member" or "member": policy then denies what depended on it.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 300.0,
        clock: Callable[[], float],
        cache: GroupCache | None = None,
    ) -> None:
        self._fetch = fetch
        self._cache: GroupCache = cache or MemoryGroupCache(ttl, clock)

    async def _members(self, group: str) -> frozenset[str] | None:
        cached = await self._cache.get(group)
        if cached is not None:
            return cached
        try:
            members = await self._fetch(group)
        except Exception as exc:  # any failure of the directory means "unknown"
            log.warning("usergroup lookup failed", extra={"usergroup": group, "error": str(exc)})
            return None
        await self._cache.put(group, members)
        return members

    async def caller(self, user_id: str, channel_id: str, groups: Iterable[str]) -> Caller:
        """A policy Caller with the groups the user is in and the ones that could not be checked."""
        wanted = sorted(set(groups))
        results = await asyncio.gather(*(self._members(g) for g in wanted))
        member_of = frozenset(g for g, m in zip(wanted, results, strict=True) if m and user_id in m)
        unknown = frozenset(g for g, m in zip(wanted, results, strict=True) if m is None)
        return Caller(user_id, channel_id, member_of, unknown)

    async def invalidate(self) -> None:
        """Forget every cached membership."""
        await self._cache.clear()


async def no_groups(group: str) -> frozenset[str]:
    """A directory with no user groups (the local shell)."""
    return frozenset()
