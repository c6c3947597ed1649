"""Elasticsearch gateway: resolve ids to deployments, find pipelines, stop; errors → domain errors.

The domain error classes and what each means are in `bot.core.errors`.

The stop endpoint expands nothing and answers `{"stopped": true}` for unknown ids,
so the bot resolves what the user typed through `_stats` first and stops each
concrete deployment with `allow_no_match=false` (see reference §2).
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import elastic_transport
from elastic_transport import ObjectApiResponse
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
    ConflictError,
    NotFoundError,
)

from bot.adapters.metrics import Metrics
from bot.app.ports import CallContext as CallContext
from bot.app.ports import Verification as Verification
from bot.core.config import ResolvedCluster
from bot.core.errors import (
    ClusterAuthError,
    ClusterBadRequest,
    ClusterError,
    ClusterForbidden,
    ClusterTimeout,
    ClusterTLSError,
    ClusterUnavailable,
    ClusterUnexpected,
    ClusterUnreachable,
    DeploymentConflict,
    DeploymentNotFound,
    UnknownCluster,
)
from bot.core.impact import (
    ClusterFacts,
    Endpoint,
    SemanticField,
    StartPlan,
    impact_of,
    parse_endpoints,
    parse_semantic_fields,
    plan_start,
)
from bot.core.model import Deployment, Resolution, StartOutcome, StopOutcome

ElasticError = ClusterError  # the old name, kept for callers
T = TypeVar("T")

PAGE_SIZE = 1000
VERIFY_FIRST_WAIT = 0.1
VERIFY_MAX_WAIT = 2.0
START_TIMEOUT = 120.0
MAX_PROCESSOR_DEPTH = 10  # Elasticsearch stops scanning nested processors here too
FINISH_PENDING_WORK_TIMEOUT = 300.0  # a graceful drain may take up to ~5 minutes
# A click's requests: its re-check (5 reads in parallel), then the stop, then the verify.
CLICK_CONNECTIONS = 7
# Only what the impact needs: the mapping of a big cluster is megabytes otherwise.
MAPPING_FILTER = [
    "*.mappings.**.type",
    "*.mappings.**.inference_id",
    "*.mappings.**.search_inference_id",
]
STATS_ALL = "/_ml/trained_models/_stats"
# Of a model's config only its id and aliases are used; the rest can be large.
MODELS_FILTER = [
    "count",
    "trained_model_configs.model_id",
    "trained_model_configs.metadata.model_aliases",
]
ENDPOINT_FILTER = [
    "endpoints.inference_id",
    "endpoints.task_type",
    "endpoints.service",
    "endpoints.service_settings",
]


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


def _reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            causes = err.get("root_cause") or []
            if causes and isinstance(causes[0], dict) and causes[0].get("reason"):
                return str(causes[0]["reason"])
            return str(err.get("reason") or err.get("type") or exc.message)
        if isinstance(err, str):
            return err
    return str(exc.message)


def _error_type(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type", ""))
    return ""


def _conflict_message(deployment_id: str, reason: str, pipelines: Sequence[str]) -> str:
    used_by = ", ".join(f"`{p}`" for p in pipelines)
    if "model_alias [" in reason:
        alias = reason.split("model_alias [", 1)[1].split("]", 1)[0]
        what = f"its model alias `{alias}` is used by ingest pipelines"
        return (
            f"deployment `{deployment_id}` was not stopped: {what}"
            + (f" ({used_by})" if used_by else "")
            + "; add `--force` to stop it anyway"
        )
    if "inference endpoint" in reason:
        return (
            f"deployment `{deployment_id}` was not stopped: {reason}; "
            "add `--force` to stop it anyway"
        )
    if used_by:
        return (
            f"deployment `{deployment_id}` is used by ingest pipeline(s) {used_by}; "
            "add `--force` to stop it anyway"
        )
    return f"deployment `{deployment_id}` was not stopped: {reason}"


def to_domain_error(
    exc: Exception,
    *,
    cluster: str,
    operation: str,
    deployment_id: str | None = None,
    pipelines: Sequence[str] = (),
    timeout: float | None = None,
) -> ElasticError:
    """Map a client or transport exception to a message a person can act on."""
    if isinstance(exc, ApiError):
        return _api_error(exc, cluster, operation, deployment_id, pipelines)
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        waited = f" within {timeout:g} s" if timeout else ""
        tail = (
            "; the stop may still be in progress: check `/ml-deployments`"
            if operation == "stop"
            else "; try again"
        )
        return ClusterTimeout(f"cluster `{cluster}` did not answer{waited}{tail}")
    if isinstance(exc, elastic_transport.TlsError):
        return ClusterTLSError(
            f"TLS handshake with cluster `{cluster}` failed ({exc.message}); "
            "check its CA certificate (`ca_certs` / ELASTICSEARCH_CA_CERTS)",
        )
    if isinstance(exc, elastic_transport.ConnectionError):
        return ClusterUnreachable(
            f"cannot reach cluster `{cluster}` ({exc.message}); is it up and is the URL right?",
        )
    return ClusterUnexpected(f"unexpected error talking to cluster `{cluster}`: {exc}")


def _api_error(
    exc: ApiError,
    cluster: str,
    operation: str,
    deployment_id: str | None,
    pipelines: Sequence[str],
) -> ElasticError:
    status = exc.meta.status
    reason = _reason(exc)
    if isinstance(exc, NotFoundError) and deployment_id:
        return DeploymentNotFound(
            f"deployment `{deployment_id}` no longer exists on `{cluster}` "
            "(stopped already, or never deployed)",
            status=status,
        )
    if isinstance(exc, ConflictError) and deployment_id:
        return DeploymentConflict(
            _conflict_message(deployment_id, reason, pipelines), status=status
        )
    if isinstance(exc, AuthorizationException) and " run as [" in reason:
        return ClusterForbidden(
            f"cluster `{cluster}` refused to {operation} as your Elasticsearch user: {reason}",
            status=status,
        )
    if isinstance(exc, AuthorizationException) and "unauthorized to run as" in reason:
        return ClusterForbidden(
            f"the bot may not act as your Elasticsearch user on `{cluster}` (run_as): {reason}",
            status=status,
        )
    if isinstance(exc, AuthorizationException):
        advice = "give its role `manage_ml`"
        if "granted by the cluster privileges [" in reason:
            privileges = reason.split("granted by the cluster privileges [", 1)[1].split("]")[0]
            advice = f"give its role one of the cluster privileges {privileges}"
        return ClusterForbidden(
            f"the bot's Elasticsearch user may not {operation} on `{cluster}`; {advice}",
            status=status,
        )
    if isinstance(exc, AuthenticationException):
        return ClusterAuthError(
            f"cluster `{cluster}` rejected the bot's credentials (401); check its API key "
            "or user and password",
            status=status,
        )
    if status == 429:
        return ClusterUnavailable(
            f"cluster `{cluster}` is overloaded (429 {_error_type(exc)}: {reason}); "
            "try again in a minute",
            status=status,
        )
    if status >= 500:
        return ClusterUnavailable(
            f"cluster `{cluster}` failed ({status} {_error_type(exc)}: {reason}); "
            "try again, or check the cluster's health",
            status=status,
        )
    return ClusterBadRequest(
        f"cluster `{cluster}` rejected the request ({status}: {reason})",
        status=status,
    )


def _transport_status(exc: elastic_transport.TransportError) -> str:
    """The metrics' status label for a call that got no HTTP answer."""
    if isinstance(exc, elastic_transport.ConnectionTimeout):
        return "timeout"
    if isinstance(exc, elastic_transport.TlsError):
        return "tls"
    if isinstance(exc, elastic_transport.ConnectionError):
        return "unreachable"
    return "error"


