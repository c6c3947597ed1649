"""The parts of Elasticsearch's answers the bot reads, as pydantic models (one per API).

Every answer is checked against its model before anything in it is believed: a wrong shape
(a proxy's HTML page, a JSON list, a field missing or of the wrong type) becomes one
`ClusterBadAnswer` naming the cluster and the API, wherever it is read. Fields follow what
Elasticsearch documents (reference §4, the REST API specs); models ignore extra fields, as
Elasticsearch adds some in every version. Only what the bot uses is required; nothing
declared may be null.

To read a new API: a model here, its label in `APIS`, and `ClusterClient._read` with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, model_validator

from bot.core.errors import ClusterBadAnswer

# Endpoint id (as the client names it) → how the API is named to a person.
APIS: dict[str, str] = {
    "info": "GET /",
    "ml.get_trained_models_stats": "GET _ml/trained_models/_stats",
    "ml.get_trained_models": "GET _ml/trained_models",
    "ml.stop_trained_model_deployment": "POST _ml/trained_models/{id}/deployment/_stop",
    "ml.start_trained_model_deployment": "POST _ml/trained_models/{id}/deployment/_start",
    "ingest.get_pipeline": "GET _ingest/pipeline",
    "inference.get": "GET _inference/_all",
    "indices.get_mapping": "GET _mapping",
    "security.has_privileges": "GET _security/user/_has_privileges",
}


class _Answer(BaseModel):
    # Extra fields are ignored (each version adds some); the answer's own body is what the
    # pure parsers read once it passed, so a declared field may be absent but never null:
    # Elasticsearch leaves out what it has no value for.
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name in cls.model_fields:
                if name in data and data[name] is None:
                    raise ValueError(f"`{name}` is null")
        return data


# ---- GET _ml/trained_models/<ids>/_stats -------------------------------------------------


class AllocationStatus(_Answer):
    allocation_count: int | None = None
    target_allocation_count: int | None = None
    state: str | None = None


class NodeStats(_Answer):
    inference_count: int | None = None
    number_of_pending_requests: int | None = None


class DeploymentStats(_Answer):
    """`deployment_stats`: `deployment_id` and `model_id` are always written (8.8+)."""

    deployment_id: str
    model_id: str
    state: str | None = None
    reason: str | None = None
    allocation_status: AllocationStatus | None = None
    number_of_allocations: int | None = None
    threads_per_allocation: int | None = None
    queue_capacity: int | None = None
    cache_size: str | None = None
    priority: str | None = None
    adaptive_allocations: dict[str, Any] | None = None
    inference_count: int | None = None
    nodes: list[NodeStats] = Field(default_factory=list)


class ModelStats(_Answer):
    model_id: str
    deployment_stats: DeploymentStats | None = None


class StatsPage(_Answer):
    count: int
    trained_model_stats: list[ModelStats]


# ---- GET _ml/trained_models (filtered to ids and aliases) ----------------------------------


class ModelMetadata(_Answer):
    model_aliases: list[str] = Field(default_factory=list)


class ModelConfig(_Answer):
    model_id: str
    metadata: ModelMetadata | None = None


class ModelsPage(_Answer):
    count: int
    trained_model_configs: list[ModelConfig] = Field(default_factory=list)  # filtered away at 0


# ---- POST .../deployment/_stop and _start --------------------------------------------------


class StopAnswer(_Answer):
    stopped: bool


class Assignment(_Answer):
    assignment_state: str | None = None


class StartAnswer(_Answer):
    assignment: Assignment


# ---- pipelines, inference endpoints, mappings, privileges, info --------------------------


class Pipeline(_Answer):
    processors: list[dict[str, Any]] = Field(default_factory=list)


class Pipelines(RootModel[dict[str, Pipeline]]):
    pass


class InferenceEndpoint(_Answer):
    inference_id: str
    task_type: str
    service: str
    service_settings: dict[str, Any] = Field(default_factory=dict)


class InferenceEndpoints(_Answer):
    endpoints: list[InferenceEndpoint] = Field(default_factory=list)  # filter_path drops []


class IndexMapping(_Answer):
    mappings: dict[str, Any] = Field(default_factory=dict)


class Mappings(RootModel[dict[str, IndexMapping]]):
    pass


class HasPrivileges(_Answer):
    has_all_requested: bool
    index: dict[str, dict[str, bool]] = Field(default_factory=dict)


class Version(_Answer):
    number: str


class Info(_Answer):
    version: Version


M = TypeVar("M", bound=BaseModel)


def parse(schema: type[M], body: Any, *, cluster: str, endpoint: str, content_type: str = "") -> M:
    """The answer as `schema`, or ClusterBadAnswer saying what is wrong with it."""
    try:
        return schema.model_validate(body)
    except ValidationError as exc:
        raise bad_answer(cluster, endpoint, _what(exc, body, content_type)) from None


def bad_answer(cluster: str, endpoint: str, what: str) -> ClusterBadAnswer:
    """The one error for an answer the bot cannot read."""
    api = APIS.get(endpoint, endpoint)
    return ClusterBadAnswer(f"cluster `{cluster}` answered `{api}` in an unexpected shape: {what}")


def not_an_object(body: Any, content_type: str = "") -> str | None:
    """What came instead of a JSON object, or None if it is one."""
    if isinstance(body, Mapping):
        return None
    if isinstance(body, str | bytes):
        kind = content_type.split(";")[0].strip() or "text"
        return f"a {kind} page instead of JSON (a proxy in between?)"
    if body is None:
        return "an empty body"
    return f"a JSON {_json_type(body)} instead of an object"


def _what(exc: ValidationError, body: Any, content_type: str) -> str:
    """The first problem, in a few words (never the whole body)."""
    instead = not_an_object(body, content_type)
    if instead is not None:
        return instead
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "the answer"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if first["type"] == "missing":
        return f"`{where}` is missing{more}"
    if first["type"] == "value_error" and "error" in first.get("ctx", {}):
        return f"`{where}`: {first['ctx']['error']}{more}"
    return f"`{where}`: {first['msg'].lower()}{more}"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
