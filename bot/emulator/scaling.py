"""Scaling a deployment: `POST _ml/trained_models/<deployment_id>/deployment/_update` and the
cluster-side rules that the inference endpoint update shares.

After ES UpdateTrainedModelDeploymentAction.Request (parse, validate), AdaptiveAllocationsSettings
(parse, merge, validate), TransportUpdateTrainedModelDeploymentAction (the inference-endpoint
refusal) and TrainedModelAssignmentClusterService.updateDeployment (order of checks: 404, merged
settings, nothing to change, not started, not enough resources). Texts are verified unless a
comment says otherwise; the sources are listed in docs/elasticsearch-inference.md section 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator import xcontent
from bot.emulator.errors import (
    EsError,
    missing_deployment,
    status_exception,
    validation_exception,
    validation_failed,
)
from bot.emulator.ml_deployments import assignment_json
from bot.emulator.placement import used_processors
from bot.emulator.routing import Call, Reply
from bot.emulator.state import ClusterState, Deployment

JSON = dict[str, Any]
ACTION_ML_UPDATE = "cluster:admin/xpack/ml/trained_models/deployment/update"
UPDATE_FIELDS: xcontent.FieldKinds = {
    "model_id": "str",
    "number_of_allocations": "int",
    "adaptive_allocations": "object_or_null",
    "timeout": "str",
}
ADAPTIVE_PARSER = "autoscaling_settings"
ADAPTIVE_FIELDS: xcontent.FieldKinds = {
    "enabled": "bool",
    "min_number_of_allocations": "int_or_null",
    "max_number_of_allocations": "int_or_null",
}
NOT_ENOUGH_RESOURCES = (
    "Could not update deployment because there are not enough resources to provide all "
    "requested allocations"
)
NOT_STARTED = "cannot update deployment that is not in [started] state"
ADAPTIVE_CONFLICT = "[number_of_allocations] cannot be set if adaptive allocations is enabled"


@dataclass(frozen=True)
class Adaptive:
    """AdaptiveAllocationsSettings: None = not given; -1 (JSON null) clears a bound on merge."""

    enabled: bool | None = None
    low: int | None = None
    high: int | None = None

    @classmethod
    def from_json(cls, data: JSON) -> Adaptive:
        """Stored settings (or a parsed request object) as the value type."""
        return cls(
            data.get("enabled"),
            data.get("min_number_of_allocations"),
            data.get("max_number_of_allocations"),
        )

    def stored(self) -> JSON:
        """What the assignment keeps: only the fields that are set (equality needs them)."""
        out: JSON = {}
        if self.enabled is not None:
            out["enabled"] = self.enabled
        if self.low is not None:
            out["min_number_of_allocations"] = self.low
        if self.high is not None:
            out["max_number_of_allocations"] = self.high
        return out

    def merge(self, updates: Adaptive) -> Adaptive:
        """AdaptiveAllocationsSettings.merge: given fields win, -1 clears a bound."""

        def pick(old: int | None, new: int | None) -> int | None:
            if new is None:
                return old
            return None if new == -1 else new

        enabled = self.enabled if updates.enabled is None else updates.enabled
        return Adaptive(enabled, pick(self.low, updates.low), pick(self.high, updates.high))

    def errors(self) -> list[str]:
        """AdaptiveAllocationsSettings.validate."""
        found: list[str] = []
        low = self.low if self.low not in (None, -1) else None
        high = self.high if self.high not in (None, -1) else None
        if low is not None and low < 0:
            found.append("[min_number_of_allocations] must be a non-negative integer or null")
        if high is not None and high < 1:
            found.append("[max_number_of_allocations] must be a positive integer or null")
        if low is not None and high is not None and low > high:
            found.append(
                "[min_number_of_allocations] must not be larger than [max_number_of_allocations]"
            )
        return found


# `"adaptive_allocations": null` in a request: remove the settings (RESET_PLACEHOLDER).
RESET = Adaptive(False, -1, -1)


def parse_adaptive(raw: str, value: Any, outer: str) -> Adaptive:
    """The `adaptive_allocations` object of a request (null means reset)."""
    if value is None:
        return RESET
    try:
        parsed = xcontent.parse_object(raw, value, ADAPTIVE_PARSER, ADAPTIVE_FIELDS)
    except EsError as inner:
        # ObjectParser wraps a failing sub-object: the outer error names the field and the
        # inner one is the cause (the root cause of a non-ES exception is the outer one).
        raise EsError(
            400,
            "x_content_parse_exception",
            f"{xcontent.location(raw, 'adaptive_allocations')} [{outer}] failed to parse field "
            "[adaptive_allocations]",
            caused_by={"type": inner.type, "reason": inner.reason},
        ) from None
    low = parsed.get("min_number_of_allocations", 0)
    high = parsed.get("max_number_of_allocations", 0)
    return Adaptive(
        parsed.get("enabled"),
        (-1 if low is None else low) if "min_number_of_allocations" in parsed else None,
        (-1 if high is None else high) if "max_number_of_allocations" in parsed else None,
    )


def request_errors(allocations: int | None, adaptive: Adaptive | None) -> list[str]:
    """UpdateTrainedModelDeploymentAction.Request.validate (user requests)."""
    found: list[str] = []
    if allocations is not None:
        if allocations < 1:
            found.append("[number_of_allocations] must be a positive integer")
        if adaptive is not None and adaptive is not RESET and adaptive.enabled is True:
            found.append(ADAPTIVE_CONFLICT)
    if adaptive is not None and adaptive is not RESET:
        found.extend(adaptive.errors())
    return found


def _merged(existing: JSON | None, updates: Adaptive | None) -> Adaptive | None:
    """TrainedModelAssignmentClusterService.getAdaptiveAllocationsSettings."""
    if updates is None:
        return None if existing is None else Adaptive.from_json(existing)
    if updates is RESET:
        return None
    if existing is None:
        return updates
    return Adaptive.from_json(existing).merge(updates)


def _has_updates(dep: Deployment, allocations: int | None, updates: Adaptive | None) -> bool:
    """TrainedModelAssignmentClusterService.hasUpdates (compares the request, not the merge)."""
    if allocations is not None and allocations != dep.number_of_allocations:
        return True
    if updates is None:
        return False
    current = (
        None if dep.adaptive_allocations is None else Adaptive.from_json(dep.adaptive_allocations)
    )
    return updates != current


def _fits(state: ClusterState, dep: Deployment, allocations: int) -> bool:
    """Whether the node's processors hold `allocations` of this deployment."""
    if dep.priority != "normal":
        return True
    need = allocations * dep.threads_per_allocation
    return used_processors(state, dep.deployment_id) + need <= state.ml_processors