def inference_model_ids(processors: Iterable[Any], depth: int = 0) -> Iterator[str]:
    """Every `inference` processor's model_id, as Elasticsearch scans them (foreach, on_failure)."""
    if depth >= MAX_PROCESSOR_DEPTH:
        return
    for proc in processors:
        if not isinstance(proc, dict):
            continue
        for kind, conf in proc.items():
            if not isinstance(conf, dict):
                continue
            if kind == "inference" and isinstance(conf.get("model_id"), str):
                yield conf["model_id"]
            if kind == "foreach" and isinstance(conf.get("processor"), dict):
                yield from inference_model_ids([conf["processor"]], depth + 1)
            if isinstance(conf.get("on_failure"), list):
                yield from inference_model_ids(conf["on_failure"], depth + 1)


def pipeline_references(pipelines: Mapping[str, Any]) -> dict[str, set[str]]:
    """model_id (or alias or deployment id) → names of the pipelines that reference it."""
    refs: dict[str, set[str]] = {}
    for name, body in pipelines.items():
        processors = body.get("processors", []) if isinstance(body, dict) else []
        for model_id in inference_model_ids(processors):
            refs.setdefault(model_id, set()).add(name)
    return refs


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def deployment_from_stats(
    entry: Mapping[str, Any], pipelines: Sequence[str] = (), facts: ClusterFacts | None = None
) -> Deployment:
    """Build a Deployment from one `trained_model_stats` entry with `deployment_stats`."""
    ds = entry["deployment_stats"]
    alloc = ds.get("allocation_status") or {}
    nodes = ds.get("nodes") or []
    inference = ds.get("inference_count")
    if inference is None:
        inference = sum(int(n.get("inference_count", 0)) for n in nodes)
    deployment_id = str(ds.get("deployment_id") or entry["model_id"])
    model_id = str(ds.get("model_id") or entry["model_id"])
    return Deployment(
        deployment_id=deployment_id,
        model_id=model_id,
        state=str(ds.get("state", "unknown")),
        allocations=_int(alloc.get("allocation_count")),
        target_allocations=_int(
            alloc.get("target_allocation_count", ds.get("number_of_allocations"))
        ),
        threads_per_allocation=_int(ds.get("threads_per_allocation")),
        priority=str(ds.get("priority", "normal")),
        queue_capacity=_int(ds.get("queue_capacity")),
        cache_size=ds.get("cache_size"),
        adaptive_allocations=ds.get("adaptive_allocations"),
        inference_count=int(inference),
        pending_requests=sum(int(n.get("number_of_pending_requests", 0)) for n in nodes),
        pipelines=tuple(pipelines),
        impact=impact_of(deployment_id, model_id, facts) if facts is not None else None,
    )


