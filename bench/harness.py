"""The services of one run, each in a process of its own: the Elasticsearch emulator
(`python -m bot.emulator`) and the Slack stand-in (`python -m bench.standin_proc`).

Their CPU is charged to their own processes, not to the load generator's or the bot's. The
bench talks to them over HTTP only: the emulator through its real API (to deploy the bench's
deployments, tagged with the bench's own `X-Opaque-Id` so they can be told apart in the
request log) and its `/_emulator/` control endpoints (latency, request log); the stand-in
through its `/_bench/` control routes (mint response_urls, a stream of the posts flows wait
for, stamped with the time they reached the stand-in).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import sys
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from support.shared import ADMIN, SIGNING_SECRET, role_map

from bench import REPO
from bench.servers import Server, base_env, free_port, launch
from bot.emulator import RequestRecord, demo_state, dump_state

__all__ = ["ADMIN", "BENCH_MODEL", "BENCH_OPAQUE", "ROLE_MAP", "SIGNING_SECRET", "Services"]

BENCH_MODEL = ".multilingual-e5-small_linux-x86_64"  # a demo model no pipeline references
BENCH_OPAQUE = "ml-chatops-bench/pool"  # X-Opaque-Id of the bench's own requests
# The tests' role map with the product's default verify timeout (the bench slows ES down).
ROLE_MAP = role_map(verify_timeout_seconds=None)


@dataclass(frozen=True)
class Post:
    """A message the server sent to Slack, as the stand-in received it."""

    at: float  # time.time() on arrival at the stand-in
    body: dict[str, Any]
    status: int
    method: str = "response_url"


Accept = Callable[[Post], bool]


class SlackProcess:
    """Client of the stand-in process: mints response_urls, resolves the futures flows wait on."""

    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base_url = server.url
        self.bot_token = "xoxb-0000-standin-bot-token"  # SlackStandIn's default
        self._waiting: dict[tuple[str, str], tuple[asyncio.Future[Post], Accept | None]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def api_url(self) -> str:
        """Web API base URL for slack_sdk."""
        return f"{self.base_url}/api/"

    async def subscribe(self) -> None:
        """Open the event stream and start reading it."""
        resp = await self.session.get(
            f"{self.base_url}/_bench/events", timeout=aiohttp.ClientTimeout(total=None)
        )
        hello = await resp.content.readline()
        if b"hello" not in hello:
            raise RuntimeError(f"unexpected first event from the stand-in: {hello!r}")
        self._reader = asyncio.create_task(self._read(resp))

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.CancelledError):
            async with resp:
                async for line in resp.content:
                    self._deliver(json.loads(line))

    def _deliver(self, event: dict[str, Any]) -> None:
        kind, key = event["kind"], event["key"]
        waiting = self._waiting.get((kind, key))
        if waiting is None:
            return
        future, accept = waiting
        post = Post(event["at"], event, event["status"], event.get("method", "response_url"))
        if accept is not None and not accept(post):
            return
        del self._waiting[(kind, key)]
        if not future.done():
            future.set_result(post)

    def expect(self, kind: str, key: str, accept: Accept | None = None) -> asyncio.Future[Post]:
        """A future for the next post of `kind` ("response" id or "channel" id) to `key`."""
        future: asyncio.Future[Post] = asyncio.get_running_loop().create_future()
        self._waiting[(kind, key)] = (future, accept)
        return future

    def forget(self, kind: str, key: str) -> None:
        """Stop waiting for a post."""
        self._waiting.pop((kind, key), None)

    async def new_response_url(self, *, channel: str, user: str) -> str:
        """A slash command's response_url, minted by the stand-in."""
        async with self.session.post(
            f"{self.base_url}/_bench/response_url", json={"channel": channel, "user": user}
        ) as resp:
            resp.raise_for_status()
            return str((await resp.json())["url"])

    async def close(self) -> None:
        """Stop reading events."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


class EmulatorProcess:
    """Client of the emulator process: latency, the request log, the bench's deployments."""

    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.url = server.url
        self.latency: dict[str, float] = {}

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, f"{self.url}/_emulator/{path}", json=body) as r:
            r.raise_for_status()
            return await r.json()

    async def set_latency(self, latencies: dict[str, float]) -> None:
        """Delay matching endpoints (globs, e.g. `*`) by these seconds; they add up."""
        for endpoint in list(self.latency):
            await self._admin("POST", "latency", {"endpoint": endpoint, "seconds": 0})
        self.latency = {}
        for endpoint, seconds in latencies.items():
            await self._admin("POST", "latency", {"endpoint": endpoint, "seconds": seconds})
            if seconds > 0:
                self.latency[endpoint] = seconds

    def delay_for(self, endpoint: str) -> float:
        """The injected latency of one endpoint (matching patterns add up, as in the emulator)."""
        return sum(s for p, s in self.latency.items() if fnmatch.fnmatchcase(endpoint, p))

    async def requests(self, *, include_bench: bool = False) -> list[RequestRecord]:
        """The emulator's request log, without the bench's own requests unless asked."""
        records = [RequestRecord(**r) for r in await self._admin("GET", "requests")]
        if include_bench:
            return records
        return [r for r in records if r.headers.get("x-opaque-id") != BENCH_OPAQUE]

    async def clear_requests(self) -> None:
        """Empty the request log."""
        await self._admin("DELETE", "requests")

    async def deploy(self, deployment_id: str) -> bool:
        """Start a deployment of the bench model through the real API.

        True if it is started now, including when it already was (the baseline never stops
        its deployments: the emulator answers 400 "an existing deployment ... exist").
        """
        async with self.session.post(
            f"{self.url}/_ml/trained_models/{BENCH_MODEL}/deployment/_start",
            params={"deployment_id": deployment_id, "wait_for": "started"},
            headers={"X-Opaque-Id": BENCH_OPAQUE},
        ) as resp:
            text = await resp.text()
            return resp.status == 200 or (resp.status == 400 and "existing deployment" in text)


