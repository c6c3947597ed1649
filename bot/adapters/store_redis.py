"""Redis backend of the `ActionStore`: any number of replicas share one Redis.

Each action is a hash (`data` JSON, `state`, `expires_at`, `rev`). Every write is one Lua
script that checks the revision it read, so `mutate` is an optimistic compare-and-set:
a racing writer makes the script refuse, and the change is re-applied to the new value.
Indexes kept by the same scripts: `due` (proposed actions by expiry), `created` (every
action by creation time, for history), `executing` (action id → owner) and per-owner
leases, which recovery reads to find orphans.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

import redis.asyncio as redis

from bot.adapters.store_sqlite import (
    LEASE_SECONDS,
    Change,
    LeaseKeeper,
    Transitions,
    holds_lock,
    owner_alive,
    process_owner,
    unavailable_on,
)
from bot.core.model import ActionState, PendingAction

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "ml-chatops:"
RETAIN_SECONDS = 30 * 86_400  # final actions are kept this long, then Redis drops them
MAX_ATTEMPTS = 64  # each refused attempt means another writer succeeded

# KEYS: action hash, due zset, executing hash, this owner's lease, created zset
# ARGV: id, rev read ("" = must not exist), data, state, expires_at, claim ("1"/"0"),
#       owner, lease ms, retain ms, created_at
_COMMIT = """
local rev = redis.call('HGET', KEYS[1], 'rev')
if ARGV[2] == '' then
  if rev then return 0 end
  redis.call('ZADD', KEYS[5], ARGV[10], ARGV[1])
  if tonumber(ARGV[9]) > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[10] - ARGV[9] / 1000)
  end
elseif rev ~= ARGV[2] then
  return 0
end
local new = (tonumber(rev) or 0) + 1
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'state', ARGV[4], 'expires_at', ARGV[5], 'rev', new)
if ARGV[4] == 'proposed' or ARGV[4] == 'scheduled' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
end
if ARGV[4] == 'executing' then
  if ARGV[6] == '1' then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[7])
    redis.call('SET', KEYS[4], '1', 'PX', ARGV[8])
  end
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
if ARGV[4] == 'proposed' or ARGV[4] == 'executing' or ARGV[4] == 'scheduled' then
  redis.call('PERSIST', KEYS[1])
