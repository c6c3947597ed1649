"""Emulator `_inference` endpoints through the real client: bodies, errors, privileges, and the
stop refusals for deployments an endpoint created or uses (ES inference QA ITs, PR #129325)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import (
    AuthorizationException,
    BadRequestError,
    ConflictError,
    Elasticsearch,
    NotFoundError,
)

from bot.emulator import ClusterState, Emulator, demo_state, dump_state
from bot.emulator.loader import state_from_dict
from bot.emulator.testing import ThreadedEmulator

AUTH = ("elastic", "changeme")
ELSER = ".elser_model_2_linux-x86_64"
CUSTOM = "sentence-transformers__all-minilm-l6-v2"
DEFAULT_CHUNKING = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}


def cluster() -> ClusterState:
    """An ELSER model, a text-embedding model, a deployment to attach to, and three users."""
    state = ClusterState()
    state.add_model(ELSER, inference_config={"text_expansion": {}}, created_by="_xpack")
    state.add_model(CUSTOM, inference_config={"text_embedding": {}})
    state.start_deployment(ELSER, "existing_deployment", number_of_allocations=2)
    state.add_role("inference-reader", cluster=["monitor_inference"])
    state.add_role("inference-admin", cluster=["manage_inference"])
    state.add_role("ml-reader", cluster=["monitor_ml"])
    state.add_user("reader", "reader-password", ["inference-reader"])
    state.add_user("admin", "admin-password", ["inference-admin"])
    state.add_user("mlview", "mlview-password", ["ml-reader"])
    return state


@pytest.fixture
def inf() -> Iterator[tuple[Emulator, Elasticsearch, str]]:
    emulator = Emulator(cluster(), auth=AUTH)
    with ThreadedEmulator(emulator) as running:
        client = Elasticsearch(running.url, basic_auth=AUTH)
        yield emulator, client, running.url
        client.close()


def reason(exc: Any) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def error_type(exc: Any) -> str:
    return str(exc.body["error"]["type"])


def put_from_model(es: Elasticsearch, inference_id: str = "my-elser", **settings: Any) -> Any:
    service_settings = {"model_id": ELSER, "num_allocations": 1, "num_threads": 1, **settings}
    return es.inference.put(
        task_type="sparse_embedding",
        inference_id=inference_id,
        inference_config={"service": "elasticsearch", "service_settings": service_settings},
    )


def put_on_deployment(es: Elasticsearch, inference_id: str = "on-existing") -> Any:
    return es.inference.put(
        task_type="sparse_embedding",
        inference_id=inference_id,
        inference_config={
            "service": "elasticsearch",
            "service_settings": {"deployment_id": "existing_deployment"},
        },
    )


# ---- PUT ----------------------------------------------------------------------------------------


def test_put_with_model_id_starts_a_deployment_named_after_the_endpoint(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    created = put_from_model(es)
    assert created.body == {
        "inference_id": "my-elser",
        "task_type": "sparse_embedding",
        "service": "elasticsearch",
        "service_settings": {"num_allocations": 1, "num_threads": 1, "model_id": ELSER},
        "chunking_settings": DEFAULT_CHUNKING,
    }
    dep = emulator.state.deployments["my-elser"]
    assert (dep.model_id, dep.number_of_allocations) == (ELSER, 1)
    stats = es.ml.get_trained_models_stats(model_id="my-elser")
    assert [s["deployment_stats"]["deployment_id"] for s in stats["trained_model_stats"]] == [
        "my-elser"
    ]


def test_put_with_adaptive_allocations_and_own_chunking(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    adaptive = {"enabled": True, "min_number_of_allocations": 2, "max_number_of_allocations": 4}
    chunking = {"strategy": "word", "max_chunk_size": 100, "overlap": 10}
    created = es.inference.put(
        task_type="sparse_embedding",
        inference_id="adaptive-elser",
        inference_config={
            "service": "elser",
            "service_settings": {"num_threads": 1, "adaptive_allocations": adaptive},
            "chunking_settings": chunking,
        },
    )
    assert created["service"] == "elser"
    assert created["service_settings"] == {
        "num_threads": 1,
        "model_id": ".elser_model_2",
        "adaptive_allocations": adaptive,
    }
    assert created["chunking_settings"] == chunking
    assert emulator.state.deployments["adaptive-elser"].number_of_allocations == 2


def test_put_on_existing_deployment_starts_nothing(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    created = put_on_deployment(es)
    assert created["service_settings"] == {
        "num_allocations": 2,
        "num_threads": 1,
        "model_id": ELSER,
        "deployment_id": "existing_deployment",
    }
    assert sorted(emulator.state.deployments) == ["existing_deployment"]


def test_put_without_task_type_takes_the_models(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = inf
    created = es.inference.put(
        inference_id="e5ish",
        inference_config={
            "service": "elasticsearch",
            "service_settings": {"model_id": CUSTOM, "num_allocations": 1, "num_threads": 1},
        },
    )
    assert created["task_type"] == "text_embedding"


def test_put_errors_with_the_real_texts(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    emulator, es, _ = inf
    put_from_model(es)
    with pytest.raises(BadRequestError) as caught:
        put_from_model(es)
    assert error_type(caught.value) == "resource_already_exists_exception"
    assert reason(caught.value) == "Inference endpoint [my-elser] already exists"

    with pytest.raises(BadRequestError) as caught:
        es.perform_request(
            "PUT",
            "/_inference/foo/bad-type",
            headers={"content-type": "application/json", "accept": "application/json"},
            body={"service": "elasticsearch", "service_settings": {"model_id": ELSER}},
        )
    assert reason(caught.value) == "Unknown task_type [foo]"

    with pytest.raises(BadRequestError) as caught:
        put_from_model(es, inference_id=CUSTOM)
    assert reason(caught.value) == (
        f"Inference endpoint IDs must be unique. Requested inference endpoint ID [{CUSTOM}] "
        "matches existing trained model ID(s) but must not."
    )

    with pytest.raises(NotFoundError) as caught:
        put_from_model(es, inference_id="no-model", model_id="not-uploaded")
    assert reason(caught.value) == (
        "Could not deploy model [not-uploaded] as the model cannot be found. Custom models "
        "need to be loaded into the cluster with Eland before they can be started."
    )
    assert "no-model" not in emulator.state.inference_endpoints
    assert "no-model" not in emulator.state.deployments


def test_put_on_deployment_errors(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = inf
    with pytest.raises(NotFoundError) as caught:
        es.inference.put(
            task_type="sparse_embedding",
            inference_id="on-missing",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"deployment_id": "missing_deployment"},
            },
        )
    assert reason(caught.value) == "Cannot find deployment [missing_deployment]"
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(
            task_type="sparse_embedding",
            inference_id="wrong-model",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"model_id": CUSTOM, "deployment_id": "existing_deployment"},
            },
        )
    assert reason(caught.value) == (
        f"Deployment [existing_deployment] uses model [{ELSER}] which does not match the model "
        f"[{CUSTOM}] in the request."
    )
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(
            task_type="text_embedding",
            inference_id="wrong-task",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"deployment_id": "existing_deployment"},
            },
        )
    assert reason(caught.value) == (
        f"Deployed model [{ELSER}] with type [text_expansion] does not match the requested task "
        "type [text_embedding]"
    )


def test_put_settings_validation(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = inf
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(
            task_type="sparse_embedding",
            inference_id="no-threads",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"model_id": ELSER, "num_allocations": 1},
            },
        )
    assert error_type(caught.value) == "validation_exception"
    assert reason(caught.value) == (
        "Validation Failed: 1: [service_settings] does not contain the required setting "
        "[num_threads];"
    )
    with pytest.raises(BadRequestError) as caught:
        es.inference.put(
            task_type="text_embedding",
            inference_id="elser-embedding",
            inference_config={"service": "elser", "service_settings": {"num_threads": 1}},
        )
    assert reason(caught.value) == (
        "The [elser] service does not support task type [text_embedding]"
    )


# ---- GET ----------------------------------------------------------------------------------------


def test_get_all_by_id_and_by_task_type(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = inf
    put_from_model(es, inference_id="b-elser")
    put_on_deployment(es, inference_id="a-attached")
    every = es.inference.get()
    assert [e["inference_id"] for e in every["endpoints"]] == ["a-attached", "b-elser"]
    assert es.inference.get(inference_id="_all") == every
    one = es.inference.get(inference_id="b-elser")
    assert one["endpoints"][0]["service_settings"]["model_id"] == ELSER
    typed = es.inference.get(task_type="sparse_embedding", inference_id="a-attached")
    assert typed["endpoints"][0]["inference_id"] == "a-attached"
    assert es.inference.get(task_type="text_embedding", inference_id="_all") == {"endpoints": []}


def test_get_errors(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = inf
    put_from_model(es)
    with pytest.raises(NotFoundError) as caught:
        es.inference.get(inference_id="nope")
    assert error_type(caught.value) == "resource_not_found_exception"
    assert reason(caught.value) == "Inference endpoint not found [nope]"
    with pytest.raises(BadRequestError) as caught:
        es.inference.get(task_type="text_embedding", inference_id="my-elser")
    assert reason(caught.value) == (
        "Requested task type [text_embedding] does not match the inference endpoint's task "
        "type [sparse_embedding]"
    )


def test_get_shows_the_deployments_current_allocations(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = inf
    put_on_deployment(es)
    es.ml.update_trained_model_deployment(model_id="existing_deployment", number_of_allocations=3)
    got = es.inference.get(inference_id="on-existing")["endpoints"][0]
    assert got["service_settings"]["num_allocations"] == 3


# ---- DELETE -------------------------------------------------------------------------------------


def test_delete_stops_only_the_deployment_it_created(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    put_from_model(es)
    put_on_deployment(es)
    assert es.inference.delete(inference_id="my-elser").body == {
        "acknowledged": True,
        "pipelines": [],
        "indexes": [],
    }
    assert "my-elser" not in emulator.state.deployments
    es.inference.delete(task_type="sparse_embedding", inference_id="on-existing")
    assert "existing_deployment" in emulator.state.deployments
    with pytest.raises(NotFoundError) as caught:
        es.inference.delete(inference_id="my-elser")
    assert reason(caught.value) == "Inference endpoint not found [my-elser]"


def test_delete_refused_while_a_pipeline_uses_it(inf: tuple[Emulator, Elasticsearch, str]) -> None:
    emulator, es, _ = inf
    put_from_model(es)
    es.ingest.put_pipeline(id="sparse", processors=[{"inference": {"model_id": "my-elser"}}])
    text = (
        "Inference endpoint my-elser is referenced by pipelines: [sparse]. Ensure that no "
        "pipelines are using this inference endpoint, or use force to ignore this warning and "
        "delete the inference endpoint."
    )
    with pytest.raises(ConflictError) as caught:
        es.inference.delete(inference_id="my-elser")
    assert (error_type(caught.value), reason(caught.value)) == ("status_exception", text)
    dry = es.inference.delete(inference_id="my-elser", dry_run=True)
    assert dry.body == {
        "acknowledged": False,
        "pipelines": ["sparse"],
        "indexes": [],
        "error_message": text,
    }
    assert "my-elser" in emulator.state.inference_endpoints
    assert es.inference.delete(inference_id="my-elser", force=True)["acknowledged"] is True


# ---- stop / update refusals (ES PR #129325, #130940) ---------------------------------------------


def test_stop_refused_for_a_deployment_an_endpoint_created(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    put_from_model(es, inference_id="sparse-inf")
    with pytest.raises(ConflictError) as caught:
        es.ml.stop_trained_model_deployment(model_id="sparse-inf")
    # Prefix verified (CustomElandModelIT); the tail after it is not (see the docs file).
    assert reason(caught.value).startswith(
        "Cannot stop deployment [sparse-inf] as it was created by inference endpoint [sparse-inf]"
    )
    assert error_type(caught.value) == "status_exception"
    assert "sparse-inf" in emulator.state.deployments
    assert es.ml.stop_trained_model_deployment(model_id="sparse-inf", force=True) == {
        "stopped": True
    }
    assert "sparse-inf" not in emulator.state.deployments


def test_stop_refused_for_a_deployment_an_endpoint_uses(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    put_on_deployment(es, inference_id="test_stop_inference_on_existing_deployment")
    with pytest.raises(ConflictError) as caught:
        es.ml.stop_trained_model_deployment(model_id="existing_deployment")
    assert reason(caught.value).startswith(
        "Cannot stop deployment [existing_deployment] as it is used by inference endpoint "
        "[test_stop_inference_on_existing_deployment]"
    )
    # Deleting the endpoint does not lift it (the deployment is not the endpoint's); a plain
    # stop works once no endpoint uses the deployment.
    es.inference.delete(inference_id="test_stop_inference_on_existing_deployment")
    assert es.ml.stop_trained_model_deployment(model_id="existing_deployment") == {"stopped": True}
    assert emulator.state.deployments == {}


def test_update_refused_for_a_deployment_an_endpoint_created(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = inf
    put_from_model(es, inference_id="test_created_endpoint_from_model")
    with pytest.raises(ConflictError) as caught:
        es.ml.update_trained_model_deployment(
            model_id="test_created_endpoint_from_model", number_of_allocations=2
        )
    assert reason(caught.value) == (
        "Cannot update deployment [test_created_endpoint_from_model] as it was created by "
        "inference endpoint [test_created_endpoint_from_model]. This model deployment must be "
        "updated through the inference API."
    )


# ---- privileges ---------------------------------------------------------------------------------


def test_monitor_inference_reads_manage_inference_writes(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, url = inf
    put_from_model(es)
    with Elasticsearch(url, basic_auth=("reader", "reader-password")) as reader:
        assert reader.inference.get()["endpoints"][0]["inference_id"] == "my-elser"
        with pytest.raises(AuthorizationException) as caught:
            reader.inference.delete(inference_id="my-elser")
        assert reason(caught.value) == (
            "action [cluster:admin/xpack/inference/delete] is unauthorized for user [reader] "
            "with effective roles [inference-reader], this action is granted by the cluster "
            "privileges [manage_inference,manage,all]"
        )
    with Elasticsearch(url, basic_auth=("admin", "admin-password")) as admin:
        put_from_model(admin, inference_id="by-admin")
        assert admin.inference.delete(inference_id="by-admin")["acknowledged"] is True
    with Elasticsearch(url, basic_auth=("mlview", "mlview-password")) as ml_viewer:
        with pytest.raises(AuthorizationException) as caught:
            ml_viewer.inference.get()
        assert reason(caught.value).startswith(
            "action [cluster:monitor/xpack/inference/get] is unauthorized for user [mlview]"
        )
        assert "monitor_inference" in reason(caught.value)


# ---- the demo cluster -------------------------------------------------------------------------


def test_demo_has_an_elser_endpoint_and_a_semantic_index() -> None:
    with ThreadedEmulator(Emulator(demo_state())) as running, Elasticsearch(running.url) as es:
        endpoint = es.inference.get(inference_id="elser-endpoint")["endpoints"][0]
        assert endpoint["task_type"] == "sparse_embedding"
        assert endpoint["service_settings"]["model_id"] == ".elser_model_2_linux-x86_64"
        mapping = es.indices.get_mapping(index="docs-semantic")["docs-semantic"]["mappings"]
        assert mapping["properties"]["content"] == {
            "type": "semantic_text",
            "inference_id": "elser-endpoint",
        }
        with pytest.raises(ConflictError) as caught:
            es.ml.stop_trained_model_deployment(model_id="elser-endpoint")
        assert reason(caught.value).startswith(
            "Cannot stop deployment [elser-endpoint] as it was created by inference endpoint "
            "[elser-endpoint]"
        )
        with pytest.raises(ConflictError) as caught:
            es.inference.delete(inference_id="elser-endpoint")
        assert "is being used in the mapping for indexes: [docs-semantic]" in reason(caught.value)


def test_state_files_carry_endpoints_and_indices() -> None:
    state = state_from_dict(
        {
            "models": [{"model_id": "my-elser", "inference_config": {"text_expansion": {}}}],
            "deployments": [{"model_id": "my-elser", "deployment_id": "shared"}],
            "inference_endpoints": [
                {"inference_id": "owner", "task_type": "sparse_embedding", "model_id": "my-elser"},
                {
                    "inference_id": "user",
                    "task_type": "sparse_embedding",
                    "model_id": "my-elser",
                    "deployment_id": "shared",
                },
            ],
            "indices": {"docs": {"mappings": {"properties": {"b": {"type": "semantic_text"}}}}},
        }
    )
    assert sorted(state.deployments) == ["owner", "shared"]
    assert state.inference_endpoints["owner"].created_deployment is True
    assert state.inference_endpoints["user"].created_deployment is False
    again = state_from_dict(dump_state(state))
    assert dump_state(again)["inference_endpoints"] == dump_state(state)["inference_endpoints"]
    assert again.indices == state.indices


def test_the_endpoints_start_request_is_validated(
    inf: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = inf
    with pytest.raises(BadRequestError) as caught:
        put_from_model(es, inference_id="three-threads", num_threads=3)
    assert error_type(caught.value) == "action_request_validation_exception"
    assert "[threads_per_allocation] must be a power of 2 less than or equal to 32" in reason(
        caught.value
    )
    assert "three-threads" not in emulator.state.inference_endpoints
