"""Emulator `_update` of trained-model deployments and inference endpoints through the real client:
validation, merge rules, the 404/409/429 refusals and their order, privileges, and allocations
that are placed over time (ES TrainedModelAssignmentClusterService, TransportUpdate* actions)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import (
    ApiError,
    AuthorizationException,
    BadRequestError,
    ConflictError,
    Elasticsearch,
    NotFoundError,
)

from bot.emulator import ClusterState, Emulator, demo_state
from bot.emulator.testing import ThreadedEmulator

AUTH = ("elastic", "changeme")
ELSER = ".elser_model_2_linux-x86_64"
UPDATE = "cluster:admin/xpack/ml/trained_models/deployment/update"


def cluster() -> ClusterState:
    """A fixed deployment, an adaptive one, an endpoint that owns its deployment, an endpoint on
    a hand-started deployment, and users with manage_ml, manage_inference and monitor_ml."""
    state = ClusterState()
    state.add_model(ELSER, inference_config={"text_expansion": {}}, created_by="_xpack")
    state.start_deployment(ELSER, "fixed", number_of_allocations=2)
    state.start_deployment(
        ELSER,
        "adaptive",
        number_of_allocations=2,
        adaptive_allocations={
            "enabled": True,
            "min_number_of_allocations": 1,
            "max_number_of_allocations": 4,
        },
    )
    state.add_inference_endpoint("owned", "sparse_embedding", ELSER, num_allocations=1)
    state.start_deployment(ELSER, "by-hand")
    state.add_inference_endpoint("attached", "sparse_embedding", ELSER, deployment_id="by-hand")
    state.add_inference_endpoint("second", "sparse_embedding", ELSER, deployment_id="owned")
    state.add_role("ml-admin", cluster=["manage_ml"])
    state.add_role("inference-admin", cluster=["manage_inference"])
    state.add_role("ml-reader", cluster=["monitor_ml"])
    state.add_user("mladmin", "mladmin-password", ["ml-admin"])
    state.add_user("infadmin", "infadmin-password", ["inference-admin"])
    state.add_user("mlview", "mlview-password", ["ml-reader"])
    return state


@pytest.fixture
def scale() -> Iterator[tuple[Emulator, Elasticsearch, str]]:
    emulator = Emulator(cluster(), auth=AUTH)
    with ThreadedEmulator(emulator) as running:
        client = Elasticsearch(running.url, basic_auth=AUTH)
        yield emulator, client, running.url
        client.close()


def admin(url: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST to the emulator's test interface; returns (status, JSON body)."""
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def reason(exc: Any) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def error_type(exc: Any) -> str:
    return str(exc.body["error"]["type"])


def stats(es: Elasticsearch, deployment_id: str) -> Any:
    entries = es.ml.get_trained_models_stats(model_id=deployment_id)["trained_model_stats"]
    return next(e for e in entries if e["deployment_stats"]["deployment_id"] == deployment_id)[
        "deployment_stats"
    ]


# ---- trained-model _update: validation -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"number_of_allocations": 0}, "[number_of_allocations] must be a positive integer"),
        (
            {"number_of_allocations": 2, "adaptive_allocations": {"enabled": True}},
            "[number_of_allocations] cannot be set if adaptive allocations is enabled",
        ),
        (
            {"adaptive_allocations": {"enabled": True, "min_number_of_allocations": -2}},
            "[min_number_of_allocations] must be a non-negative integer or null",
        ),
        (
            {"adaptive_allocations": {"enabled": True, "max_number_of_allocations": 0}},
            "[max_number_of_allocations] must be a positive integer or null",
        ),
        (
            {
                "adaptive_allocations": {
                    "enabled": True,
                    "min_number_of_allocations": 3,
                    "max_number_of_allocations": 2,
                }
            },
            "[min_number_of_allocations] must not be larger than [max_number_of_allocations]",
        ),
    ],
)
def test_request_validation(
    scale: tuple[Emulator, Elasticsearch, str], body: dict[str, Any], message: str
) -> None:
    emulator, es, _ = scale
    with pytest.raises(BadRequestError) as caught:
        es.ml.update_trained_model_deployment(model_id="fixed", **body)
    assert error_type(caught.value) == "action_request_validation_exception"
    assert reason(caught.value) == f"Validation Failed: 1: {message};"
    assert emulator.state.deployments["fixed"].number_of_allocations == 2  # nothing changed


