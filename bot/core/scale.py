"""What a scale does to one deployment: Elasticsearch's update rules, applied before asking it.

Pure. `plan_scale(deployment, change)` merges the requested adaptive settings into the
deployment's own (as `TrainedModelAssignmentClusterService.updateDeployment` does), refuses
what Elasticsearch would refuse (with its text), recognises a change that changes nothing,
chooses the API (a deployment an inference endpoint created is changed through that
endpoint, `PUT _inference/<task_type>/<id>/_update`; any other through
`POST _ml/trained_models/<id>/deployment/_update`), and builds the request body.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.core.health import MlMemory, size_text
from bot.core.model import Deployment, ScaleChange

NOT_STARTED = "cannot update deployment that is not in [started] state"
ADAPTIVE_CONFLICT = "[number_of_allocations] cannot be set if adaptive allocations is enabled"
MIN_OVER_MAX = "[min_number_of_allocations] must not be larger than [max_number_of_allocations]"


@dataclass(frozen=True)
class Adaptive:
    """Adaptive allocations as Elasticsearch stores them (bounds may be unset)."""

    enabled: bool
    min_allocations: int | None = None
    max_allocations: int | None = None

    @classmethod
    def of(cls, raw: dict[str, Any] | None) -> Adaptive | None:
        """From `_stats`'s `adaptive_allocations` object (None when absent)."""
        if not isinstance(raw, dict):
            return None
        low, high = raw.get("min_number_of_allocations"), raw.get("max_number_of_allocations")
        return cls(
            bool(raw.get("enabled")),
            low if isinstance(low, int) else None,
            high if isinstance(high, int) else None,
        )


@dataclass(frozen=True)
class Settings:
    """The scale-relevant settings of a deployment."""

    allocations: int | None  # number_of_allocations (the target when adaptive is off)
    adaptive: Adaptive | None
    threads: int | None = None

    @classmethod
    def of(cls, dep: Deployment) -> Settings:
        """The deployment's settings as `_stats` reported them."""
        return cls(
            dep.target_allocations,
            Adaptive.of(dep.adaptive_allocations),
            dep.threads_per_allocation,
        )

    @property
    def adaptive_on(self) -> bool:
        """Adaptive allocations are enabled."""
        return self.adaptive is not None and self.adaptive.enabled

    def numbers(self) -> tuple[int, ...]:
        """The allocation numbers that bound what these settings may run (for the role map)."""
        if self.adaptive is not None and self.adaptive.enabled:
            bounds = (self.adaptive.min_allocations, self.adaptive.max_allocations)
            return tuple(n for n in bounds if n is not None)
        return (self.allocations,) if self.allocations is not None else ()

    def text(self) -> str:
        """`2 allocations`, `adaptive (min 1, max 4)`, `adaptive (min 0, no max)`."""
        if self.adaptive is not None and self.adaptive.enabled:
            low, high = self.adaptive.min_allocations, self.adaptive.max_allocations
            return f"adaptive (min {low or 0}, {'no max' if high is None else f'max {high}'})"
        if self.allocations is None:
            return "? allocations"
        return f"{self.allocations} allocation{'s' if self.allocations != 1 else ''}"

    def revert(self) -> ScaleChange:
        """The change that brings a deployment back to these settings."""
        if self.adaptive is not None and self.adaptive.enabled:
            return ScaleChange(
                adaptive=True,
                min_allocations=self.adaptive.min_allocations,
                max_allocations=self.adaptive.max_allocations,
            )
        return ScaleChange(
            allocations=self.allocations, adaptive=False if self.adaptive is not None else None
        )


class Api(StrEnum):
    """Which Elasticsearch API changes a deployment."""

    TRAINED_MODEL = "trained_model"
    INFERENCE = "inference"


@dataclass(frozen=True)
class Route:
    """The API a deployment is changed through, and why (shown in the preview)."""

    api: Api
    why: str
    endpoint_id: str | None = None
    task_type: str | None = None
    privilege: str = "manage_ml"


@dataclass(frozen=True)
class ScalePlan:
    """A change Elasticsearch will accept: before, after, the route and the body."""

    deployment_id: str
    before: Settings
    after: Settings
    route: Route
    body: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """Why this deployment cannot be changed so (nothing is asked of Elasticsearch)."""

    deployment_id: str
    reason: str
    noop: bool = False  # the request changes nothing (not an error: nothing to do)


def route_of(dep: Deployment) -> Route | Refusal:
    """The API that may change `dep`: its creating endpoint's, or the trained-model one."""
    created = [e for e in (dep.impact.endpoints if dep.impact else ()) if e.created]
    if created:
        endpoint = created[0]
        if endpoint.endpoint_id.startswith("."):
            return Refusal(
                dep.deployment_id,
                f"it belongs to the default inference endpoint `{endpoint.endpoint_id}`, which "
                f"Elasticsearch lets no one update (Default endpoint [{endpoint.endpoint_id}] "
                "cannot be updated)",
            )
        return Route(
            Api.INFERENCE,
            f"inference endpoint `{endpoint.endpoint_id}` created it, so Elasticsearch takes "
            "changes only through that endpoint",
            endpoint.endpoint_id,
            endpoint.task_type or None,
            "manage_inference",
        )
    unknown = bool(dep.impact and any("inference endpoint" in u for u in dep.impact.unknown))
    why = (
        "inference endpoints could not be read; if one created it, Elasticsearch refuses "
        "this with 409 and nothing changes"
        if unknown
        else "it was started through the trained-model API (no inference endpoint created it)"
    )
    return Route(Api.TRAINED_MODEL, why)