def _unreadable(what: str, privilege: str, exc: Exception) -> str:
    """Why an impact read failed, for the preview's "unknown" line."""
    if isinstance(exc, AuthorizationException):
        return f"could not read {what}: missing {privilege}"
    if isinstance(exc, ApiError):
        return f"could not read {what} ({exc.meta.status}: {_reason(exc)})"
    return f"could not read {what} ({type(exc).__name__})"


def _matches(expression: str, deployment_id: str) -> bool:
    if expression in ("_all", "*"):
        return True
    if "*" in expression:
        # Only `*` is a wildcard in Elasticsearch ids; escape fnmatch's other metacharacters.
        pattern = expression.replace("[", "[[]").replace("?", "[?]")
        return fnmatch.fnmatchcase(deployment_id, pattern)
    return expression == deployment_id


@dataclass(frozen=True)
class ClusterSnapshot:
    """Deployments, the model ids seen, and pipeline references, read together."""

    entries: tuple[Mapping[str, Any], ...]
    aliases: Mapping[str, tuple[str, ...]]  # model_id → its model aliases
    refs: Mapping[str, set[str]]
    endpoints: tuple[Endpoint, ...] | None = ()  # None: could not be read
    fields: tuple[SemanticField, ...] | None = ()
    unknown: tuple[str, ...] = ()

    def facts(self) -> ClusterFacts:
        """The reads the impact of a stop is computed from."""
        return ClusterFacts(
            refs={k: frozenset(v) for k, v in self.refs.items()},
            aliases=self.aliases,
            endpoints=self.endpoints,
            fields=self.fields,
            unknown=self.unknown,
        )

    def pipelines_for(self, deployment_id: str) -> tuple[str, ...]:
        """Pipelines whose inference processors would make a plain stop fail with 409."""
        names = set(self.refs.get(deployment_id, set()))
        for alias in self.aliases.get(deployment_id, ()):
            names |= self.refs.get(alias, set())
        return tuple(sorted(names))

    def start_plan(self, deployment_id: str, model_id: str) -> StartPlan:
        """What starting `model_id` as `deployment_id` would bring back, from this snapshot."""
        models = {str(e.get("model_id")) for e in self.entries}
        models |= {a for names in self.aliases.values() for a in names}
        running = {
            str(e["deployment_stats"].get("deployment_id") or e["model_id"])
            for e in self.entries
            if "deployment_stats" in e
        }
        return plan_start(
            deployment_id,
            model_id,
            models=models,
            running=running,
            endpoints=self.endpoints or (),
        )

    def deployments(self) -> list[Deployment]:
        """Every deployment in the snapshot."""
        out = []
        facts = self.facts()
        for entry in self.entries:
            if "deployment_stats" in entry:
                dep_id = entry["deployment_stats"].get("deployment_id") or entry["model_id"]
                out.append(deployment_from_stats(entry, self.pipelines_for(dep_id), facts))
        return out


