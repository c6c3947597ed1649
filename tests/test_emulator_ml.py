"""Emulator ML APIs through the real client, after Elastic's YAML REST tests and Java ITs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from elasticsearch import (
    AsyncElasticsearch,
    BadRequestError,
    ConflictError,
    Elasticsearch,
    NotFoundError,
)

from bot.emulator import ClusterState, Emulator
from bot.emulator import lifecycle as lifecycle_module
from bot.emulator.testing import ThreadedEmulator

AUTH = ("x_pack_rest_user", "x-pack-test-password")
JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}
# Same size as the 1,630-byte TorchScript zip of 3rd_party_deployment.yml; only its length matters.
DEFINITION = base64.b64encode(b"PK\x03\x04" + bytes(1626)).decode()
PYTORCH_CONFIG: dict[str, Any] = {
    "description": "simple model for testing",
    "model_type": "pytorch",
    "inference_config": {
        "pass_through": {"tokenization": {"bert": {"with_special_tokens": False}}}
    },
}


def setup_models(es: Elasticsearch) -> None:
    """The YAML setup: two pytorch models with vocabulary and a one-part definition."""
    for model_id in ("test_model", "another_test_model"):
        es.ml.put_trained_model(model_id=model_id, **PYTORCH_CONFIG)
        es.ml.put_trained_model_vocabulary(
            model_id=model_id, vocabulary=["[PAD]", "[UNK]", "these", "are", "my", "words"]
        )
        es.ml.put_trained_model_definition_part(
            model_id=model_id,
            part=0,
            definition=DEFINITION,
            total_definition_length=1630,
            total_parts=1,
        )


@pytest.fixture
def yaml_es() -> Iterator[tuple[Emulator, Elasticsearch]]:
    emulator = Emulator(auth=AUTH)
    with ThreadedEmulator(emulator) as running:
        client = Elasticsearch(running.url, basic_auth=AUTH)
        setup_models(client)
        yield emulator, client
        client.close()


def reason(exc: Any) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def test_start_and_stop_with_no_cache(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    started = es.ml.start_trained_model_deployment(
        model_id="test_model", cache_size="0", wait_for="started"
    )
    assert started["assignment"]["assignment_state"] == "started"
    assert started["assignment"]["task_parameters"]["cache_size"] == "0"
    assert es.ml.stop_trained_model_deployment(model_id="test_model") == {"stopped": True}


def test_start_with_cache_and_stats(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    emulator, es = yaml_es
    started = es.ml.start_trained_model_deployment(model_id="test_model", cache_size="10kb")
    assert started["assignment"]["task_parameters"]["cache_size"] == "10kb"
    assert started["assignment"]["task_parameters"]["deployment_id"] == "test_model"
    emulator.state.deployments["test_model"].inference_count = 3
    emulator.state.deployments["test_model"].inference_cache_hit_count = 1
    stats = es.ml.get_trained_models_stats(model_id="test_model")
    assert stats["count"] == 1
    dep = stats["trained_model_stats"][0]["deployment_stats"]
    assert dep["nodes"][0]["inference_count"] == 3
    assert dep["nodes"][0]["inference_cache_hit_count"] == 1
    assert dep["state"] == "started"
    assert dep["cache_size"] == "10kb"
    assert stats["trained_model_stats"][0]["model_size_stats"]["model_size_bytes"] == 1630
    assert es.ml.stop_trained_model_deployment(model_id="test_model") == {"stopped": True}


def test_start_with_low_priority(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    started = es.ml.start_trained_model_deployment(model_id="test_model", priority="low")
    params = started["assignment"]["task_parameters"]
    assert (
        params["priority"],
        params["number_of_allocations"],
        params["threads_per_allocation"],
    ) == ("low", 1, 1)
    assert es.ml.stop_trained_model_deployment(model_id="test_model") == {"stopped": True}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"number_of_allocations": 3}, "[number_of_allocations] must be 1 when [priority] is low"),
        (
            {"threads_per_allocation": 4},
            "[threads_per_allocation] must be 1 when [priority] is low",
        ),
    ],
)
def test_low_priority_validation(
    yaml_es: tuple[Emulator, Elasticsearch], kwargs: dict[str, Any], message: str
) -> None:
    _, es = yaml_es
    with pytest.raises(BadRequestError) as caught:
        es.ml.start_trained_model_deployment(model_id="test_model", priority="low", **kwargs)
    assert caught.value.body["error"]["type"] == "action_request_validation_exception"
    assert reason(caught.value) == f"Validation Failed: 1: {message};"


def test_stop_with_allow_no_match(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    es.ml.start_trained_model_deployment(
        model_id="test_model", deployment_id="test_model_for_search"
    )
    assert es.ml.stop_trained_model_deployment(model_id="test_model_for_search") == {
        "stopped": True
    }
    with pytest.raises(NotFoundError) as caught:
        es.ml.stop_trained_model_deployment(model_id="test_model_for_search", allow_no_match=False)
    assert reason(caught.value) == "No known model deployment with id [test_model_for_search]"
    assert caught.value.body["error"]["type"] == "resource_not_found_exception"
    assert es.ml.stop_trained_model_deployment(
        model_id="test_model_for_search", allow_no_match=True
    ) == {"stopped": True}


def test_multiple_deployments_of_one_model(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    for dep in ("test_model_for_search", "test_model_for_ingest"):
        es.ml.start_trained_model_deployment(
            model_id="test_model", deployment_id=dep, priority="low"
        )
    stats = es.ml.get_trained_models_stats(model_id="test_model")
    assert stats["count"] == 1
    ids = [s["deployment_stats"]["deployment_id"] for s in stats["trained_model_stats"]]
    assert ids == ["test_model_for_ingest", "test_model_for_search"]
    # One deployment id alone gives that deployment only.
    one = es.ml.get_trained_models_stats(model_id="test_model_for_search")
    assert one["count"] == 1
    assert [s["deployment_stats"]["deployment_id"] for s in one["trained_model_stats"]] == [
        "test_model_for_search"
    ]
    for dep in ids:
        assert es.ml.stop_trained_model_deployment(model_id=dep) == {"stopped": True}
    assert (
        "deployment_stats"
        not in es.ml.get_trained_models_stats(model_id="test_model")["trained_model_stats"][0]
    )


def test_duplicate_deployment_id(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    es.ml.start_trained_model_deployment(
        model_id="test_model", deployment_id="test_model_deployment"
    )
    with pytest.raises(BadRequestError) as caught:
        es.ml.start_trained_model_deployment(
            model_id="test_model", deployment_id="test_model_deployment"
        )
    assert reason(caught.value) == (
        "Could not start model deployment because an existing deployment with the same id "
        "[test_model_deployment] exist"
    )


def test_deployment_id_equal_to_another_model(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    with pytest.raises(BadRequestError) as caught:
        es.ml.start_trained_model_deployment(
            model_id="test_model", deployment_id="another_test_model"
        )
    assert reason(caught.value) == (
        "Deployment id [another_test_model] is the same as an another model which is not the "
        "model being deployed. Deployment id can be the same as the model being deployed but "
        "cannot match a different model"
    )


def test_start_missing_model_and_missing_definition(
    yaml_es: tuple[Emulator, Elasticsearch],
) -> None:
    _, es = yaml_es
    with pytest.raises(NotFoundError) as caught:
        es.ml.start_trained_model_deployment(model_id="missing-model")
    assert reason(caught.value) == "No known trained model with model_id [missing-model]"
    es.ml.put_trained_model(model_id="no_definition", **PYTORCH_CONFIG)
    with pytest.raises(NotFoundError) as caught:
        es.ml.start_trained_model_deployment(model_id="no_definition")
    assert reason(caught.value) == "Could not find trained model definition [no_definition]"


def test_start_with_adaptive_allocations_body(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    adaptive = {"enabled": True, "min_number_of_allocations": 2, "max_number_of_allocations": 4}
    started = es.ml.start_trained_model_deployment(
        model_id="test_model", adaptive_allocations=adaptive
    )
    assert started["assignment"]["adaptive_allocations"] == adaptive
    assert started["assignment"]["task_parameters"]["number_of_allocations"] == 2
    dep = es.ml.get_trained_models_stats(model_id="test_model")["trained_model_stats"][0]
    assert dep["deployment_stats"]["adaptive_allocations"] == adaptive


# ---- stop: 409 texts, force, body/query rules -----------------------------------------------


def referencing_state() -> ClusterState:
    state = ClusterState()
    for model_id in ("used_model", "foreach_model", "failure_model", "alias_model", "free_model"):
        state.add_model(model_id)
        state.start_deployment(model_id)
    state.put_alias("alias_model", "used_model_alias")
    state.put_pipeline("direct", {"processors": [{"inference": {"model_id": "used_model"}}]})
    state.put_pipeline(
        "loop",
        {
            "processors": [
                {
                    "foreach": {
                        "field": "f",
                        "processor": {"inference": {"model_id": "foreach_model"}},
                    }
                }
            ]
        },
    )
    state.put_pipeline(
        "fallback",
        {
            "processors": [
                {
                    "set": {
                        "field": "a",
                        "value": 1,
                        "on_failure": [{"inference": {"model_id": "failure_model"}}],
                    }
                }
            ]
        },
    )
    state.put_pipeline("aliased", {"processors": [{"inference": {"model_id": "used_model_alias"}}]})
    # Pipeline-level on_failure is not scanned by the server.
    state.put_pipeline(
        "pipeline_level",
        {"processors": [], "on_failure": [{"inference": {"model_id": "free_model"}}]},
    )
    return state


@pytest.fixture
def ref_es() -> Iterator[tuple[Emulator, Elasticsearch]]:
    emulator = Emulator(referencing_state())
    with ThreadedEmulator(emulator) as running:
        client = Elasticsearch(running.url)
        yield emulator, client
        client.close()


@pytest.mark.parametrize("deployment_id", ["used_model", "foreach_model", "failure_model"])
def test_stop_refused_when_referenced(
    ref_es: tuple[Emulator, Elasticsearch], deployment_id: str
) -> None:
    emulator, es = ref_es
    with pytest.raises(ConflictError) as caught:
        es.ml.stop_trained_model_deployment(model_id=deployment_id)
    text = (
        f"Cannot stop deployment [{deployment_id}] as it is referenced by ingest processors; "
        "use force to stop the deployment"
    )
    cause = {"type": "status_exception", "reason": text}
    assert caught.value.body == {"error": {"root_cause": [cause], **cause}, "status": 409}
    assert deployment_id in emulator.state.deployments
    assert es.ml.stop_trained_model_deployment(model_id=deployment_id, force=True) == {
        "stopped": True
    }
    assert deployment_id not in emulator.state.deployments


def test_stop_refused_for_referenced_alias(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    with pytest.raises(ConflictError) as caught:
        es.ml.stop_trained_model_deployment(model_id="alias_model")
    assert reason(caught.value) == (
        "Cannot stop deployment [alias_model] as it has a model_alias [used_model_alias] that is "
        "still referenced by ingest processors; use force to stop the deployment"
    )


def test_pipeline_level_on_failure_not_scanned(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    assert es.ml.stop_trained_model_deployment(model_id="free_model") == {"stopped": True}


def test_stop_reads_query_without_body(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    emulator, es = ref_es
    resp = es.perform_request(
        "POST",
        "/_ml/trained_models/used_model/deployment/_stop",
        params={"force": "true"},
        headers={"accept": "application/json"},
    )
    assert resp.body == {"stopped": True}
    assert emulator.stop_calls("used_model")[0].query == {"force": "true"}
    with pytest.raises(NotFoundError):
        es.perform_request(
            "POST",
            "/_ml/trained_models/gone/deployment/_stop",
            params={"allow_no_match": "false"},
            headers={"accept": "application/json"},
        )


def test_stop_body_and_query_mixed_is_400(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    emulator, es = ref_es
    with pytest.raises(BadRequestError) as caught:
        es.perform_request(
            "POST",
            "/_ml/trained_models/used_model/deployment/_stop",
            params={"force": "true", "allow_no_match": "false"},
            body={"force": True},
            headers=JSON_HEADERS,
        )
    assert reason(caught.value) == (
        "request [/_ml/trained_models/used_model/deployment/_stop] contains unrecognized "
        "parameters: [allow_no_match], [force]"
    )
    assert caught.value.body["error"]["type"] == "illegal_argument_exception"
    assert "used_model" in emulator.state.deployments


def test_stop_unknown_body_field(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    with pytest.raises(BadRequestError) as caught:
        es.ml.stop_trained_model_deployment(model_id="free_model", id="free_model")
    assert caught.value.body["error"]["type"] == "x_content_parse_exception"
    assert reason(caught.value) == (
        "[1:2] [cluster:admin/xpack/ml/trained_models/deployment/stop] unknown field [id]"
    )


def test_stop_body_model_id_must_match(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    with pytest.raises(BadRequestError) as caught:
        es.ml.stop_trained_model_deployment(model_id="free_model", body={"model_id": "other"})
    assert reason(caught.value) == (
        "Inconsistent model_id; 'other' specified in the body differs from 'free_model' "
        "specified as a URL argument"
    )


def test_stop_takes_no_wildcards(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    emulator, es = ref_es
    assert es.ml.stop_trained_model_deployment(model_id="*") == {"stopped": True}
    assert es.ml.stop_trained_model_deployment(model_id="free_model,used_model") == {
        "stopped": True
    }
    with pytest.raises(NotFoundError):
        es.ml.stop_trained_model_deployment(model_id="_all", allow_no_match=False)
    assert len(emulator.state.deployments) == 5


# ---- _stats id forms and 404 rules ------------------------------------------------------------


def stats_ids(resp: Any) -> list[tuple[str, str | None]]:
    return [
        (s["model_id"], s.get("deployment_stats", {}).get("deployment_id"))
        for s in resp["trained_model_stats"]
    ]


def test_stats_id_forms(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    emulator, es = ref_es
    emulator.state.add_model("idle_model")
    everything = es.ml.get_trained_models_stats()
    # Five models, idle_model and the lang_ident_model_1 every cluster starts with.
    assert everything["count"] == 7
    assert ("idle_model", None) in stats_ids(everything)
    assert ("lang_ident_model_1", None) in stats_ids(everything)
    assert es.ml.get_trained_models_stats(model_id="_all")["count"] == 7
    listed = es.ml.get_trained_models_stats(model_id="used_model,free_model")
    assert stats_ids(listed) == [("free_model", "free_model"), ("used_model", "used_model")]
    wildcard = es.ml.get_trained_models_stats(model_id="f*")
    assert stats_ids(wildcard) == [
        ("failure_model", "failure_model"),
        ("foreach_model", "foreach_model"),
        ("free_model", "free_model"),
    ]
    paged = es.ml.get_trained_models_stats(from_=1, size=2)
    assert paged["count"] == 7
    assert len(paged["trained_model_stats"]) == 2
    # A model alias resolves to its model.
    assert es.ml.get_trained_models_stats(model_id="used_model_alias")["count"] == 1


def test_stats_404_rules(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    with pytest.raises(NotFoundError) as caught:
        es.ml.get_trained_models_stats(model_id="missing")
    assert reason(caught.value) == "No known trained model with model_id [missing]"
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models_stats(model_id="used_model,missing")
    assert es.ml.get_trained_models_stats(model_id="nothing*") == {
        "count": 0,
        "trained_model_stats": [],
    }
    with pytest.raises(NotFoundError) as caught:
        es.ml.get_trained_models_stats(model_id="nothing*", allow_no_match=False)
    assert reason(caught.value) == "No known trained model with model_id [nothing*]"


def test_get_models(ref_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = ref_es
    models = es.ml.get_trained_models(model_id="used_model", include="definition_status")
    config = models["trained_model_configs"][0]
    assert models["count"] == 1
    assert (config["model_id"], config["model_type"], config["fully_defined"]) == (
        "used_model",
        "pytorch",
        True,
    )
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models(model_id="nope")


# ---- graceful and forced stops ------------------------------------------------------------------


@pytest.fixture
async def queued() -> AsyncIterator[tuple[Emulator, AsyncElasticsearch]]:
    state = ClusterState()
    state.add_model("m")
    state.start_deployment("m", "dep", inference_count=10)
    emulator = Emulator(state)
    url = await emulator.start()
    client = AsyncElasticsearch(url)
    yield emulator, client
    await client.close()
    await emulator.stop()


class HeldSleeps:
    """`asyncio` for the emulator's lifecycle: its sleeps (queued work, stop delay) wait until
    the test releases them, so a test asserts on states in order instead of racing a timer."""

    def __init__(self) -> None:
        self.released = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        await self.released.wait()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> HeldSleeps:
    sleeps = HeldSleeps()
    monkeypatch.setattr(lifecycle_module, "asyncio", sleeps)
    return sleeps


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def test_finish_pending_work_waits_for_queue(
    queued: tuple[Emulator, AsyncElasticsearch], held: HeldSleeps
) -> None:
    emulator, es = queued
    dep = emulator.lifecycle.enqueue("dep", 3, 0.05)
    stats = await es.ml.get_trained_models_stats(model_id="dep")
    assert (
        stats["trained_model_stats"][0]["deployment_stats"]["nodes"][0][
            "number_of_pending_requests"
        ]
        == 3
    )
    stop = asyncio.create_task(
        es.ml.stop_trained_model_deployment(model_id="dep", body={"finish_pending_work": True})
    )
    await _until(lambda: dep.state == "stopping")
    assert not stop.done() and dep.pending_requests == 3  # the stop waits for the queue
    held.released.set()
    assert await stop == {"stopped": True}
    assert (dep.inference_count, dep.error_count, dep.pending_requests) == (13, 0, 0)
    assert "dep" not in emulator.state.deployments


async def test_default_stop_fails_queued_work(
    queued: tuple[Emulator, AsyncElasticsearch], held: HeldSleeps
) -> None:
    emulator, es = queued
    dep = emulator.lifecycle.enqueue("dep", 5, 0.5)
    assert await es.ml.stop_trained_model_deployment(model_id="dep") == {"stopped": True}
    assert (dep.inference_count, dep.error_count, dep.pending_requests) == (10, 5, 0)


async def test_stopping_state_visible_during_delayed_stop(
    queued: tuple[Emulator, AsyncElasticsearch], held: HeldSleeps
) -> None:
    emulator, es = queued
    emulator.lifecycle.stop_delay = 0.3  # held until released
    stopping = asyncio.create_task(es.ml.stop_trained_model_deployment(model_id="dep"))
    await _until(lambda: emulator.lifecycle.stopping("dep"))
    stats = await es.ml.get_trained_models_stats(model_id="m")
    dep_stats = stats["trained_model_stats"][0]["deployment_stats"]
    assert dep_stats["state"] == "stopping"
    assert dep_stats["nodes"][0]["routing_state"] == {"routing_state": "stopping"}
    # A second stop while the first is in flight also answers stopped once it is done.
    second = asyncio.create_task(es.ml.stop_trained_model_deployment(model_id="dep"))
    await _until(lambda: len(emulator.stop_calls("dep")) == 2)
    assert not stopping.done() and not second.done()
    held.released.set()
    assert await second == {"stopped": True}
    assert await stopping == {"stopped": True}
    after = await es.ml.get_trained_models_stats(model_id="m")
    assert "deployment_stats" not in after["trained_model_stats"][0]


def test_get_models_lists_model_aliases_in_metadata(
    yaml_es: tuple[Emulator, Elasticsearch],
) -> None:
    _, es = yaml_es
    es.ml.put_trained_model_alias(model_id="test_model", model_alias="my-alias")
    resp = es.ml.get_trained_models(model_id="test_model")
    assert resp["trained_model_configs"][0]["metadata"]["model_aliases"] == ["my-alias"]


# ---- update (3rd_party_deployment.yml "Test update deployment"; update_trained_model_deployment)


def test_update_deployment_to_the_same_count(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    started = es.ml.start_trained_model_deployment(model_id="test_model", wait_for="started")
    assert started["assignment"]["task_parameters"]["number_of_allocations"] == 1
    updated = es.ml.update_trained_model_deployment(model_id="test_model", number_of_allocations=1)
    assert updated["assignment"]["task_parameters"]["model_id"] == "test_model"
    assert updated["assignment"]["task_parameters"]["number_of_allocations"] == 1
    assert es.ml.stop_trained_model_deployment(model_id="test_model")["stopped"] is True
    es.ml.start_trained_model_deployment(
        model_id="test_model", deployment_id="test_model_deployment", wait_for="started"
    )
    updated = es.ml.update_trained_model_deployment(
        model_id="test_model_deployment", number_of_allocations=1
    )
    assert updated["assignment"]["task_parameters"]["model_id"] == "test_model"
    assert updated["assignment"]["task_parameters"]["number_of_allocations"] == 1


def test_update_with_unknown_model_id_is_missing(yaml_es: tuple[Emulator, Elasticsearch]) -> None:
    _, es = yaml_es
    with pytest.raises(NotFoundError) as caught:
        es.ml.update_trained_model_deployment(model_id="missing-model", number_of_allocations=4)
    assert reason(caught.value) == "No known model deployment with id [missing-model]"
