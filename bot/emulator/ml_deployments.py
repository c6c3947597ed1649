"""Deployment APIs: start, stop and update trained model deployments, with ES's rules and texts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from bot.emulator import privileges as p
from bot.emulator import xcontent
from bot.emulator.errors import (
    EsError,
    illegal_argument,
    missing_deployment,
    missing_model,
    not_found,
    status_exception,
    validation_failed,
)
from bot.emulator.routing import Call, Reply
from bot.emulator.state import NODE_ID, ClusterState, Deployment, Model

JSON = dict[str, Any]
DEFAULT_QUEUE_CAPACITY = 10_000  # StartTrainedModelDeploymentAction.DEFAULT_QUEUE_CAPACITY (8.12+)
MAX_QUEUE_CAPACITY = 100_000
MAX_THREADS = 32
WAIT_STATES = ("started", "starting", "fully_allocated")
# Unverified tail of the inference-endpoint stop refusals (the prefixes are verified).
STOP_REFUSAL_TAIL = "; use force to stop the deployment"
_BYTE_UNITS = {
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "p": 1024**5,
    "pb": 1024**5,
}
_SUFFIX = {"k": "kb", "m": "mb", "g": "gb", "t": "tb", "p": "pb"}
_SIZE = re.compile(r"^\s*(-?\d+)\s*([a-zA-Z]*)\s*$")

START_FIELDS: xcontent.FieldKinds = {
    "model_id": "str",
    "deployment_id": "str",
    "timeout": "str",
    "wait_for": "str",
    "threads_per_allocation": "int",
    "inference_threads": "int",
    "number_of_allocations": "int",
    "model_threads": "int",
    "queue_capacity": "int",
    "cache_size": "value",
    "priority": "str",
    "adaptive_allocations": "object_or_null",
}
STOP_FIELDS: xcontent.FieldKinds = {
    "model_id": "str",
    "allow_no_match": "bool",
    "force": "bool",
    "finish_pending_work": "bool",
}


def parse_byte_size(value: str, setting: str) -> str:
    """ByteSizeValue.parseBytesSizeValue then getStringRep ('0', '10kb', '1630b')."""
    match = _SIZE.match(value)
    unit = match.group(2).lower() if match else ""
    if match and (unit in _BYTE_UNITS or (unit == "" and match.group(1) in ("0", "-1"))):
        number = int(match.group(1))
        if number <= 0:
            return str(number)
        return f"{number}{_SUFFIX.get(unit, unit)}"
    raise EsError(
        400,
        "parse_exception",
        f"failed to parse setting [{setting}] with value [{value}] as a size in bytes: "
        "unit is missing or unrecognized",
    )


def _parse_start(call: Call) -> JSON:
    """Read start parameters from the body (if any) merged with the query, as ES does."""
    model_id = call.path_params["model_id"]
    deployment_id = call.param("deployment_id") or model_id
    req: JSON = {
        "timeout": "30s",
        "wait_for": "started",
        "threads_per_allocation": 1,
        "number_of_allocations": None,
        "queue_capacity": DEFAULT_QUEUE_CAPACITY,
        "cache_size": None,
        "priority": "normal",
        "adaptive_allocations": None,
    }
    if call.has_body:
        body = xcontent.parse_object(call.raw_body, call.body, p.ACTION_ML_START, START_FIELDS)
        if "inference_threads" in body:
            body.setdefault("threads_per_allocation", body.pop("inference_threads"))
        if "model_threads" in body:
            body.setdefault("number_of_allocations", body.pop("model_threads"))
        if body.get("cache_size") is not None:
            body["cache_size"] = parse_byte_size(body["cache_size"], "cache_size")
        if "model_id" in body and body["model_id"] != model_id:
            raise status_exception(
                400,
                f"Inconsistent model_id; '{body['model_id']}' specified in the body differs from "
                f"'{model_id}' specified as a URL argument",
            )
        body.pop("deployment_id", None)  # parseRequest overwrites it with the URL/default value
        req.update({k: v for k, v in body.items() if k != "model_id"})
        if "priority" in body:
            req["priority"] = str(body["priority"]).lower()
    # The query overrides the body, parameter by parameter (RestStartTrainedModelDeploymentAction).
    if call.has_param("timeout"):
        req["timeout"] = call.param("timeout")
    req["wait_for"] = call.param("wait_for", req["wait_for"])
    for name, legacy in (
        ("number_of_allocations", "model_threads"),
        ("threads_per_allocation", "inference_threads"),
    ):
        raw = call.int_param(name, None)
        if raw is None:
            raw = call.int_param(legacy, None)
        if raw is not None:
            req[name] = raw
    req["queue_capacity"] = call.int_param("queue_capacity", req["queue_capacity"])
    if call.has_param("cache_size"):
        req["cache_size"] = parse_byte_size(call.param("cache_size") or "", "cache_size")
    req["priority"] = (call.param("priority") or req["priority"]).lower()
    req["model_id"] = model_id
    req["deployment_id"] = deployment_id
    return req


def validate_start(req: JSON) -> None:
    """StartTrainedModelDeploymentAction.Request.validate (also for inference endpoints,
    whose service sends the same start request)."""
    errors: list[str] = []
    if req["wait_for"] not in WAIT_STATES:
        raise illegal_argument(
            "No enum constant org.elasticsearch.xpack.core.ml.inference.assignment."
            f"AllocationStatus.State.{str(req['wait_for']).upper()}"
        )
    if req["priority"] not in ("normal", "low"):
        raise illegal_argument(f"invalid priority [{req['priority']}]")
    allocations = req["number_of_allocations"]
    adaptive = req["adaptive_allocations"]
    threads = req["threads_per_allocation"]
    if allocations is not None:
        if allocations < 1:
            errors.append("[number_of_allocations] must be a positive integer")
        if adaptive and adaptive.get("enabled") is True:
            errors.append(
                "[number_of_allocations] cannot be set if adaptive allocations is enabled"
            )
    if threads < 1:
        errors.append("[threads_per_allocation] must be a positive integer")
    if adaptive:
        low, high = (
            adaptive.get("min_number_of_allocations"),
            adaptive.get("max_number_of_allocations"),
        )
        if low is not None and low < 0:
            errors.append("[min_number_of_allocations] must be a non-negative integer")
        if high is not None and high < 1:
            errors.append("[max_number_of_allocations] must be a positive integer")
        if low is not None and high is not None and low > high:
            errors.append(
                "[min_number_of_allocations] must not be larger than [max_number_of_allocations]"
            )
    if threads > MAX_THREADS or threads < 1 or threads & (threads - 1):
        errors.append(
            f"[threads_per_allocation] must be a power of 2 less than or equal to {MAX_THREADS}"
        )
    if req["queue_capacity"] < 1:
        errors.append("[queue_capacity] must be a positive integer")
    if req["queue_capacity"] > MAX_QUEUE_CAPACITY:
        errors.append(f"[queue_capacity] must be less than {MAX_QUEUE_CAPACITY}")
    if req["priority"] == "low":
        if allocations is not None and allocations > 1:
            errors.append("[number_of_allocations] must be 1 when [priority] is low")
        if threads > 1:
            errors.append("[threads_per_allocation] must be 1 when [priority] is low")
    if errors:
        raise validation_failed(*errors)


def _resolve_single_model(call: Call, model_id: str) -> Model:
    """GetTrainedModels for the start request: exactly one pytorch model."""
    state = call.emulator.state
    ids, unmatched = state.expand_model_ids(model_id, True)
    if unmatched or not ids:
        raise missing_model(model_id)
    if len(ids) > 1:
        raise status_exception(
            400,
            f"cannot deploy more than one model at the same time; [{model_id}] matches models "
            f"[{', '.join(ids)}]",
        )
    model = state.models[ids[0]]
    if model.model_type != "pytorch":
        raise status_exception(
            400,
            f"model [{model.model_id}] of type [{model.model_type}] cannot be deployed. "
            "Only PyTorch models can be deployed",
        )
    return model


def assignment_json(dep: Deployment, model: Model) -> JSON:
    """TrainedModelAssignment.toXContent, the `assignment` of a start response."""
    task: JSON = {
        "model_id": dep.model_id,
        "deployment_id": dep.deployment_id,
        "model_bytes": model.size_bytes,
        "threads_per_allocation": dep.threads_per_allocation,
        "number_of_allocations": dep.number_of_allocations,
        "queue_capacity": dep.queue_capacity,
    }
    if dep.cache_size is not None:
        task["cache_size"] = dep.cache_size
    task.update(
        {
            "priority": dep.priority,
            "per_deployment_memory_bytes": 0,
            "per_allocation_memory_bytes": 0,
        }
    )
    started = datetime.fromtimestamp(dep.start_time / 1000, UTC)
    result: JSON = {
        "task_parameters": task,
        "routing_table": {
            NODE_ID: {
                "current_allocations": dep.placed,
                "target_allocations": dep.number_of_allocations,
                "routing_state": dep.routing_state,
                "reason": dep.routing_reason or "",
            }
        },
        "assignment_state": dep.state,
    }
    if dep.reason:
        result["reason"] = dep.reason
    result["start_time"] = started.isoformat(timespec="microseconds").replace("+00:00", "Z")
    result["max_assigned_allocations"] = max(dep.placed, dep.number_of_allocations)
    if dep.adaptive_allocations is not None:
        result["adaptive_allocations"] = adaptive_view(dep.adaptive_allocations)
    return result


def adaptive_view(stored: JSON) -> JSON:
    """AdaptiveAllocationsSettings.toXContent: `enabled` always, bounds when set."""
    out: JSON = {"enabled": bool(stored.get("enabled"))}
    for key in ("min_number_of_allocations", "max_number_of_allocations"):
        if stored.get(key) is not None:
            out[key] = stored[key]
    return out


async def start(call: Call) -> Reply:
    """POST _ml/trained_models/<model_id>/deployment/_start."""
    req = _parse_start(call)
    call.check_params()
    validate_start(req)
    call.authorize(p.ACTION_ML_START)
    state = call.emulator.state
    deployment_id: str = req["deployment_id"]
    state.check_deployment_id_free(deployment_id)
    model = _resolve_single_model(call, req["model_id"])
    if req["model_id"] != deployment_id:
        other, _ = state.expand_model_ids(deployment_id, True)
        if other:
            raise status_exception(
                400,
                f"Deployment id [{deployment_id}] is the same as an another model which is not "
                "the model being deployed. Deployment id can be the same as the model being "
                "deployed but cannot match a different model",
            )
    if model.downloading:
        # Text as Elastic users report it for `.elser_model_2*`; status 408 from the same
        # reports, the error type is inferred.
        raise status_exception(
            408,
            "Model download task is currently running. Wait for trained model "
            f"[{model.model_id}] download task to complete then try again",
        )
    status = model.definition_status
    if status == "missing":
        raise not_found(f"Could not find trained model definition [{model.model_id}]")
    if status == "truncated":
        raise status_exception(
            400,
            "Model definition truncated. Unable to deserialize trained model definition "
            f"[{model.model_id}]",
        )
    adaptive = req["adaptive_allocations"]
    allocations = req["number_of_allocations"]
    if allocations is None:
        low = (adaptive or {}).get("min_number_of_allocations")
        allocations = low if low else 1
    dep = Deployment(
        deployment_id=deployment_id,
        model_id=model.model_id,
        number_of_allocations=allocations,
        threads_per_allocation=req["threads_per_allocation"],
        priority=req["priority"],
        queue_capacity=req["queue_capacity"],
        cache_size=req["cache_size"] or f"{model.size_bytes}b",
        adaptive_allocations=adaptive,
    )
    state.deployments[deployment_id] = dep
    return 200, {"assignment": assignment_json(dep, model)}


def _parse_stop(call: Call) -> tuple[bool, bool, bool]:
    """Body if there is one (query then unconsumed), else the query; ES's REST handler rules."""
    deployment_id = call.path_params["model_id"]
    if call.has_body:
        body = xcontent.parse_object(call.raw_body, call.body, p.ACTION_ML_STOP, STOP_FIELDS)
        if "model_id" in body and body["model_id"] != deployment_id:
            raise illegal_argument(
                f"Inconsistent model_id; '{body['model_id']}' specified in the body differs from "
                f"'{deployment_id}' specified as a URL argument"
            )
        return (
            body.get("allow_no_match", True),
            body.get("force", False),
            body.get("finish_pending_work", False),
        )
    return (
        call.bool_param("allow_no_match", True),
        call.bool_param("force", False),
        call.bool_param("finish_pending_work", False),
    )


