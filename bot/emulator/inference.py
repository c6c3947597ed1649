"""Inference endpoint APIs (`_inference`) for the ML-node services `elasticsearch` and `elser`.

After ES x-pack/plugin/inference: TransportPutInferenceModelAction, ElasticsearchInternalService
(and ElasticsearchInternalModel), TransportGetInferenceModelAction,
TransportDeleteInferenceEndpointAction and ModelConfigurations#toXContent. An endpoint put with
`service_settings.model_id` starts a deployment whose id is the endpoint id and stops it when
deleted; one put with `service_settings.deployment_id` only uses that deployment.
`_update` is in inference_update.py. Other services (openai, ...) and `_infer` are not
emulated: they answer
`Unknown service [x]` / no handler. See docs/elasticsearch-inference.md for what is verified.
"""

from __future__ import annotations

from typing import Any

from bot.emulator import mappings
from bot.emulator.errors import (
    EsError,
    not_found,
    status_exception,
    validation_exception,
)
from bot.emulator.ml_definitions import ELASTIC_MODELS, elastic_model_bytes, elastic_model_config
from bot.emulator.ml_deployments import DEFAULT_QUEUE_CAPACITY, adaptive_view, validate_start
from bot.emulator.routing import Call, Reply, Route
from bot.emulator.state import ClusterState, Deployment, InferenceEndpoint, Model

JSON = dict[str, Any]
ACTION_GET = "cluster:monitor/xpack/inference/get"
ACTION_PUT = "cluster:admin/xpack/inference/put"
ACTION_DELETE = "cluster:admin/xpack/inference/delete"
TASK_TYPES = ("text_embedding", "sparse_embedding", "rerank", "completion", "chat_completion")
ML_SERVICES = ("elasticsearch", "elser")
# ChunkingSettingsBuilder.DEFAULT_SETTINGS, applied to embedding endpoints given none.
DEFAULT_CHUNKING: JSON = {"strategy": "sentence", "max_chunk_size": 250, "sentence_overlap": 1}
_CONFIG_KEYS = ("service", "service_settings", "task_settings", "chunking_settings")
_SETTING_KEYS = ("model_id", "deployment_id", "num_allocations", "num_threads")
_SETTING_KEYS_ALL = (*_SETTING_KEYS, "adaptive_allocations")


def task_type_of(name: str) -> str:
    """TaskType.fromStringOrStatusException (`any` allowed)."""
    lowered = name.lower()
    if lowered not in (*TASK_TYPES, "any"):
        raise status_exception(400, f"Unknown task_type [{name}]")
    return lowered


def model_task_type(model: Model) -> str | None:
    """ElasticsearchInternalService.inferenceConfigToTaskType."""
    kinds = {
        "text_expansion": "sparse_embedding",
        "text_embedding": "text_embedding",
        "text_similarity": "rerank",
    }
    for kind, task in kinds.items():
        if kind in model.inference_config:
            return task
    return None


def _config_kind(model: Model) -> str:
    return next(iter(model.inference_config), "unknown")


