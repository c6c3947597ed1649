"""How a deployment is doing, from `_stats` and `_ml/memory/_stats` (pure).

`health_of(entry)` reads one `trained_model_stats` entry; `assess(health)` judges it and
names the action that fits; `parse_memory(body)` reads the ML nodes' memory. Field names
and where they sit follow Elasticsearch's `AssignmentStats` serializer (see
docs/elasticsearch.md): per-deployment counts appear only when above zero, per-node ones
likewise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from bot.core.model import ScaleChange

QUEUE_FULL = 0.8  # pending requests at this share of the queue capacity count as full


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class NodeHealth:
    """One node's share of a deployment."""

    name: str
    routing_state: str
    reason: str | None = None
    pending: int = 0
    inference_count: int = 0
    average_ms: float | None = None
    average_ms_last_minute: float | None = None
    throughput_last_minute: int = 0
    last_access: int | None = None  # epoch ms
    errors: int = 0
    rejected: int = 0
    timeouts: int = 0


@dataclass(frozen=True)
class DeploymentHealth:
    """Everything `/ml-status` shows of one deployment."""

    deployment_id: str
    model_id: str
    state: str
    reason: str | None = None
    allocated: int | None = None
    target: int | None = None
    adaptive: Mapping[str, Any] | None = None
    threads: int | None = None
    queue_capacity: int | None = None
    priority: str = "normal"
    inference_count: int = 0
    errors: int = 0
    rejected: int = 0
    timeouts: int = 0
    peak_throughput: int = 0
    required_memory: int | None = None
    nodes: tuple[NodeHealth, ...] = ()

    @property
    def pending(self) -> int:
        """Requests queued on every node."""
        return sum(n.pending for n in self.nodes)

    @property
    def throughput_last_minute(self) -> int:
        """Inferences in the last minute, every node."""
        return sum(n.throughput_last_minute for n in self.nodes)

    @property
    def last_access(self) -> int | None:
        """The newest access on any node (epoch ms)."""
        seen = [n.last_access for n in self.nodes if n.last_access is not None]
        return max(seen) if seen else None

    def average_ms(self, *, last_minute: bool = False) -> float | None:
        """Average inference time over the nodes, weighted by their inference counts."""
        pairs = [
            (n.average_ms_last_minute if last_minute else n.average_ms, n.inference_count or 1)
            for n in self.nodes
        ]
        known = [(ms, weight) for ms, weight in pairs if ms is not None]
        if not known:
            return None
        total = sum(weight for _, weight in known)
        return sum(ms * weight for ms, weight in known) / total

    @property
    def adaptive_on(self) -> bool:
        """Adaptive allocations are enabled."""
        return bool(self.adaptive and self.adaptive.get("enabled"))


def _node(raw: Mapping[str, Any]) -> NodeHealth:
    node = raw.get("node") or {}
    name = next(
        (str(v.get("name") or k) for k, v in node.items() if isinstance(v, dict)),
        "?",
    )
    routing = raw.get("routing_state") or {}
    return NodeHealth(
        name=name,
        routing_state=str(routing.get("routing_state", "unknown")),
        reason=routing.get("reason"),
        pending=_int(raw.get("number_of_pending_requests")),
        inference_count=_int(raw.get("inference_count")),
        average_ms=_opt_float(raw.get("average_inference_time_ms")),
        average_ms_last_minute=_opt_float(raw.get("average_inference_time_ms_last_minute")),
        throughput_last_minute=_int(raw.get("throughput_last_minute")),
        last_access=_opt_int(raw.get("last_access")),
        errors=_int(raw.get("error_count")),
        rejected=_int(raw.get("rejected_execution_count")),
        timeouts=_int(raw.get("timeout_count")),
    )


def health_of(entry: Mapping[str, Any]) -> DeploymentHealth:
    """One `trained_model_stats` entry with `deployment_stats`."""
    ds = entry["deployment_stats"]
    alloc = ds.get("allocation_status") or {}
    size = entry.get("model_size_stats") or {}
    nodes = tuple(_node(n) for n in ds.get("nodes") or [] if isinstance(n, dict))
    adaptive = ds.get("adaptive_allocations")
    return DeploymentHealth(
        deployment_id=str(ds.get("deployment_id") or entry["model_id"]),
        model_id=str(ds.get("model_id") or entry["model_id"]),
        state=str(ds.get("state", "unknown")),
        reason=ds.get("reason"),
        allocated=_opt_int(alloc.get("allocation_count")),
        target=_opt_int(alloc.get("target_allocation_count", ds.get("number_of_allocations"))),
        adaptive=adaptive if isinstance(adaptive, dict) else None,
        threads=_opt_int(ds.get("threads_per_allocation")),
        queue_capacity=_opt_int(ds.get("queue_capacity")),
        priority=str(ds.get("priority", "normal")),
        inference_count=_int(ds.get("inference_count")) or sum(n.inference_count for n in nodes),
        errors=_int(ds.get("error_count")),
        rejected=_int(ds.get("rejected_execution_count")),
        timeouts=_int(ds.get("timeout_count")),
        peak_throughput=_int(ds.get("peak_throughput_per_minute")),
        required_memory=_opt_int(size.get("required_native_memory_bytes")),
        nodes=nodes,
    )


