"""GET _ml/trained_models/<ids>/_stats: id expansion over models and deployments, one entry per
deployment, and the AssignmentStats serialization."""

from __future__ import annotations

from typing import Any

from bot.emulator import privileges as p
from bot.emulator.cluster import node_description
from bot.emulator.errors import missing_model
from bot.emulator.ml_deployments import adaptive_view
from bot.emulator.routing import Call, Reply
from bot.emulator.state import ClusterState, Deployment, Model, id_matches, now_ms, tokens

JSON = dict[str, Any]
MEMORY_OVERHEAD = 240 * 1024 * 1024
ELSER_MEMORY = 2004 * 1024 * 1024


def required_native_memory(model: Model, allocations: int = 1) -> int:
    """StartTrainedModelDeploymentAction.estimateMemoryUsageBytes: per-deployment plus
    per-allocation memory when the model declares them, else overhead plus twice its size."""
    size = model.size_bytes
    if size <= 0:
        return 0
    if model.per_deployment_memory_bytes > 0 or model.per_allocation_memory_bytes > 0:
        return (
            MEMORY_OVERHEAD
            + model.per_deployment_memory_bytes
            + model.per_allocation_memory_bytes * allocations
        )
    if model.model_id.startswith((".elser_model_1", ".elser_model_2")):
        return ELSER_MEMORY
    return MEMORY_OVERHEAD + 2 * size


def _counters(dep: Deployment) -> JSON:
    """The optional counters, each written only when > 0."""
    out: JSON = {}
    for name in ("error_count", "rejected_execution_count", "timeout_count"):
        if getattr(dep, name) > 0:
            out[name] = getattr(dep, name)
    return out


def _routing(dep: Deployment) -> JSON:
    """RoutingStateAndReason.toXContent: the node's route and, when set, its reason."""
    state = "stopping" if dep.state == "stopping" else dep.routing_state
    out: JSON = {"routing_state": state}
    if dep.routing_reason:
        out["reason"] = dep.routing_reason
    return out


def _node_stats(dep: Deployment, state: ClusterState, version: str) -> JSON:
    """AssignmentStats.NodeStats.toXContent for the single emulated ML node."""
    node: JSON = {
        "node": node_description(state, version),
        "routing_state": _routing(dep),
        "inference_count": dep.inference_count,
    }
    if dep.inference_count > 0:
        node["average_inference_time_ms"] = dep.average_inference_time_ms
        node["average_inference_time_ms_excluding_cache_hits"] = dep.average_inference_time_ms
    node["inference_cache_hit_count"] = dep.inference_cache_hit_count
    if dep.last_access is not None:
        node["last_access"] = dep.last_access
    node["number_of_pending_requests"] = dep.pending_requests
    node.update(_counters(dep))
    node.update(
        {
            "start_time": dep.start_time,
            "threads_per_allocation": dep.threads_per_allocation,
            "number_of_allocations": dep.placed,
            "peak_throughput_per_minute": dep.peak_throughput_per_minute,
            "throughput_last_minute": dep.throughput_last_minute,
        }
    )
    last_minute = dep.average_inference_time_ms_last_minute
    node["average_inference_time_ms_last_minute"] = (
        dep.average_inference_time_ms if last_minute is None else last_minute
    )
    node["inference_cache_hit_count_last_minute"] = dep.inference_cache_hit_count_last_minute
    return node


def allocation_status(count: int, target: int) -> JSON:
    """AllocationStatus.toXContent; state from AllocationStatus.calculateState."""
    if count == 0 and target > 0:
        state = "starting"
    elif count < target:
        state = "started"
    else:
        state = "fully_allocated"
    return {"allocation_count": count, "target_allocation_count": target, "state": state}