class ClusterGateway:
    """All Elasticsearch I/O for one cluster."""

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

        if urgent or once is not None or (ctx is not None and ctx.urgent):
            response = await send()
        else:
            async with self._reading:
                response = await send()
        assert isinstance(response, ObjectApiResponse)
        return response

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

    async def _stats(
        self, ctx: CallContext | None, ids: Sequence[str] | None
    ) -> list[Mapping[str, Any]]:
        """`_stats` of what `ids` name (a model id, deployment id or wildcard each), paged.

        None, `_all` or `*` read every model. An explicit id that matches nothing makes
        Elasticsearch answer 404 for the whole list; then every model is read, so the
        caller can still say which id matched nothing (and whether it names a model).
        """
        everything = ids is None or any(e in ("_all", "*") for e in ids)
        expression = None if ids is None or everything else ",".join(ids)
        try:
            return await self._stats_pages(ctx, expression)
        except NotFoundError:
            if expression is None:
                raise
            return await self._stats_pages(ctx, None)

    async def _stats_pages(
        self, ctx: CallContext | None, expression: str | None
    ) -> list[Mapping[str, Any]]:
        path = f"/_ml/trained_models/{_quote(expression)}/_stats" if expression else STATS_ALL
        entries: list[Mapping[str, Any]] = []
        start = 0
        while True:
            page = await self._request(
                "ml.get_trained_models_stats",
                "GET",
                path,
                ctx,
                params={"from": start, "size": PAGE_SIZE},
            )
            entries.extend(page.body.get("trained_model_stats", []))
            start += PAGE_SIZE
            if start >= int(page.body.get("count", 0)):
                return entries

    async def _aliases(self, ctx: CallContext | None) -> dict[str, tuple[str, ...]]:
        aliases: dict[str, tuple[str, ...]] = {}
        start = 0
        while True:
            page = await self._request(
                "ml.get_trained_models",
                "GET",
                "/_ml/trained_models",
                ctx,
                params={"from": start, "size": PAGE_SIZE, "filter_path": MODELS_FILTER},
            )
            for cfg in page.body.get("trained_model_configs", []):
                found = (cfg.get("metadata") or {}).get("model_aliases") or []
                if found:
                    aliases[cfg["model_id"]] = tuple(found)
            start += PAGE_SIZE
            if start >= int(page.body.get("count", 0)):
                return aliases

    async def _pipelines(self, ctx: CallContext | None) -> dict[str, set[str]]:
        try:
            resp = await self._request("ingest.get_pipeline", "GET", "/_ingest/pipeline", ctx)
        except NotFoundError:
            return {}  # 404 with `{}`: the cluster has no pipelines at all
        return pipeline_references(resp.body)

    async def _endpoints(self, ctx: CallContext | None) -> tuple[Endpoint, ...] | str:
        """Inference endpoints, or why they could not be read."""
        try:
            resp = await self._request(
                "inference.get",
                "GET",
                "/_inference/_all",
                ctx,
                params={"filter_path": ENDPOINT_FILTER},
            )
        except (ApiError, elastic_transport.TransportError) as exc:
            return _unreadable("inference endpoints", "monitor_inference", exc)
        return parse_endpoints(resp.body)

    async def _semantic_fields(self, ctx: CallContext | None) -> tuple[SemanticField, ...] | str:
        """Every semantic_text field the bot may see, or why the mappings could not be read."""
        try:
            resp = await self._request(
                "indices.get_mapping",
                "GET",
                "/_mapping",
                ctx,
                params={"filter_path": MAPPING_FILTER},
            )
        except (ApiError, elastic_transport.TransportError) as exc:
            return _unreadable("index mappings", "view_index_metadata", exc)
        return parse_semantic_fields(resp.body)

    async def snapshot(
        self, ctx: CallContext | None = None, ids: Sequence[str] | None = None
    ) -> ClusterSnapshot:
        """Read deployments, aliases, pipelines, endpoints and mappings concurrently.

        `ids`: the expressions whose `_stats` are read (None: every model's). Only an urgent
        call (a click's re-check) skips the queue of previews' and listings' requests.
        """
        if ctx is not None and ctx.urgent:
            return await self._snapshot(ctx, ids)
        async with self._previews:
            return await self._snapshot(ctx, ids)

    async def _snapshot(
        self, ctx: CallContext | None, ids: Sequence[str] | None
    ) -> ClusterSnapshot:
        try:
            entries, aliases, refs, endpoints, fields = await asyncio.gather(
                self._stats(ctx, ids),
                self._shared("aliases", ctx, lambda: self._aliases(ctx)),
                self._shared("pipelines", ctx, lambda: self._pipelines(ctx)),
                self._shared("endpoints", ctx, lambda: self._endpoints(ctx)),
                self._shared("mappings", ctx, lambda: self._semantic_fields(ctx)),
            )
        except ClusterError:
            raise  # an unmapped run_as user: already a message for the person
        except Exception as exc:
            raise to_domain_error(
                exc, cluster=self.name, operation="read deployment stats", timeout=self.timeout
            ) from exc
        unknown = tuple(r for r in (endpoints, fields) if isinstance(r, str))
        return ClusterSnapshot(
            tuple(entries),
            aliases,
            refs,
            None if isinstance(endpoints, str) else endpoints,
            None if isinstance(fields, str) else fields,
            unknown,
        )

    async def resolve(self, ids: Sequence[str], ctx: CallContext | None = None) -> Resolution:
        """Expand ids, comma lists, wildcards and `_all` into concrete deployments."""
        snap = await self.snapshot(ctx, ids)
        deployments = snap.deployments()
        chosen: dict[str, Deployment] = {}
        unmatched: list[str] = []
        hints: list[str] = []
        for expression in ids:
            hits = [d for d in deployments if _matches(expression, d.deployment_id)]
            if not hits:
                unmatched.append(expression)
                hint = _model_hint(expression, deployments, snap.entries)
                if hint:
                    hints.append(hint)
            for dep in hits:
                chosen.setdefault(dep.deployment_id, dep)
        return Resolution(tuple(chosen.values()), tuple(unmatched), tuple(hints))

    async def plan_starts(
        self, targets: Sequence[Deployment], ctx: CallContext | None = None
    ) -> tuple[tuple[Deployment, ...], dict[str, StartPlan]]:
        """The targets that run already, and what starting each would bring back (one read)."""
        snap = await self.snapshot(ctx)
        ids = {t.deployment_id for t in targets}
        running = tuple(d for d in snap.deployments() if d.deployment_id in ids)
        return running, {
            t.deployment_id: snap.start_plan(t.deployment_id, t.model_id) for t in targets
        }

    async def list(self, pattern: str | None, ctx: CallContext | None = None) -> list[Deployment]:
        """Deployments matching a pattern (or all), for the read-only listing."""
        exprs = pattern.split(",") if pattern else ["*"]
        snap = await self.snapshot(ctx, exprs)
        return [d for d in snap.deployments() if any(_matches(e, d.deployment_id) for e in exprs)]

    async def stop(
        self,
        deployment: Deployment,
        *,
        force: bool,
        finish_pending_work: bool,
        ctx: CallContext | None = None,
    ) -> StopOutcome:
        """Stop one concrete deployment exactly once (no client retries)."""
        timeout = self.timeout
        if finish_pending_work:
            timeout = max(self.timeout, FINISH_PENDING_WORK_TIMEOUT)
        body: dict[str, Any] = {"allow_no_match": False}
        if force:
            body["force"] = True
        if finish_pending_work:
            body["finish_pending_work"] = True
        started = time.monotonic()
        try:
            # A retried stop could hit a deployment the first attempt already stopped (404),
            # or stop it twice; retries are the person's decision, not the transport's.
            await self._request(
                "ml.stop_trained_model_deployment",
                "POST",
                f"/_ml/trained_models/{_quote(deployment.deployment_id)}/deployment/_stop",
                ctx,
                body=body,
                once=timeout,
            )
        except Exception as exc:
            return self._failed(exc, "stop", deployment, timeout, started)
        return StopOutcome(
            deployment.deployment_id, ok=True, message="stopped", seconds=time.monotonic() - started
        )

    def _failed(
        self, exc: Exception, operation: str, deployment: Deployment, timeout: float, started: float
    ) -> StopOutcome:
        err = (
            exc
            if isinstance(exc, ElasticError)
            else to_domain_error(
                exc,
                cluster=self.name,
                operation=operation,
                deployment_id=deployment.deployment_id,
                pipelines=deployment.pipelines,
                timeout=timeout,
            )
        )
        return StopOutcome(
            deployment.deployment_id,
            ok=False,
            message=err.message,
            status=err.status,
            seconds=time.monotonic() - started,
        )

    async def start(self, deployment: Deployment, ctx: CallContext | None = None) -> StartOutcome:
        """Start a deployment with the captured settings; waits until it is started."""
        body: dict[str, Any] | None = None
        params: dict[str, Any] = {
            "deployment_id": deployment.deployment_id,
            "priority": deployment.priority,
            "wait_for": "started",
            "timeout": f"{int(START_TIMEOUT)}s",
        }
        if deployment.adaptive_allocations:
            body = {"adaptive_allocations": deployment.adaptive_allocations}
        elif deployment.target_allocations:
            params["number_of_allocations"] = deployment.target_allocations
        if deployment.threads_per_allocation:
            params["threads_per_allocation"] = deployment.threads_per_allocation
        if deployment.queue_capacity:
            params["queue_capacity"] = deployment.queue_capacity
        if deployment.cache_size:
            params["cache_size"] = deployment.cache_size
        started = time.monotonic()
        try:
            await self._request(
                "ml.start_trained_model_deployment",
                "POST",
                f"/_ml/trained_models/{_quote(deployment.model_id)}/deployment/_start",
                ctx,
                params=params,
                body=body,
                once=START_TIMEOUT + 10,
            )
        except Exception as exc:
            failed = self._failed(exc, "start", deployment, START_TIMEOUT, started)
            return StartOutcome(**failed.to_json())
        return StartOutcome(
            deployment.deployment_id, ok=True, message="started", seconds=time.monotonic() - started
        )

    async def verify_gone(
        self, deployment_id: str, *, within: float, ctx: CallContext | None = None
    ) -> Verification:
        """Poll `_stats` (with backoff) until the deployment is gone or `within` seconds pass."""
        started = time.monotonic()
        wait = VERIFY_FIRST_WAIT
        while True:
            state = await self._deployment_state(deployment_id, ctx)
            waited = time.monotonic() - started
            if state is None:
                return Verification(gone=True, state=None, waited=waited)
            if waited + wait > within:
                return Verification(gone=False, state=state, waited=waited)
            await asyncio.sleep(wait)
            wait = min(wait * 2, VERIFY_MAX_WAIT)

    async def _deployment_state(self, deployment_id: str, ctx: CallContext | None) -> str | None:
        try:
            resp = await self._request(
                "ml.get_trained_models_stats",
                "GET",
                f"/_ml/trained_models/{_quote(deployment_id)}/_stats",
                ctx,
                urgent=True,  # the verification of a stop that ran
            )
        except NotFoundError:
            return None
        except ClusterError:
            raise
        except Exception as exc:
            raise to_domain_error(
                exc, cluster=self.name, operation="read deployment stats"
            ) from exc
        for entry in resp.body.get("trained_model_stats", []):
            stats = entry.get("deployment_stats") or {}
            if stats.get("deployment_id") == deployment_id:
                return str(stats.get("state", "unknown"))
        return None

    async def ping(self) -> str:
        """The cluster's version number; raises ElasticError when it does not answer."""
        try:
            info = await self._timed("info", self.client.info())
        except Exception as exc:
            raise to_domain_error(exc, cluster=self.name, operation="read cluster info") from exc
        return str(info.body["version"]["number"])


