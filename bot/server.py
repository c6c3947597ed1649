"""Serving: HTTP (`POST /slack/events`) or Socket Mode, `/healthz` `/readyz` `/metrics`, shutdown.

Shutdown on SIGTERM/SIGINT: stop listening (new connections are refused), let requests in
progress answer, then wait up to `SHUTDOWN_GRACE` for listener runs still working after
their ack (a stop in progress), then close clusters, store and audit, and exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

from aiohttp import ClientConnectionError, web
from aiohttp.abc import AbstractAccessLogger
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import (
    run_async_bolt_app,
    send_async_response,
)
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.async_listener_start_handler import AsyncListenerStartHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.adapters.audit import SpooledSink
from bot.adapters.elasticsearch import ElasticError
from bot.adapters.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.app.ports import ActionStore
from bot.app.recovery import recover
from bot.bootstrap import InFlight, Runtime
from bot.core.errors import StoreUnavailable
from bot.logs import log_context
from bot.settings import SettingsError
from bot.slack import blocks
from bot.slack.delivery import deliver
from bot.slack.edge import (
    EVENT_TTL,
    MAX_BODY_BYTES,
    SIGNATURE_TTL,
    Refused,
    VerifiedRequest,
    dedupe_keys,
    parse,
    route,
    verify,
)
from bot.slack.listeners.timed import TimedListeners
from bot.slack.notices import SlackNotices
from bot.slack.respond import ResponseBudget

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SWEEP_INTERVAL = 15.0
READINESS_TIMEOUT = 5.0  # a probe must answer before the orchestrator's own timeout
HTTP_DRAIN_TIMEOUT = 10.0  # requests in progress at SIGTERM (acks take milliseconds)
SHUTDOWN_GRACE = 60.0  # listener runs (stops) still working after SIGTERM
BODY_READ_TIMEOUT = 10.0  # Slack's whole request budget is 3 s; a body never takes this long


def request_kind(body: Mapping[str, Any]) -> str:
    """`command`, `block_actions` or `other`, for the ack latency metric."""
    if body.get("command"):
        return "command"
    return "block_actions" if body.get("type") == "block_actions" else "other"


def _slack_id(body: Mapping[str, Any], flat: str, nested: str) -> Any:
    # Slash commands carry `user_id`; interaction payloads carry `user: {"id": ...}`.
    inner = body.get(nested)
    return body.get(flat) or (inner.get("id") if isinstance(inner, dict) else None)


def slack_log_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The Slack ids (and, for a click, the action id) to put on every log line of a request."""
    fields: dict[str, Any] = {
        "slack.team.id": _slack_id(body, "team_id", "team"),
        "user.id": _slack_id(body, "user_id", "user"),
        "slack.channel.id": _slack_id(body, "channel_id", "channel"),
        "slack.command": body.get("command"),
    }
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        # Our buttons carry the pending action's id as their value.
        fields["ml_chatops.action_id"] = actions[0].get("value")
        fields["slack.action_id"] = actions[0].get("action_id")
    return {k: v for k, v in fields.items() if isinstance(v, str) and v}


class _TrackListeners(AsyncListenerStartHandler):
    """Registers each listener run, from inside its own task, with the in-flight set."""

    def __init__(self, inflight: InFlight, previous: AsyncListenerStartHandler) -> None:
        self.inflight = inflight
        self.previous = previous

    async def handle(self, request: AsyncBoltRequest, response: BoltResponse | None) -> None:
        """Track the running task, then run the handler it replaced."""
        self.inflight.add_current()
        await self.previous.handle(request=request, response=response)


def track_listeners(bolt: AsyncApp, inflight: InFlight) -> None:
    """Make every listener run of `bolt` count as in flight until it returns (idempotent).

    Bolt acks, answers Slack and keeps the listener running as an untracked task; its
    runner calls the start handler inside that task before the listener body runs.
    """
    runner = bolt.listener_runner
    if not isinstance(runner.listener_start_handler, _TrackListeners):
        runner.listener_start_handler = _TrackListeners(inflight, runner.listener_start_handler)