def _touches_adaptive(change: ScaleChange) -> bool:
    return (
        change.adaptive is not None
        or change.min_allocations is not None
        or change.max_allocations is not None
    )


def merge(before: Settings, change: ScaleChange) -> Settings:
    """The settings after `change`, merged the way Elasticsearch merges them."""
    adaptive = before.adaptive
    if _touches_adaptive(change):
        base = adaptive or Adaptive(False)
        adaptive = Adaptive(
            base.enabled if change.adaptive is None else change.adaptive,
            base.min_allocations if change.min_allocations is None else change.min_allocations,
            base.max_allocations if change.max_allocations is None else change.max_allocations,
        )
    allocations = before.allocations if change.allocations is None else change.allocations
    return Settings(allocations, adaptive, before.threads)


def plan_scale(dep: Deployment, change: ScaleChange) -> ScalePlan | Refusal:
    """The plan for one deployment, or why Elasticsearch would refuse (or nothing changes).

    The order is Elasticsearch's: a request that changes nothing is answered first (even
    for a deployment that is not started), then the state, then the merged settings."""
    before = Settings.of(dep)
    after = merge(before, change)
    same_count = change.allocations is None or change.allocations == before.allocations
    if _effective(before) == _effective(after) and same_count:
        return Refusal(dep.deployment_id, f"already has {before.text()}; nothing to change", True)
    if dep.state != "started":
        return Refusal(dep.deployment_id, f"it is {dep.state}, not started ({NOT_STARTED})")
    if change.allocations is not None and after.adaptive_on:
        return Refusal(
            dep.deployment_id,
            f"it has adaptive allocations on ({ADAPTIVE_CONFLICT}); "
            "add `--adaptive off` to set a fixed number",
        )
    if after.adaptive is not None and after.adaptive.enabled:
        low, high = after.adaptive.min_allocations, after.adaptive.max_allocations
        if low is not None and high is not None and low > high:
            return Refusal(dep.deployment_id, f"{MIN_OVER_MAX} (min {low}, max {high} merged)")
    route = route_of(dep)
    if isinstance(route, Refusal):
        return route
    return ScalePlan(dep.deployment_id, before, after, route, body(route, change, after))


def _effective(settings: Settings) -> tuple[object, ...]:
    """What governs the allocations (an adaptive setting that is off does not)."""
    if settings.adaptive is not None and settings.adaptive.enabled:
        return ("adaptive", settings.adaptive.min_allocations, settings.adaptive.max_allocations)
    return ("fixed", settings.allocations)


def body(route: Route, change: ScaleChange, after: Settings) -> dict[str, Any]:
    """The request body.

    Trained-model API: only what was asked (Elasticsearch merges adaptive settings). Inference
    API: exactly one of `num_allocations` and `adaptive_allocations` (ES refuses both), and the
    one given replaces the other; so it carries the whole merged result: the adaptive settings
    when they end enabled, else the count (`--adaptive off` alone keeps the current target).
    """
    if route.api is Api.INFERENCE:
        if after.adaptive is not None and after.adaptive.enabled:
            whole: dict[str, Any] = {"enabled": True}
            if after.adaptive.min_allocations is not None:
                whole["min_number_of_allocations"] = after.adaptive.min_allocations
            if after.adaptive.max_allocations is not None:
                whole["max_number_of_allocations"] = after.adaptive.max_allocations
            return {"service_settings": {"adaptive_allocations": whole}}
        return {"service_settings": {"num_allocations": after.allocations}}
    adaptive: dict[str, Any] | None = None
    if _touches_adaptive(change):
        adaptive = {}
        if change.adaptive is not None:
            adaptive["enabled"] = change.adaptive
        if change.min_allocations is not None:
            adaptive["min_number_of_allocations"] = change.min_allocations
        if change.max_allocations is not None:
            adaptive["max_number_of_allocations"] = change.max_allocations
    out: dict[str, Any] = {}
    if change.allocations is not None:
        out["number_of_allocations"] = change.allocations
    if adaptive is not None:
        out["adaptive_allocations"] = adaptive
    return out


def reflected(after: Settings, now: Deployment) -> bool:
    """`_stats` shows the requested settings (the adaptive settings, or the target)."""
    seen = Settings.of(now)
    if after.adaptive is not None and after.adaptive.enabled:
        return _effective(seen) == _effective(after)
    return not seen.adaptive_on and seen.allocations == after.allocations


def memory_line(targets: list[tuple[Deployment, ScalePlan]], memory: MlMemory | str) -> str:
    """The preview's ML memory line: what the model needs per node against what is free."""
    if not isinstance(memory, MlMemory):
        return f"ML memory: unknown ({memory})"
    needs = sorted({d.required_memory for d, _ in targets if d.required_memory})
    need = ", ".join(size_text(n) for n in needs) or "?"
    line = (
        f"ML memory: the model needs {need} on each node it runs on; the ML nodes have "
        f"{size_text(memory.free)} free of {size_text(memory.limit)} "
        f"(at most {size_text(memory.largest_free)} on one node)"
    )
    growing = any(_grows(plan) for _, plan in targets)
    if growing and needs and memory.largest_free < max(needs):
        line += (
            "; no node has room for another copy, so new allocations fit only on nodes that "
            "run it already (Elasticsearch answers 429 when they cannot be placed)"
        )
    return line


def _grows(plan: ScalePlan) -> bool:
    """The plan may run more allocations than before."""
    before, after = plan.before.numbers(), plan.after.numbers()
    return bool(after) and (not before or max(after) > max(before))