def _java(value: Any) -> str:
    """Java's toString of a parsed JSON value (maps as `{k=v}`, lists as `[a, b]`)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _unknown_settings(extra: JSON, service: str) -> EsError:
    """ServiceUtils.unknownSettingsError."""
    return status_exception(
        400,
        f"Model configuration contains settings [{_java(extra)}] unknown to the [{service}] "
        "service",
    )


# ---- rendering --------------------------------------------------------------------------------


def service_settings(endpoint: InferenceEndpoint, state: ClusterState | None = None) -> JSON:
    """ElasticsearchInternalServiceSettings.toXContent; live allocations when `state` is given.

    GET reports the deployment's current allocations (CreateFromDeploymentIT: an update of the
    deployment shows in the endpoint's `num_allocations`).
    """
    allocations, threads = endpoint.num_allocations, endpoint.num_threads
    dep = state.deployments.get(endpoint.deployment_id) if state is not None else None
    if dep is not None:
        # An adaptive endpoint without a count shows none (its count belongs to the scaler).
        if allocations is not None or endpoint.adaptive_allocations is None:
            allocations = dep.number_of_allocations
        threads = dep.threads_per_allocation
    out: JSON = {}
    if allocations is not None:
        out["num_allocations"] = allocations
    out["num_threads"] = threads
    out["model_id"] = endpoint.model_id
    if not endpoint.created_deployment:
        out["deployment_id"] = endpoint.deployment_id
    if endpoint.adaptive_allocations is not None:
        out["adaptive_allocations"] = adaptive_view(endpoint.adaptive_allocations)
    return out


def endpoint_json(endpoint: InferenceEndpoint, state: ClusterState | None = None) -> JSON:
    """ModelConfigurations.toXContent: empty task_settings are left out of REST responses."""
    out: JSON = {
        "inference_id": endpoint.inference_id,
        "task_type": endpoint.task_type,
        "service": endpoint.service,
        "service_settings": service_settings(endpoint, state),
    }
    if endpoint.task_settings:
        out["task_settings"] = endpoint.task_settings
    if endpoint.chunking_settings is not None:
        out["chunking_settings"] = endpoint.chunking_settings
    return out


# ---- PUT ----------------------------------------------------------------------------------------


def _parse_settings(settings: JSON, service: str, by_deployment: bool) -> tuple[JSON, list[str]]:
    """ElasticsearchInternalServiceSettings.fromRequestMap: values and validation errors."""
    errors: list[str] = []
    values: JSON = {k: settings.get(k) for k in _SETTING_KEYS_ALL}
    for name in ("num_allocations", "num_threads"):
        value = values[name]
        if value is not None and (not isinstance(value, int) or value < 1):
            errors.append(
                f"[service_settings] Invalid value [{value}]. [{name}] must be a positive integer"
            )
    adaptive = values["adaptive_allocations"]
    enabled = isinstance(adaptive, dict) and adaptive.get("enabled") is True
    if not by_deployment:
        if values["num_threads"] is None:
            errors.append("[service_settings] does not contain the required setting [num_threads]")
        if values["num_allocations"] is None and not enabled:
            errors.append(
                "[service_settings] does not contain the required setting [num_allocations]"
            )
        if values["model_id"] is None and service != "elser":
            errors.append("[service_settings] does not contain the required setting [model_id]")
    return values, errors


def _resolve_task(requested: str, model: Model | None, service: str) -> str:
    """The endpoint's task type: the path's, else the one its model implies."""
    implied = model_task_type(model) if model is not None else None
    if requested == "any":
        requested = implied or "sparse_embedding"
    elser_only = service == "elser" and requested != "sparse_embedding"
    if elser_only or requested in ("completion", "chat_completion"):
        # TaskType.unsupportedTaskTypeErrorMsg
        raise status_exception(
            400, f"The [{service}] service does not support task type [{requested}]"
        )
    return requested


def _check_against_deployment(
    dep: Deployment, settings: JSON, task: str, state: ClusterState
) -> None:
    """ElasticsearchInternalService.validateAgainstDeployment (exact texts)."""
    model_id = settings["model_id"]
    if model_id is not None and model_id != dep.model_id:
        raise status_exception(
            400,
            f"Deployment [{dep.deployment_id}] uses model [{dep.model_id}] which does not match "
            f"the model [{model_id}] in the request.",
        )
    model = state.models[dep.model_id]
    implied = model_task_type(model)
    if implied is None:
        raise status_exception(
            400,
            f"Deployed model [{dep.model_id}] has type [{_config_kind(model)}] which does not map "
            "to any supported task types",
        )
    if implied != task:
        raise status_exception(
            400,
            f"Deployed model [{dep.model_id}] with type [{_config_kind(model)}] does not match "
            f"the requested task type [{task}]",
        )


def _ensure_model(state: ClusterState, model_id: str) -> Model:
    """The endpoint's model; an Elastic-provided one is fetched by the server on demand."""
    model = state.models.get(model_id)
    if model is None and model_id in ELASTIC_MODELS:
        # The server downloads it and then deploys; the emulator completes the download at once.
        model = state.add_model(
            model_id,
            inference_config=elastic_model_config(model_id),
            definition_length=elastic_model_bytes(model_id),
        )
    if model is None or (model.definition_status != "complete" and not model.downloading):
        # ElasticsearchInternalModel turns the start's ResourceNotFound (no model, or no
        # definition) into this text; CustomElandModel adds the Eland hint.
        suffix = (
            ""
            if model_id in ELASTIC_MODELS
            else " Custom models need to be loaded into the cluster with Eland before they can be "
            "started."
        )
        raise not_found(
            f"Could not deploy model [{model_id}] as the model cannot be found.{suffix}"
        )
    if model.downloading:
        raise status_exception(
            408,
            "Model download task is currently running. Wait for trained model "
            f"[{model_id}] download task to complete then try again",
        )
    if model.model_type != "pytorch":
        raise status_exception(
            400,
            f"model [{model_id}] of type [{model.model_type}] cannot be deployed. "
            "Only PyTorch models can be deployed",
        )
    return model


