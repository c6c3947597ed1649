"""HTTP mode: `POST /slack/events` for Bolt, plus `/healthz`, `/readyz` and `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.elastic import ElasticError
from bot.runtime import Runtime

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SWEEP_INTERVAL = 15.0


async def _readiness(runtime: Runtime) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}

    async def cluster(name: str) -> None:
        try:
            checks[f"cluster:{name}"] = "ok " + await runtime.clusters.gateways[name].ping()
        except ElasticError as exc:
            checks[f"cluster:{name}"] = "failed: " + exc.message

    async def slack() -> None:
        try:
            await runtime.slack.auth_test()
            checks["slack"] = "ok"
        except (TimeoutError, SlackApiError, OSError) as exc:
            checks["slack"] = f"failed: {getattr(exc, 'response', {}).get('error', exc)}"

    await asyncio.gather(slack(), *(cluster(n) for n in runtime.clusters.gateways))
    return all(v.startswith("ok") for v in checks.values()), checks


async def _sweep(runtime: Runtime) -> None:
    # Expiry is enforced at the click too; the sweeper only keeps the store's states honest.
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        try:
            await runtime.service.expire_due()
        except Exception:
            log.exception("expiry sweep failed")


def create_web_app(runtime: Runtime, bolt: AsyncApp) -> web.Application:
    """The aiohttp application serving Slack and the operational endpoints."""

    async def events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready, checks = await _readiness(runtime)
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def background(app: web.Application) -> object:
        task = asyncio.create_task(_sweep(runtime))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app.router.add_post(EVENTS_PATH, events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(background)  # type: ignore[arg-type]
    return app
