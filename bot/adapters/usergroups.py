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


# A lookup that takes longer than this fails closed: a preview never waits on Slack longer.
LOOKUP_DEADLINE = 3.0
# A lookup that ran out of time is not retried for this long: one slow group must not make
# every request wait again. A 429 waits its Retry-After, at most MAX_FAILURE_TTL. Failures
# that come at once (`ok: false`, an unreadable answer) are asked again next time.
FAILURE_TTL = 15.0
MAX_FAILURE_TTL = 120.0


class UnreadableAnswer(Exception):
    """Slack answered, but not with a member list: membership cannot be told."""


class RateLimited(Exception):
    """Slack answered 429: ask again after `retry_after` seconds, not before."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after:g} s")
        self.retry_after = retry_after


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
        deadline: float = LOOKUP_DEADLINE,
        failure_ttl: float = FAILURE_TTL,
    ) -> None:
        self._fetch = fetch
        self._cache: GroupCache = cache or MemoryGroupCache(ttl, clock)
        self._clock = clock
        self._deadline = deadline
        self._failure_ttl = failure_ttl
        self._failed: dict[str, float] = {}  # group → until when a lookup is not retried
        self._inflight: dict[str, asyncio.Future[frozenset[str] | None]] = {}

    async def _members(self, group: str) -> frozenset[str] | None:
        cached = await self._cache.get(group)
        if cached is not None:
            return cached
        if self._clock() < self._failed.get(group, float("-inf")):
            return None  # failed a moment ago: fail closed again without asking
        running = self._inflight.get(group)
        if running is None:  # one lookup per group at a time, whoever is waiting for it
            running = asyncio.ensure_future(self._lookup(group))
            self._inflight[group] = running
            running.add_done_callback(lambda _: self._inflight.pop(group, None))
        return await asyncio.shield(running)

    async def _lookup(self, group: str) -> frozenset[str] | None:
        """Ask Slack within the deadline; None (unknown) on any failure."""
        try:
            members = await asyncio.wait_for(self._fetch(group), self._deadline)
        except UnreadableAnswer as exc:  # answered at once: asking again costs nothing
            self._log_failure(group, str(exc))
            return None
        except RateLimited as exc:
            pause = min(max(exc.retry_after, 1.0), MAX_FAILURE_TTL)
            self._failed[group] = self._clock() + pause
            self._log_failure(group, str(exc))
            return None
        except TimeoutError:
            self._failed[group] = self._clock() + self._failure_ttl
            self._log_failure(group, f"no answer within {self._deadline:g} s")
            return None
        except Exception as exc:  # any failure of the directory means "unknown"
            # Answered at once (`ok: false`, a refused connection): not remembered, so a
            # fixed scope or a Slack back up lets the member in at the next request.
            self._log_failure(group, str(exc) or type(exc).__name__)
            return None
        self._failed.pop(group, None)
        await self._cache.put(group, members)
        return members

    @staticmethod
    def _log_failure(group: str, error: str) -> None:
        log.warning("usergroup lookup failed", extra={"usergroup": group, "error": error})

    async def caller(self, user_id: str, channel_id: str, groups: Iterable[str]) -> Caller:
        """A policy Caller with the groups the user is in and the ones that could not be checked."""
        wanted = sorted(set(groups))
        results = await asyncio.gather(*(self._members(g) for g in wanted))
        member_of = frozenset(g for g, m in zip(wanted, results, strict=True) if m and user_id in m)
        unknown = frozenset(g for g, m in zip(wanted, results, strict=True) if m is None)
        return Caller(user_id, channel_id, member_of, unknown)

    async def invalidate(self) -> None:
        """Forget every cached membership (and every remembered failure)."""
        self._failed.clear()
        await self._cache.clear()


async def no_groups(group: str) -> frozenset[str]:
    """A directory with no user groups (the local shell)."""
    return frozenset()
