"""Pure parts of the Elasticsearch gateway: pipeline scanning, stats parsing, error mapping."""

from __future__ import annotations

from typing import Any

import elastic_transport
from elasticsearch import ApiError, AuthorizationException, ConflictError, NotFoundError

from bot.adapters.elasticsearch import (
    _matches,
    deployment_from_stats,
    inference_model_ids,
    pipeline_references,
    to_domain_error,
)


def api_error(cls: type[ApiError], status: int, reason: str, etype: str) -> ApiError:
    meta = elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "localhost", 9200),
    )
    cause = {"type": etype, "reason": reason}
    body = {"error": {"root_cause": [cause], **cause}, "status": status}
    return cls(message=etype, meta=meta, body=body)


def test_inference_ids_found_in_foreach_and_processor_on_failure_only() -> None:
    processors: list[Any] = [
        {"set": {"field": "a", "value": 1, "on_failure": [{"inference": {"model_id": "in-fail"}}]}},
        {"foreach": {"field": "xs", "processor": {"inference": {"model_id": "in-foreach"}}}},
        {"inference": {"model_id": "direct"}},
    ]
    assert sorted(inference_model_ids(processors)) == ["direct", "in-fail", "in-foreach"]


def test_inference_scan_stops_at_ten_levels() -> None:
    proc: dict[str, Any] = {"inference": {"model_id": "deep"}}
    for _ in range(11):
        proc = {"foreach": {"field": "x", "processor": proc}}
    assert list(inference_model_ids([proc])) == []


def test_pipeline_level_on_failure_is_not_scanned() -> None:
    refs = pipeline_references(
        {"p": {"processors": [], "on_failure": [{"inference": {"model_id": "x"}}]}}
    )
    assert refs == {}


def test_deployment_from_stats_reads_counts_and_allocations() -> None:
    entry = {
        "model_id": "m",
        "deployment_stats": {
            "deployment_id": "d",
            "model_id": "m",
            "state": "started",
            "threads_per_allocation": 2,
            "number_of_allocations": 3,
            "allocation_status": {"allocation_count": 2, "target_allocation_count": 3},
            "priority": "low",
            "nodes": [
                {"inference_count": 4, "number_of_pending_requests": 2},
                {"inference_count": 5, "number_of_pending_requests": 1},
            ],
        },
    }
    dep = deployment_from_stats(entry, ("p",))
    assert (dep.deployment_id, dep.model_id, dep.allocations, dep.target_allocations) == (
        "d",
        "m",
        2,
        3,
    )
    assert (dep.inference_count, dep.pending_requests, dep.priority) == (9, 3, "low")
    assert dep.pipelines == ("p",)


def test_matches_only_star_is_a_wildcard() -> None:
    assert _matches("elser-*", "elser-prod")
    assert not _matches("elser-*", "ner-prod")
    assert _matches("_all", "x")
    assert not _matches("a?c", "abc")


def test_conflict_names_pipelines_and_suggests_force() -> None:
    exc = api_error(
        ConflictError,
        409,
        "Cannot stop deployment [d] as it is referenced by ingest processors; "
        "use force to stop the deployment",
        "status_exception",
    )
    err = to_domain_error(exc, cluster="prod", operation="stop", deployment_id="d", pipelines=["p"])
    assert err.kind == "conflict"
    assert err.message == (
        "deployment `d` is used by ingest pipeline(s) `p`; add `--force` to stop it anyway"
    )


def test_alias_conflict_names_the_alias() -> None:
    exc = api_error(
        ConflictError,
        409,
        "Cannot stop deployment [d] as it has a model_alias [my-alias] that is still referenced "
        "by ingest processors; use force to stop the deployment",
        "status_exception",
    )
    err = to_domain_error(exc, cluster="prod", operation="stop", deployment_id="d")
    assert "`my-alias`" in err.message and "--force" in err.message


def test_forbidden_names_the_privileges() -> None:
    exc = api_error(
        AuthorizationException,
        403,
        "action [cluster:admin/xpack/ml/trained_models/deployment/stop] is unauthorized for user "
        "[bot] with effective roles [viewer], this action is granted by the cluster privileges "
        "[manage_inference,manage_ml,manage,all]",
        "security_exception",
    )
    err = to_domain_error(exc, cluster="prod", operation="stop", deployment_id="d")
    assert err.kind == "forbidden"
    assert "one of the cluster privileges manage_inference,manage_ml,manage,all" in err.message


def test_not_found_and_server_errors() -> None:
    nf = api_error(NotFoundError, 404, "No known model deployment with id [d]", "x")
    assert (
        "no longer exists"
        in to_domain_error(nf, cluster="c", operation="stop", deployment_id="d").message
    )
    unavailable = api_error(ApiError, 503, "no master", "master_not_discovered_exception")
    err = to_domain_error(unavailable, cluster="c", operation="stop", deployment_id="d")
    assert err.kind == "unavailable" and "master_not_discovered_exception" in err.message


def test_transport_errors() -> None:
    timeout = to_domain_error(
        elastic_transport.ConnectionTimeout("timed out"), cluster="c", operation="stop", timeout=5
    )
    assert timeout.kind == "timeout" and "/ml-deployments" in timeout.message
    refused = to_domain_error(
        elastic_transport.ConnectionError("refused"), cluster="c", operation="stop"
    )
    assert refused.kind == "unreachable"
    tls = to_domain_error(elastic_transport.TlsError("bad cert"), cluster="c", operation="stop")
    assert tls.kind == "tls" and "CA" in tls.message
