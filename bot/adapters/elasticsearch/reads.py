"""The snapshot reads: `_stats` of the named ids, models, pipelines, endpoints, mappings."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import elastic_transport
from elasticsearch import ApiError, NotFoundError

from bot.adapters.elasticsearch import privileges, schemas
from bot.adapters.elasticsearch.client import ClusterClient, _quote
from bot.adapters.elasticsearch.errors import _unreadable, to_domain_error
from bot.adapters.elasticsearch.snapshot import ClusterSnapshot, pipeline_references
from bot.app.ports import CallContext
from bot.core.errors import ClusterBadAnswer, ClusterError
from bot.core.impact import (
    Endpoint,
    MappingScan,
    mapping_coverage,
    parse_endpoints,
    scan_mappings,
)

PAGE_SIZE = 1000
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


class SnapshotReads(ClusterClient):
    """The reads a preview, listing or click re-check is computed from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whether each run-as user (None: the bot itself) may view every index.
        self._views: privileges.TtlCache[str | None, bool] = privileges.TtlCache(privileges.TTL)

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
            page = await self._read_body(
                schemas.StatsPage,
                "ml.get_trained_models_stats",
                "GET",
                path,
                ctx,
                params={"from": start, "size": PAGE_SIZE},
            )
            entries.extend(page["trained_model_stats"])
            start += PAGE_SIZE
            if start >= int(page["count"]):
                return entries

    async def _aliases(self, ctx: CallContext | None) -> dict[str, tuple[str, ...]]:
        aliases: dict[str, tuple[str, ...]] = {}
        start = 0
        while True:
            page = await self._read(
                schemas.ModelsPage,
                "ml.get_trained_models",
                "GET",
                "/_ml/trained_models",
                ctx,
                params={"from": start, "size": PAGE_SIZE, "filter_path": MODELS_FILTER},
            )
            for cfg in page.trained_model_configs:
                if cfg.metadata is not None and cfg.metadata.model_aliases:
                    aliases[cfg.model_id] = tuple(cfg.metadata.model_aliases)
            start += PAGE_SIZE
            if start >= page.count:
                return aliases

    async def _pipelines(self, ctx: CallContext | None) -> dict[str, set[str]]:
        try:
            resp = await self._read_body(
                schemas.Pipelines, "ingest.get_pipeline", "GET", "/_ingest/pipeline", ctx
            )
        except NotFoundError:
            return {}  # 404 with `{}`: the cluster has no pipelines at all
        return pipeline_references(resp)

    async def _endpoints(self, ctx: CallContext | None) -> tuple[Endpoint, ...] | str:
        """Inference endpoints, or why they could not be read."""
        try:
            resp = await self._read_body(
                schemas.InferenceEndpoints,
                "inference.get",
                "GET",
                "/_inference/_all",
                ctx,
                params={"filter_path": ENDPOINT_FILTER},
            )
        except ClusterBadAnswer as exc:
            return f"could not read inference endpoints: {exc.message}"
        except (ApiError, elastic_transport.TransportError) as exc:
            return _unreadable("inference endpoints", "monitor_inference", exc)
        return parse_endpoints(resp)

    async def _semantic_fields(self, ctx: CallContext | None) -> MappingScan | str:
        """Every semantic_text field the bot may see, or why the mappings could not be read."""
        try:
            resp = await self._read_body(
                schemas.Mappings,
                "indices.get_mapping",
                "GET",
                "/_mapping",
                ctx,
                params={"filter_path": MAPPING_FILTER},
            )
        except ClusterBadAnswer as exc:
            return f"could not read index mappings: {exc.message}"
        except (ApiError, elastic_transport.TransportError) as exc:
            return _unreadable("index mappings", "view_index_metadata", exc)
        return scan_mappings(resp)

    async def _views_every_index(self, ctx: CallContext | None) -> bool | str:
        """Whether the mappings read covers every index (a str: why unknown); cached."""
        user = self._headers(ctx).get("es-security-runas-user")
        cached = self._views.get(user)
        if cached is not None:
            return cached
        found = await self._shared("privileges", ctx, lambda: self._read_views(ctx))
        if isinstance(found, bool):
            self._views.put(user, found)
        return found

    async def _read_views(self, ctx: CallContext | None) -> bool | str:
        if privileges.security_off(self.client):
            return True  # every index is visible; asking again only draws the same 500
        try:
            resp = await self._read(
                schemas.HasPrivileges,
                "security.has_privileges",
                "GET",  # a read (ES takes GET or POST): every read the bot makes is a GET
                privileges.PATH,
                ctx,
                body=privileges.VIEW_EVERY_INDEX,
            )
        except ClusterBadAnswer as exc:
            return f"could not check which indices the bot may view: {exc.message}"
        except (ApiError, elastic_transport.TransportError) as exc:
            found = privileges.unchecked(exc)
            if found is True:  # security is off: the node is healthy, whatever the 500 says
                privileges.revive(self.client)
            return found
        return privileges.views_every_index(resp.model_dump())

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
            entries, aliases, refs, endpoints, scan, views = await asyncio.gather(
                self._stats(ctx, ids),
                self._shared("aliases", ctx, lambda: self._aliases(ctx)),
                self._shared("pipelines", ctx, lambda: self._pipelines(ctx)),
                self._shared("endpoints", ctx, lambda: self._endpoints(ctx)),
                self._shared("mappings", ctx, lambda: self._semantic_fields(ctx)),
                self._views_every_index(ctx),
            )
        except ClusterError:
            raise  # an unmapped run_as user: already a message for the person
        except Exception as exc:
            raise to_domain_error(
                exc, cluster=self.name, operation="read deployment stats", timeout=self.timeout
            ) from exc
        mappings = mapping_coverage(scan, views)
        unknown = (endpoints,) if isinstance(endpoints, str) else ()
        return ClusterSnapshot(
            tuple(entries),
            aliases,
            refs,
            None if isinstance(endpoints, str) else endpoints,
            mappings.fields,
            unknown,
            mappings.partial,
            mappings.unknown,
        )
