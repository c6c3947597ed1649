"""Scale and health calls: `_update` on either API, the verification, ML memory, `/ml-status`.

A scale is sent once (no client retries: a retried update could land after a later one)
and verified through `_stats` of the one deployment: done only when the target (or the
adaptive settings) reflect the request. Elasticsearch's refusals are reported with its own
reason and "nothing was changed"; the 429 "not enough resources" says what it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import time
from collections.abc import Sequence

import elastic_transport
from elasticsearch import ApiError, NotFoundError

from bot.adapters.elasticsearch import schemas
from bot.adapters.elasticsearch.client import _quote
from bot.adapters.elasticsearch.errors import _reason, _unreadable, maybe_done, to_domain_error
from bot.adapters.elasticsearch.reads import SnapshotReads
from bot.adapters.elasticsearch.snapshot import deployment_from_stats
from bot.app.ports import CallContext
from bot.core.errors import ClusterBadAnswer
from bot.core.health import DeploymentHealth, MlMemory, health_of, parse_memory
from bot.core.model import Deployment, ScaleOutcome
from bot.core.scale import Api, ScalePlan, reflected

VERIFY_FIRST_WAIT = 0.1
VERIFY_MAX_WAIT = 2.0
MEMORY_PATH = "/_ml/memory/_stats"
NOT_ENOUGH = "not enough resources"


def _matches(expression: str, deployment_id: str) -> bool:
    """Elasticsearch's id matching: `_all`, `*` wildcards (only `*` is special), exact ids."""
    if expression in ("_all", "*"):
        return True
    if "*" in expression:
        # Only `*` is a wildcard in Elasticsearch ids; escape fnmatch's other metacharacters.
        pattern = expression.replace("[", "[[]").replace("?", "[?]")
        return fnmatch.fnmatchcase(deployment_id, pattern)
    return expression == deployment_id


def update_request(plan: ScalePlan) -> tuple[str, str, str]:
    """(client endpoint name, method, path) of the update a plan takes."""
    route = plan.route
    if route.api is Api.INFERENCE:
        assert route.endpoint_id is not None
        task = f"{_quote(route.task_type)}/" if route.task_type else ""
        return "inference.update", "PUT", f"/_inference/{task}{_quote(route.endpoint_id)}/_update"
    return (
        "ml.update_trained_model_deployment",
        "POST",
        f"/_ml/trained_models/{_quote(plan.deployment_id)}/deployment/_update",
    )


class ScaleCalls(SnapshotReads):
    """The update, its verification, and the reads `/ml-status` needs."""

    async def scale(self, plan: ScalePlan, ctx: CallContext | None = None) -> ScaleOutcome:
        """Send one update exactly once; Elasticsearch's refusal is in the outcome."""
        endpoint, method, path = update_request(plan)
        started = time.monotonic()
        try:
            await self._read(
                schemas.UpdateAnswer, endpoint, method, path, ctx, body=plan.body, once=self.timeout
            )
        except Exception as exc:
            reached = maybe_done(exc)  # sent, but no answer that can be read: maybe applied
            return ScaleOutcome(
                plan.deployment_id,
                ok=False,
                message=self._unsure(exc) if reached else self._refusal(exc, plan),
                status=exc.meta.status if isinstance(exc, ApiError) else None,
                seconds=time.monotonic() - started,
                unknown=reached,
            )
        return ScaleOutcome(
            plan.deployment_id, ok=True, message="requested", seconds=time.monotonic() - started
        )

    def _unsure(self, exc: Exception) -> str:
        if isinstance(exc, elastic_transport.ConnectionTimeout):
            return f"cluster `{self.name}` did not answer the update within {self.timeout:g} s"
        if isinstance(exc, ClusterBadAnswer):
            return f"the update was sent but its answer could not be read: {exc.message}"
        return f"the update was sent but no answer came back ({type(exc).__name__})"

    def _refusal(self, exc: Exception, plan: ScalePlan) -> str:
        if isinstance(exc, ApiError) and not isinstance(exc, NotFoundError):
            status, reason = exc.meta.status, _reason(exc)
            if status == 429 and NOT_ENOUGH in reason:
                return (
                    "nothing was changed: Elasticsearch has not enough ML resources for "
                    f"this ({reason})"
                )
            if status in (400, 409, 429):
                return f"nothing was changed: Elasticsearch refused ({reason})"
            if status == 403:
                err = to_domain_error(
                    exc, cluster=self.name, operation="scale", deployment_id=plan.deployment_id
                )
                return (
                    f"nothing was changed (this API needs `{plan.route.privilege}`): {err.message}"
                )
        err = to_domain_error(
            exc,
            cluster=self.name,
            operation="scale",
            deployment_id=plan.deployment_id,
            timeout=self.timeout,
        )
        if isinstance(exc, elastic_transport.ConnectionTimeout):
            check = f"/ml-status {plan.deployment_id}"
            return f"{err.message}; the update may still apply: check `{check}`"
        return err.message

    async def read_deployment(
        self, deployment_id: str, ctx: CallContext | None = None
    ) -> Deployment | None:
        """One deployment as `_stats` shows it now (a click's read: never queued)."""
        urgent = dataclasses.replace(ctx or CallContext(), urgent=True)
        try:
            entries = await self._stats_pages(urgent, deployment_id)
        except NotFoundError:
            return None
        except Exception as exc:
            raise to_domain_error(
                exc, cluster=self.name, operation="read deployment stats"
            ) from exc
        for entry in entries:
            stats = entry.get("deployment_stats") or {}
            if stats.get("deployment_id") == deployment_id:
                return deployment_from_stats(entry)
        return None

    async def verify_scaled(
        self, plan: ScalePlan, *, within: float, ctx: CallContext | None = None
    ) -> tuple[Deployment | None, bool, float]:
        """Poll until `_stats` reflects the plan and every allocation is placed, or time runs
        out: (the last read, whether the request is reflected, seconds waited)."""
        started = time.monotonic()
        wait = VERIFY_FIRST_WAIT
        while True:
            now = await self.read_deployment(plan.deployment_id, ctx)
            waited = time.monotonic() - started
            done = now is not None and reflected(plan.after, now)
            placed = (
                done and now is not None and (now.allocations or 0) >= (now.target_allocations or 0)
            )
            if placed or now is None or waited + wait > within:
                return now, done, waited
            await asyncio.sleep(wait)
            wait = min(wait * 2, VERIFY_MAX_WAIT)

    async def ml_memory(self, ctx: CallContext | None = None) -> MlMemory | str:
        """The ML nodes' memory, or why it could not be read (`monitor_ml`)."""
        try:
            resp = await self._request("ml.get_memory_stats", "GET", MEMORY_PATH, ctx)
        except (ApiError, elastic_transport.TransportError) as exc:
            return _unreadable("ML memory", "monitor_ml", exc)
        return parse_memory(resp.body)

    async def health(
        self, ids: Sequence[str] | None, ctx: CallContext | None = None
    ) -> list[tuple[DeploymentHealth, Deployment]]:
        """Each matching deployment's health and its impact (what uses it)."""
        snap = await self.snapshot(ctx, ids)
        facts = snap.facts()
        out = []
        for entry in snap.entries:
            if "deployment_stats" not in entry:
                continue
            health = health_of(entry)
            if ids and not any(_matches(e, health.deployment_id) for e in ids):
                continue
            dep = deployment_from_stats(entry, snap.pipelines_for(health.deployment_id), facts)
            out.append((health, dep))
        return out
