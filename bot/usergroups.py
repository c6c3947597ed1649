"""Slack user group membership with a TTL cache that fails closed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from bot.policy import Caller

log = logging.getLogger(__name__)

Fetch = Callable[[str], Awaitable[frozenset[str]]]


class UsergroupResolver:
    """Answers which of the role map's user groups a user is in.

    A group whose members cannot be fetched is reported as unknown, never as
    "not a member" or "member": policy then denies what depended on it.
    """

    def __init__(self, fetch: Fetch, *, ttl: float = 300.0, clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def _members(self, group: str) -> frozenset[str] | None:
        cached = self._cache.get(group)
        if cached and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            members = await self._fetch(group)
        except Exception as exc:  # any failure of the directory means "unknown"
            log.warning("usergroup lookup failed", extra={"usergroup": group, "error": str(exc)})
            return None
        self._cache[group] = (self._clock(), members)
        return members

    async def caller(self, user_id: str, channel_id: str, groups: Iterable[str]) -> Caller:
        """A policy Caller with the groups the user is in and the ones that could not be checked."""
        wanted = sorted(set(groups))
        results = await asyncio.gather(*(self._members(g) for g in wanted))
        member_of = frozenset(g for g, m in zip(wanted, results, strict=True) if m and user_id in m)
        unknown = frozenset(g for g, m in zip(wanted, results, strict=True) if m is None)
        return Caller(user_id, channel_id, member_of, unknown)

    def invalidate(self) -> None:
        """Forget every cached membership."""
        self._cache.clear()


async def no_groups(group: str) -> frozenset[str]:
    """A directory with no user groups (the local shell)."""
    return frozenset()
