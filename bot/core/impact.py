"""What stopping a deployment breaks: inference endpoints, semantic_text fields, pipelines.

Pure: the gateway hands in the raw `_inference`, `_mapping` and pipeline reference data;
this module decides what reaches each deployment and what makes Elasticsearch refuse a
plain stop (409 without `force`; see docs/elasticsearch-inference.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.core.suggest import nearest

# The ML-node services whose endpoints run on trained-model deployments.
ML_SERVICES = frozenset({"elasticsearch", "elser"})
# A semantic_text field without `inference_id` uses this default endpoint.
DEFAULT_SEMANTIC_ENDPOINT = ".elser-2-elasticsearch"
# `GET _mapping` answers only the indices the bot may view (`{}` when none), never 403.
NO_INDEX_VISIBLE = "could not read index mappings: missing view_index_metadata"
SOME_INDICES_VISIBLE = (
    "semantic_text usage: checked only the indices the bot may view "
    "(`view_index_metadata` is not granted on every index)"
)


class Reach(StrEnum):
    """How an ingest pipeline's inference processor reaches a deployment."""

    DIRECT = "direct"  # names the deployment id
    MODEL_ID = "model id"  # names the model the deployment runs
    ALIAS = "alias"  # names a model alias of that model
    ENDPOINT = "endpoint"  # names an inference endpoint on the deployment


@dataclass(frozen=True)
class Endpoint:
    """One inference endpoint of an ML-node service, as `GET _inference/_all` lists it."""

    inference_id: str
    deployment_id: str
    model_id: str
    task_type: str
    created: bool  # the endpoint started the deployment (else it was put on an existing one)
    num_allocations: int | None = None
    num_threads: int | None = None
    adaptive_allocations: dict[str, Any] | None = None


@dataclass(frozen=True)
class SemanticField:
    """One semantic_text field of an index and the endpoints it uses."""

    index: str
    path: str
    inference_id: str
    search_inference_id: str | None = None

    def uses(self, endpoint_ids: Iterable[str]) -> tuple[str, ...]:
        """The given endpoints this field indexes or searches with."""
        ids = set(endpoint_ids)
        return tuple(e for e in (self.inference_id, self.search_inference_id) if e in ids)


@dataclass(frozen=True)
class EndpointUse:
    """An inference endpoint on the deployment; both kinds make a plain stop fail."""

    endpoint_id: str
    created: bool
    task_type: str = ""


@dataclass(frozen=True)
class SemanticUse:
    """A semantic_text field that stops working with the deployment."""

    index: str
    path: str
    endpoint_id: str


@dataclass(frozen=True)
class PipelineUse:
    """An ingest pipeline that reaches the deployment, and whether it makes ES refuse."""

    name: str
    reach: Reach
    via: str  # the id its processor names
    refuses: bool


@dataclass(frozen=True)
class Impact:
    """Everything a stop of one deployment breaks, and what could not be read."""

    endpoints: tuple[EndpointUse, ...] = ()
    semantic: tuple[SemanticUse, ...] = ()
    pipelines: tuple[PipelineUse, ...] = ()
    unknown: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()  # reads that covered only part of the cluster

    @property
    def refuses(self) -> bool:
        """True when Elasticsearch refuses a stop without `force`."""
        return bool(self.endpoints) or any(p.refuses for p in self.pipelines)

    @property
    def empty(self) -> bool:
        """Nothing known to break and nothing unread or only partly read."""
        return not (
            self.endpoints or self.semantic or self.pipelines or self.unknown or self.partial
        )

    def refusal_reasons(self, deployment_id: str) -> list[str]:
        """One line per reason Elasticsearch gives for refusing a plain stop."""
        lines = [
            f"deployment `{deployment_id}` {'was created' if e.created else 'is used'} by "
            f"inference endpoint `{e.endpoint_id}`" + self._semantic_note(e.endpoint_id)
            for e in self.endpoints
        ]
        lines += [
            f"deployment `{deployment_id}` is used by ingest pipeline `{p.name}`"
            + ("" if p.reach is Reach.DIRECT else f" (through model alias `{p.via}`)")
            for p in self.pipelines
            if p.refuses
        ]
        return lines

    def _semantic_note(self, endpoint_id: str) -> str:
        used = [f"`{s.index}.{s.path}`" for s in self.semantic if s.endpoint_id == endpoint_id]
        return f" (semantic_text index {', '.join(used)})" if used else ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Impact:
        """Inverse of to_json."""
        return cls(
            endpoints=tuple(EndpointUse(**e) for e in data.get("endpoints", ())),
            semantic=tuple(SemanticUse(**s) for s in data.get("semantic", ())),
            pipelines=tuple(
                PipelineUse(**{**p, "reach": Reach(p["reach"])}) for p in data.get("pipelines", ())
            ),
            unknown=tuple(data.get("unknown", ())),
            partial=tuple(data.get("partial", ())),
        )