def _quote(value: str) -> str:
    """A path part as the client quotes it (`,` and `*` stay: lists and wildcards)."""
    return urllib.parse.quote(value, ",*")


def _model_hint(
    expression: str, deployments: Sequence[Deployment], entries: Sequence[Mapping[str, Any]]
) -> str | None:
    if "*" in expression or expression == "_all":
        return None
    of_model = [d.deployment_id for d in deployments if d.model_id == expression]
    if of_model:
        listed = ", ".join(f"`{d}`" for d in of_model)
        return f"`{expression}` is a model, not a deployment; its deployments: {listed}"
    if any(e.get("model_id") == expression for e in entries):
        return f"`{expression}` is a model that is not deployed"
    return None


class Clusters:
    """The configured clusters by name, and which one is the default."""

    def __init__(self, gateways: Mapping[str, ClusterGateway], default: str) -> None:
        self.gateways = dict(gateways)
        self.default = default

    @classmethod
    def from_config(
        cls,
        clusters: Mapping[str, ResolvedCluster],
        default: str,
        metrics: Metrics | None = None,
    ) -> Clusters:
        """Build one gateway (and client) per configured cluster."""
        return cls(
            {
                n: ClusterGateway(
                    n,
                    build_client(c),
                    c.request_timeout,
                    run_as=c.run_as,
                    run_as_users=c.run_as_users,
                    metrics=metrics,
                    connections=c.connections_per_node,
                )
                for n, c in clusters.items()
            },
            default,
        )

    def get(self, name: str | None) -> ClusterGateway:
        """The named cluster, or the default; ElasticError for an unknown name."""
        key = name or self.default
        if key not in self.gateways:
            known = ", ".join(f"`{n}`" for n in sorted(self.gateways))
            raise UnknownCluster(f"unknown cluster `{key}` (known: {known})")
        return self.gateways[key]

    async def close(self) -> None:
        """Close every client."""
        await asyncio.gather(*(g.close() for g in self.gateways.values()))
