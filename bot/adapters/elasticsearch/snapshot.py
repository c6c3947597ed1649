"""One read of a cluster's deployments, aliases, pipelines, endpoints and mappings (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.impact import (
    ClusterFacts,
    Endpoint,
    SemanticField,
    StartPlan,
    impact_of,
    plan_start,
)
from bot.core.model import Deployment

MAX_PROCESSOR_DEPTH = 10  # Elasticsearch stops scanning nested processors here too


def inference_model_ids(processors: Iterable[Any], depth: int = 0) -> Iterator[str]:
    """Every `inference` processor's model_id, as Elasticsearch scans them (foreach, on_failure)."""
    if depth >= MAX_PROCESSOR_DEPTH:
        return
    for proc in processors:
        if not isinstance(proc, dict):
            continue
        for kind, conf in proc.items():
            if not isinstance(conf, dict):
                continue
            if kind == "inference" and isinstance(conf.get("model_id"), str):
                yield conf["model_id"]
            if kind == "foreach" and isinstance(conf.get("processor"), dict):
                yield from inference_model_ids([conf["processor"]], depth + 1)
            if isinstance(conf.get("on_failure"), list):
                yield from inference_model_ids(conf["on_failure"], depth + 1)


def pipeline_references(pipelines: Mapping[str, Any]) -> dict[str, set[str]]:
    """model_id (or alias or deployment id) → names of the pipelines that reference it."""
    refs: dict[str, set[str]] = {}
    for name, body in pipelines.items():
        processors = body.get("processors", []) if isinstance(body, dict) else []
        for model_id in inference_model_ids(processors):
            refs.setdefault(model_id, set()).add(name)
    return refs


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def deployment_from_stats(
    entry: Mapping[str, Any], pipelines: Sequence[str] = (), facts: ClusterFacts | None = None
) -> Deployment:
    """Build a Deployment from one `trained_model_stats` entry with `deployment_stats`."""
    ds = entry["deployment_stats"]
    alloc = ds.get("allocation_status") or {}
    nodes = ds.get("nodes") or []
    inference = ds.get("inference_count")
    if inference is None:
        inference = sum(int(n.get("inference_count", 0)) for n in nodes)
    deployment_id = str(ds.get("deployment_id") or entry["model_id"])
    model_id = str(ds.get("model_id") or entry["model_id"])
    return Deployment(
        deployment_id=deployment_id,
        model_id=model_id,
        state=str(ds.get("state", "unknown")),
        allocations=_int(alloc.get("allocation_count")),
        target_allocations=_int(
            alloc.get("target_allocation_count", ds.get("number_of_allocations"))
        ),
        threads_per_allocation=_int(ds.get("threads_per_allocation")),
        priority=str(ds.get("priority", "normal")),
        queue_capacity=_int(ds.get("queue_capacity")),
        cache_size=ds.get("cache_size"),
        adaptive_allocations=ds.get("adaptive_allocations"),
        inference_count=int(inference),
        pending_requests=sum(int(n.get("number_of_pending_requests", 0)) for n in nodes),
        pipelines=tuple(pipelines),
        impact=impact_of(deployment_id, model_id, facts) if facts is not None else None,
        required_memory=_int(
            (entry.get("model_size_stats") or {}).get("required_native_memory_bytes")
        ),
    )


@dataclass(frozen=True)
class ClusterSnapshot:
    """Deployments, the model ids seen, and pipeline references, read together."""

    entries: tuple[Mapping[str, Any], ...]
    aliases: Mapping[str, tuple[str, ...]]  # model_id → its model aliases
    refs: Mapping[str, set[str]]
    endpoints: tuple[Endpoint, ...] | None = ()  # None: could not be read
    fields: tuple[SemanticField, ...] | None = ()
    unknown: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()  # reads that covered only part of the cluster
    mapping_unknown: tuple[str, ...] = ()  # why the mappings could not be read at all

    def facts(self) -> ClusterFacts:
        """The reads the impact of a stop is computed from."""
        return ClusterFacts(
            refs={k: frozenset(v) for k, v in self.refs.items()},
            aliases=self.aliases,
            endpoints=self.endpoints,
            fields=self.fields,
            unknown=self.unknown,
            partial=self.partial,
            mapping_unknown=self.mapping_unknown,
        )

    def pipelines_for(self, deployment_id: str) -> tuple[str, ...]:
        """Pipelines whose inference processors would make a plain stop fail with 409."""
        names = set(self.refs.get(deployment_id, set()))
        for alias in self.aliases.get(deployment_id, ()):
            names |= self.refs.get(alias, set())
        return tuple(sorted(names))

    def start_plan(self, deployment_id: str, model_id: str) -> StartPlan:
        """What starting `model_id` as `deployment_id` would bring back, from this snapshot."""
        models = {str(e.get("model_id")) for e in self.entries}
        models |= {a for names in self.aliases.values() for a in names}
        running = {
            str(e["deployment_stats"].get("deployment_id") or e["model_id"])
            for e in self.entries
            if "deployment_stats" in e
        }
        return plan_start(
            deployment_id,
            model_id,
            models=models,
            running=running,
            endpoints=self.endpoints or (),
        )

    def deployments(self) -> list[Deployment]:
        """Every deployment in the snapshot."""
        out = []
        facts = self.facts()
        for entry in self.entries:
            if "deployment_stats" in entry:
                dep_id = entry["deployment_stats"].get("deployment_id") or entry["model_id"]
                out.append(deployment_from_stats(entry, self.pipelines_for(dep_id), facts))
        return out