@dataclass(frozen=True)
class ClusterFacts:
    """The raw reads an impact is computed from; None = could not be read (see `unknown`)."""

    refs: Mapping[str, frozenset[str]] = field(default_factory=dict)  # id → pipeline names
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # model → aliases
    endpoints: tuple[Endpoint, ...] | None = ()
    fields: tuple[SemanticField, ...] | None = ()
    unknown: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()  # mapping reads that covered only some indices
    mapping_unknown: tuple[str, ...] = ()  # why the mappings could not be read at all


@dataclass(frozen=True)
class MappingScan:
    """The semantic_text fields of one `GET _mapping` answer, and how many indices it held."""

    fields: tuple[SemanticField, ...]
    indices: int


@dataclass(frozen=True)
class MappingCoverage:
    """The semantic_text fields to trust, and why they may be none or only some."""

    fields: tuple[SemanticField, ...] | None
    unknown: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()


def mapping_coverage(scan: MappingScan | str, views_every_index: bool | str) -> MappingCoverage:
    """Judge a mapping read by whether the bot may view every index (a str: why unknown)."""
    if isinstance(scan, str):
        return MappingCoverage(None, unknown=(scan,))
    if views_every_index is True:
        return MappingCoverage(scan.fields)
    if isinstance(views_every_index, str):
        return MappingCoverage(scan.fields, partial=(f"semantic_text usage: {views_every_index}",))
    if scan.indices == 0:
        return MappingCoverage(None, unknown=(NO_INDEX_VISIBLE,))
    return MappingCoverage(scan.fields, partial=(SOME_INDICES_VISIBLE,))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_endpoints(body: Mapping[str, Any]) -> tuple[Endpoint, ...]:
    """The ML-node endpoints of a `GET _inference/_all` answer (other services run elsewhere)."""
    out = []
    for raw in body.get("endpoints") or []:
        if not isinstance(raw, dict) or raw.get("service") not in ML_SERVICES:
            continue
        settings = raw.get("service_settings") or {}
        inference_id = str(raw.get("inference_id", ""))
        deployment_id = settings.get("deployment_id")
        adaptive = settings.get("adaptive_allocations")
        out.append(
            Endpoint(
                inference_id=inference_id,
                # An endpoint that started its own deployment named it after itself.
                deployment_id=str(deployment_id or inference_id),
                model_id=str(settings.get("model_id", "")),
                task_type=str(raw.get("task_type", "")),
                created=not deployment_id,
                num_allocations=_int(settings.get("num_allocations")),
                num_threads=_int(settings.get("num_threads")),
                adaptive_allocations=adaptive if isinstance(adaptive, dict) else None,
            )
        )
    return tuple(out)


def scan_mappings(body: Mapping[str, Any]) -> MappingScan:
    """The semantic_text fields of a `GET _mapping` answer and the number of indices in it."""
    return MappingScan(parse_semantic_fields(body), len(body))


