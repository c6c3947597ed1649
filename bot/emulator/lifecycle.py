"""Deployment runtime: queued inference work and the stop sequence (stopping, drain, removal)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from bot.emulator.state import ClusterState, Deployment, now_ms


class Lifecycle:
    """Runs queued inference per deployment and carries out stops like the ML node does."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.stop_delay = 0.0
        # Seconds a stopped deployment stays visible as `stopping` after the stop answered:
        # a slow node teardown (servers before ES #83644), for the bot's outcome check.
        self.linger = 0.0
        self._queues: dict[str, deque[float]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._idle: dict[str, asyncio.Event] = {}
        self._stops: dict[str, asyncio.Task[None]] = {}

    def enqueue(self, deployment_id: str, count: int, seconds_each: float) -> Deployment:
        """Add queued inference requests; a worker completes them one by one."""
        dep = self.state.deployments[deployment_id]
        queue = self._queues.setdefault(deployment_id, deque())
        queue.extend([seconds_each] * count)
        dep.pending_requests = len(queue)
        self._idle.setdefault(deployment_id, asyncio.Event()).clear()
        worker = self._workers.get(deployment_id)
        if worker is None or worker.done():
            self._workers[deployment_id] = asyncio.get_running_loop().create_task(
                self._work(deployment_id)
            )
        return dep

    async def _work(self, deployment_id: str) -> None:
        queue = self._queues[deployment_id]
        try:
            while queue:
                await asyncio.sleep(queue[0])
                queue.popleft()
                dep = self.state.deployments.get(deployment_id)
                if dep is None:
                    break
                dep.pending_requests = len(queue)
                dep.inference_count += 1
                dep.throughput_last_minute += 1
                dep.peak_throughput_per_minute = max(
                    dep.peak_throughput_per_minute, dep.throughput_last_minute
                )
                dep.last_access = now_ms()
        finally:
            self._idle[deployment_id].set()

    def stopping(self, deployment_id: str) -> bool:
        """Whether a stop is in flight for the deployment."""
        task = self._stops.get(deployment_id)
        return task is not None and not task.done()

    async def stop(self, deployment_id: str, finish_pending_work: bool) -> None:
        """Stop a deployment; a second stop while one is in flight waits for the first."""
        task = self._stops.get(deployment_id)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(
                self._stop(deployment_id, finish_pending_work)
            )
            self._stops[deployment_id] = task
        # Shielded: the real stop carries on even when the HTTP client goes away.
        await asyncio.shield(task)

    async def _stop(self, deployment_id: str, finish_pending_work: bool) -> None:
        dep = self.state.deployments[deployment_id]
        dep.state = "stopping"
        queue = self._queues.get(deployment_id)
        if finish_pending_work and queue:
            await self._idle[deployment_id].wait()
        else:
            await self._fail_queued(deployment_id, dep)
        if self.stop_delay > 0:
            await asyncio.sleep(self.stop_delay)
        if self.linger > 0:
            asyncio.get_running_loop().call_later(self.linger, self._remove, deployment_id, dep)
            return
        self._remove(deployment_id, dep)

    def _remove(self, deployment_id: str, dep: Deployment) -> None:
        if self.state.deployments.get(deployment_id) is dep:
            self.state.deployments.pop(deployment_id, None)
        self._queues.pop(deployment_id, None)
        self._idle.pop(deployment_id, None)

    async def _fail_queued(self, deployment_id: str, dep: Deployment) -> None:
        """forcefullyStopProcess: queued requests fail (counted as errors)."""
        worker = self._workers.pop(deployment_id, None)
        if worker is not None and not worker.done():
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        queue = self._queues.get(deployment_id)
        dep.error_count += dep.pending_requests
        if queue:
            queue.clear()
        dep.pending_requests = 0

    async def close(self) -> None:
        """Cancel background work (emulator shutdown)."""
        tasks = [t for t in [*self._workers.values(), *self._stops.values()] if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