async def readiness(runtime: Runtime) -> tuple[bool, dict[str, str]]:
    """Every cluster answers and Slack `auth.test` passes; each check's result by name."""
    checks: dict[str, str] = {}

    async def bounded(name: str, check: Awaitable[str]) -> None:
        try:
            checks[name] = await asyncio.wait_for(check, READINESS_TIMEOUT)
        except TimeoutError:
            checks[name] = f"failed: no answer within {READINESS_TIMEOUT:g} s"

    async def cluster(name: str) -> str:
        try:
            return "ok " + await runtime.clusters.gateways[name].ping()
        except ElasticError as exc:
            return "failed: " + exc.message

    async def slack() -> str:
        try:
            await runtime.slack.auth_test()
        except SlackApiError as exc:
            return f"failed: auth.test: {exc.response.get('error')}"
        except OSError as exc:
            return f"failed: cannot reach the Slack API: {exc}"
        return "ok"

    await asyncio.gather(
        bounded("slack", slack()),
        *(bounded(f"cluster:{n}", cluster(n)) for n in runtime.clusters.gateways),
    )
    checks["audit"] = runtime.audit.health()  # an audit file that cannot be written
    return all(v.startswith("ok") for v in checks.values()), checks


async def sweep_once(runtime: Runtime, notices: SlackNotices) -> None:
    """Expire due previews (telling their requesters) and recover orphaned actions.

    Expiry is enforced at the click too; this keeps the store's states honest. Every
    replica sweeps: each change is a compare-and-set, so one replica tells each story.
    """
    service = runtime.service
    for action in await service.expire_due():
        await notices.expired(action)
    await recover(runtime.store, runtime.audit, service.clock, notices, service.own)
    # Timed changes (issue 22): the same sweep runs due reverts, each claimed once.
    await TimedListeners(service).sweep(runtime.slack)
    unfrozen = await service.unfreeze_due()
    if unfrozen is not None and unfrozen.channel:
        notice = blocks.freeze_notice(
            False, unfrozen.by, "the timed freeze ended", now=service.clock()
        )
        channel = unfrozen.channel
        await deliver(
            "chat.postMessage", lambda: runtime.slack.chat_postMessage(channel=channel, **notice)
        )