def deployment_stats(dep: Deployment, state: ClusterState, version: str) -> JSON:
    """AssignmentStats.toXContent, fields in the server's order."""
    dep.rejected_execution_count += dep.rejections_per_read
    out: JSON = {
        "deployment_id": dep.deployment_id,
        "model_id": dep.model_id,
        "threads_per_allocation": dep.threads_per_allocation,
        "number_of_allocations": dep.number_of_allocations,
    }
    if dep.adaptive_allocations is not None:
        out["adaptive_allocations"] = adaptive_view(dep.adaptive_allocations)
    out["queue_capacity"] = dep.queue_capacity
    out["state"] = dep.state
    if dep.reason:
        out["reason"] = dep.reason
    out["allocation_status"] = allocation_status(dep.placed, dep.number_of_allocations)
    if dep.cache_size is not None:
        out["cache_size"] = dep.cache_size
    out["priority"] = dep.priority
    out["start_time"] = dep.start_time
    out.update(_counters(dep))
    if dep.inference_count > 0:
        out["inference_count"] = dep.inference_count
    out["peak_throughput_per_minute"] = dep.peak_throughput_per_minute
    out["nodes"] = [_node_stats(dep, state, version)]
    return out


def _ingest(pipeline_ids: list[str]) -> JSON:
    zero = {"count": 0, "time_in_millis": 0, "current": 0, "failed": 0}
    pipelines = {
        pid: {
            **zero,
            "ingested_as_first_pipeline_in_bytes": 0,
            "produced_as_first_pipeline_in_bytes": 0,
            "processors": [{"inference": {"type": "inference", "stats": dict(zero)}}],
        }
        for pid in pipeline_ids
    }
    return {"total": dict(zero), "pipelines": pipelines}


def _entry(model: Model, state: ClusterState, dep: Deployment | None, version: str) -> JSON:
    refs = {model.model_id, *state.aliases_of(model.model_id)}
    pipeline_ids: list[str] = []
    if dep is not None:
        pipeline_ids = state.pipelines_referencing({dep.deployment_id})
    if not pipeline_ids:
        pipeline_ids = state.pipelines_referencing(refs)
    entry: JSON = {
        "model_id": model.model_id,
        "model_size_stats": {
            "model_size_bytes": model.size_bytes,
            "required_native_memory_bytes": required_native_memory(model),
        },
        "pipeline_count": len(pipeline_ids),
    }
    if pipeline_ids:
        entry["ingest"] = _ingest(pipeline_ids)
    if dep is not None:
        entry["inference_stats"] = {
            "failure_count": dep.error_count,
            "inference_count": dep.inference_count,
            "cache_miss_count": dep.inference_count - dep.inference_cache_hit_count,
            "missing_all_fields_count": 0,
            "timestamp": now_ms(),
        }
        entry["deployment_stats"] = deployment_stats(dep, state, version)
    return entry


async def get_stats(call: Call) -> Reply:
    """TransportGetTrainedModelsStatsAction, as read in ES 8.8+ (one entry per deployment)."""
    expression = call.path_params.get("model_id", "_all")
    allow_no_match = call.bool_param("allow_no_match", True)
    start = call.int_param("from", 0) or 0
    size = call.int_param("size", 100)
    call.authorize(p.ACTION_ML_STATS)
    state = call.emulator.state
    deployments = list(state.deployments.values())
    matched_deployments = {
        d.deployment_id for d in deployments if id_matches(expression, d.deployment_id)
    }
    id_expression = expression
    if expression not in ("", "*", "_all"):
        used_models = {d.model_id for d in deployments if d.deployment_id in matched_deployments}
        id_expression = ",".join(dict.fromkeys([*tokens(expression), *sorted(used_models)]))
    model_ids, unmatched = state.expand_model_ids(
        id_expression, allow_no_match, matched_deployments
    )
    if unmatched:
        raise missing_model(",".join(unmatched))
    page = model_ids[start : start + (size if size is not None else 100)]
    # Deployment stats are fetched for deployments whose id or model id matches the request.
    with_stats = {
        d.deployment_id
        for d in deployments
        if id_matches(expression, d.deployment_id) or id_matches(expression, d.model_id)
    }
    entries = []
    for model_id in page:
        model = state.models[model_id]
        own = sorted(
            (d for d in deployments if d.model_id == model_id), key=lambda d: d.deployment_id
        )
        if not own:
            entries.append(_entry(model, state, None, call.emulator.version))
            continue
        entries.extend(
            _entry(model, state, d, call.emulator.version)
            for d in own
            if d.deployment_id in with_stats
        )
    return 200, {"count": len(model_ids), "trained_model_stats": entries}
