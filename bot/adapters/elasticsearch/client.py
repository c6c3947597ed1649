"""The long-lived AsyncElasticsearch client of one cluster and how each request is sent.

Per-request headers (opaque id, run-as user) go through `perform_request`, a stop or start
goes through a retry-less client, and previews' reads queue behind a click's.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import elastic_transport
from elastic_transport import ObjectApiResponse
from elasticsearch import ApiError, AsyncElasticsearch
from pydantic import BaseModel

from bot.adapters.elasticsearch.errors import _transport_status
from bot.adapters.elasticsearch.schemas import bad_answer, not_an_object, parse
from bot.adapters.metrics import Metrics
from bot.app.ports import CallContext
from bot.core.config import ResolvedCluster
from bot.core.errors import ClusterForbidden

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# A click's requests: its re-check (5 reads in parallel), then the stop, then the verify.
CLICK_CONNECTIONS = 7


def build_client(cluster: ResolvedCluster) -> AsyncElasticsearch:
    """An AsyncElasticsearch for one configured cluster."""
    kwargs: dict[str, Any] = {
        "request_timeout": cluster.request_timeout,
        "connections_per_node": cluster.connections_per_node,
    }
    if cluster.cloud_id:
        kwargs["cloud_id"] = cluster.cloud_id
    else:
        kwargs["hosts"] = [cluster.url]
    if cluster.api_key is not None:
        kwargs["api_key"] = cluster.api_key.get_secret_value()
    elif cluster.username and cluster.password is not None:
        kwargs["basic_auth"] = (cluster.username, cluster.password.get_secret_value())
    if cluster.ca_certs:
        kwargs["ca_certs"] = cluster.ca_certs
    if not cluster.verify_certs:
        kwargs["verify_certs"] = False
    return AsyncElasticsearch(**kwargs)


class ClusterClient:
    """One cluster's client: headers, metrics, connection limits, shared in-flight reads."""

    def __init__(
        self,
        name: str,
        client: AsyncElasticsearch,
        timeout: float = 30.0,
        *,
        run_as: bool = False,
        run_as_users: Mapping[str, str] | None = None,
        metrics: Metrics | None = None,
        connections: int = 32,
    ) -> None:
        self.name = name
        self.client = client
        self.timeout = timeout
        self.run_as = run_as
        self.run_as_users = dict(run_as_users or {})
        self.metrics = metrics
        # Retry-less clients by timeout, made once: `options()` builds ~44 sub-clients.
        self._once_clients: dict[float, AsyncElasticsearch] = {}
        # Previews' and listings' requests leave one click's worth of connections free, so
        # a burst of previews (or a slow cluster) does not queue a click behind them.
        self._reading = asyncio.Semaphore(max(1, connections - CLICK_CONNECTIONS))
        # And at most half as many previews at once: in a burst the rest wait their turn
        # instead of all holding memory and CPU (a click's re-check never waits here).
        self._previews = asyncio.Semaphore(max(1, connections // 2))
        # Cluster-wide preview reads in flight, by (what, run-as user): see `_shared`.
        self._inflight: dict[tuple[str, str | None], asyncio.Future[Any]] = {}

    async def _timed(self, endpoint: str, call: Awaitable[T]) -> T:
        """Await one client call, recording its latency and status in the metrics."""
        started = time.monotonic()
        status = "error"
        try:
            response = await call
            status = str(getattr(getattr(response, "meta", None), "status", "ok"))
            return response
        except ApiError as exc:
            status = str(exc.meta.status)
            raise
        except elastic_transport.TransportError as exc:
            status = _transport_status(exc)
            raise
        finally:
            if self.metrics is not None:
                self.metrics.observe_es(self.name, endpoint, status, time.monotonic() - started)

    async def close(self) -> None:
        """Close the HTTP connections."""
        await self.client.close()

    def _headers(self, ctx: CallContext | None) -> dict[str, str]:
        """This call's opaque id and run-as user; ClusterForbidden if the user is unmapped."""
        ctx = ctx or CallContext()
        headers = {"accept": "application/json"}
        if ctx.opaque_id:
            headers["x-opaque-id"] = ctx.opaque_id
        if self.run_as:
            user = self.run_as_users.get(ctx.slack_user or "")
            if user is None:
                raise ClusterForbidden(
                    f"cluster `{self.name}` acts as each person's own Elasticsearch user, and "
                    f"none is mapped for <@{ctx.slack_user}>; ask an admin to add you to "
                    f"`clusters.{self.name}.run_as_users`",
                )
            headers["es-security-runas-user"] = user
        return headers

    def _once(self, timeout: float) -> AsyncElasticsearch:
        """The client that never resends, with this timeout (a stop or start runs once)."""
        client = self._once_clients.get(timeout)
        if client is None:
            client = self.client.options(max_retries=0, request_timeout=timeout)
            self._once_clients[timeout] = client
        return client

    async def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        ctx: CallContext | None,
        *,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        once: float | None = None,
        urgent: bool = False,
    ) -> ObjectApiResponse[Any]:
        """One request on the long-lived client with per-request headers (no `options()`).

        `once`: send it at most once, waiting this many seconds for the answer. A stop, start,
        verification or urgent `ctx` is a click's request: it never waits for previews'.
        """
        headers = self._headers(ctx)
        if body is not None:
            headers["content-type"] = "application/json"
        es = self.client if once is None else self._once(once)

        async def send() -> Any:
            return await self._timed(
                endpoint,
                es.perform_request(
                    method, path, params=params, headers=headers, body=body, endpoint_id=endpoint
                ),
            )

        try:
            if urgent or once is not None or (ctx is not None and ctx.urgent):
                response = await send()
            else:
                async with self._reading:
                    response = await send()
        except elastic_transport.SerializationError:
            # A 2xx whose body claims JSON but is not (truncated, a proxy's page).
            raise bad_answer(self.name, endpoint, "a body that is not valid JSON") from None
        if not isinstance(response, ObjectApiResponse):
            content_type = response.meta.headers.get("content-type") or ""
            what = not_an_object(response.body, content_type) or "not a JSON object"
            raise bad_answer(self.name, endpoint, what)
        return response

    async def _read(
        self,
        schema: type[M],
        endpoint: str,
        method: str,
        path: str,
        ctx: CallContext | None,
        **kwargs: Any,
    ) -> M:
        """`_request`, its answer checked against `schema` (ClusterBadAnswer if it is not)."""
        response = await self._request(endpoint, method, path, ctx, **kwargs)
        return parse(schema, response.body, cluster=self.name, endpoint=endpoint)

    async def _read_body(
        self,
        schema: type[BaseModel],
        endpoint: str,
        method: str,
        path: str,
        ctx: CallContext | None,
        **kwargs: Any,
    ) -> Mapping[str, Any]:
        """The answer's own body, once checked against `schema`, for the pure parsers.

        Cheaper than the model's dump on big answers (every model's `_stats`, every pipeline).
        """
        response = await self._request(endpoint, method, path, ctx, **kwargs)
        parse(schema, response.body, cluster=self.name, endpoint=endpoint)
        body: Mapping[str, Any] = response.body
        return body

    async def _shared(
        self, what: str, ctx: CallContext | None, read: Callable[[], Awaitable[T]]
    ) -> T:
        """Join the same cluster-wide read if one is in flight for the same run-as user.

        In a burst of previews most of their reads are the same few requests. A click's
        re-check (urgent) never joins: it must see the cluster as it is after the click.
        """
        if ctx is not None and ctx.urgent:
            return await read()
        key = (what, self._headers(ctx).get("es-security-runas-user"))
        running = self._inflight.get(key)
        if running is None:
            running = asyncio.ensure_future(read())
            self._inflight[key] = running
            running.add_done_callback(lambda done: self._forget(key, done))
        # One caller giving up (cancelled) must not cancel the read for the others.
        result: T = await asyncio.shield(running)
        return result

    def _forget(self, key: tuple[str, str | None], done: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller may have given up meanwhile


def _quote(value: str) -> str:
    """A path part as the client quotes it (`,` and `*` stay: lists and wildcards)."""
    return urllib.parse.quote(value, ",*")