def parse_semantic_fields(body: Mapping[str, Any]) -> tuple[SemanticField, ...]:
    """Every semantic_text field of a `GET _mapping` answer, at any object depth."""
    found: list[SemanticField] = []
    for index, entry in sorted(body.items()):
        mappings = entry.get("mappings") if isinstance(entry, dict) else None
        if isinstance(mappings, dict):
            found.extend(_walk(index, mappings.get("properties") or {}, ""))
    return tuple(found)


def _walk(index: str, properties: Mapping[str, Any], prefix: str) -> Iterator[SemanticField]:
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        path = f"{prefix}{name}"
        if spec.get("type") == "semantic_text":
            search = spec.get("search_inference_id")
            yield SemanticField(
                index,
                path,
                str(spec.get("inference_id") or DEFAULT_SEMANTIC_ENDPOINT),
                str(search) if search else None,
            )
        elif isinstance(spec.get("properties"), dict):
            yield from _walk(index, spec["properties"], f"{path}.")


def impact_of(deployment_id: str, model_id: str, facts: ClusterFacts) -> Impact:
    """What a stop of `deployment_id` (running `model_id`) breaks, by the rules ES applies."""
    endpoints = [e for e in facts.endpoints or () if e.deployment_id == deployment_id]
    uses = tuple(
        EndpointUse(e.inference_id, e.created, e.task_type)
        for e in sorted(endpoints, key=lambda e: (not e.created, e.inference_id))
    )
    endpoint_ids = [e.inference_id for e in endpoints]
    if facts.endpoints is None:
        # Unreadable endpoints: one that started this deployment would carry its id.
        endpoint_ids = [deployment_id]
    semantic = tuple(
        SemanticUse(f.index, f.path, used)
        for f in facts.fields or ()
        for used in f.uses(endpoint_ids)
    )
    # semantic_text reaches a deployment only through an endpoint: with none (and the
    # endpoints read), what the mapping read missed cannot concern this deployment.
    mapping_notes = bool(endpoint_ids)
    return Impact(
        endpoints=uses,
        semantic=semantic,
        pipelines=_pipelines(deployment_id, model_id, endpoint_ids, facts),
        unknown=facts.unknown + (facts.mapping_unknown if mapping_notes else ()),
        partial=facts.partial if mapping_notes else (),
    )


def _pipelines(
    deployment_id: str, model_id: str, endpoint_ids: Iterable[str], facts: ClusterFacts
) -> tuple[PipelineUse, ...]:
    # ES refuses for the deployment id itself and for aliases of the model whose id equals
    # the deployment id (TransportStopTrainedModelDeploymentAction); the rest only break.
    routes: list[tuple[str, Reach, bool]] = [(deployment_id, Reach.DIRECT, True)]
    if model_id != deployment_id:
        routes.append((model_id, Reach.MODEL_ID, False))
    routes += [(a, Reach.ALIAS, model_id == deployment_id) for a in facts.aliases.get(model_id, ())]
    routes += [(e, Reach.ENDPOINT, False) for e in endpoint_ids if e != deployment_id]
    found: dict[str, PipelineUse] = {}
    for via, reach, refuses in routes:
        for name in sorted(facts.refs.get(via, ())):
            known = found.get(name)
            if known is None or (refuses and not known.refuses):
                found[name] = PipelineUse(name, reach, via, refuses)
    return tuple(sorted(found.values(), key=lambda p: (not p.refuses, p.name)))


def pipeline_names(impact: Impact | None, known: Iterable[str] = ()) -> tuple[str, ...]:
    """The ingest pipelines a stop breaks, whatever route reaches the deployment.

    The one answer to "which pipelines use this deployment" for the listing, the preview,
    the confirmation dialog and the approval card: the impact's when it was read, else
    `known` (a deployment stored before impacts were read)."""
    if impact is None:
        return tuple(known)
    return tuple(p.name for p in impact.pipelines)


