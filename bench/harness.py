"""In-process services for one run: the Elasticsearch emulator and the Slack stand-in.

Both run on their own event loop in a background thread (tests/support's BackgroundLoop),
so their work does not queue in front of the load generator's timing on its own loop.
The stand-in hands every `response_url` post and channel write to the flow that waits for
it, stamped with the wall-clock time it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn

from bot.emulator import Emulator, RequestRecord, demo_state

T = TypeVar("T")

BENCH_MODEL = ".multilingual-e5-small_linux-x86_64"  # a demo model no pipeline references
SIGNING_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ADMIN = "U0ADMIN1"
LATENCY_ENDPOINTS = ("ml.stats", "ml.stop")
CHANNEL_WRITES = ("chat.postMessage", "chat.update")

# The role map of the end-to-end tests: the admin may stop anything; groups are resolved.
ROLE_MAP = """\
expire_after_seconds: 600
roles:
  ml-admin:
    - {action: [stop, start, status], deployments: ["*"],
       options: [force, finish_pending_work, wildcard, list, all]}
  ml-operator:
    - {action: [stop, status], deployments: ["ner-*", "search-*"], clusters: [default]}
  ml-viewer:
    - {action: status, deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
  - {role: ml-admin, usergroups: [S0SRE]}
  - {role: ml-operator, usergroups: [S0MLOPS], channels: [C0INCIDENTS]}
  - {role: ml-viewer, channels: [C0INCIDENTS]}
"""


@dataclass(frozen=True)
class Post:
    """A message the server sent to Slack, as the stand-in received it."""

    at: float  # time.time() on arrival at the stand-in
    body: dict[str, Any]
    status: int
    method: str = "response_url"


Accept = Callable[[Post], bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WatchedStandIn(SlackStandIn):
    """The Slack stand-in, also resolving the future of the flow that waits for a post.

    Futures belong to the load generator's loop; the stand-in resolves them from its own
    thread with `call_soon_threadsafe`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[tuple[str, str], tuple[asyncio.Future[Post], Accept | None]] = {}
        self._waiting_lock = threading.Lock()

    def expect(self, kind: str, key: str, accept: Accept | None = None) -> asyncio.Future[Post]:
        """A future for the next post of `kind` ("response" id or "channel" id) to `key`.

        With `accept`, posts it refuses are skipped (e.g. a progress line before the result).
        """
        future: asyncio.Future[Post] = asyncio.get_running_loop().create_future()
        with self._waiting_lock:
            self._waiting[(kind, key)] = (future, accept)
        return future

    def forget(self, kind: str, key: str) -> None:
        """Stop waiting for a post."""
        with self._waiting_lock:
            self._waiting.pop((kind, key), None)

    def _deliver(self, kind: str, key: str, post: Post) -> None:
        with self._waiting_lock:
            waiting = self._waiting.get((kind, key))
            if waiting is None:
                return
            future, accept = waiting
            if accept is not None and not accept(post):
                return
            del self._waiting[(kind, key)]
        future.get_loop().call_soon_threadsafe(_resolve, future, post)

    def web_app(self) -> web.Application:
        """The stand-in's application, watched by a middleware (its routes stay as they are)."""
        app = super().web_app()
        app.middlewares.append(self._watch)
        return app

    @web.middleware
    async def _watch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        at = time.time()
        response = await handler(request)
        info = request.match_info
        if "id" in info:  # POST /response/{id}
            body = _params(request.content_type, await request.text())
            self._deliver("response", info["id"], Post(at, body, response.status))
        elif info.get("method") in CHANNEL_WRITES:  # /api/{method}
            params = _params(request.content_type, await request.text())
            channel = str(params.get("channel", ""))
            self._deliver("channel", channel, Post(at, params, response.status, info["method"]))
        return response


def _resolve(future: asyncio.Future[Post], post: Post) -> None:
    if not future.done():
        future.set_result(post)


def _params(content_type: str, raw: str) -> dict[str, Any]:
    if content_type == "application/json":
        try:
            value = json.loads(raw or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    params: dict[str, Any] = dict(parse_qsl(raw, keep_blank_values=True))
    if isinstance(params.get("blocks"), str):
        with contextlib.suppress(ValueError):
            params["blocks"] = json.loads(params["blocks"])
    return params


class DeploymentPool:
    """Bench deployments, each held by one flow at a time; the cluster grows when all are held.

    A flow stops the deployment it holds; giving it back deploys it again, so the next flow
    finds it started. The emulator's state is only touched on the services' loop.
    """

    def __init__(self, services: Services, initial: int) -> None:
        self.services = services
        self._free: deque[str] = deque()
        self._others = len(services.emulator.state.deployments)
        self.created = 0
        for _ in range(initial):
            self._free.append(self._new_name())
            self._deploy(self._free[-1])

    def _new_name(self) -> str:
        self.created += 1
        return f"bench-{self.created - 1:04d}"

    def _deploy(self, deployment_id: str) -> None:
        state = self.services.emulator.state
        if deployment_id not in state.deployments:
            state.start_deployment(BENCH_MODEL, deployment_id, inference_count=1000)

    async def take(self) -> str:
        """A started deployment no other flow holds."""
        if self._free:
            return self._free.popleft()
        deployment_id = self._new_name()
        await self.services.call(self._deploy, deployment_id)
        return deployment_id

    async def give_back(self, deployment_id: str) -> None:
        """Deploy it again if it was stopped, and let the next flow have it."""
        await self.services.call(self._deploy, deployment_id)
        self._free.append(deployment_id)

    @property
    def cluster_size(self) -> int:
        """Deployments in the emulated cluster (demo ones included) at their most."""
        return self.created + self._others


class Services:
    """The emulator (demo cluster + bench deployments) and the stand-in, on their own loop."""

    def __init__(self, *, pool: int = 16) -> None:
        self.emulator = Emulator(demo_state())
        self.slack = WatchedStandIn()
        self.slack.usergroups.update({"S0SRE": ["U0SRE1"], "S0MLOPS": ["U0OPS1"]})
        self.pool = DeploymentPool(self, pool)
        self.es_url = ""
        self.latency: dict[str, float] = {}
        self._loop = BackgroundLoop()

    async def start(self) -> Services:
        """Start the loop thread and serve both on free ports of 127.0.0.1."""
        self._loop.start()
        self.es_url = await self._on_loop(self.emulator.start("127.0.0.1", 0))
        await asyncio.to_thread(self.slack.start, self._loop)
        return self

    async def _on_loop(self, coro: Awaitable[T]) -> T:
        async def wrapper() -> T:
            return await coro

        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(wrapper(), self._loop.loop)
        )

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the services' loop and return its result."""

        async def run() -> T:
            return fn(*args)

        return await self._on_loop(run())

    async def set_latency(self, session: aiohttp.ClientSession, seconds: float) -> None:
        """Delay `_stats` and `_stop` by `seconds` through the emulator's admin API."""
        for endpoint in LATENCY_ENDPOINTS:
            async with session.post(
                f"{self.es_url}/_emulator/latency",
                json={"endpoint": endpoint, "seconds": seconds},
            ) as resp:
                resp.raise_for_status()
            self.latency[endpoint] = seconds

    async def es_requests(self) -> list[RequestRecord]:
        """Every request the emulator answered so far (its request log)."""
        return await self.call(list, self.emulator.requests)

    async def clear_es_requests(self) -> None:
        """Empty the emulator's request log."""
        await self.call(self.emulator.requests.clear)

    async def stop(self) -> None:
        """Stop serving and end the loop thread."""
        await asyncio.to_thread(self.slack.stop)
        await self._on_loop(self.emulator.stop())
        await asyncio.to_thread(self._loop.close)
