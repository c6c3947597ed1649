"""Trained model config APIs: put/get/delete models, vocabulary, definition parts, aliases."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from bot.emulator import ml_definitions as d
from bot.emulator import privileges as p
from bot.emulator.errors import (
    EsError,
    missing_model,
    status_exception,
    validation_failed,
)
from bot.emulator.routing import Call, Reply
from bot.emulator.state import ClusterState, Model

JSON = dict[str, Any]
ML_CONFIG_VERSION = "12.0.0"
NATIVE_INDEX = ".ml-inference-native-000002"
_MODEL_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z0-9])?$")
# TrainedModelConfig.toXContent leaves these out with exclude_generated (illegal on PUT).
GENERATED_FIELDS = frozenset(
    {
        "created_by",
        "version",
        "create_time",
        "model_size_bytes",
        "estimated_heap_memory_usage_bytes",
        "estimated_operations",
        "license_level",
    }
)
_ALIAS = re.compile(r"^[a-z0-9](?:[a-z0-9_\-.]*[a-z])?$")


def model_config(
    model: Model, *, definition_status: bool = False, aliases: Sequence[str] = ()
) -> JSON:
    """TrainedModelConfig.toXContent (field order as the server writes it).

    GET adds the model's aliases under `metadata.model_aliases`, as the get action does.
    """
    config: JSON = {
        "model_id": model.model_id,
        "model_type": model.model_type,
        "created_by": model.created_by,
        "version": ML_CONFIG_VERSION,
        "create_time": model.create_time,
        "model_size_bytes": 0,
        "estimated_operations": 0,
        "license_level": "platinum",
    }
    if model.description is not None:
        config["description"] = model.description
    config["tags"] = list(model.tags)
    metadata = dict(model.metadata or {})
    if aliases:
        metadata["model_aliases"] = list(aliases)
    if metadata or model.metadata is not None:
        config["metadata"] = metadata
    config["input"] = model.input
    config["inference_config"] = model.inference_config
    if model.model_type == "pytorch":
        config["location"] = {"index": {"name": NATIVE_INDEX}}
    config.update(model.extra)
    if definition_status:
        config["fully_defined"] = model.definition_status == "complete"
    return config


async def put_model(call: Call) -> Reply:
    """PUT _ml/trained_models/<model_id>."""
    model_id = call.path_params["model_id"]
    defer = call.bool_param("defer_definition_decompression", False)
    wait = call.bool_param("wait_for_completion", False)
    body = call.body if isinstance(call.body, dict) else {}
    elastic = model_id in d.ELASTIC_MODELS and "inference_config" not in body
    if isinstance(body.get("inference_config"), dict):
        body["inference_config"] = d.check_inference_config(call.raw_body, body["inference_config"])
    errors = []
    if not _MODEL_ID.match(model_id) and model_id not in d.ELASTIC_MODELS:
        errors.append(
            f"Invalid model_id; '{model_id}' can contain lowercase alphanumeric (a-z and 0-9), "
            "hyphens or underscores; must start and end with alphanumeric"
        )
    if "inference_config" not in body and not elastic:
        errors.append("[inference_config] must not be null.")
    call.check_params()
    if errors:
        raise validation_failed(*errors)
    if defer and not body.get("model_size_bytes") and body.get("compressed_definition"):
        # PutTrainedModelAction.Request.validate: the size cannot come from a definition
        # the server does not decompress.
        errors.append(
            "when [defer_definition_decompression] is true and a compressed definition is "
            "provided, model_size_bytes must be set"
        )
    if errors:
        raise validation_failed(*errors)
    call.authorize(p.ACTION_ML_PUT)
    state = call.emulator.state
    if model_id in state.models:
        raise EsError(
            400,
            "resource_already_exists_exception",
            f"Trained machine learning model [{model_id}] already exists",
        )
    if model_id in state.deployments:
        raise status_exception(
            400,
            f"Cannot create model [{model_id}] the id is the same as an current model deployment",
        )
    known = {
        "model_id",
        "model_type",
        "description",
        "tags",
        "inference_config",
        "input",
        "metadata",
        "definition",
        "compressed_definition",
        "location",
    }
    tree = d.check_tree_definition(model_id, body)
    model = Model(
        model_id=model_id,
        model_type=str(body.get("model_type") or ("tree_ensemble" if tree else "pytorch")),
        description=body.get("description"),
        tags=list(body.get("tags") or []),
        inference_config=body.get("inference_config") or d.elastic_model_config(model_id),
        input=body.get("input") or {"field_names": ["text_field"]},
        metadata=body.get("metadata"),
        extra={**{k: v for k, v in body.items() if k not in known}, **(tree or {})},
    )
    if isinstance(body.get("definition"), dict):
        model.definition = body["definition"]
    if isinstance(body.get("compressed_definition"), str):
        model.compressed_definition = body["compressed_definition"]
    state.models[model_id] = model
    if elastic:
        # The server downloads the definition in the background (synchronously with
        # wait_for_completion); ClusterState.finish_download ends an emulated download.
        model.downloading = True
        if wait:
            state.finish_download(model_id, d.elastic_model_bytes(model_id))
    return 200, model_config(model)


def _existing(call: Call) -> Model:
    model_id = call.path_params["model_id"]
    model = call.emulator.state.models.get(model_id)
    if model is None:
        raise missing_model(model_id)
    return model


async def put_vocabulary(call: Call) -> Reply:
    """PUT _ml/trained_models/<model_id>/vocabulary."""
    body = call.body if isinstance(call.body, dict) else {}
    call.check_params()
    if not isinstance(body.get("vocabulary"), list):
        raise validation_failed("[vocabulary] must not be null.")
    call.authorize(p.ACTION_ML_PUT_VOCABULARY)
    model = _existing(call)
    model.vocabulary = [str(v) for v in body["vocabulary"]]
    return 200, {"acknowledged": True}


async def put_definition_part(call: Call) -> Reply:
    """PUT _ml/trained_models/<model_id>/definition/<part>."""
    body = call.body if isinstance(call.body, dict) else {}
    raw_part = call.path_params["part"]
    call.check_params()
    try:
        part = int(raw_part)
    except ValueError:
        raise EsError(400, "number_format_exception", f'For input string: "{raw_part}"') from None
    errors = []
    total_parts = body.get("total_parts")
    total_length = body.get("total_definition_length")
    if not isinstance(body.get("definition"), str):
        errors.append("[definition] must not be null.")
    if not isinstance(total_parts, int) or total_parts <= 0:
        errors.append("[total_parts] must be greater than 0")
    elif part >= total_parts:
        errors.append("[part] must be less than total_parts")
    if not isinstance(total_length, int) or total_length <= 0:
        errors.append("[total_definition_length] must be greater than 0")
    if errors:
        raise validation_failed(*errors)
    call.authorize(p.ACTION_ML_PUT_PART)
    model = _existing(call)
    try:
        length = len(base64.b64decode(body["definition"], validate=True))
    except (binascii.Error, ValueError):
        raise EsError(
            400, "illegal_argument_exception", "Illegal base64 character in model definition"
        ) from None
    model.definition_parts[part] = length
    model.total_parts = total_parts
    model.total_definition_length = total_length
    return 200, {"acknowledged": True}


async def get_models(call: Call) -> Reply:
    """GET _ml/trained_models[/<model_id>]: model ids, aliases, wildcards (no deployment ids)."""
    expression = call.path_params.get("model_id", "_all")
    allow_no_match = call.bool_param("allow_no_match", True)
    start = call.int_param("from", 0) or 0
    size = call.int_param("size", 100)
    include = call.param("include", "") or ""
    decompress = call.bool_param("decompress_definition", True)
    exclude_generated = call.bool_param("exclude_generated", False)
    with_definition = call.bool_param("include_model_definition", False)
    with_definition = with_definition or "definition" in include.split(",")
    tags = [t for t in (call.param("tags") or "").split(",") if t]
    call.authorize(p.ACTION_ML_GET)
    state = call.emulator.state
    ids, unmatched = state.expand_model_ids(expression, allow_no_match)
    if unmatched:
        raise missing_model(",".join(unmatched))
    models = [state.models[i] for i in ids if all(t in state.models[i].tags for t in tags)]
    page = models[start : start + (size if size is not None else 100)]
    status = "definition_status" in include.split(",")
    if status and len(page) > 1:
        raise status_exception(
            400,
            "Getting the model download status is not supported when getting more than one model",
        )
    if status and page and page[0].model_type != "pytorch":
        raise status_exception(400, "Definition status is only relevant to PyTorch model types")
    if with_definition and len(page) > 1:
        raise status_exception(
            400, "Getting model definition is not supported when getting more than one model"
        )
    configs = []
    for m in page:
        config = model_config(m, definition_status=status, aliases=state.aliases_of(m.model_id))
        if with_definition:
            config.update(d.definition_view(m.definition, m.compressed_definition, decompress))
        if exclude_generated:
            config = {k: v for k, v in config.items() if k not in GENERATED_FIELDS}
        configs.append(config)
    return 200, {"count": len(models), "trained_model_configs": configs}


async def delete_model(call: Call) -> Reply:
    """DELETE _ml/trained_models/<model_id>."""
    force = call.bool_param("force", False)
    call.param("timeout")
    call.authorize("cluster:admin/xpack/ml/inference/delete")
    state = call.emulator.state
    model = _existing(call)
    model_id = model.model_id
    referenced = state.model_ids_referenced_by_pipelines()
    if not force and model_id in referenced:
        raise status_exception(
            409,
            f"Cannot delete model [{model_id}] as it is still referenced by ingest processors; "
            "use force to delete the model",
        )
    used_aliases = [a for a in state.aliases_of(model_id) if a in referenced]
    if not force and used_aliases:
        raise status_exception(
            409,
            f"Cannot delete model [{model_id}] as it has a model_alias [{used_aliases[0]}] that "
            "is still referenced by ingest processors; use force to delete the model",
        )
    deployed = [d for d in state.deployments.values() if d.model_id == model_id]
    if deployed and not force:
        raise status_exception(
            409,
            f"Cannot delete model [{model_id}] as it is currently deployed; "
            "use force to delete the model",
        )
    for dep in deployed:
        await call.emulator.lifecycle.stop(dep.deployment_id, False)
    for alias in state.aliases_of(model_id):
        del state.aliases[alias]
    del state.models[model_id]
    return 200, {"acknowledged": True}


async def put_alias(call: Call) -> Reply:
    """PUT _ml/trained_models/<model_id>/model_aliases/<model_alias> (TransportPutTrainedModel-
    AliasAction: reassign check first, then the models, then the reassignment rules)."""
    alias = call.path_params["model_alias"]
    model_id = call.path_params["model_id"]
    reassign = call.bool_param("reassign", False)
    call.check_params()
    if not _ALIAS.match(alias):
        raise validation_failed(
            f"Invalid model_alias; '{alias}' can contain lowercase alphanumeric (a-z and 0-9), "
            "hyphens or underscores; must start with alphanumeric and cannot end with numbers"
        )
    call.authorize(p.ACTION_ML_PUT_ALIAS)
    state = call.emulator.state
    current = state.aliases.get(alias)
    if current is not None and not reassign:
        raise status_exception(
            400,
            f"cannot assign model_alias [{alias}] to model_id [{model_id}] as model_alias "
            f"already refers to [{current}]. Set parameter [reassign] to [true] if model_alias "
            "should be reassigned.",
        )
    if alias in state.models:
        raise status_exception(
            400, "model_alias cannot be the same as an existing trained model_id"
        )
    model = _existing(call)
    old = state.models.get(current) if current is not None else None
    if old is not None:
        _check_reassign(state, alias, model, old)
    state.aliases[alias] = model.model_id
    return 200, {"acknowledged": True}


def _config_name(model: Model) -> str | None:
    return next(iter(model.inference_config), None)


def _check_reassign(state: ClusterState, alias: str, new: Model, old: Model) -> None:
    """The reassignment rules: same config type, same model type, deployed stays deployed."""
    new_kind, old_kind = _config_name(new), _config_name(old)
    if new_kind and old_kind and new_kind != old_kind:
        raise status_exception(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] with inference "
            f"config type [{new_kind}] from model [{old.model_id}] with type [{old_kind}]",
        )
    if new.model_type != old.model_type:
        raise status_exception(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] with type "
            f"[{new.model_type}] from model [{old.model_id}] with type [{old.model_type}]",
        )
    deployed = {dep.model_id for dep in state.deployments.values()}
    if new.model_type == "pytorch" and old.model_id in deployed and new.model_id not in deployed:
        raise status_exception(
            400,
            f"cannot reassign model_alias [{alias}] to model [{new.model_id}] from model "
            f"[{old.model_id}] as it is not yet deployed",
        )


async def delete_alias(call: Call) -> Reply:
    """DELETE _ml/trained_models/<model_id>/model_aliases/<model_alias>
    (TransportDeleteTrainedModelAliasAction, exact texts)."""
    alias = call.path_params["model_alias"]
    model_id = call.path_params["model_id"]
    call.authorize("cluster:admin/xpack/ml/inference/model_aliases/delete")
    state = call.emulator.state
    referenced = state.aliases.get(alias)
    if referenced is None:
        raise status_exception(404, f"model_alias [{alias}] could not be found")
    if referenced != model_id:
        raise status_exception(
            409, f"model_alias [{alias}] does not refer to provided model_id [{model_id}]"
        )
    if alias in state.model_ids_referenced_by_pipelines():
        raise status_exception(
            409,
            f"Cannot delete model_alias [{alias}] as it is still referenced by ingest processors",
        )
    del state.aliases[alias]
    return 200, {"acknowledged": True}