def impact_changes(deployment_id: str, old: Impact | None, new: Impact | None) -> list[str]:
    """What appeared or went since the preview, one note each (none if either is unknown)."""
    if old is None or new is None:
        return []  # stored before impacts were read: the older fingerprint still applies
    notes: list[str] = []
    for label, before, after in (
        ("inference endpoint", _names(old.endpoints), _names(new.endpoints)),
        ("semantic_text", _fields(old), _fields(new)),
        ("ingest pipeline", _pipes(old), _pipes(new)),
    ):
        notes += [f"`{deployment_id}` now breaks {label} `{n}`" for n in sorted(after - before)]
        notes += [
            f"`{deployment_id}` no longer breaks {label} `{n}`" for n in sorted(before - after)
        ]
    if new.unknown and not old.unknown:
        notes.append(f"`{deployment_id}`: {'; '.join(new.unknown)}")
    return notes


def _names(uses: Iterable[EndpointUse]) -> set[str]:
    return {u.endpoint_id for u in uses}


def _fields(impact: Impact) -> set[str]:
    return {f"{s.index}.{s.path}" for s in impact.semantic}


def _pipes(impact: Impact) -> set[str]:
    # A pipeline that starts refusing the stop is a change too, so the flag is part of it.
    return {p.name + (" (refuses a plain stop)" if p.refuses else "") for p in impact.pipelines}


@dataclass(frozen=True)
class StartPlan:
    """What a start of one deployment id would do to inference endpoints."""

    model_known: bool  # False: no such model (or alias) on the cluster; offer no Start
    restores: tuple[Endpoint, ...] = ()  # endpoints on this deployment id: they come back
    elsewhere: tuple[Endpoint, ...] = ()  # endpoints of this model that stay down
    near: tuple[str, ...] = ()  # model ids close to an unknown one ("did you mean")


def plan_start(
    deployment_id: str,
    model_id: str,
    *,
    models: Iterable[str],
    running: Iterable[str],
    endpoints: Iterable[Endpoint],
) -> StartPlan:
    """Decide what starting `model_id` as `deployment_id` brings back (ES: redeploy the model
    under the endpoint id)."""
    up = set(running)
    endpoints = tuple(endpoints)
    restores = tuple(e for e in endpoints if e.deployment_id == deployment_id)
    elsewhere = tuple(
        e
        for e in endpoints
        if e.model_id == model_id and e.deployment_id != deployment_id and e.deployment_id not in up
    )
    known = set(models)
    near = () if model_id in known else nearest(model_id, known)
    return StartPlan(model_id in known, restores, elsewhere, near)


def follow_endpoint(
    start: StartSettings, endpoint: Endpoint | None, *, given: bool
) -> StartSettings:
    """The settings a start uses: the endpoint's own unless the person typed others."""
    if endpoint is None or given:
        return start
    if endpoint.adaptive_allocations:
        return StartSettings(
            None, endpoint.num_threads or start.threads, endpoint.adaptive_allocations
        )
    return StartSettings(
        endpoint.num_allocations or start.allocations, endpoint.num_threads or start.threads, None
    )


@dataclass(frozen=True)
class StartSettings:
    """Allocations, threads and adaptive allocations of a start."""

    allocations: int | None
    threads: int | None
    adaptive_allocations: dict[str, Any] | None = None


def start_impact(plan: StartPlan, previous: Impact | None) -> Impact | None:
    """What a start brings back: the endpoints on its id now, with their known semantic_text."""
    if not plan.restores:
        return None
    ids = {e.inference_id for e in plan.restores}
    semantic = tuple(s for s in (previous.semantic if previous else ()) if s.endpoint_id in ids)
    endpoints = tuple(EndpointUse(e.inference_id, e.created, e.task_type) for e in plan.restores)
    return Impact(endpoints=endpoints, semantic=semantic)
