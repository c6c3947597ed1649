"""`PUT _inference/[<task_type>/]<inference_id>/_update` for the ML-node services.

After ES RestUpdateInferenceModelAction (only the two-segment path names an endpoint) and
TransportUpdateInferenceModelAction (order: task type resolution, endpoint lookup, default
endpoint, task type match, settings merge, "nothing changes", the deployment behind the
endpoint, who created it, then the trained-model update with the endpoint's settings) and
ElasticsearchInternalServiceSettings.Update (exactly one of `num_allocations` and
`adaptive_allocations`; the one given replaces the other). What is verified and what is
inferred: docs/elasticsearch-inference.md section 5.
"""

from __future__ import annotations

from typing import Any

from bot.emulator.errors import EsError, not_found, status_exception, validation_exception
from bot.emulator.inference import ML_SERVICES, endpoint_json, task_type_of
from bot.emulator.routing import Call, Reply, Route
from bot.emulator.scaling import RESET, Adaptive, parse_adaptive, update_deployment
from bot.emulator.state import ClusterState, InferenceEndpoint

JSON = dict[str, Any]
ACTION_UPDATE = "cluster:admin/xpack/inference/update"
_UPDATABLE = ("num_allocations", "adaptive_allocations")


def _resolve_task(url_task: str, body: JSON) -> str:
    """ServiceUtils.resolveTaskType: the URL's task type, else the body's `task_type`."""
    body_task = body.get("task_type")
    if body_task is None:
        if url_task == "any":
            raise status_exception(400, "model is missing required setting [task_type]")
        return url_task
    parsed = task_type_of(str(body_task))
    if parsed == "any":
        raise status_exception(400, "task_type [any] is not valid type for inference")
    if url_task not in ("any", parsed):
        raise status_exception(
            400,
            "Cannot resolve conflicting task_type parameter in the request URL "
            f"[{url_task}] and the request body [{parsed}]",
        )
    return parsed


def _parse_error(reason: str, cause: JSON | None = None) -> EsError:
    """The strict update parser's failure (location prefix not emulated: inferred shape)."""
    return EsError(400, "x_content_parse_exception", reason, caused_by=cause)


def _parse_settings(call: Call, settings: Any) -> tuple[int | None, Adaptive | None]:
    """ElasticsearchInternalServiceSettings.Update: the new allocations or adaptive settings."""
    if not isinstance(settings, dict):
        raise _parse_error("[service_settings] failed to parse: expected an object")
    for name in settings:
        if name == "num_threads":
            raise _parse_error(
                "[service_settings] failed to parse field [num_threads]",
                {"type": "parse_exception", "reason": "[num_threads] cannot be updated"},
            )
        if name not in _UPDATABLE:
            raise _parse_error(f"[service_settings] unknown field [{name}]")
    errors: list[str] = []
    has_count, has_adaptive = "num_allocations" in settings, "adaptive_allocations" in settings
    if not has_count and not has_adaptive:
        errors.append(
            "[service_settings] does not contain one of the required settings "
            "[num_allocations, adaptive_allocations]"
        )
    if has_count and has_adaptive:
        errors.append("[num_allocations] cannot be set if [adaptive_allocations] is set")
    if errors:
        raise validation_exception(*errors)
    count = settings.get("num_allocations")
    if has_count and count is not None:
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise validation_exception(
                f"[service_settings] Invalid value [{count}]. [num_allocations] must be a "
                "positive integer"
            )
        return count, None
    if has_adaptive and settings["adaptive_allocations"] is not None:
        raw = settings["adaptive_allocations"]
        adaptive = parse_adaptive(call.raw_body, raw, "service_settings")
        problems = adaptive.errors()
        if problems:
            raise validation_exception(*problems)
        return None, adaptive
    return None, None


def _check_deployment(state: ClusterState, endpoint: InferenceEndpoint) -> None:
    """updateInClusterEndpoint: the deployment must exist and be this endpoint's own."""
    inference_id, deployment_id = endpoint.inference_id, endpoint.deployment_id
    if deployment_id not in state.deployments:
        raise not_found(
            f"Requested model ID [{inference_id}] does not have a matching trained model and "
            "thus cannot be updated."
        )
    if inference_id == deployment_id:
        return
    creator = state.inference_endpoints.get(deployment_id)
    if creator is not None:
        raise status_exception(
            409,
            f"Cannot update inference endpoint [{inference_id}] for model deployment "
            f"[{deployment_id}] as it was created by another inference endpoint. The model can "
            f"only be updated using inference endpoint id [{creator.inference_id}].",
        )
    raise status_exception(
        409,
        f"Cannot update inference endpoint [{inference_id}] using model deployment "
        f"[{deployment_id}]. The model deployment must be updated through the trained models API.",
    )


async def update_endpoint(call: Call) -> Reply:
    """PUT _inference/[<task_type>/]<inference_id>/_update."""
    if "task_type" not in call.path_params:
        # RestUpdateInferenceModelAction: the one-segment route never sets the inference id.
        raise status_exception(400, "Inference ID must be provided in the path")
    inference_id = call.path_params["inference_id"]
    url_task = task_type_of(call.path_params["task_type"])
    call.param("timeout")
    call.param("master_timeout")
    call.authorize(ACTION_UPDATE)
    state = call.emulator.state
    body = call.body if isinstance(call.body, dict) else {}
    task = _resolve_task(url_task, body)
    endpoint = state.inference_endpoints.get(inference_id)
    if endpoint is None or endpoint.service not in ML_SERVICES:
        raise not_found(
            f"The inference endpoint [{inference_id}] does not exist and cannot be updated"
        )
    if inference_id.startswith("."):
        raise status_exception(400, f"Default endpoint [{inference_id}] cannot be updated")
    if task != endpoint.task_type:
        raise status_exception(400, "Task type must match the task type of the existing endpoint")
    if "service_settings" not in body:
        return 200, endpoint_json(endpoint, state)
    count, adaptive = _parse_settings(call, body["service_settings"])
    new_adaptive = None if adaptive is None else adaptive.stored()
    if (count, new_adaptive) == (endpoint.num_allocations, endpoint.adaptive_allocations):
        return 200, endpoint_json(endpoint, state)  # the merged model equals the existing one
    _check_deployment(state, endpoint)
    dep = state.deployments[endpoint.deployment_id]
    # The endpoint's settings become the deployment's: a count replaces adaptive allocations,
    # adaptive settings leave the count to the scaler (inferred from Source.INFERENCE_API).
    reset = RESET if dep.adaptive_allocations is not None else None
    update_deployment(
        call,
        endpoint.deployment_id,
        count,
        adaptive if adaptive is not None else (reset if count is not None else None),
        internal=True,
    )
    endpoint.num_allocations, endpoint.adaptive_allocations = count, new_adaptive
    return 200, endpoint_json(endpoint, state)


def build_routes() -> list[Route]:
    """The `_update` routes (a literal `_update` wins over `{task_type}/{inference_id}`)."""
    return [
        Route(
            "PUT", "/_inference/{inference_id}/_update", "inference.update", update_endpoint, True
        ),
        Route(
            "PUT",
            "/_inference/{task_type}/{inference_id}/_update",
            "inference.update",
            update_endpoint,
            True,
        ),
    ]
