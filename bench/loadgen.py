"""The load generator: signed slash commands and button clicks, as whole flows.

A flow is what one on-call engineer does: `/ml-stop <deployment>` (acked by the server),
the preview arrives on the command's response_url, a click on its Stop button (acked), the
result is posted in the channel. Each flow has its own channel, so the stand-in can tell
its posts apart, and holds its own deployment. Flows run as a burst, at a fixed rate
(open loop: arrivals do not wait for earlier flows) or at a fixed concurrency (closed loop).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import aiohttp
from support.driver import ClickFields, SlackDriver

from bench.harness import ADMIN, SIGNING_SECRET, Post, Services
from bench.standin_proc import CONFIRM_ACTION_ID

ACK_TIMEOUT = 10.0  # Slack gives up after 3 s; keep measuring a little longer

Mode = Literal["burst", "rate", "concurrency"]


@dataclass(frozen=True)
class Load:
    """How flows arrive: all at once, `rate` per second for `duration` s, or `concurrency`.

    Flows still running `limit` seconds after the last arrival (the start, for a burst or a
    fixed concurrency) are cancelled and counted as failed, so every run ends in bounded time.
    """

    mode: Mode
    count: int = 0
    rate: float = 0.0
    duration: float = 0.0
    concurrency: int = 0
    limit: float = 60.0

    def describe(self) -> str:
        """One line for the table."""
        if self.mode == "burst":
            return f"{self.count} flows at once"
        if self.mode == "rate":
            return f"{self.rate:g} flows/s for {self.duration:g} s"
        return f"{self.count} flows, {self.concurrency} at a time"


@dataclass
class Flow:
    """One flow's timeline (wall-clock seconds) and outcome."""

    n: int
    channel: str
    deployment: str
    command_sent: float = 0.0
    command_acked: float | None = None
    proposal_at: float | None = None
    action_id: str | None = None
    click_sent: float | None = None
    click_acked: float | None = None
    result_at: float | None = None
    error: str | None = None

    @property
    def command_ack(self) -> float | None:
        """Seconds until the command was acked."""
        return None if self.command_acked is None else self.command_acked - self.command_sent

    @property
    def click_ack(self) -> float | None:
        """Seconds until the click was acked."""
        if self.click_acked is None or self.click_sent is None:
            return None
        return self.click_acked - self.click_sent

    @property
    def click_to_result(self) -> float | None:
        """Seconds from sending the click to the result posted in the channel."""
        if self.result_at is None or self.click_sent is None:
            return None
        return self.result_at - self.click_sent

    @property
    def completed(self) -> bool:
        """The result reached the channel and nothing failed on the way."""
        return self.error is None and self.result_at is not None

    def to_json(self) -> dict[str, Any]:
        """The raw record."""
        return asdict(self)


@dataclass(frozen=True)
class _Command:
    """A flow's slash command, signed and ready to send."""

    record: Flow
    response_id: str
    body: bytes
    headers: dict[str, str]


class FlowError(Exception):
    """A flow step failed; the message says which and how."""