class Level(IntEnum):
    """How bad it is; lower sorts first."""

    FAILING = 0
    OVERLOADED = 1
    DEGRADED = 2
    HEALTHY = 3


@dataclass(frozen=True)
class Assessment:
    """The verdict, the findings behind it, and the action that fits (if any)."""

    level: Level
    findings: tuple[str, ...]
    advice: str | None = None
    scale_up: ScaleChange | None = None  # the change a Scale up button proposes
    stop: bool = False  # a Stop button fits


def scale_up_change(health: DeploymentHealth) -> ScaleChange:
    """Twice the allocations (at least one more), or twice the adaptive ceiling."""
    if health.adaptive_on and health.adaptive is not None:
        ceiling = _opt_int(health.adaptive.get("max_number_of_allocations"))
        base = ceiling or health.target or 1
        return ScaleChange(adaptive=True, max_allocations=max(base + 1, base * 2))
    base = health.target or 1
    return ScaleChange(allocations=max(base + 1, base * 2))


def assess(health: DeploymentHealth, rejected_before: int | None = None) -> Assessment:
    """Judge one deployment the way an on-call engineer would at a glance.

    `rejected_before`: the rejection count an earlier look saw (None: no earlier look), so
    rejections that keep rising can be told from old ones."""
    failed_nodes = [n for n in health.nodes if n.routing_state == "failed"]
    if health.state == "failed" or failed_nodes:
        why = health.reason or next((n.reason for n in failed_nodes if n.reason), None)
        finding = f"failed: {why}" if why else "failed"
        if failed_nodes and health.state != "failed":
            names = ", ".join(n.name for n in failed_nodes)
            finding = f"failed on node(s) {names}" + (f": {why}" if why else "")
        return Assessment(
            Level.FAILING,
            (finding,),
            f"consider `/ml-stop {health.deployment_id}` and starting it again "
            "once the cause is fixed",
            stop=True,
        )
    findings: list[str] = []
    capacity = health.queue_capacity
    full = capacity is not None and capacity > 0 and health.pending >= capacity * QUEUE_FULL
    if full and capacity is not None:
        word = "full" if health.pending >= capacity else "nearly full"
        findings.append(f"queue {word} ({health.pending:,} of {capacity:,})")
    if health.rejected:
        rising = rejected_before is not None and health.rejected > rejected_before
        trend = f", rising (+{health.rejected - (rejected_before or 0):,} since the last look)"
        findings.append(f"{health.rejected:,} requests rejected{trend if rising else ''}")
    if health.timeouts:
        findings.append(f"{health.timeouts:,} timeouts")
    if full or health.rejected or health.timeouts:
        change = scale_up_change(health)
        return Assessment(
            Level.OVERLOADED,
            tuple(findings),
            f"consider `/ml-scale {health.deployment_id} {change.text()}`",
            scale_up=change,
            stop=False,
        )
    if health.state in ("starting", "stopping"):
        findings.append(f"{health.state}")
    if (
        health.allocated is not None
        and health.target is not None
        and health.allocated < health.target
    ):
        findings.append(
            f"{health.allocated} of {health.target} allocations placed (check ML memory and nodes)"
        )
    if health.errors:
        findings.append(f"{health.errors:,} inference errors")
    if findings:
        return Assessment(Level.DEGRADED, tuple(findings))
    return Assessment(Level.HEALTHY, ("healthy",))


@dataclass(frozen=True)
class NodeMemory:
    """One ML node's memory for ML (bytes)."""

    name: str
    limit: int  # mem.ml.max_in_bytes
    used: int  # inference + anomaly detection + analytics + native code overhead

    @property
    def free(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class MlMemory:
    """The ML nodes' memory (`GET _ml/memory/_stats`)."""

    nodes: tuple[NodeMemory, ...]

    @property
    def limit(self) -> int:
        return sum(n.limit for n in self.nodes)

    @property
    def free(self) -> int:
        return sum(n.free for n in self.nodes)

    @property
    def largest_free(self) -> int:
        return max((n.free for n in self.nodes), default=0)


def parse_memory(body: Mapping[str, Any]) -> MlMemory:
    """The ML nodes of a `GET _ml/memory/_stats` answer (nodes without ML memory left out)."""
    out: list[NodeMemory] = []
    for node_id, raw in (body.get("nodes") or {}).items():
        if not isinstance(raw, dict):
            continue
        ml = (raw.get("mem") or {}).get("ml") or {}
        limit = _int(ml.get("max_in_bytes"))
        if limit <= 0:
            continue
        used = sum(
            _int(ml.get(k))
            for k in (
                "native_inference_in_bytes",
                "anomaly_detectors_in_bytes",
                "data_frame_analytics_in_bytes",
                "native_code_overhead_in_bytes",
            )
        )
        out.append(NodeMemory(str(raw.get("name") or node_id), limit, used))
    return MlMemory(tuple(out))


def size_text(n: int | None) -> str:
    """`1.2 GB`, `300 MB`, `?`."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