elseif tonumber(ARGV[9]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[9])
end
return new
"""

# KEYS: action hash, due zset, created zset, lock keys...
# ARGV: id, data, state, expires_at, now, action key prefix, created_at
_PUT_EXCLUSIVE = """
for i = 4, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder then
    local f = redis.call('HMGET', ARGV[6] .. holder, 'state', 'expires_at')
    if f[1] == 'executing' or (f[1] == 'proposed' and tonumber(f[2]) > tonumber(ARGV[5])) then
      return holder
    end
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('action id exists')
end
redis.call('HSET', KEYS[1], 'data', ARGV[2], 'state', ARGV[3], 'expires_at', ARGV[4], 'rev', 1)
if ARGV[3] == 'proposed' then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
for i = 4, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1])
end
return ''
"""


_LOCK_MORE = """
for i = 1, #KEYS do
  local holder = redis.call('GET', KEYS[i])
  if holder and holder ~= ARGV[1] then
    local f = redis.call('HMGET', ARGV[3] .. holder, 'state', 'expires_at')
    if f[1] == 'executing' or (f[1] == 'proposed' and tonumber(f[2]) > tonumber(ARGV[2])) then
      return holder
    end
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1])
end
return ''
"""


class StoreContention(RuntimeError):
    """A change lost its compare-and-set too many times in a row."""


@unavailable_on(redis.ConnectionError, redis.TimeoutError)
class RedisStore(Transitions):
    """Pending actions in Redis; all replicas pointing at one Redis see one state."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        owner: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        retain_seconds: float = RETAIN_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.owner = owner or process_owner()
        self._lease_ms = int(lease_seconds * 1000)
        self._retain_ms = int(retain_seconds * 1000)
        self._commit = client.register_script(_COMMIT)
        self._put_exclusive = client.register_script(_PUT_EXCLUSIVE)
        self._lock_more = client.register_script(_LOCK_MORE)
        self._keeper = LeaseKeeper(self._renew_lease, lease_seconds)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """`redis://host:port/db` (also `rediss://` and `unix://`); connects lazily."""
        return cls(redis.Redis.from_url(url, decode_responses=True), **kwargs)

    # ---- keys ---------------------------------------------------------------------------

    def _key(self, action_id: str) -> str:
        return f"{self.prefix}a:{action_id}"

    @property
    def _due_key(self) -> str:
        return f"{self.prefix}due"

    @property
    def _created_key(self) -> str:
        return f"{self.prefix}created"

    @property
    def _executing_key(self) -> str:
        return f"{self.prefix}executing"

    def _lease_key(self, owner: str) -> str:
        return f"{self.prefix}lease:{owner}"

    # ---- writes -------------------------------------------------------------------------

    async def _write(self, action: PendingAction, rev: str, claim: bool) -> bool:
        written = await self._commit(
            keys=[
                self._key(action.id),
                self._due_key,
                self._executing_key,
                self._lease_key(self.owner),
                self._created_key,
            ],
            args=[
                action.id,
                rev,
                json.dumps(action.to_json()),
                action.state.value,
                repr(action.expires_at),
                "1" if claim else "0",
                self.owner,
                self._lease_ms,
                self._retain_ms,
                repr(action.created_at),
            ],
        )
        if written and claim:
            self._keeper.ensure_running()
        return bool(written)

    async def put(self, action: PendingAction) -> None:
        """Insert a new action; ValueError if the id exists."""
        if not await self._write(action, "", action.state is ActionState.EXECUTING):
            raise ValueError(f"action {action.id} already exists")

    async def mutate(self, action_id: str, change: Change) -> PendingAction | None:
        """Read, change, write if nobody wrote in between; otherwise re-read and retry."""
        key = self._key(action_id)
        for _ in range(MAX_ATTEMPTS):
            rev, data = await self.client.hmget(key, ["rev", "data"])
            if rev is None or data is None:
                return None
            current = PendingAction.from_json(json.loads(data))
            updated = change(current)
            if updated is None:
                return None
            if updated.id != action_id:
                raise ValueError("a change may not alter the action id")
            claim = (
                updated.state is ActionState.EXECUTING
                and current.state is not ActionState.EXECUTING
            )
            if await self._write(updated, str(rev), claim):
                return updated
        raise StoreContention(f"action {action_id}: {MAX_ATTEMPTS} concurrent writes in a row")

    async def put_exclusive(
        self, action: PendingAction, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Insert holding `keys`, or return the live holder of one of them."""
        for _ in range(MAX_ATTEMPTS):
            holder_id = await self._put_exclusive(
                keys=[
                    self._key(action.id),
                    self._due_key,
                    self._created_key,
                    *(f"{self.prefix}lock:{k}" for k in keys),
                ],
                args=[
                    action.id,
                    json.dumps(action.to_json()),
                    action.state.value,
                    repr(action.expires_at),
                    repr(now),
                    f"{self.prefix}a:",
                    repr(action.created_at),
                ],
            )
            if not holder_id:
                return None
            holder = await self.get(str(holder_id))
            # The holder may have ended since the script saw it: then the key is free; retry.
            if holder is not None and holds_lock(holder, now):
                return holder
        raise StoreContention(f"action {action.id}: deployment locks kept changing hands")

    async def lock_more(
        self, action_id: str, keys: Sequence[str], now: float
    ) -> PendingAction | None:
        """Extend an action's locks, or return the live holder of one of `keys`."""
        for _ in range(MAX_ATTEMPTS):
            holder_id = await self._lock_more(
                keys=[f"{self.prefix}lock:{k}" for k in keys],
                args=[action_id, repr(now), f"{self.prefix}a:"],
            )
            if not holder_id:
                return None
            holder = await self.get(str(holder_id))
            if holder is not None and holds_lock(holder, now):
                return holder
        raise StoreContention(f"action {action_id}: deployment locks kept changing hands")

    # ---- reads --------------------------------------------------------------------------

    async def get(self, action_id: str) -> PendingAction | None:
        """The action, or None."""
        data = await self.client.hget(self._key(action_id), "data")
        return PendingAction.from_json(json.loads(data)) if data else None

    async def _many(self, ids: Sequence[str]) -> list[PendingAction]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for action_id in ids:
            pipe.hget(self._key(action_id), "data")
        rows = await pipe.execute()
        return [PendingAction.from_json(json.loads(d)) for d in rows if d]

    async def due(self, now: float) -> list[PendingAction]:
        """Proposed actions past their expiry, and timed reverts past their due time."""
        ids = [str(i) for i in await self.client.zrangebyscore(self._due_key, "-inf", now)]
        waiting = (ActionState.PROPOSED, ActionState.SCHEDULED)
        return [a for a in await self._many(ids) if a.state in waiting]

    async def history(self, since: float) -> list[PendingAction]:
        """Actions created at or after `since`, oldest first (as long as Redis keeps them)."""
        ids = [str(i) for i in await self.client.zrangebyscore(self._created_key, since, "+inf")]
        return await self._many(ids)

    async def orphans(self) -> list[PendingAction]:
        """Executing actions whose owner has no live lease (or is a dead pid on this host)."""
        owners = cast(
            dict[str, str],
            await self.client.hgetall(self._executing_key),
        )
        distinct = sorted(set(owners.values()))
        pipe = self.client.pipeline(transaction=False)
        for owner in distinct:
            pipe.exists(self._lease_key(owner))
        live_lease = dict(zip(distinct, await pipe.execute(), strict=True))
        dead = [i for i, o in owners.items() if not owner_alive(o, self.owner, bool(live_lease[o]))]
        return [a for a in await self._many(dead) if a.state is ActionState.EXECUTING]

    async def owner_of(self, action_id: str) -> str | None:
        """The owner recorded for an executing action."""
        owner = await self.client.hget(self._executing_key, action_id)
        return str(owner) if owner is not None else None

    # ---- flags --------------------------------------------------------------------------

    async def get_flag(self, name: str) -> dict[str, Any] | None:
        """A shared JSON value."""
        raw = await self.client.get(f"{self.prefix}flag:{name}")
        return cast(dict[str, Any], json.loads(raw)) if raw else None

    async def set_flag(self, name: str, value: dict[str, Any] | None) -> None:
        """Set or clear a shared JSON value."""
        key = f"{self.prefix}flag:{name}"
        if value is None:
            await self.client.delete(key)
        else:
            await self.client.set(key, json.dumps(value))

    async def seen(self, key: str, ttl: float) -> bool:
        """Mark `key` for `ttl` seconds; True if it was already marked (a replay)."""
        first = await self.client.set(f"{self.prefix}seen:{key}", "1", nx=True, px=int(ttl * 1000))
        return not first

    # ---- lifecycle ----------------------------------------------------------------------

    async def _renew_lease(self) -> None:
        await self.client.set(self._lease_key(self.owner), repr(time.time()), px=self._lease_ms)

    async def ping(self) -> bool:
        """Whether Redis answers (for readiness)."""
        return bool(await self.client.ping())

    async def close(self) -> None:
        """Stop the lease, drop it (nothing runs after a clean exit) and disconnect."""
        await self._keeper.stop()
        try:
            await self.client.delete(self._lease_key(self.owner))
        except Exception as exc:  # Redis gone: the lease simply runs out instead
            log.warning("could not drop the lease on close: %s", exc)
        finally:
            await self.client.aclose()
