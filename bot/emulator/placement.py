"""Allocation placement: how many of a deployment's target allocations the ML node has started.

A real cluster places new allocations over time (the node loads the model, starts the
process), so after `_update` raises `number_of_allocations` the `_stats`
`allocation_status.allocation_count` trails `target_allocation_count` for a while, with
`allocation_status.state` `started` instead of `fully_allocated`. Tests choose how:

- `immediate` (default): placed at once, as before;
- `manual`: placed only when the test calls `step()` (no real time passes);
- `timed`: one allocation every `seconds` of real time (the demo, HTTP tests);
- `fail=<reason>`: new allocations are never placed and the deployment carries the reason
  (ES sets the assignment reason when a node cannot take more allocations).

Decreases take effect at once (TrainedModelAssignmentClusterService.decreaseNumberOfAllocations
rewrites the routing table in the same cluster state update). Placement never goes beyond the
node's free processors (`ClusterState.ml_processors`); what does not fit stays pending with
the capacity reason.
"""

from __future__ import annotations

import asyncio
import contextlib

from bot.emulator.state import ClusterState, Deployment

MODES = ("immediate", "manual", "timed")


def used_processors(state: ClusterState, exclude: str | None = None) -> int:
    """Processors taken by placed allocations of normal-priority deployments."""
    return sum(
        d.placed * d.threads_per_allocation
        for d in state.deployments.values()
        if d.deployment_id != exclude and d.priority == "normal" and d.state != "stopping"
    )


def capacity_reason(state: ClusterState, dep: Deployment) -> str:
    """The assignment reason when allocations do not fit (after TrainedModelAssignmentRebalancer
    explainAssignment; the text is inferred, see the emulator README)."""
    free = max(state.ml_processors - used_processors(state), 0)
    return (
        f"Could not assign (more) allocations on node [{state.node_name}]. Reason: This node "
        f"has insufficient allocated processors. Available processors [{state.ml_processors}], "
        f"free processors [{free}], processors required for each allocation of this model "
        f"[{dep.threads_per_allocation}]"
    )


class Placement:
    """Places pending allocations per the configured mode; tests may `step()` it by hand."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self.mode = "immediate"
        self.seconds = 0.0
        self.fail: str | None = None
        self._timers: dict[str, asyncio.Task[None]] = {}

    def configure(
        self, mode: str = "immediate", seconds: float = 0.0, fail: str | None = None
    ) -> None:
        """Choose how later increases are placed (see the module docstring)."""
        if mode not in MODES:
            raise ValueError(f"placement mode must be one of {', '.join(MODES)}, not [{mode}]")
        if mode == "timed" and seconds <= 0:
            raise ValueError("timed placement needs seconds > 0")
        self.mode, self.seconds, self.fail = mode, seconds, fail

    def pending(self, dep: Deployment) -> int:
        """Allocations requested but not started yet."""
        return max(dep.number_of_allocations - dep.placed, 0)

    def request(self, dep: Deployment) -> None:
        """A new target was set: a decrease applies now, an increase per the mode."""
        dep.allocation_count = dep.placed
        if self.pending(dep) == 0:
            return
        if self.fail is not None:
            dep.reason = self.fail
            return
        if self.mode == "immediate":
            self.place(dep, self.pending(dep))
        elif self.mode == "timed":
            self._start_timer(dep.deployment_id)

    def place(self, dep: Deployment, count: int) -> int:
        """Start up to `count` pending allocations that fit on the node; returns how many."""
        if self.fail is not None:
            dep.reason = self.fail
            return 0
        free = self.state.ml_processors - used_processors(self.state, dep.deployment_id)
        fits = free // max(dep.threads_per_allocation, 1) if dep.priority == "normal" else count
        target = min(dep.placed + count, dep.number_of_allocations, max(fits, dep.placed))
        placed = target - dep.placed
        dep.allocation_count = target
        if self.pending(dep) and fits <= dep.placed:
            dep.reason = capacity_reason(self.state, dep)
        elif not self.pending(dep):
            dep.reason = None
        if dep.placed > 0 and dep.state == "starting":
            dep.state = "started"
        return placed

    def step(self, deployment_id: str | None = None, count: int = 1) -> int:
        """Place `count` pending allocations of one deployment (or of each); returns the total."""
        deps = [
            d
            for d in self.state.deployments.values()
            if deployment_id in (None, d.deployment_id) and self.pending(d)
        ]
        return sum(self.place(d, count) for d in deps)

    def _start_timer(self, deployment_id: str) -> None:
        timer = self._timers.get(deployment_id)
        if timer is None or timer.done():
            self._timers[deployment_id] = asyncio.get_running_loop().create_task(
                self._tick(deployment_id)
            )

    async def _tick(self, deployment_id: str) -> None:
        while True:
            await asyncio.sleep(self.seconds)
            dep = self.state.deployments.get(deployment_id)
            if dep is None or not self.pending(dep) or self.place(dep, 1) == 0:
                return

    async def close(self) -> None:
        """Cancel timers (emulator shutdown)."""
        for timer in self._timers.values():
            timer.cancel()
        for timer in self._timers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await timer
