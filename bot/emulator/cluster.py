"""Cluster identity: `GET /` and the single ML node every deployment is routed to."""

from __future__ import annotations

from typing import Any

from bot.emulator.privileges import ACTION_MAIN, ACTION_XPACK_INFO
from bot.emulator.routing import Call, Reply
from bot.emulator.state import NODE_ID, ClusterState

JSON = dict[str, Any]


def version_info(version: str) -> JSON:
    """The `version` object of `GET /` for a 8.x or 9.x number."""
    major = int(version.split(".")[0])
    wire, index, lucene = (
        ("8.19.0", "8.0.0", "10.2.2") if major >= 9 else ("7.17.0", "7.0.0", "9.12.0")
    )
    return {
        "number": version,
        "build_flavor": "default",
        "build_type": "docker",
        "build_hash": "0c781091a2f57de895a73a1391ff8426c0153c8d",
        "build_date": "2025-07-17T22:18:37.722376051Z",
        "build_snapshot": False,
        "lucene_version": lucene,
        "minimum_wire_compatibility_version": wire,
        "minimum_index_compatibility_version": index,
    }


def node_description(state: ClusterState, version: str) -> JSON:
    """DiscoveryNode.toXContent keyed by node id, as `_stats` nodes[] carry it."""
    return {
        NODE_ID: {
            "name": state.node_name,
            "ephemeral_id": "Lv2x8bDVQmuLuGfQ3R6XTw",
            "transport_address": "127.0.0.1:9300",
            "external_id": state.node_name,
            "attributes": {
                "ml.allocated_processors": str(state.ml_processors),
                "ml.allocated_processors_double": f"{float(state.ml_processors)}",
                "ml.machine_memory": str(state.machine_memory_bytes),
                "ml.max_jvm_size": str(state.jvm_heap_bytes),
                "ml.config_version": "12.0.0",
                "xpack.installed": "true",
                "transform.config_version": "10.0.0",
            },
            "roles": ["data", "ingest", "master", "ml", "remote_cluster_client", "transform"],
            "version": version,
            "minIndexVersion": "8000099",
            "maxIndexVersion": "9033000",
        }
    }


async def root(call: Call) -> Reply:
    """GET /: cluster info."""
    call.authorize(ACTION_MAIN)
    state = call.emulator.state
    return 200, {
        "name": state.node_name,
        "cluster_name": state.cluster_name,
        "cluster_uuid": state.cluster_uuid,
        "version": version_info(call.emulator.version),
        "tagline": "You Know, for Search",
    }


# `GET _xpack` (XPackInfoResponse): the features a trial cluster reports; only security's
# `enabled` moves here (the emulator's `--auth`), the rest is as a default 8.x/9.x node has it.
_FEATURES = ("graph", "inference", "logstash", "ml", "monitoring", "rollup", "watcher")


async def xpack_info(call: Call) -> Reply:
    """GET /_xpack: build, license and features (`categories` picks which)."""
    wanted = {c.strip() for c in (call.param("categories") or "build,license,features").split(",")}
    call.param("accept_enterprise")
    call.param("human")
    call.authorize(ACTION_XPACK_INFO)
    body: JSON = {}
    if "build" in wanted:
        info = version_info(call.emulator.version)
        body["build"] = {"hash": info["build_hash"], "date": info["build_date"]}
    if "license" in wanted:
        body["license"] = {
            "uid": "893361dc-9749-4997-93cb-802e3d7fa4xx",
            "type": "trial",
            "mode": "trial",
            "status": "active",
            "expiry_date_in_millis": 1_900_000_000_000,
        }
    if "features" in wanted:
        features = {name: {"available": True, "enabled": True} for name in _FEATURES}
        features["security"] = {"available": True, "enabled": call.emulator.security.enabled}
        body["features"] = features
    body["tagline"] = "You know, for X"
    return 200, body