def test_validation_comes_before_the_lookup(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = scale
    with pytest.raises(BadRequestError):
        es.ml.update_trained_model_deployment(model_id="nope", number_of_allocations=0)
    with pytest.raises(NotFoundError) as caught:
        es.ml.update_trained_model_deployment(model_id="nope", number_of_allocations=1)
    assert reason(caught.value) == "No known model deployment with id [nope]"


def test_unknown_body_field_is_a_parse_error(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = scale
    with pytest.raises(BadRequestError) as caught:
        es.ml.update_trained_model_deployment(model_id="fixed", body={"allocations": 3})
    assert error_type(caught.value) == "x_content_parse_exception"
    assert reason(caught.value).endswith(f"[{UPDATE}] unknown field [allocations]")
    with pytest.raises(BadRequestError) as caught:
        es.ml.update_trained_model_deployment(
            model_id="fixed", adaptive_allocations={"enabled": True, "minimum": 1}
        )
    assert reason(caught.value).endswith(f"[{UPDATE}] failed to parse field [adaptive_allocations]")
    assert caught.value.body["error"]["caused_by"]["reason"].endswith(
        "[autoscaling_settings] unknown field [minimum]"
    )


# ---- merge rules ---------------------------------------------------------------------------------


def test_bare_count_on_an_adaptive_deployment_is_refused_on_the_merged_settings(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    with pytest.raises(BadRequestError) as caught:
        es.ml.update_trained_model_deployment(model_id="adaptive", number_of_allocations=3)
    # TrainedModelAssignmentClusterService raises a plain ValidationException here.
    assert error_type(caught.value) == "validation_exception"
    assert reason(caught.value) == (
        "Validation Failed: 1: [number_of_allocations] cannot be set if adaptive allocations "
        "is enabled;"
    )
    assert emulator.state.deployments["adaptive"].number_of_allocations == 2


def test_adaptive_off_with_a_count_fixes_the_deployment(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    answer = es.ml.update_trained_model_deployment(
        model_id="adaptive", number_of_allocations=3, adaptive_allocations={"enabled": False}
    )
    assignment = answer["assignment"]
    assert assignment["task_parameters"]["number_of_allocations"] == 3
    # The bounds stay: only `enabled` was sent, and settings merge.
    assert assignment["adaptive_allocations"] == {
        "enabled": False,
        "min_number_of_allocations": 1,
        "max_number_of_allocations": 4,
    }
    ds = stats(es, "adaptive")
    assert ds["number_of_allocations"] == 3
    assert ds["allocation_status"] == {
        "allocation_count": 3,
        "target_allocation_count": 3,
        "state": "fully_allocated",
    }
    assert emulator.state.deployments["adaptive"].adaptive_allocations == {
        "enabled": False,
        "min_number_of_allocations": 1,
        "max_number_of_allocations": 4,
    }


def test_adaptive_bounds_merge_and_null_clears_one(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = scale
    es.ml.update_trained_model_deployment(
        model_id="adaptive", adaptive_allocations={"max_number_of_allocations": 8}
    )
    assert stats(es, "adaptive")["adaptive_allocations"] == {
        "enabled": True,
        "min_number_of_allocations": 1,
        "max_number_of_allocations": 8,
    }
    es.ml.update_trained_model_deployment(
        model_id="adaptive", adaptive_allocations={"min_number_of_allocations": None}
    )
    assert stats(es, "adaptive")["adaptive_allocations"] == {
        "enabled": True,
        "max_number_of_allocations": 8,
    }


def test_merged_bounds_are_validated(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = scale
    with pytest.raises(BadRequestError) as caught:
        es.ml.update_trained_model_deployment(
            model_id="adaptive", adaptive_allocations={"min_number_of_allocations": 5}
        )
    assert reason(caught.value) == (
        "Validation Failed: 1: [min_number_of_allocations] must not be larger than "
        "[max_number_of_allocations];"
    )


def test_adaptive_null_removes_the_settings(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    emulator, es, _ = scale
    es.ml.update_trained_model_deployment(model_id="adaptive", body={"adaptive_allocations": None})
    assert "adaptive_allocations" not in stats(es, "adaptive")
    assert emulator.state.deployments["adaptive"].adaptive_allocations is None
    es.ml.update_trained_model_deployment(model_id="adaptive", number_of_allocations=1)
    assert stats(es, "adaptive")["number_of_allocations"] == 1


def test_enabling_adaptive_moves_the_count_into_the_bounds(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = scale
    es.ml.update_trained_model_deployment(
        model_id="fixed",
        adaptive_allocations={
            "enabled": True,
            "min_number_of_allocations": 3,
            "max_number_of_allocations": 5,
        },
    )
    ds = stats(es, "fixed")
    assert ds["number_of_allocations"] == 3
    assert ds["adaptive_allocations"]["min_number_of_allocations"] == 3


# ---- nothing to change, not started, 429 ---------------------------------------------------------


def test_a_request_that_changes_nothing_answers_200_even_when_not_started(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    emulator.state.deployments["fixed"].state = "stopping"
    answer = es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=2)
    assert answer["assignment"]["assignment_state"] == "stopping"
    with pytest.raises(ConflictError) as caught:
        es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=3)
    assert error_type(caught.value) == "status_exception"
    assert reason(caught.value) == "cannot update deployment that is not in [started] state"
    assert emulator.state.deployments["fixed"].number_of_allocations == 2


def test_not_enough_processors_is_a_429_and_changes_nothing(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    es_once = es.options(max_retries=0)
    with pytest.raises(ApiError) as caught:
        es_once.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=40)
    assert caught.value.meta.status == 429
    assert reason(caught.value) == (
        "Could not update deployment because there are not enough resources to provide all "
        "requested allocations"
    )
    assert emulator.state.deployments["fixed"].number_of_allocations == 2
    # A decrease always fits.
    es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=1)
    assert stats(es, "fixed")["allocation_status"]["allocation_count"] == 1


def test_adaptive_min_beyond_capacity_is_accepted_and_waits(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = scale
    es.ml.update_trained_model_deployment(
        model_id="fixed",
        adaptive_allocations={
            "enabled": True,
            "min_number_of_allocations": 40,
            "max_number_of_allocations": 64,
        },
    )
    ds = stats(es, "fixed")
    assert ds["allocation_status"]["target_allocation_count"] == 40
    assert ds["allocation_status"]["state"] == "started"
    assert ds["reason"].startswith("Could not assign (more) allocations on node")


def test_with_autoscaling_the_update_waits_for_capacity(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    emulator.state.ml_autoscaling = True
    es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=40)
    ds = stats(es, "fixed")
    assert ds["allocation_status"]["target_allocation_count"] == 40
    assert ds["allocation_status"]["state"] == "started"
    assert ds["allocation_status"]["allocation_count"] < 40
    assert ds["reason"].startswith(
        "Could not assign (more) allocations on node [es-ml-node-1]. Reason: This node has "
        "insufficient allocated processors."
    )
    emulator.state.ml_processors = 64  # the autoscaler added capacity
    emulator.placement.step("fixed", 40)
    ds = stats(es, "fixed")
    assert ds["allocation_status"]["state"] == "fully_allocated"
    assert "reason" not in ds


# ---- the two APIs refuse each other's deployments -----------------------------------------------


def test_trained_model_api_refuses_an_endpoints_own_deployment(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = scale
    with pytest.raises(ConflictError) as caught:
        es.ml.update_trained_model_deployment(model_id="owned", number_of_allocations=2)
    assert reason(caught.value) == (
        "Cannot update deployment [owned] as it was created by inference endpoint [owned]. "
        "This model deployment must be updated through the inference API."
    )


def test_inference_api_refuses_a_deployment_started_by_hand(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    with pytest.raises(ConflictError) as caught:
        es.inference.update(
            task_type="sparse_embedding",
            inference_id="attached",
            body={"service_settings": {"num_allocations": 2}},
        )
    assert reason(caught.value) == (
        "Cannot update inference endpoint [attached] using model deployment [by-hand]. "
        "The model deployment must be updated through the trained models API."
    )
    with pytest.raises(ConflictError) as caught:
        es.inference.update(
            task_type="sparse_embedding",
            inference_id="second",
            body={"service_settings": {"num_allocations": 2}},
        )
    assert reason(caught.value) == (
        "Cannot update inference endpoint [second] for model deployment [owned] as it was "
        "created by another inference endpoint. The model can only be updated using inference "
        "endpoint id [owned]."
    )
    assert emulator.state.deployments["by-hand"].number_of_allocations == 1
    # The trained-model API is the way for that deployment, and the endpoint shows it.
    es.ml.update_trained_model_deployment(model_id="by-hand", number_of_allocations=2)
    got = es.inference.get(inference_id="attached")["endpoints"][0]
    assert got["service_settings"]["num_allocations"] == 2


# ---- inference endpoint _update -----------------------------------------------------------------


def test_inference_update_scales_the_endpoints_deployment(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = scale
    answer = es.inference.update(
        task_type="sparse_embedding",
        inference_id="owned",
        body={"service_settings": {"num_allocations": 3}},
    )
    assert answer["inference_id"] == "owned"
    assert answer["service_settings"]["num_allocations"] == 3
    assert stats(es, "owned")["allocation_status"]["target_allocation_count"] == 3
    answer = es.inference.update(
        task_type="sparse_embedding",
        inference_id="owned",
        body={
            "service_settings": {
                "adaptive_allocations": {
                    "enabled": True,
                    "min_number_of_allocations": 0,
                    "max_number_of_allocations": 2,
                }
            }
        },
    )
    settings = answer["service_settings"]
    assert "num_allocations" not in settings  # adaptive replaces the count
    assert settings["adaptive_allocations"]["max_number_of_allocations"] == 2
    ds = stats(es, "owned")
    assert ds["adaptive_allocations"] == {
        "enabled": True,
        "min_number_of_allocations": 0,
        "max_number_of_allocations": 2,
    }
    assert ds["number_of_allocations"] == 2  # the scaler keeps it within max
    # Back to a fixed count: the adaptive settings go (the endpoint's settings replace them).
    es.inference.update(
        task_type="sparse_embedding",
        inference_id="owned",
        body={"service_settings": {"num_allocations": 1}},
    )
    ds = stats(es, "owned")
    assert "adaptive_allocations" not in ds
    assert ds["number_of_allocations"] == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {},
            "[service_settings] does not contain one of the required settings "
            "[num_allocations, adaptive_allocations]",
        ),
        (
            {"num_allocations": 2, "adaptive_allocations": {"enabled": True}},
            "[num_allocations] cannot be set if [adaptive_allocations] is set",
        ),
    ],
)
def test_inference_update_validation(
    scale: tuple[Emulator, Elasticsearch, str], settings: dict[str, Any], message: str
) -> None:
    _, es, _ = scale
    with pytest.raises(BadRequestError) as caught:
        es.inference.update(
            task_type="sparse_embedding",
            inference_id="owned",
            body={"service_settings": settings},
        )
    assert error_type(caught.value) == "validation_exception"
    assert reason(caught.value) == f"Validation Failed: 1: {message};"


def test_inference_update_errors(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = scale
    body = {"service_settings": {"num_allocations": 2}}
    with pytest.raises(NotFoundError) as missing:
        es.inference.update(task_type="sparse_embedding", inference_id="nope", body=body)
    assert (
        reason(missing.value)
        == "The inference endpoint [nope] does not exist and cannot be updated"
    )
    with pytest.raises(BadRequestError) as caught:
        es.inference.update(task_type="text_embedding", inference_id="owned", body=body)
    assert reason(caught.value) == "Task type must match the task type of the existing endpoint"
    with pytest.raises(BadRequestError) as caught:
        es.inference.update(inference_id="owned", body=body)
    assert reason(caught.value) == "Inference ID must be provided in the path"
    with pytest.raises(BadRequestError) as caught:
        es.inference.update(
            task_type="sparse_embedding",
            inference_id="owned",
            body={"service_settings": {"num_threads": 2}},
        )
    assert caught.value.body["error"]["caused_by"]["reason"] == "[num_threads] cannot be updated"


def test_inference_update_that_changes_nothing_answers_the_endpoint(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    emulator.state.deployments["owned"].state = "stopping"
    answer = es.inference.update(
        task_type="sparse_embedding",
        inference_id="owned",
        body={"service_settings": {"num_allocations": 1}},
    )
    assert answer["service_settings"]["num_allocations"] == 1


def test_inference_update_passes_on_the_trained_model_refusals(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    emulator.state.deployments["owned"].state = "failed"
    with pytest.raises(ConflictError) as caught:
        es.inference.update(
            task_type="sparse_embedding",
            inference_id="owned",
            body={"service_settings": {"num_allocations": 2}},
        )
    assert reason(caught.value) == "cannot update deployment that is not in [started] state"
    assert emulator.state.inference_endpoints["owned"].num_allocations == 1


# ---- privileges ----------------------------------------------------------------------------------


def test_manage_inference_does_not_grant_the_trained_model_update(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, _, url = scale
    with Elasticsearch(url, basic_auth=("infadmin", "infadmin-password")) as es:
        with pytest.raises(AuthorizationException) as caught:
            es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=3)
        assert reason(caught.value) == (
            f"action [{UPDATE}] is unauthorized for user [infadmin] with effective roles "
            "[inference-admin], this action is granted by the cluster privileges "
            "[manage_ml,manage,all]"
        )
        answer = es.inference.update(
            task_type="sparse_embedding",
            inference_id="owned",
            body={"service_settings": {"num_allocations": 2}},
        )
        assert answer["service_settings"]["num_allocations"] == 2
    with Elasticsearch(url, basic_auth=("mladmin", "mladmin-password")) as es:
        es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=3)
        with pytest.raises(AuthorizationException) as caught:
            es.inference.update(
                task_type="sparse_embedding",
                inference_id="owned",
                body={"service_settings": {"num_allocations": 1}},
            )
        assert "action [cluster:admin/xpack/inference/update] is unauthorized" in reason(
            caught.value
        )


# ---- allocations placed over time ----------------------------------------------------------------


def test_manual_placement_shows_allocations_arriving(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = scale
    emulator.placement.configure("manual")
    answer = es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=4)
    route = answer["assignment"]["routing_table"]["uckeG3R8TLe2MMNBQ6AGrw"]
    assert (route["current_allocations"], route["target_allocations"]) == (2, 4)
    ds = stats(es, "fixed")
    assert ds["allocation_status"] == {
        "allocation_count": 2,
        "target_allocation_count": 4,
        "state": "started",
    }
    assert ds["nodes"][0]["number_of_allocations"] == 2
    assert emulator.placement.step("fixed") == 1
    assert stats(es, "fixed")["allocation_status"]["allocation_count"] == 3
    emulator.placement.step("fixed", 5)
    assert stats(es, "fixed")["allocation_status"]["state"] == "fully_allocated"


def test_timed_placement_places_one_allocation_at_a_time(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, url = scale
    assert admin(url, "/_emulator/placement", {"mode": "timed", "seconds": 0.05})[0] == 200
    answer = es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=4)
    route = answer["assignment"]["routing_table"]["uckeG3R8TLe2MMNBQ6AGrw"]
    assert route["current_allocations"] == 2  # nothing placed when the update answers
    seen = set()
    deadline = time.monotonic() + 10  # a bound on waiting, not a timing assertion
    while time.monotonic() < deadline:
        status = stats(es, "fixed")["allocation_status"]
        seen.add(status["allocation_count"])
        if status["state"] == "fully_allocated":
            break
        time.sleep(0.02)
    assert status == {
        "allocation_count": 4,
        "target_allocation_count": 4,
        "state": "fully_allocated",
    }
    assert seen <= {2, 3, 4}
    assert admin(url, "/_emulator/placement", {"mode": "timed"}) == (
        400,
        {"error": "timed placement needs seconds > 0"},
    )


def test_failing_placement_keeps_the_old_count_with_the_reason(
    scale: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, url = scale
    status, _ = admin(
        url, "/_emulator/placement", {"mode": "manual", "fail": "node ran out of memory"}
    )
    assert status == 200
    es.ml.update_trained_model_deployment(model_id="fixed", number_of_allocations=3)
    assert admin(url, "/_emulator/placement/step", {"count": 3}) == (200, {"placed": 0})
    ds = stats(es, "fixed")
    assert ds["allocation_status"]["allocation_count"] == 2
    assert ds["allocation_status"]["target_allocation_count"] == 3
    assert ds["reason"] == "node ran out of memory"


def test_health_fields_are_settable_and_shown(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    emulator, es, url = scale
    status, _ = admin(
        url,
        "/_emulator/deployments/fixed/health",
        {
            "pending_requests": 1024,
            "queue_capacity": 1024,
            "rejected_execution_count": 312,
            "timeout_count": 7,
            "error_count": 2,
            "average_inference_time_ms_last_minute": 480.5,
            "throughput_last_minute": 1200,
        },
    )
    assert status == 200
    ds = stats(es, "fixed")
    node = ds["nodes"][0]
    assert ds["queue_capacity"] == 1024
    assert (ds["rejected_execution_count"], ds["timeout_count"], ds["error_count"]) == (312, 7, 2)
    assert node["number_of_pending_requests"] == 1024
    assert node["rejected_execution_count"] == 312
    assert node["average_inference_time_ms_last_minute"] == 480.5
    assert node["throughput_last_minute"] == 1200
    emulator.state.fail_deployment("fixed", "process crashed: out of memory")
    ds = stats(es, "fixed")
    assert ds["state"] == "failed"
    assert ds["reason"] == "process crashed: out of memory"
    assert ds["nodes"][0]["routing_state"] == {
        "routing_state": "failed",
        "reason": "process crashed: out of memory",
    }
    assert ds["allocation_status"]["state"] == "starting"
    status, body = admin(url, "/_emulator/deployments/fixed/health", {"colour": "red"})
    assert status == 400
    assert "colour" in body["error"]


# ---- ML memory -----------------------------------------------------------------------------------


def test_memory_stats(scale: tuple[Emulator, Elasticsearch, str]) -> None:
    emulator, es, url = scale
    with Elasticsearch(url, basic_auth=("mlview", "mlview-password")) as viewer:
        answer = viewer.ml.get_memory_stats()
    assert answer["_nodes"] == {"total": 1, "successful": 1, "failed": 0}
    node = answer["nodes"]["uckeG3R8TLe2MMNBQ6AGrw"]
    ml = node["mem"]["ml"]
    assert ml["max_in_bytes"] == emulator.state.ml_max_bytes
    assert ml["native_inference_in_bytes"] > 0
    assert ml["native_code_overhead_in_bytes"] == 30 * 1024 * 1024
    assert set(node["jvm"]) == {
        "heap_max_in_bytes",
        "java_inference_in_bytes",
        "java_inference_max_in_bytes",
    }
    assert es.ml.get_memory_stats(node_id="other-node")["nodes"] == {}
    with (
        Elasticsearch(url, basic_auth=("infadmin", "infadmin-password")) as es2,
        pytest.raises(AuthorizationException),
    ):
        es2.ml.get_memory_stats()


# ---- the demo cluster has one healthy, one overloaded and one failing deployment ----------------


def test_demo_health_shapes() -> None:
    with (
        ThreadedEmulator(Emulator(demo_state(), auth=AUTH)) as running,
        Elasticsearch(running.url, basic_auth=AUTH) as es,
    ):
        healthy = stats(es, "elser-prod")
        assert healthy["state"] == "started"
        assert "rejected_execution_count" not in healthy
        assert healthy["allocation_status"]["state"] == "fully_allocated"
        first = stats(es, "search-e5")
        node = first["nodes"][0]
        assert node["number_of_pending_requests"] == first["queue_capacity"] == 1024
        assert first["timeout_count"] > 0
        again = stats(es, "search-e5")
        assert again["rejected_execution_count"] > first["rejected_execution_count"]
        failing = stats(es, "canary-ner")
        assert failing["state"] == "failed"
        assert failing["nodes"][0]["routing_state"]["routing_state"] == "failed"
        assert failing["nodes"][0]["routing_state"]["reason"].startswith(
            "inference process crashed due to reason [[canary-ner]"
        )