class DeploymentPool:
    """Bench deployments, each held by one flow at a time; the cluster grows when all are held.

    The first `initial` are in the emulator's state from its start (its `--data` file); more
    are started through the API. A flow stops the deployment it holds; giving it back deploys
    it again, so the next flow finds it started.
    """

    def __init__(self, initial: int) -> None:
        self.emulator: EmulatorProcess | None = None
        self._free: deque[str] = deque(self.name(n) for n in range(initial))
        self.created = initial
        self._others = len(demo_state().deployments)

    @staticmethod
    def name(n: int) -> str:
        """The id of the n-th bench deployment."""
        return f"bench-{n:04d}"

    def initial_ids(self) -> list[str]:
        """The deployments the emulator starts with."""
        return list(self._free)

    async def take(self) -> str:
        """A started deployment no other flow holds."""
        if self._free:
            return self._free.popleft()
        assert self.emulator is not None
        while True:
            deployment_id = self.name(self.created)
            self.created += 1
            if await self.emulator.deploy(deployment_id):
                return deployment_id

    async def give_back(self, deployment_id: str) -> None:
        """Deploy it again (it was stopped) and let the next flow have it."""
        assert self.emulator is not None
        if await self.emulator.deploy(deployment_id):
            self._free.append(deployment_id)

    @property
    def cluster_size(self) -> int:
        """Deployments in the emulated cluster (demo ones included) at their most."""
        return self.created + self._others


def state_file(path: Path, deployment_ids: Iterable[str]) -> Path:
    """The demo cluster plus the bench's deployments, as an emulator `--data` file."""
    state = demo_state()
    for deployment_id in deployment_ids:
        state.start_deployment(BENCH_MODEL, deployment_id, inference_count=1000)
    path.write_text(json.dumps(dump_state(state)), encoding="utf-8")
    return path


class Services:
    """The emulator (demo cluster + bench deployments) and the stand-in, each its own process."""

    def __init__(self, workdir: Path, *, pool: int = 16) -> None:
        self.workdir = workdir
        self.pool = DeploymentPool(pool)
        self._emulator: EmulatorProcess | None = None
        self._slack: SlackProcess | None = None

    @property
    def emulator(self) -> EmulatorProcess:
        """The emulator's client (after `start`)."""
        assert self._emulator is not None, "Services not started"
        return self._emulator

    @property
    def slack(self) -> SlackProcess:
        """The stand-in's client (after `start`)."""
        assert self._slack is not None, "Services not started"
        return self._slack

    @property
    def es_url(self) -> str:
        """The emulator's base URL."""
        return self.emulator.url

    @property
    def processes(self) -> list[Server]:
        """Both service processes (for their CPU)."""
        return [p.server for p in (self._emulator, self._slack) if p is not None]

    async def start(self, session: aiohttp.ClientSession) -> Services:
        """Start both processes on free ports of 127.0.0.1 and wait until they answer."""
        data = state_file(self.workdir / "cluster.json", self.pool.initial_ids())
        port = free_port()
        emulator = await launch(
            "emulator",
            [sys.executable, "-m", "bot.emulator", "--port", str(port), "--data", str(data)],
            base_env({"PORT": str(port)}),
            self.workdir,
            session,
            name="emulator",
            health_path="/_emulator/requests",
        )
        self._emulator = EmulatorProcess(emulator, session)
        self.pool.emulator = self._emulator
        port = free_port()
        standin = await launch(
            "standin",
            [sys.executable, "-m", "bench.standin_proc", "--port", str(port)],
            base_env({"PORT": str(port), "PYTHONPATH": str(REPO)}),
            self.workdir,
            session,
            name="standin",
        )
        self._slack = SlackProcess(standin, session)
        await self._slack.subscribe()
        return self

    async def stop(self) -> None:
        """Stop both processes."""
        if self._slack is not None:
            await self._slack.close()
        for server in self.processes:
            await asyncio.to_thread(server.stop)
