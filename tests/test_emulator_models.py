"""Model management behaviours Elastic's trained-model YAML REST tests pin (inference_crud.yml,
inference_processor.yml), written afresh against the emulator through the real client."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, Elasticsearch, NotFoundError

from bot.emulator import Emulator
from bot.emulator.testing import ThreadedEmulator

AUTH = ("x_pack_rest_user", "x-pack-test-password")
DEFINITION = base64.b64encode(b"PK\x03\x04" + bytes(1626)).decode()


def tree(target: str = "regression", split_feature: int | None = None) -> dict[str, Any]:
    root: dict[str, Any] = {"node_index": 0, "threshold": 2, "left_child": 1, "right_child": 2}
    if split_feature is not None:
        root["split_feature"] = split_feature
    return {
        "tree": {
            "feature_names": ["field1", "field2"],
            "tree_structure": [
                root,
                {"node_index": 1, "leaf_value": 0},
                {"node_index": 2, "leaf_value": 1},
            ],
            "target_type": target,
        }
    }


def ensemble(*trees: dict[str, Any], target: str = "regression") -> dict[str, Any]:
    return {"trained_model": {"ensemble": {"target_type": target, "trained_models": list(trees)}}}


@pytest.fixture
def es() -> Iterator[Elasticsearch]:
    with ThreadedEmulator(Emulator(auth=AUTH)) as running:
        client = Elasticsearch(running.url, basic_auth=AUTH)
        yield client
        client.close()


def reason(exc: Any) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def put_pytorch(es: Elasticsearch, model_id: str, config: dict[str, Any] | None = None) -> None:
    es.ml.put_trained_model(
        model_id=model_id, model_type="pytorch", inference_config=config or {"ner": {}}
    )
    es.ml.put_trained_model_definition_part(
        model_id=model_id,
        part=0,
        definition=DEFINITION,
        total_definition_length=1630,
        total_parts=1,
    )


def put_tree(es: Elasticsearch, model_id: str, kind: str = "regression") -> None:
    es.ml.put_trained_model(
        model_id=model_id,
        input={"field_names": ["field1", "field2"]},
        inference_config={kind: {}},
        definition=ensemble(tree(kind), target=kind),
    )


# ---- the cluster's own model ------------------------------------------------------------------


def test_a_fresh_cluster_has_lang_ident_model_1(es: Elasticsearch) -> None:
    models = es.ml.get_trained_models()
    assert models["count"] == 1
    assert models["trained_model_configs"][0]["model_id"] == "lang_ident_model_1"
    assert models["trained_model_configs"][0]["model_type"] == "lang_ident"
    one = es.ml.get_trained_models(model_id="lang_ident_model_1", allow_no_match=False)
    assert one["count"] == 1
    assert es.ml.get_trained_models_stats()["count"] == 1


# ---- Elastic-provided models ------------------------------------------------------------------


def test_elastic_model_put_with_only_input_downloads_first(es: Elasticsearch) -> None:
    created = es.ml.put_trained_model(
        model_id=".elser_model_2", input={"field_names": ["text_field"]}
    )
    assert created["model_type"] == "pytorch"
    assert list(created["inference_config"]) == ["text_expansion"]
    status = es.ml.get_trained_models(model_id=".elser_model_2", include="definition_status")
    assert status["trained_model_configs"][0]["fully_defined"] is False
    with pytest.raises(ApiError) as caught:
        es.ml.start_trained_model_deployment(model_id=".elser_model_2")
    assert caught.value.status_code == 408
    assert reason(caught.value) == (
        "Model download task is currently running. Wait for trained model [.elser_model_2] "
        "download task to complete then try again"
    )


def test_elastic_model_put_waiting_for_the_download_can_start(es: Elasticsearch) -> None:
    es.ml.put_trained_model(
        model_id=".elser_model_2_linux-x86_64",
        input={"field_names": ["text_field"]},
        wait_for_completion=True,
    )
    started = es.ml.start_trained_model_deployment(model_id=".elser_model_2_linux-x86_64")
    assert started["assignment"]["assignment_state"] == "started"


def test_other_models_still_need_an_inference_config(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model(model_id="my-model", input={"field_names": ["text_field"]})
    assert reason(caught.value) == "Validation Failed: 1: [inference_config] must not be null.;"


# ---- inference configs ------------------------------------------------------------------------


def test_fill_mask_gets_its_mask_token(es: Elasticsearch) -> None:
    bert = es.ml.put_trained_model(model_id="fill-bert", inference_config={"fill_mask": {}})
    assert bert["inference_config"]["fill_mask"]["mask_token"] == "[MASK]"
    assert bert["inference_config"]["fill_mask"]["num_top_classes"] == 5
    roberta = es.ml.put_trained_model(
        model_id="fill-roberta", inference_config={"fill_mask": {"tokenization": {"roberta": {}}}}
    )
    assert roberta["inference_config"]["fill_mask"]["mask_token"] == "<mask>"
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model(
            model_id="fill-wrong", inference_config={"fill_mask": {"mask_token": "<mask>"}}
        )
    nested = caught.value.body["error"]["caused_by"]
    assert nested["reason"].endswith("[inference_config] failed to parse field [fill_mask]")
    assert nested["caused_by"] == {
        "type": "illegal_argument_exception",
        "reason": "Mask token requested was [<mask>] but must be [[MASK]] for this model",
    }


def test_vocabulary_in_the_config_is_refused(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model(
            model_id="distilbert-finetuned-sst",
            model_type="pytorch",
            inference_config={"ner": {"vocabulary": {"index": ".ml-inference-native"}}},
        )
    error = caught.value.body["error"]
    assert error["type"] == "x_content_parse_exception"
    innermost = error["caused_by"]["caused_by"]
    assert innermost["reason"] == "illegal setting [vocabulary] on inference model creation"


# ---- tree / ensemble models -------------------------------------------------------------------


def test_ensemble_models_are_stored_as_tree_ensembles(es: Elasticsearch) -> None:
    created = es.ml.put_trained_model(
        model_id="my-regression-model",
        description="model for tests",
        input={"field_names": ["field1", "field2"]},
        inference_config={"regression": {}},
        definition=ensemble(tree(), tree()),
    )
    assert created["model_type"] == "tree_ensemble"
    assert created["estimated_operations"] == 6
    assert created["model_size_bytes"] > 0
    assert "definition" not in created and "location" not in created
    with pytest.raises(BadRequestError) as caught:
        es.ml.start_trained_model_deployment(model_id="my-regression-model")
    assert reason(caught.value) == (
        "model [my-regression-model] of type [tree_ensemble] cannot be deployed. Only PyTorch "
        "models can be deployed"
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (
            {"inference_config": {"regression": {}}, "definition": ensemble()},
            "[trained_models] must not be empty",
        ),
        (
            {"inference_config": {"regression": {}}, "definition": ensemble(tree(split_feature=2))},
            "feature index [2] is out of bounds for the [feature_names] array",
        ),
        (
            {
                "input": {"field_names": []},
                "inference_config": {"regression": {}},
                "definition": ensemble(tree()),
            },
            "[input.field_names] must not be empty",
        ),
        (
            {"inference_config": {"classification": {}}, "definition": ensemble(tree())},
            "Model [bad-tree] inference config type [classification] does not support "
            "definition target type [regression]",
        ),
    ],
)
def test_tree_definition_validations(es: Elasticsearch, body: dict[str, Any], text: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model(model_id="bad-tree", **body)
    assert reason(caught.value) == text


# ---- pipelines ----------------------------------------------------------------------------------


def test_inference_processor_needs_a_model_id(es: Elasticsearch) -> None:
    processor = {"inference": {"inference_config": {"regression": {}}, "target_field": "r"}}
    with pytest.raises(BadRequestError) as caught:
        es.ingest.put_pipeline(id="regression-model-pipeline", processors=[processor])
    error = caught.value.body["error"]
    assert (error["type"], error["reason"]) == (
        "parse_exception",
        "[model_id] required property is missing",
    )
    assert (error["processor_type"], error["property_name"]) == ("inference", "model_id")
    nested = {"foreach": {"field": "xs", "processor": processor}}
    with pytest.raises(BadRequestError):
        es.ingest.put_pipeline(id="nested", processors=[nested])


# ---- model aliases ------------------------------------------------------------------------------


def test_delete_alias_rules(es: Elasticsearch) -> None:
    put_tree(es, "a-regression-model-0")
    put_tree(es, "a-regression-model-1")
    es.ml.put_trained_model_alias(model_alias="regression-model", model_id="a-regression-model-1")
    with pytest.raises(ConflictError) as caught:
        es.ml.delete_trained_model_alias(
            model_alias="regression-model", model_id="a-regression-model-0"
        )
    assert reason(caught.value) == (
        "model_alias [regression-model] does not refer to provided model_id [a-regression-model-0]"
    )
    with pytest.raises(NotFoundError) as caught:
        es.ml.delete_trained_model_alias(model_alias="missing", model_id="a-regression-model-0")
    assert caught.value.body["error"]["type"] == "status_exception"
    assert reason(caught.value) == "model_alias [missing] could not be found"
    es.ingest.put_pipeline(id="p", processors=[{"inference": {"model_id": "regression-model"}}])
    with pytest.raises(ConflictError) as caught:
        es.ml.delete_trained_model_alias(
            model_alias="regression-model", model_id="a-regression-model-1"
        )
    assert reason(caught.value) == (
        "Cannot delete model_alias [regression-model] as it is still referenced by ingest "
        "processors"
    )


def test_delete_model_whose_alias_a_pipeline_uses(es: Elasticsearch) -> None:
    put_tree(es, "a-classification-model", "classification")
    es.ml.put_trained_model_alias(
        model_alias="alias-to-a-classification-model", model_id="a-classification-model"
    )
    es.ingest.put_pipeline(
        id="pipeline-using-a-classification-model",
        processors=[{"inference": {"model_id": "alias-to-a-classification-model"}}],
    )
    with pytest.raises(ConflictError) as caught:
        es.ml.delete_trained_model(model_id="a-classification-model")
    assert reason(caught.value) == (
        "Cannot delete model [a-classification-model] as it has a model_alias "
        "[alias-to-a-classification-model] that is still referenced by ingest processors; use "
        "force to delete the model"
    )
    assert es.ml.delete_trained_model(model_id="a-classification-model", force=True)["acknowledged"]


def test_put_alias_reassignment_rules(es: Elasticsearch) -> None:
    put_tree(es, "a-regression-model-0")
    put_tree(es, "a-classification-model", "classification")
    es.ml.put_trained_model_alias(model_alias="regression-model", model_id="a-regression-model-0")
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model_alias(
            model_alias="regression-model", model_id="a-classification-model"
        )
    assert reason(caught.value).startswith("cannot assign model_alias [regression-model]")
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model_alias(
            model_alias="regression-model", model_id="a-classification-model", reassign=True
        )
    assert reason(caught.value) == (
        "cannot reassign model_alias [regression-model] to model [a-classification-model] with "
        "inference config type [classification] from model [a-regression-model-0] with type "
        "[regression]"
    )
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model_alias(
            model_alias="a-classification-model", model_id="a-regression-model-0"
        )
    assert reason(caught.value) == "model_alias cannot be the same as an existing trained model_id"


def test_alias_cannot_move_from_a_deployed_model_to_an_undeployed_one(es: Elasticsearch) -> None:
    put_pytorch(es, "ner-deployed")
    put_pytorch(es, "ner-next")
    es.ml.start_trained_model_deployment(model_id="ner-deployed")
    es.ml.put_trained_model_alias(model_alias="ner-current", model_id="ner-deployed")
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model_alias(model_alias="ner-current", model_id="ner-next", reassign=True)
    assert reason(caught.value) == (
        "cannot reassign model_alias [ner-current] to model [ner-next] from model "
        "[ner-deployed] as it is not yet deployed"
    )
    es.ml.start_trained_model_deployment(model_id="ner-next")
    es.ml.put_trained_model_alias(model_alias="ner-current", model_id="ner-next", reassign=True)
    assert (
        es.ml.get_trained_models(model_id="ner-current")["trained_model_configs"][0]["model_id"]
        == "ner-next"
    )


# ---- deviations from 3rd_party_deployment.yml / inference_crud.yml closed for issue 21 ----------


def yaml_catch(exc: Any, regex: str) -> bool:
    """The YAML runner's `catch: /regex/`: a search over the response's `error` object."""
    return re.search(regex, str(exc.body["error"])) is not None


@pytest.mark.parametrize(
    ("tokenization", "asked", "regex"),
    [
        (
            "bert",
            "<mask>",
            r"IllegalArgumentException. Mask token requested was \[<mask>\] but must be "
            r"\[\[MASK\]\] for this model",
        ),
        (
            "roberta",
            "[MASK]",
            r"IllegalArgumentException. Mask token requested was \[\[MASK\]\] but must be "
            r"\[<mask>\] for this model",
        ),
    ],
)
def test_wrong_mask_token_fails_with_the_illegal_argument_exception(
    es: Elasticsearch, tokenization: str, asked: str, regex: str
) -> None:
    config = {
        "fill_mask": {
            "tokenization": {tokenization: {"with_special_tokens": False}},
            "mask_token": asked,
        }
    }
    with pytest.raises(BadRequestError) as traced:
        es.ml.put_trained_model(
            model_id="incorrect_mask_token",
            model_type="pytorch",
            inference_config=config,
            error_trace=True,
        )
    assert yaml_catch(traced.value, regex)
    assert traced.value.body["error"]["stack_trace"].splitlines()[-1] == (
        f"Caused by: java.lang.IllegalArgumentException: Mask token requested was [{asked}] "
        f"but must be [{ {'bert': '[MASK]', 'roberta': '<mask>'}[tokenization] }] for this model"
    )
    with pytest.raises(BadRequestError) as plain:
        es.ml.put_trained_model(
            model_id="incorrect_mask_token", model_type="pytorch", inference_config=config
        )
    assert "stack_trace" not in plain.value.body["error"]  # only with error_trace, as ES
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models(model_id="incorrect_mask_token")


def test_exclude_generated_with_the_compressed_definition(es: Elasticsearch) -> None:
    definition = {
        "preprocessors": [],
        "trained_model": {
            "tree": {
                "feature_names": ["field1", "field2"],
                "tree_structure": [{"node_index": 0, "leaf_value": 1}],
                "target_type": "regression",
            }
        },
    }
    es.ml.put_trained_model(
        model_id="a-regression-model-1",
        description="empty model for tests",
        input={"field_names": ["field1", "field2"]},
        tags=["regression", "tag2"],
        inference_config={"regression": {}},
        definition=definition,
    )
    got = es.ml.get_trained_models(
        model_id="a-regression-model-1",
        exclude_generated=True,
        include="definition",
        decompress_definition=False,
    )["trained_model_configs"][0]
    assert got["description"] == "empty model for tests"
    assert got["compressed_definition"]
    assert got["input"] and got["inference_config"] and got["tags"]
    for generated in (
        "created_by",
        "version",
        "create_time",
        "estimated_heap_memory_usage",
        "estimated_operations",
        "license_level",
    ):
        assert generated not in got
    # The compressed form holds the definition; decompressed, GET answers the definition.
    again = es.ml.get_trained_models(model_id="a-regression-model-1", include="definition")
    assert again["trained_model_configs"][0]["definition"] == definition
    # A model put back from the exported config (what exclude_generated is for) is accepted.
    copy = {k: v for k, v in got.items() if k != "model_id"}
    es.ml.put_trained_model(model_id="a-regression-model-copy", body=copy)
    assert (
        es.ml.get_trained_models(model_id="a-regression-model-copy", include="definition")[
            "trained_model_configs"
        ][0]["definition"]
        == definition
    )
    with pytest.raises(BadRequestError) as caught:
        es.ml.get_trained_models(model_id="a-regression-*", include="definition")
    assert reason(caught.value) == (
        "Getting model definition is not supported when getting more than one model"
    )


BAD_COMPRESSED = "H4sIAAAAAAAAAEy92a5mW26l9y55HWdj9o3u9RS+SMil4yrBUgpIpywY9fLmR3LMFSpI"


def test_deferred_compressed_definition_needs_a_size(es: Elasticsearch) -> None:
    body = {
        "description": "model for tests",
        "input": {"field_names": ["field1", "field2"]},
        "inference_config": {"classification": {}},
        "compressed_definition": BAD_COMPRESSED,
    }
    with pytest.raises(BadRequestError) as caught:
        es.ml.put_trained_model(
            model_id="my-regression-model-compressed-failed",
            defer_definition_decompression=True,
            body=body,
        )
    assert caught.value.body["error"]["type"] == "action_request_validation_exception"
    assert yaml_catch(
        caught.value,
        r"when \[defer_definition_decompression\] is true and a compressed definition is "
        r"provided, model_size_bytes must be set",
    )
    with pytest.raises(NotFoundError):
        es.ml.get_trained_models(model_id="my-regression-model-compressed-failed")
    # With a size the server stores it without looking inside.
    es.ml.put_trained_model(
        model_id="my-regression-model-with-bad-compressed-definition",
        defer_definition_decompression=True,
        body={**body, "model_size_bytes": 1024},
    )