class LoadGenerator:
    """Drives flows against one or more servers (requests alternate between them)."""

    def __init__(
        self,
        services: Services,
        events_urls: Sequence[str],
        session: aiohttp.ClientSession,
        *,
        step_timeout: float = 60.0,
        channel_prefix: str = "CB",
    ) -> None:
        self.services = services
        self.urls = list(events_urls)
        self.session = session
        self.step_timeout = step_timeout
        self.channel_prefix = channel_prefix
        self.driver = SlackDriver(self.urls[0], SIGNING_SECRET)
        self.flows: list[Flow] = []

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[float, int, str]:
        async with self.session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=ACK_TIMEOUT)
        ) as resp:
            text = await resp.text()
            return time.time(), resp.status, text

    async def _wait(self, future: asyncio.Future[Post], kind: str, key: str, what: str) -> Post:
        try:
            return await asyncio.wait_for(future, self.step_timeout)
        except TimeoutError:
            self.services.slack.forget(kind, key)
            raise FlowError(f"no {what} within {self.step_timeout:g}s") from None

    async def _prepare(self, n: int) -> _Command:
        """A flow's record and its signed slash command, built before the clock starts."""
        channel = f"{self.channel_prefix}{n:08d}"
        record = Flow(n, channel, await self.services.pool.take())
        self.flows.append(record)
        response_url = await self.services.slack.new_response_url(channel=channel, user=ADMIN)
        body = self.driver.build_command(
            "/ml-stop",
            f"{record.deployment} --reason bench",
            user_id=ADMIN,
            channel_id=channel,
            response_url=response_url,
        )
        headers = self.driver.signed_headers(body)
        return _Command(record, response_url.rsplit("/", 1)[1], body, headers)

    async def flow(self, n: int) -> Flow:
        """Run one flow to its end (or its first failure) and record it."""
        return await self._execute(await self._prepare(n))

    async def _execute(self, command: _Command) -> Flow:
        record = command.record
        try:
            await self._run(command)
        except FlowError as exc:
            record.error = str(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            record.error = f"{type(exc).__name__}: {exc}"
        finally:
            # A failed flow's stop may still be under way: its deployment is not reused.
            if record.completed:
                await self.services.pool.give_back(record.deployment)
        return record

    async def _run(self, command: _Command) -> None:
        record, slack, response_id = command.record, self.services.slack, command.response_id
        proposal = slack.expect("response", response_id)
        url = self.urls[record.n % len(self.urls)]
        record.command_sent = time.time()
        try:
            acked, status, text = await self._post(url, command.body, command.headers)
        except BaseException:
            slack.forget("response", response_id)
            raise
        if status != 200:
            slack.forget("response", response_id)
            raise FlowError(f"command answered {status}: {text[:200]}")
        record.command_acked = acked
        post = await self._wait(proposal, "response", response_id, "preview")
        record.proposal_at = post.at
        button = post.body.get("button")
        if not button or not post.body.get("click_url"):
            raise FlowError(f"preview without a Stop button: {post.body.get('text')}")
        block_id, value = button
        record.action_id = value
        await self._click(record, block_id, value, post)

    async def _click(self, record: Flow, block_id: str | None, value: str, preview: Post) -> None:
        slack = self.services.slack
        fields: ClickFields = {
            "user_id": ADMIN,
            "channel_id": record.channel,
            "ephemeral": True,
            "text": "Stop",
            "response_url": str(preview.body["click_url"]),
        }
        if preview.body.get("ts"):
            fields["message_ts"] = str(preview.body["ts"])
        if block_id:
            fields["block_id"] = block_id
        body = self.driver.build_click(CONFIRM_ACTION_ID, value, **fields)
        headers = self.driver.signed_headers(body)
        result = slack.expect("channel", record.channel, _is_result)
        url = self.urls[(record.n + 1) % len(self.urls)]
        record.click_sent = time.time()
        try:
            acked, status, text = await self._post(url, body, headers)
        except BaseException:
            slack.forget("channel", record.channel)
            raise
        if status != 200:
            slack.forget("channel", record.channel)
            raise FlowError(f"click answered {status}: {text[:200]}")
        record.click_acked = acked
        post = await self._wait(result, "channel", record.channel, "result in the channel")
        record.result_at = post.at

    async def run(self, load: Load, first: int = 0) -> list[Flow]:
        """Run flows numbered from `first` as `load` says; return their records."""
        before = len(self.flows)
        if load.mode == "burst":
            commands = [await self._prepare(first + i) for i in range(load.count)]
            tasks = [asyncio.create_task(self._execute(c)) for c in commands]
        elif load.mode == "rate":
            tasks = await self._at_rate(load.rate, load.duration, first)
        else:
            tasks = self._at_concurrency(load.concurrency, load.count, first)
        await _finish(tasks, load.limit)
        flows = self.flows[before:]
        for record in flows:
            if record.result_at is None and record.error is None:
                record.error = f"unfinished when the run's {load.limit:g} s limit ran out"
        return flows

    async def _at_rate(self, rate: float, duration: float, first: int) -> list[asyncio.Task[Any]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks: list[asyncio.Task[Any]] = []
        i = 0
        while i / rate < duration:
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.flow(first + i)))
            i += 1
        return tasks

    def _at_concurrency(self, concurrency: int, count: int, first: int) -> list[asyncio.Task[Any]]:
        numbers = iter(range(first, first + count))

        async def worker() -> None:
            for n in numbers:
                await self.flow(n)

        return [asyncio.create_task(worker()) for _ in range(concurrency)]


async def _finish(tasks: list[asyncio.Task[Any]], limit: float) -> None:
    """Wait for the tasks up to `limit` seconds, then cancel what is left."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _is_result(post: Post) -> bool:
    """A channel write that shows an outcome, not work in progress (the stand-in tells)."""
    return bool(post.body.get("result"))
