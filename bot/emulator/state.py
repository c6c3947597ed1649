"""Cluster state the emulator serves: models, deployments, aliases, pipelines, inference
endpoints, seeded index mappings and security."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.errors import status_exception
from bot.emulator.privileges import glob_match

JSON = dict[str, Any]

MAX_PROCESSOR_RECURSION = 10
NODE_ID = "uckeG3R8TLe2MMNBQ6AGrw"
LANG_IDENT = "lang_ident_model_1"
# Deployment fields a test (or the demo) may set to shape `_stats` health, see set_health.
HEALTH_FIELDS = (
    "state",
    "reason",
    "routing_state",
    "routing_reason",
    "allocation_count",
    "pending_requests",
    "queue_capacity",
    "inference_count",
    "error_count",
    "rejected_execution_count",
    "timeout_count",
    "average_inference_time_ms",
    "average_inference_time_ms_last_minute",
    "throughput_last_minute",
    "peak_throughput_per_minute",
    "inference_cache_hit_count",
    "inference_cache_hit_count_last_minute",
    "last_access",
    "rejections_per_read",
)
ROUTING_STATES = ("starting", "started", "stopping", "stopped", "failed")


def now_ms() -> int:
    """Wall clock in epoch milliseconds, as ES stamps times."""
    return int(time.time() * 1000)


@dataclass
class Model:
    """A trained model configuration plus its uploaded definition parts."""

    model_id: str
    model_type: str = "pytorch"
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    inference_config: JSON = field(default_factory=dict)
    input: JSON = field(default_factory=lambda: {"field_names": ["text_field"]})
    metadata: JSON | None = None
    created_by: str = "api_user"
    create_time: int = field(default_factory=now_ms)
    vocabulary: list[str] | None = None
    total_definition_length: int | None = None
    total_parts: int | None = None
    definition_parts: dict[int, int] = field(default_factory=dict)
    per_deployment_memory_bytes: int = 0
    per_allocation_memory_bytes: int = 0
    extra: JSON = field(default_factory=dict)
    # A tree/ensemble `definition` as put, or a `compressed_definition` (base64 of gzipped
    # JSON) as put; GET with include=definition answers one or the other.
    definition: JSON | None = None
    compressed_definition: str | None = None
    # An Elastic-provided model (.elser_model_2...) PUT with only `input` is downloaded by
    # the server in the background; until then it has no definition and cannot start.
    downloading: bool = False

    @property
    def definition_status(self) -> str:
        """`missing`, `truncated` or `complete` (what deployment start validates)."""
        if not self.definition_parts:
            return "missing"
        complete = (
            self.total_parts is not None
            and all(i in self.definition_parts for i in range(self.total_parts))
            and sum(self.definition_parts.values()) == self.total_definition_length
        )
        return "complete" if complete else "truncated"

    @property
    def size_bytes(self) -> int:
        """total_definition_length of the stored parts (0 when nothing uploaded)."""
        return self.total_definition_length or 0 if self.definition_parts else 0


@dataclass
class Deployment:
    """A trained model assignment (one deployment of one model) and its counters."""

    deployment_id: str
    model_id: str
    number_of_allocations: int = 1
    threads_per_allocation: int = 1
    priority: str = "normal"
    queue_capacity: int = 1024
    cache_size: str | None = None
    adaptive_allocations: JSON | None = None
    start_time: int = field(default_factory=now_ms)
    state: str = "started"
    reason: str | None = None
    inference_count: int = 0
    inference_cache_hit_count: int = 0
    error_count: int = 0
    rejected_execution_count: int = 0
    timeout_count: int = 0
    average_inference_time_ms: float = 12.5
    last_access: int | None = None
    peak_throughput_per_minute: int = 0
    throughput_last_minute: int = 0
    pending_requests: int = 0
    # Allocations the ML node has started (allocation_status.allocation_count); the target is
    # number_of_allocations. None means "all of them" (a deployment added fully placed).
    allocation_count: int | None = None
    # The node's route (AssignmentStats.NodeStats routing_state) and its reason.
    routing_state: str = "started"
    routing_reason: str | None = None
    # Average over the last minute; None means the same as the overall average.
    average_inference_time_ms_last_minute: float | None = None
    inference_cache_hit_count_last_minute: int = 0
    # An overloaded deployment keeps rejecting: each `_stats` read adds this many rejections
    # (deterministic, so a test sees the count rise between two reads without waiting).
    rejections_per_read: int = 0

    def __post_init__(self) -> None:
        if self.allocation_count is None:
            self.allocation_count = self.number_of_allocations

    @property
    def placed(self) -> int:
        """Allocations started on the node (never more than the target)."""
        if self.allocation_count is None:
            return self.number_of_allocations
        return min(self.allocation_count, self.number_of_allocations)


@dataclass
class InferenceEndpoint:
    """An `_inference` endpoint of the `elasticsearch`/`elser` service (ML-node backed).

    `created_deployment` is true when the endpoint started its own deployment (its id is the
    endpoint id); false when it was put on an existing `deployment_id`.
    """

    inference_id: str
    task_type: str
    model_id: str
    service: str = "elasticsearch"
    deployment_id: str = ""
    created_deployment: bool = True
    num_allocations: int | None = 1
    num_threads: int = 1
    adaptive_allocations: JSON | None = None
    chunking_settings: JSON | None = None
    task_settings: JSON = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deployment_id = self.deployment_id or self.inference_id


@dataclass
class Role:
    """A role: cluster privileges, index privileges and run_as patterns."""

    name: str
    cluster: list[str] = field(default_factory=list)
    indices: list[JSON] = field(default_factory=list)
    run_as: list[str] = field(default_factory=list)
    metadata: JSON = field(default_factory=dict)


@dataclass
class User:
    """A native-realm user."""

    username: str
    password: str
    roles: list[str] = field(default_factory=list)
    full_name: str | None = None
    email: str | None = None
    enabled: bool = True
    metadata: JSON = field(default_factory=dict)


@dataclass
class ApiKey:
    """An API key owned by a user, optionally limited to its own role descriptors."""

    id: str
    name: str
    api_key: str
    owner: str
    role_descriptors: dict[str, Role] = field(default_factory=dict)
    expiration: int | None = None
    invalidated: bool = False
    metadata: JSON = field(default_factory=dict)

    @property
    def encoded(self) -> str:
        """base64(id:api_key), the value sent as `Authorization: ApiKey <encoded>`."""
        return base64.b64encode(f"{self.id}:{self.api_key}".encode()).decode()


BUILTIN_ROLES: dict[str, Role] = {
    "superuser": Role(
        "superuser",
        cluster=["all"],
        indices=[{"names": ["*"], "privileges": ["all"], "allow_restricted_indices": True}],
        run_as=["*"],
        metadata={"_reserved": True},
    ),
    "machine_learning_admin": Role(
        "machine_learning_admin", cluster=["manage_ml"], metadata={"_reserved": True}
    ),
    "machine_learning_user": Role(
        "machine_learning_user", cluster=["monitor_ml"], metadata={"_reserved": True}
    ),
    "ingest_admin": Role(
        "ingest_admin",
        cluster=["manage_index_templates", "manage_pipeline"],
        metadata={"_reserved": True},
    ),
}


def lang_ident_model() -> Model:
    """The model every cluster has from the start (resource-backed, not deployable)."""
    return Model(
        model_id=LANG_IDENT,
        model_type="lang_ident",
        description="Model used for identifying language from arbitrary input text.",
        tags=["lang_ident", "prepackaged"],
        inference_config={"classification": {}},
        input={"field_names": ["text"]},
        created_by="_xpack",
        create_time=1575548914594,
    )


def _prepackaged_models() -> dict[str, Model]:
    # A fresh cluster already lists lang_ident_model_1 (ES inference_crud.yml counts it).
    return {LANG_IDENT: lang_ident_model()}


def _is_wildcard(token: str) -> bool:
    return "*" in token


def _is_all(expression: str) -> bool:
    return expression in ("", "*", "_all")


def tokens(expression: str) -> list[str]:
    """ExpandedIdsMatcher.tokenizeExpression: comma split, `_all` becomes `*`."""
    if _is_all(expression):
        return ["*"]
    return [t.strip() for t in expression.split(",") if t.strip()]


def id_matches(expression: str, candidate: str) -> bool:
    """ExpandedIdsMatcher.SimpleIdsMatcher.idMatches."""
    return any(
        glob_match(t, candidate) if _is_wildcard(t) else t == candidate for t in tokens(expression)
    )


@dataclass
class ClusterState:
    """Everything the emulated cluster knows. Mutable; tests may inspect and edit it."""

    cluster_name: str = "ml-emulator"
    cluster_uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    node_name: str = "es-ml-node-1"
    # The single ML node's capacity: allocated processors (allocations x threads of normal
    # priority deployments must fit) and memory. `ml_autoscaling` is ES's isScalingPossible:
    # with it an update beyond capacity is accepted and waits for capacity instead of the 429.
    ml_processors: int = 16
    ml_autoscaling: bool = False
    machine_memory_bytes: int = 34_359_738_368
    jvm_heap_bytes: int = 4_294_967_296
    ml_max_bytes: int = 20_615_843_020
    models: dict[str, Model] = field(default_factory=_prepackaged_models)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    pipelines: dict[str, JSON] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    inference_endpoints: dict[str, InferenceEndpoint] = field(default_factory=dict)
    # Indices created in the document store when an Emulator is bound to this state:
    # name -> {"mappings": ..., "settings": ...}. The live indices are `emulator.documents`.
    indices: dict[str, JSON] = field(default_factory=dict)

    # ---- helpers for tests and loaders -------------------------------------------------

    def add_model(
        self,
        model_id: str,
        *,
        description: str | None = None,
        model_type: str = "pytorch",
        inference_config: JSON | None = None,
        tags: list[str] | None = None,
        definition_length: int | None = 1630,
        vocabulary: list[str] | None = None,
        metadata: JSON | None = None,
        created_by: str = "api_user",
    ) -> Model:
        """Add a model; `definition_length` not None means a complete one-part definition."""
        model = Model(
            model_id=model_id,
            model_type=model_type,
            description=description,
            tags=list(tags or []),
            inference_config=inference_config or {"pass_through": {}},
            metadata=metadata,
            created_by=created_by,
            vocabulary=vocabulary,
        )
        if definition_length is not None:
            model.total_definition_length = definition_length
            model.total_parts = 1
            model.definition_parts = {0: definition_length}
        self.models[model_id] = model
        return model

    def start_deployment(
        self,
        model_id: str,
        deployment_id: str | None = None,
        number_of_allocations: int = 1,
        threads_per_allocation: int = 1,
        priority: str = "normal",
        queue_capacity: int = 1024,
        cache_size: str | None = None,
        adaptive_allocations: JSON | None = None,
        inference_count: int = 0,
    ) -> Deployment:
        """Add a started deployment of an existing model (no REST validation beyond ids)."""
        deployment_id = deployment_id or model_id
        if model_id not in self.models:
            raise ValueError(f"No known trained model with model_id [{model_id}]")
        if deployment_id in self.deployments:
            raise ValueError(
                "Could not start model deployment because an existing deployment with the "
                f"same id [{deployment_id}] exist"
            )
        dep = Deployment(
            deployment_id=deployment_id,
            model_id=model_id,
            number_of_allocations=number_of_allocations,
            threads_per_allocation=threads_per_allocation,
            priority=priority,
            queue_capacity=queue_capacity,
            cache_size=cache_size,
            adaptive_allocations=adaptive_allocations,
            inference_count=inference_count,
            peak_throughput_per_minute=min(inference_count, 120),
            last_access=now_ms() if inference_count else None,
        )
        self.deployments[deployment_id] = dep
        return dep

    def set_health(self, deployment_id: str, **fields: Any) -> Deployment:
        """Set health fields of a deployment (HEALTH_FIELDS): a full queue, a failed route..."""
        dep = self.deployments[deployment_id]
        unknown = sorted(set(fields) - set(HEALTH_FIELDS))
        if unknown:
            raise ValueError(f"unknown health fields {unknown}; known: {', '.join(HEALTH_FIELDS)}")
        if fields.get("routing_state", dep.routing_state) not in ROUTING_STATES:
            raise ValueError(f"routing_state must be one of {', '.join(ROUTING_STATES)}")
        for key, value in fields.items():
            setattr(dep, key, value)
        return dep

    def fail_deployment(self, deployment_id: str, reason: str) -> Deployment:
        """The node's route failed (e.g. the process crashed): no allocations, state failed."""
        return self.set_health(
            deployment_id,
            state="failed",
            reason=reason,
            routing_state="failed",
            routing_reason=reason,
            allocation_count=0,
        )

    def finish_download(self, model_id: str, definition_length: int) -> Model:
        """End the background download of an Elastic-provided model (complete definition)."""
        model = self.models[model_id]
        model.downloading = False
        model.total_definition_length = definition_length
        model.total_parts = 1
        model.definition_parts = {0: definition_length}
        return model

    def put_pipeline(self, id: str, body: JSON) -> None:
        """Store (or replace) an ingest pipeline."""
        self.pipelines[id] = body

    def put_alias(self, model_id: str, alias: str) -> None:
        """Point a model alias at a model."""
        if model_id not in self.models:
            raise ValueError(f"No known trained model with model_id [{model_id}]")
        self.aliases[alias] = model_id

    def add_inference_endpoint(
        self,
        inference_id: str,
        task_type: str,
        model_id: str,
        *,
        deployment_id: str | None = None,
        num_allocations: int | None = 1,
        num_threads: int = 1,
        adaptive_allocations: JSON | None = None,
        chunking_settings: JSON | None = None,
    ) -> InferenceEndpoint:
        """Add an endpoint; without `deployment_id` it starts (and owns) its deployment."""
        if deployment_id is None:
            self.start_deployment(
                model_id,
                inference_id,
                number_of_allocations=num_allocations or 1,
                threads_per_allocation=num_threads,
                adaptive_allocations=adaptive_allocations,
            )
        endpoint = InferenceEndpoint(
            inference_id,
            task_type,
            model_id,
            deployment_id=deployment_id or inference_id,
            created_deployment=deployment_id is None,
            num_allocations=num_allocations,
            num_threads=num_threads,
            adaptive_allocations=adaptive_allocations,
            chunking_settings=chunking_settings,
        )
        self.inference_endpoints[inference_id] = endpoint
        return endpoint

    def add_index(
        self, name: str, mappings: JSON | None = None, settings: JSON | None = None
    ) -> None:
        """Declare an index (with mappings) that the emulator's document store starts with."""
        self.indices[name] = {"mappings": mappings or {}, "settings": settings or {}}

    def add_role(
        self,
        name: str,
        cluster: list[str] | None = None,
        run_as: list[str] | None = None,
        indices: list[JSON] | None = None,
    ) -> Role:
        """Add a native role."""
        role = Role(
            name,
            cluster=list(cluster or []),
            indices=list(indices or []),
            run_as=list(run_as or []),
        )
        self.roles[name] = role
        return role

    def add_user(self, name: str, password: str, roles: list[str] | None = None) -> User:
        """Add a native user."""
        user = User(name, password, roles=list(roles or []))
        self.users[name] = user
        return user

    def create_api_key(
        self,
        owner: str,
        name: str,
        role_descriptors: dict[str, Role] | None = None,
        *,
        id: str | None = None,
        api_key: str | None = None,
        expiration: int | None = None,
    ) -> ApiKey:
        """Create an API key owned by `owner`."""
        key = ApiKey(
            id=id or secrets.token_urlsafe(15)[:20],
            name=name,
            api_key=api_key or secrets.token_urlsafe(16)[:22],
            owner=owner,
            role_descriptors=dict(role_descriptors or {}),
            expiration=expiration,
        )
        self.api_keys[key.id] = key
        return key

    # ---- lookups ------------------------------------------------------------------------

    def role(self, name: str) -> Role | None:
        """A native role, else a built-in one."""
        return self.roles.get(name) or BUILTIN_ROLES.get(name)

    def resolve_model(self, id_or_alias: str) -> str | None:
        """The model id for an id or model alias."""
        if id_or_alias in self.models:
            return id_or_alias
        target = self.aliases.get(id_or_alias)
        return target if target in self.models else None

    def aliases_of(self, model_id: str) -> list[str]:
        """Model aliases pointing at a model, sorted."""
        return sorted(a for a, m in self.aliases.items() if m == model_id)

    def expand_model_ids(
        self, expression: str, allow_no_match: bool, also_matched: set[str] | None = None
    ) -> tuple[list[str], list[str]]:
        """TrainedModelProvider.expandIds: sorted matched model ids and the unmatched tokens.

        Explicit ids must match; wildcards must match only when allow_no_match is false.
        Tokens in `also_matched` (deployment ids) never count as unmatched.
        """
        matched: set[str] = set()
        unmatched: list[str] = []
        for token in tokens(expression):
            hits: set[str] = set()
            if _is_wildcard(token):
                hits = {m for m in self.models if glob_match(token, m)}
                hits |= {m for a, m in self.aliases.items() if glob_match(token, a)}
            else:
                resolved = self.resolve_model(token)
                if resolved is not None:
                    hits = {resolved}
            hits &= set(self.models)
            matched |= hits
            if hits or any(id_matches(token, d) for d in also_matched or ()):
                continue
            if not _is_wildcard(token) or not allow_no_match:
                unmatched.append(token)
        return sorted(matched), unmatched

    def model_ids_referenced_by_pipelines(self) -> set[str]:
        """InferenceProcessorInfoExtractor.getModelIdsFromInferenceProcessors."""
        found: set[str] = set()
        for pipeline in self.pipelines.values():
            for processor in pipeline.get("processors") or []:
                _collect_inference_models(processor, 0, found)
        return found

    def pipelines_referencing(self, ids: set[str]) -> list[str]:
        """Ids of pipelines whose inference processors reference any of `ids`."""
        result = []
        for pipeline_id, pipeline in self.pipelines.items():
            found: set[str] = set()
            for processor in pipeline.get("processors") or []:
                _collect_inference_models(processor, 0, found)
            if found & ids:
                result.append(pipeline_id)
        return sorted(result)

    def endpoints_on_deployment(self, deployment_id: str) -> list[InferenceEndpoint]:
        """elasticsearch/elser endpoints whose ML deployment is `deployment_id`."""
        return [
            e
            for e in self.inference_endpoints.values()
            if e.deployment_id == deployment_id and e.service in ("elasticsearch", "elser")
        ]

    def pipelines_referencing_id(self, resource_id: str) -> list[str]:
        """InferenceProcessorInfoExtractor.pipelineIdsForResource for one id, sorted."""
        return self.pipelines_referencing({resource_id})

    def check_deployment_id_free(self, deployment_id: str) -> None:
        """Raise the real 400 when a deployment with this id already exists."""
        if deployment_id in self.deployments:
            raise status_exception(
                400,
                "Could not start model deployment because an existing deployment with the same "
                f"id [{deployment_id}] exist",
            )


def _collect_inference_models(processor: Any, level: int, found: set[str]) -> None:
    """Recurse into foreach and processor-level on_failure, at most 10 levels deep."""
    if level > MAX_PROCESSOR_RECURSION or not isinstance(processor, dict):
        return
    for kind, config in processor.items():
        if not isinstance(config, dict):
            continue
        if kind == "inference" and isinstance(config.get("model_id"), str):
            found.add(config["model_id"])
        if kind == "foreach":
            _collect_inference_models(config.get("processor"), level + 1, found)
        for nested in config.get("on_failure") or []:
            _collect_inference_models(nested, level + 1, found)
