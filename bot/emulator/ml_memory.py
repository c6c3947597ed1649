"""GET _ml/memory[/<node_id>]/_stats: ML memory per node (MlMemoryAction.Response).

Field names and nesting from the Elasticsearch specification (`ml.get_memory_stats`,
MlGetMemoryStatsMemMlStats) and Kibana's fixtures; `native_inference_in_bytes` is the sum of
the memory estimates of the deployments with started allocations, the 30 MB native code
overhead counts once any native process runs (inferred from MachineLearning
NATIVE_EXECUTABLE_CODE_OVERHEAD).
"""

from __future__ import annotations

from typing import Any

from bot.emulator.cluster import node_description
from bot.emulator.ml_stats import required_native_memory
from bot.emulator.routing import Call, Reply
from bot.emulator.state import NODE_ID, ClusterState

JSON = dict[str, Any]
ACTION_ML_MEMORY = "cluster:monitor/xpack/ml/memory/stats/get"
NATIVE_CODE_OVERHEAD = 30 * 1024 * 1024


def native_inference_bytes(state: ClusterState) -> int:
    """Memory the node sets aside for deployments that have allocations on it."""
    return sum(
        required_native_memory(state.models[d.model_id], d.placed)
        for d in state.deployments.values()
        if d.placed > 0 and d.model_id in state.models
    )


def _node(state: ClusterState, version: str) -> JSON:
    described = node_description(state, version)[NODE_ID]
    inference = native_inference_bytes(state)
    return {
        "name": described["name"],
        "ephemeral_id": described["ephemeral_id"],
        "transport_address": described["transport_address"],
        "attributes": {k: v for k, v in described["attributes"].items() if k.startswith("ml.")},
        "roles": described["roles"],
        "mem": {
            "total_in_bytes": state.machine_memory_bytes,
            "adjusted_total_in_bytes": state.machine_memory_bytes,
            "ml": {
                "max_in_bytes": state.ml_max_bytes,
                "native_code_overhead_in_bytes": NATIVE_CODE_OVERHEAD if inference else 0,
                "anomaly_detectors_in_bytes": 0,
                "data_frame_analytics_in_bytes": 0,
                "native_inference_in_bytes": inference,
            },
        },
        "jvm": {
            "heap_max_in_bytes": state.jvm_heap_bytes,
            "java_inference_in_bytes": 0,
            "java_inference_max_in_bytes": 0,
        },
    }


def _selected(state: ClusterState, node_id: str) -> bool:
    """Node filters: `_all`, `*`, the id, the name, `ml:true`."""
    wanted = {t.strip() for t in node_id.split(",") if t.strip()}
    return not wanted or bool(wanted & {"_all", "*", NODE_ID, state.node_name, "ml:true"})


async def memory_stats(call: Call) -> Reply:
    """GET _ml/memory/_stats and GET _ml/memory/<node_id>/_stats (`monitor_ml`)."""
    call.param("master_timeout")
    call.param("timeout")
    call.authorize(ACTION_ML_MEMORY)
    state = call.emulator.state
    nodes = {}
    if _selected(state, call.path_params.get("node_id", "_all")):
        nodes[NODE_ID] = _node(state, call.emulator.version)
    counts = {"total": len(nodes), "successful": len(nodes), "failed": 0}
    return 200, {"_nodes": counts, "cluster_name": state.cluster_name, "nodes": nodes}