async def _sweep(runtime: Runtime, notices: SlackNotices) -> None:
    while True:  # the first sweep runs at start: that is the restart recovery
        try:
            await sweep_once(runtime, notices)
        except Exception:
            log.exception("sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL)


async def _pending_count(runtime: Runtime) -> int:
    # Every proposed action is due by +inf: the store's `due` lists them all.
    return len(await runtime.store.due(math.inf))


def _answered(
    metrics: Metrics,
    body: Mapping[str, Any],
    transport: str,
    status: int,
    started: float,
    reason: str | None = None,
) -> None:
    """Record and log one answered Slack request (inside its log context)."""
    seconds = time.monotonic() - started
    kind = request_kind(body)
    metrics.observe_ack(kind, transport, seconds)
    log.log(
        logging.WARNING if status >= 400 else logging.INFO,
        "slack %s answered %s in %.0f ms%s",
        kind,
        status,
        seconds * 1000,
        f": {reason}" if reason else "",
        extra={
            "slack.request": kind,
            "http.response.status_code": status,
            "event.duration_ms": round(seconds * 1000, 1),
            "event.reason": reason,
        },
    )


async def _seen(store: ActionStore, key: str, ttl: float) -> bool:
    """Whether `key` was marked before; False when the store cannot tell.

    Letting the request on is safe: every use case that changes anything writes to the
    same store first, so while it is down the request can only be answered "cannot reach
    the state store; nothing was done" (or read), never run twice.
    """
    try:
        return await store.seen(key, ttl)
    except StoreUnavailable as exc:
        log.warning("replay check skipped, the state store is down: %s", exc.message)
        return False


async def _duplicate(store: ActionStore, body: Mapping[str, Any]) -> bool:
    """Whether Slack delivered this event (or its function execution) before: HTTP and Socket Mode.

    Only a body the edge's route check accepts has keys; marks every key (no short cut):
    a retry may name an execution seen under another event id.
    """
    keys = dedupe_keys(body) if route(body) is None else []
    repeats = [await _seen(store, key, EVENT_TTL) for key in keys]
    return any(repeats)


async def _and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send `response` and close the connection now (aiohttp would linger reading the body)."""
    response.force_close()
    try:
        await response.prepare(request)
        await response.write_eof()
    except (ConnectionError, ClientConnectionError):
        pass  # the sender is gone already
    if request.transport is not None:
        request.transport.close()
    return response


class _Edge:
    """`POST /slack/events`: verify, dedupe and parse (bot.slack.edge), then hand to Bolt."""

    def __init__(self, runtime: Runtime, bolt: AsyncApp, secret: str | None) -> None:
        self.runtime, self.bolt, self.secret = runtime, bolt, secret

    async def events(self, request: web.Request) -> web.Response:
        """Answer one Slack request; nothing in it is used before its signature passed."""
        started = time.monotonic()
        try:
            # Slack sends a body at once; a trickling one would hold a connection open.
            raw = await asyncio.wait_for(request.read(), BODY_READ_TIMEOUT)
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(Refused(413, "body larger than Slack sends"), {}, started)
        except TimeoutError:
            slow = self._refuse(Refused(408, "request body too slow"), {}, started)
            return await _and_close(request, slow)
        except (ConnectionError, ClientConnectionError, web.HTTPBadRequest) as exc:
            # The sender went away mid-body: nothing to answer, one line to say so.
            log.info(
                "slack request aborted while sending its body: %s",
                type(exc).__name__,
                extra={"event.reason": "aborted"},
            )
            return await _and_close(request, web.Response(status=400))
        if self.secret is None:  # Socket Mode: nobody may post events over HTTP
            return self._refuse(Refused(401, "no signing secret configured"), {}, started)
        verdict = verify(request.headers, raw, self.secret, time.time())
        if isinstance(verdict, Refused):
            return self._refuse(verdict, {}, started)
        if await _seen(self.runtime.store, f"signature:{verdict}", SIGNATURE_TTL):
            return self._refuse(Refused(401, "replayed signature"), {}, started)
        body = parse(raw, request.content_type)
        if isinstance(body, Refused):
            return self._refuse(body, {}, started)
        with log_context(**slack_log_fields(body)):
            refused = route(body)
            if refused is not None:
                return self._refuse(refused, body, started)
            if await _duplicate(self.runtime.store, body):
                retry = request.headers.get("X-Slack-Retry-Num", "-")[:8]
                duplicate = Refused(200, f"duplicate delivery (retry {retry})")
                return self._refuse(duplicate, body, started)
            bolt_request = VerifiedRequest(raw=raw.decode(), body=body, headers=request.headers)
            bolt_response = await self.bolt.async_dispatch(bolt_request)
            _answered(self.runtime.metrics, body, "http", bolt_response.status, started)
        return await to_aiohttp_response(bolt_response)

    def _refuse(self, refused: Refused, body: Mapping[str, Any], started: float) -> web.Response:
        """The edge's own answer, with one log line (attributed only when verified)."""
        _answered(self.runtime.metrics, body, "http", refused.status, started, refused.reason)
        if refused.body is not None:
            return web.json_response(dict(refused.body), status=refused.status)
        return web.Response(status=refused.status)


def create_web_app(runtime: Runtime, bolt: AsyncApp) -> web.Application:
    """The aiohttp application serving Slack and the operational endpoints.

    Also makes `bolt`'s listener runs count in `runtime.inflight` (see `track_listeners`).
    """
    track_listeners(bolt, runtime.inflight)

    secret = runtime.settings.slack_signing_secret
    edge = _Edge(runtime, bolt, secret.get_secret_value() if secret else None)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready, checks = await readiness(runtime)
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics(_: web.Request) -> web.Response:
        try:
            runtime.metrics.pending_actions.set(await _pending_count(runtime))
        except Exception:  # the other metrics are still worth serving
            log.exception("could not count pending actions")
        spooled = [s for s in runtime.audit.sinks if isinstance(s, SpooledSink)]
        runtime.metrics.audit_spool.set(sum(s.pending for s in spooled))
        return web.Response(
            body=runtime.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def background(app: web.Application) -> AsyncIterator[None]:
        runtime.open_http()
        runtime.watch_config()  # config reloads are read off the event loop from now on
        await runtime.audit.start()  # replays audit spools left by an earlier run
        budget = ResponseBudget(runtime.store.seen)
        notices = SlackNotices(runtime.slack, runtime.service.clock, budget)
        task = asyncio.create_task(_sweep(runtime, notices))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # aiohttp stops reading past this size (413) before anything parses the body.
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(EVENTS_PATH, edge.events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(background)
    return app


class AccessLogger(AbstractAccessLogger):
    """One line per request, except successful probes and scrapes and Slack requests.

    Slack requests get a richer line (with Slack ids) from the events handler itself; the
    access log only keeps them when that handler failed.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Log the request unless another line already says it (or it is noise)."""
        if request.path in OPS_PATHS and response.status < 400:
            return
        if request.path == EVENTS_PATH and response.status < 500:
            return
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "http.request.method": request.method,
                "url.path": request.path,
                "http.response.status_code": response.status,
                "event.duration_ms": round(time * 1000, 1),
            },
        )


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, timing each ack and binding Slack ids for the logs."""

    def __init__(
        self, bolt: AsyncApp, app_token: str, metrics: Metrics, store: ActionStore
    ) -> None:
        super().__init__(bolt, app_token)
        self.metrics, self.store = metrics, store

    async def handle(  # type: ignore[override]  # as Bolt's own override of it
        self, client: SocketModeClient, req: SocketModeRequest
    ) -> None:
        """Dispatch one envelope to Bolt and send its ack."""
        started, started_wall = time.monotonic(), time.time()
        payload = req.payload if isinstance(req.payload, dict) else {}
        with log_context(**slack_log_fields(payload)):
            refused = route(payload)
            if refused is not None:
                await self._refuse(client, req, refused, started)
                return
            if await _duplicate(self.store, payload):
                # Acked, so Slack stops retrying; the first delivery is (or was) handled.
                await send_async_response(client, req, BoltResponse(status=200), started_wall)
                reason = f"duplicate delivery (retry {req.retry_attempt or '-'})"
                _answered(self.metrics, payload, "socket_mode", 200, started, reason)
                return
            # What AsyncSocketModeHandler.handle does, keeping Bolt's status for the log.
            try:
                bolt_response = await run_async_bolt_app(self.app, req)
            except Exception:  # a failure in Bolt itself: logged; the envelope is still acked
                log.exception("socket mode envelope failed in Bolt")
                bolt_response = BoltResponse(status=500)
            if bolt_response.status == 200:
                await send_async_response(client, req, bolt_response, started_wall)
            else:  # Bolt would leave it unacked, and Slack would deliver it three times more
                await client.send_socket_mode_response(SocketModeResponse(req.envelope_id))
            _answered(self.metrics, payload, "socket_mode", bolt_response.status, started)

    async def _refuse(
        self, client: SocketModeClient, req: SocketModeRequest, refused: Refused, started: float
    ) -> None:
        """The HTTP edge's own answer, as an ack: Bolt would answer 404 and never ack.

        Every envelope is acked, or Slack redelivers it (three times) and shows an error;
        what the edge answers 200 is acked with its reply (if any), the rest empty and
        ignored: a malformed envelope is not made good by sending it again.
        """
        body = dict(refused.body) if refused.status == 200 and refused.body is not None else None
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id, body))
        payload = req.payload if isinstance(req.payload, dict) else {}
        _answered(self.metrics, payload, "socket_mode", refused.status, started, refused.reason)


async def serve(
    runtime: Runtime,
    bolt: AsyncApp,
    *,
    port: int,
    app_token: str | None = None,
    host: str = "0.0.0.0",
    grace: float = SHUTDOWN_GRACE,
) -> int:
    """Serve until SIGTERM/SIGINT, then shut down gracefully; 0 if every run finished."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(
        create_web_app(runtime, bolt),
        access_log_class=AccessLogger,
        shutdown_timeout=HTTP_DRAIN_TIMEOUT,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        await runtime.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise SettingsError(
            f"invalid setting PORT: cannot listen on port {port}: {reason}"
        ) from None
    socket_mode: SocketModeHandler | None = None
    connecting: asyncio.Task[None] | None = None
    if app_token:
        socket_mode = SocketModeHandler(bolt, app_token, runtime.metrics, runtime.store)
        # connect() retries until it succeeds: in the background, so probes and SIGTERM work.
        connecting = asyncio.create_task(socket_mode.connect_async())  # type: ignore[no-untyped-call]
        log.info("serving Slack in Socket Mode; /healthz /readyz /metrics on port %s", port)
    else:
        log.info("serving Slack over HTTP at %s on port %s", EVENTS_PATH, port)
    await stop.wait()
    log.info(
        "shutting down: refusing new requests, waiting for %d running listener(s)",
        len(runtime.inflight),
    )
    if socket_mode is not None and connecting is not None:
        await socket_mode.close_async()  # type: ignore[no-untyped-call]
        connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await connecting
    await runner.cleanup()
    drained = await runtime.inflight.wait(grace)
    if not drained:
        log.error(
            "shutdown grace of %g s ran out; %d listener run(s) abandoned (their actions stay "
            "`executing`: check them with /ml-deployments)",
            grace,
            len(runtime.inflight),
        )
    await runtime.close()
    log.info("stopped")
    return 0 if drained else 1