def _scaled_target(allocations: int, adaptive: Adaptive | None) -> int:
    """What the adaptive allocations scaler moves the target to at once (inferred: the scaler
    keeps the count within [min, max]; scaling down to a min of 0 waits for idleness)."""
    if adaptive is None or adaptive.enabled is not True:
        return allocations
    if adaptive.low not in (None, -1) and allocations < adaptive.low:
        return adaptive.low
    if adaptive.high not in (None, -1) and allocations > adaptive.high:
        return adaptive.high
    return allocations


def update_deployment(
    call: Call,
    deployment_id: str,
    allocations: int | None,
    updates: Adaptive | None,
    *,
    internal: bool = False,
) -> Deployment:
    """TrainedModelAssignmentClusterService.updateDeployment; `internal` is the inference API.

    Raises the real errors; on success the target is set and placement is asked to start the
    new allocations (they show in `_stats` over time, see placement.py).
    """
    state = call.emulator.state
    dep = state.deployments.get(deployment_id)
    if dep is None:
        raise missing_deployment(deployment_id)
    merged = _merged(dep.adaptive_allocations, updates)
    if merged is not None:
        if not internal and merged.enabled is True and allocations is not None:
            raise validation_exception(ADAPTIVE_CONFLICT)
        if merged.errors():
            raise validation_failed(*merged.errors())
    if not _has_updates(dep, allocations, updates):
        return dep
    if dep.state != "started":
        raise status_exception(409, NOT_STARTED)
    # Only an explicit larger count goes through increaseNumberOfAllocations and its 429; a
    # count the adaptive scaler picks waits for capacity like any pending allocation.
    growing = allocations is not None and allocations > dep.number_of_allocations
    if growing and not state.ml_autoscaling and not _fits(state, dep, allocations or 0):
        raise status_exception(429, NOT_ENOUGH_RESOURCES)
    target = _scaled_target(
        dep.number_of_allocations if allocations is None else allocations, merged
    )
    dep.adaptive_allocations = None if merged is None else merged.stored()
    if target < dep.number_of_allocations:
        dep.reason = None  # decreaseNumberOfAllocations clears the assignment reason
    dep.number_of_allocations = target
    call.emulator.placement.request(dep)
    return dep


def _refuse_endpoint_owned(state: ClusterState, deployment_id: str) -> None:
    """TransportUpdateTrainedModelDeploymentAction (ES PR #130940): an endpoint's own deployment
    is changed through the inference API."""
    owner = state.inference_endpoints.get(deployment_id)
    if owner is not None and owner.service in ("elasticsearch", "elser"):
        raise status_exception(
            409,
            f"Cannot update deployment [{deployment_id}] as it was created by inference endpoint "
            f"[{deployment_id}]. This model deployment must be updated through the inference API.",
        )


async def update(call: Call) -> Reply:
    """POST _ml/trained_models/<deployment_id>/deployment/_update."""
    deployment_id = call.path_params["model_id"]
    allocations = call.int_param("number_of_allocations", None)
    call.param("timeout")
    call.param("master_timeout")
    updates: Adaptive | None = None
    if call.has_body:
        body = xcontent.parse_object(call.raw_body, call.body, ACTION_ML_UPDATE, UPDATE_FIELDS)
        if "model_id" in body and body["model_id"] != deployment_id:
            raise status_exception(
                400,
                f"Inconsistent model_id; '{body['model_id']}' specified in the body differs from "
                f"'{deployment_id}' specified as a URL argument",
            )
        allocations = body.get("number_of_allocations", allocations)
        if "adaptive_allocations" in body:
            updates = parse_adaptive(
                call.raw_body, call.body["adaptive_allocations"], ACTION_ML_UPDATE
            )
    call.check_params()
    errors = request_errors(allocations, updates)
    if errors:
        raise validation_failed(*errors)
    call.authorize(ACTION_ML_UPDATE)
    state = call.emulator.state
    if deployment_id in state.deployments:
        _refuse_endpoint_owned(state, deployment_id)
    dep = update_deployment(call, deployment_id, allocations, updates)
    return 200, {"assignment": assignment_json(dep, state.models[dep.model_id])}
