"""Whether the bot may view every index's mappings (`_has_privileges`), cached for minutes.

`GET _mapping` answers only the indices the bot may view and `{}` when none, never 403,
so without this read a bot lacking `view_index_metadata` would see no semantic_text at all.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import elastic_transport
from elasticsearch import ApiError, AsyncElasticsearch

from bot.adapters.elasticsearch.errors import _reason

K = TypeVar("K")
V = TypeVar("V")

PATH = "/_security/user/_has_privileges"
VIEW_EVERY_INDEX = {"index": [{"names": ["*"], "privileges": ["view_index_metadata"]}]}
# Index privileges change rarely; a role edit shows in previews within this many seconds.
TTL = 300.0
# With security off the security APIs answer 500 with this, and every index is visible.
SECURITY_OFF = "Security must be explicitly enabled"


class TtlCache(Generic[K, V]):
    """Values by key, each forgotten `ttl` seconds after it was put."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        """The value put for `key` less than `ttl` seconds ago, else None."""
        item = self._items.get(key)
        if item is None or self.clock() - item[0] >= self.ttl:
            return None
        return item[1]

    def put(self, key: K, value: V) -> None:
        """Remember `value` for `key` from now on."""
        self._items[key] = (self.clock(), value)


def views_every_index(body: Mapping[str, Any]) -> bool:
    """Whether a `_has_privileges` answer grants `view_index_metadata` on `*`."""
    index = body.get("index") or {}
    return bool((index.get("*") or {}).get("view_index_metadata"))


# Transports whose cluster said security is off. Turning security on takes a cluster
# restart, after which the bot's other requests say so (401); until then asking again would
# only draw the same 500, and elastic_transport's "putting on timeout" warning, again.
_SECURITY_OFF: weakref.WeakSet[Any] = weakref.WeakSet()


def security_off(client: AsyncElasticsearch) -> bool:
    """Whether this client's cluster already said security is off (no need to ask again)."""
    return client.transport in _SECURITY_OFF


def revive(client: AsyncElasticsearch) -> None:
    """Remember that security is off, and put every node back in the live pool.

    The node answered (security is simply off), but the transport counts any 5xx as a node
    failure and would route requests around a healthy node for up to a minute."""
    _SECURITY_OFF.add(client.transport)
    pool = client.transport.node_pool
    for node in pool.all():
        pool.mark_live(node)


def unchecked(exc: Exception) -> bool | str:
    """A failed read: True when security is off (all visible), else why it is unknown."""
    if isinstance(exc, ApiError):
        reason = _reason(exc)
        if SECURITY_OFF in reason:
            return True
        return f"could not check which indices the bot may view ({exc.meta.status}: {reason})"
    if isinstance(exc, elastic_transport.TransportError):
        return f"could not check which indices the bot may view ({type(exc).__name__})"
    raise exc