def _start_for(state: ClusterState, endpoint: InferenceEndpoint, model: Model) -> None:
    """ElasticsearchInternalModel.getStartTrainedModelDeploymentActionRequest, then start."""
    if endpoint.deployment_id in state.deployments:
        return  # a 409 resource_already_exists from the start counts as started
    validate_start(
        {
            "wait_for": "started",
            "priority": "normal",
            "number_of_allocations": endpoint.num_allocations,
            "threads_per_allocation": endpoint.num_threads,
            "adaptive_allocations": endpoint.adaptive_allocations,
            "queue_capacity": DEFAULT_QUEUE_CAPACITY,
        }
    )
    low = (endpoint.adaptive_allocations or {}).get("min_number_of_allocations")
    state.deployments[endpoint.deployment_id] = Deployment(
        deployment_id=endpoint.deployment_id,
        model_id=model.model_id,
        number_of_allocations=endpoint.num_allocations or low or 1,
        threads_per_allocation=endpoint.num_threads,
        queue_capacity=DEFAULT_QUEUE_CAPACITY,
        cache_size=f"{model.size_bytes}b",
        adaptive_allocations=endpoint.adaptive_allocations,
    )


def _build_endpoint(
    call: Call, inference_id: str, requested_task: str, body: JSON
) -> InferenceEndpoint:
    """Parse the request config into an endpoint (put_endpoint starts a deployment it owns)."""
    state = call.emulator.state
    service = body.get("service")
    if service is None:
        raise status_exception(400, "Model configuration is missing a service")
    if service not in ML_SERVICES:
        raise status_exception(400, f"Unknown service [{service}]")
    settings_map = body.get("service_settings")
    if not isinstance(settings_map, dict):
        raise status_exception(400, "Model configuration is missing [service_settings]")
    extra = {k: v for k, v in body.items() if k not in _CONFIG_KEYS}
    if extra:
        raise _unknown_settings(extra, service)
    unknown = {k: v for k, v in settings_map.items() if k not in _SETTING_KEYS_ALL}
    if unknown:
        raise _unknown_settings(unknown, service)
    if requested_task != "any":
        _resolve_task(requested_task, None, service)  # the service checks the task type first
    by_deployment = settings_map.get("deployment_id") is not None
    settings, errors = _parse_settings(settings_map, service, by_deployment)
    if errors:
        raise validation_exception(*errors)
    if by_deployment:
        dep = state.deployments.get(settings["deployment_id"])
        if dep is None:
            raise status_exception(404, f"Cannot find deployment [{settings['deployment_id']}]")
        task = _resolve_task(requested_task, state.models.get(dep.model_id), service)
        _check_against_deployment(dep, settings, task, state)
        return InferenceEndpoint(
            inference_id,
            task,
            dep.model_id,
            service=service,
            deployment_id=dep.deployment_id,
            created_deployment=False,
            num_allocations=dep.number_of_allocations,
            num_threads=dep.threads_per_allocation,
            adaptive_allocations=dep.adaptive_allocations,
            chunking_settings=_chunking(body, task),
        )
    model_id = settings["model_id"] or ".elser_model_2"
    task = _resolve_task(requested_task, state.models.get(model_id), service)
    return InferenceEndpoint(
        inference_id,
        task,
        model_id,
        service=service,
        num_allocations=settings["num_allocations"],
        num_threads=settings["num_threads"],
        adaptive_allocations=settings["adaptive_allocations"],
        chunking_settings=_chunking(body, task),
        task_settings=dict(body.get("task_settings") or {}),
    )


def _chunking(body: JSON, task: str) -> JSON | None:
    """Embedding endpoints always carry chunking settings (the default when none given)."""
    if task not in ("sparse_embedding", "text_embedding"):
        return None
    given = body.get("chunking_settings")
    return dict(given) if isinstance(given, dict) and given else dict(DEFAULT_CHUNKING)


async def put_endpoint(call: Call) -> Reply:
    """PUT _inference/[<task_type>/]<inference_id>."""
    inference_id = call.path_params["inference_id"]
    requested = task_type_of(call.path_params.get("task_type", "any"))
    call.param("timeout")
    call.authorize(ACTION_PUT)
    state = call.emulator.state
    body = call.body if isinstance(call.body, dict) else {}
    if inference_id in state.models:
        raise status_exception(
            400,
            f"Inference endpoint IDs must be unique. Requested inference endpoint ID "
            f"[{inference_id}] matches existing trained model ID(s) but must not.",
        )
    endpoint = _build_endpoint(call, inference_id, requested, body)
    if inference_id in state.inference_endpoints:
        raise EsError(
            400,
            "resource_already_exists_exception",
            f"Inference endpoint [{inference_id}] already exists",
        )
    if endpoint.created_deployment:
        _start_for(state, endpoint, _ensure_model(state, endpoint.model_id))
    state.inference_endpoints[inference_id] = endpoint
    return 200, endpoint_json(endpoint)