async def stop(call: Call) -> Reply:
    """POST _ml/trained_models/<deployment_id>/deployment/_stop (exact deployment id lookup)."""
    deployment_id = call.path_params["model_id"]
    allow_no_match, force, finish_pending_work = _parse_stop(call)
    call.authorize(p.ACTION_ML_STOP)
    state = call.emulator.state
    if deployment_id not in state.deployments:
        if allow_no_match:
            return 200, {"stopped": True}
        raise missing_deployment(deployment_id)
    if not force:
        referenced = state.model_ids_referenced_by_pipelines()
        if deployment_id in referenced:
            raise status_exception(
                409,
                f"Cannot stop deployment [{deployment_id}] as it is referenced by ingest "
                "processors; use force to stop the deployment",
            )
        for alias in state.aliases_of(deployment_id):
            if alias in referenced:
                raise status_exception(
                    409,
                    f"Cannot stop deployment [{deployment_id}] as it has a model_alias [{alias}] "
                    "that is still referenced by ingest processors; use force to stop the "
                    "deployment",
                )
        _refuse_inference_owned(state, deployment_id)
    await call.emulator.lifecycle.stop(deployment_id, finish_pending_work)
    return 200, {"stopped": True}


def _refuse_inference_owned(state: ClusterState, deployment_id: str) -> None:
    """ES PR #129325: a deployment an inference endpoint created or uses needs `force`.

    The message prefixes are verified (ES inference QA CustomElandModelIT and
    CreateFromDeploymentIT); the tail after the brackets and the 409 are inferred from the
    sibling ingest-processor refusal in the same action (see docs/elasticsearch-inference.md).
    """
    for endpoint in state.endpoints_on_deployment(deployment_id):
        if endpoint.inference_id == deployment_id:
            raise status_exception(
                409,
                f"Cannot stop deployment [{deployment_id}] as it was created by inference "
                f"endpoint [{endpoint.inference_id}]{STOP_REFUSAL_TAIL}",
            )
    for endpoint in state.endpoints_on_deployment(deployment_id):
        raise status_exception(
            409,
            f"Cannot stop deployment [{deployment_id}] as it is used by inference endpoint "
            f"[{endpoint.inference_id}]{STOP_REFUSAL_TAIL}",
        )
