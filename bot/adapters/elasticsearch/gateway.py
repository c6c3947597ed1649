"""ClusterGateway: resolve ids to deployments, list, stop, start, verify, ping.

The stop endpoint expands nothing and answers `{"stopped": true}` for unknown ids,
so the bot resolves what the user typed through `_stats` first and stops each
concrete deployment with `allow_no_match=false` (see reference §2).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import elastic_transport
from elasticsearch import NotFoundError

from bot.adapters.elasticsearch import schemas
from bot.adapters.elasticsearch.client import _quote
from bot.adapters.elasticsearch.errors import ElasticError, maybe_done, to_domain_error
from bot.adapters.elasticsearch.scaling import ScaleCalls, _matches
from bot.app.ports import CallContext, Verification
from bot.core.errors import ClusterBadAnswer, ClusterError
from bot.core.impact import StartPlan
from bot.core.model import Deployment, Resolution, StartOutcome, StopOutcome

VERIFY_FIRST_WAIT = 0.1
VERIFY_MAX_WAIT = 2.0
START_TIMEOUT = 120.0
FINISH_PENDING_WORK_TIMEOUT = 300.0  # a graceful drain may take up to ~5 minutes


class ClusterGateway(ScaleCalls):
    """All Elasticsearch I/O for one cluster."""

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
            answer = await self._read(
                schemas.StopAnswer,
                "ml.stop_trained_model_deployment",
                "POST",
                f"/_ml/trained_models/{_quote(deployment.deployment_id)}/deployment/_stop",
                ctx,
                body=body,
                once=timeout,
            )
        except Exception as exc:
            return self._failed(exc, "stop", deployment, timeout, started)
        seconds = time.monotonic() - started
        if not answer.stopped:  # Elasticsearch never answers false; something in between did
            why = "the stop was sent but its answer said `stopped: false`"
            return StopOutcome(deployment.deployment_id, False, why, None, seconds, unknown=True)
        return StopOutcome(deployment.deployment_id, ok=True, message="stopped", seconds=seconds)

    def _failed(
        self, exc: Exception, operation: str, deployment: Deployment, timeout: float, started: float
    ) -> StopOutcome:
        """A stop or start that raised: refused (failed) or maybe done (unknown outcome)."""
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
        reached = maybe_done(exc)
        message = err.message
        if isinstance(exc, elastic_transport.ConnectionTimeout):
            message = f"cluster `{self.name}` did not answer the {operation} within {timeout:g} s"
        elif reached and isinstance(exc, ClusterBadAnswer):
            message = f"the {operation} was sent but its answer could not be read: {message}"
        elif reached:
            message = f"the {operation} was sent but no answer came back: {message}"
        return StopOutcome(
            deployment.deployment_id,
            ok=False,
            message=message,
            status=err.status,
            seconds=time.monotonic() - started,
            unknown=reached,
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
            answer = await self._read(
                schemas.StartAnswer,
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
        seconds = time.monotonic() - started
        state = answer.assignment.assignment_state
        if state == "failed":
            why = "the start answered but the deployment failed; see `/ml-deployments`"
            return StartOutcome(deployment.deployment_id, False, why, None, seconds)
        if state != "started":  # asked `wait_for=started`: any other state is not the ask
            why = f"the start answered but the deployment is {state or 'in no stated state'}"
            return StartOutcome(deployment.deployment_id, False, why, None, seconds, unknown=True)
        return StartOutcome(
            deployment.deployment_id, ok=True, message="started", seconds=seconds, verified=True
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
        """The deployment's state from a checked `_stats` answer; None when it is gone."""
        try:
            page = await self._read(
                schemas.StatsPage,
                "ml.get_trained_models_stats",
                "GET",
                f"/_ml/trained_models/{_quote(deployment_id)}/_stats",
                ctx,
                urgent=True,  # the verification of a stop that ran
            )
        except NotFoundError as exc:
            if isinstance(exc.body, dict) and isinstance(exc.body.get("error"), dict):
                return None  # Elasticsearch's own 404: no such model or deployment
            raise schemas.bad_answer(
                self.name, "ml.get_trained_models_stats", "a 404 that is not Elasticsearch's"
            ) from None
        except ClusterError:
            raise
        except Exception as exc:
            raise to_domain_error(
                exc, cluster=self.name, operation="read deployment stats"
            ) from exc
        for entry in page.trained_model_stats:
            stats = entry.deployment_stats
            if stats is not None and stats.deployment_id == deployment_id:
                return stats.state or "unknown"
        return None

    async def ping(self) -> str:
        """The cluster's version number; raises ElasticError when it does not answer."""
        try:
            info = await self._timed("info", self.client.info())
        except Exception as exc:
            raise to_domain_error(exc, cluster=self.name, operation="read cluster info") from exc
        content_type = info.meta.headers.get("content-type") or ""
        answer = schemas.parse(
            schemas.Info, info.body, cluster=self.name, endpoint="info", content_type=content_type
        )
        return answer.version.number


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