# ---- GET / DELETE ---------------------------------------------------------------------------


def _lookup(call: Call, inference_id: str, task: str) -> InferenceEndpoint:
    """One endpoint by id, with the real 404 and task type mismatch texts."""
    endpoint = call.emulator.state.inference_endpoints.get(inference_id)
    if endpoint is None:
        raise not_found(f"Inference endpoint not found [{inference_id}]")
    if task not in ("any", endpoint.task_type):
        raise status_exception(
            400,
            f"Requested task type [{task}] does not match the inference endpoint's task type "
            f"[{endpoint.task_type}]",
        )
    return endpoint


async def get_endpoints(call: Call) -> Reply:
    """GET _inference, _inference/_all, _inference/[<task_type>/]<inference_id>."""
    inference_id = call.path_params.get("inference_id", "_all")
    task = task_type_of(call.path_params.get("task_type", "any"))
    call.authorize(ACTION_GET)
    state = call.emulator.state
    if inference_id in ("_all", "*"):
        found = [
            e for _, e in sorted(state.inference_endpoints.items()) if task in ("any", e.task_type)
        ]
    else:
        found = [_lookup(call, inference_id, task)]
    return 200, {"endpoints": [endpoint_json(e, state) for e in found]}


def _blockers(call: Call, inference_id: str) -> tuple[list[str], list[str]]:
    """Pipelines and indices (semantic_text fields) that reference the endpoint."""
    pipelines = call.emulator.state.pipelines_referencing_id(inference_id)
    indexes = mappings.indices_using_endpoint(call.emulator.documents, inference_id)
    return pipelines, indexes


def in_use_message(inference_id: str, pipelines: list[str], indexes: list[str]) -> str:
    """TransportDeleteInferenceEndpointAction.buildErrorString (the leading space is real)."""
    text = ""
    if pipelines:
        text += (
            f"Inference endpoint {inference_id} is referenced by pipelines: "
            f"[{', '.join(pipelines)}]. Ensure that no pipelines are using this inference "
            "endpoint, or use force to ignore this warning and delete the inference endpoint."
        )
    if indexes:
        text += (
            f" Inference endpoint {inference_id} is being used in the mapping for indexes: "
            f"[{', '.join(indexes)}]. Ensure that no index mappings are using this inference "
            "endpoint, or use force to ignore this warning and delete the inference endpoint."
        )
    return text


async def delete_endpoint(call: Call) -> Reply:
    """DELETE _inference/[<task_type>/]<inference_id> (`force`, `dry_run`)."""
    inference_id = call.path_params["inference_id"]
    task = task_type_of(call.path_params.get("task_type", "any"))
    force = call.bool_param("force", False)
    dry_run = call.bool_param("dry_run", False)
    call.authorize(ACTION_DELETE)
    state = call.emulator.state
    endpoint = _lookup(call, inference_id, task)
    pipelines, indexes = _blockers(call, inference_id)
    if dry_run:
        return 200, {
            "acknowledged": False,
            "pipelines": pipelines,
            "indexes": indexes,
            "error_message": in_use_message(inference_id, pipelines, indexes),
        }
    if not force and (pipelines or indexes):
        raise status_exception(409, in_use_message(inference_id, pipelines, indexes))
    # ElasticsearchInternalService.stop: only a deployment the endpoint started is stopped.
    if endpoint.created_deployment and endpoint.deployment_id in state.deployments:
        await call.emulator.lifecycle.stop(endpoint.deployment_id, False)
    del state.inference_endpoints[inference_id]
    return 200, {"acknowledged": True, "pipelines": [], "indexes": []}


def build_routes() -> list[Route]:
    """The `_inference` routes (real paths and methods)."""
    r = Route
    one = "/_inference/{inference_id}"
    typed = "/_inference/{task_type}/{inference_id}"
    return [
        r("GET", "/_inference", "inference.get", get_endpoints),
        r("GET", "/_inference/_all", "inference.get", get_endpoints),
        r("GET", one, "inference.get", get_endpoints),
        r("GET", typed, "inference.get", get_endpoints),
        r("PUT", one, "inference.put", put_endpoint, body=True),
        r("PUT", typed, "inference.put", put_endpoint, body=True),
        r("DELETE", one, "inference.delete", delete_endpoint),
        r("DELETE", typed, "inference.delete", delete_endpoint),
    ]
