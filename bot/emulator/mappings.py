"""Index mapping reads (`GET _mapping`, `GET <index>/_mapping`) and `semantic_text` fields.

The mappings themselves are stored by the document store (`documents.Index.mappings`, set by
`PUT <index>` or `ClusterState.add_index`). Reading them is the index action
`indices:admin/mappings/get`, granted by `view_index_metadata`, `manage` and `all` (not `read`:
ES IndexPrivilege VIEW_METADATA_AUTOMATON / MANAGE_AUTOMATON). Wildcards and `_all` expand
only to indices the caller may see; a named index it may not see is a 403.

`semantic_text` fields are found as ES's InferenceFieldMetadata finds them: at any depth of
object `properties`, with `inference_id` (default `.elser-2-elasticsearch` when left out,
inferred) and the optional `search_inference_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.emulator.documents import Documents, Index, index_denied, index_missing, may
from bot.emulator.routing import Call, Reply, Route

JSON = dict[str, Any]
ACTION_GET_MAPPINGS = "indices:admin/mappings/get"
VIEW_PRIVILEGES = "view_index_metadata,manage,all"
DEFAULT_SEMANTIC_INFERENCE_ID = ".elser-2-elasticsearch"


@dataclass(frozen=True)
class SemanticField:
    """One semantic_text field: its dotted path and the endpoints it uses."""

    path: str
    inference_id: str
    search_inference_id: str | None = None

    def uses(self, endpoint_id: str) -> bool:
        """SemanticTextInfoExtractor: inference_id or search_inference_id matches."""
        return endpoint_id in (self.inference_id, self.search_inference_id)


def semantic_fields(mappings: JSON) -> list[SemanticField]:
    """Every semantic_text field under `properties`, objects included, in mapping order."""
    found: list[SemanticField] = []
    _walk(mappings.get("properties") or {}, "", found)
    return found


def _walk(properties: JSON, prefix: str, found: list[SemanticField]) -> None:
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        path = f"{prefix}{name}"
        if spec.get("type") == "semantic_text":
            found.append(
                SemanticField(
                    path,
                    str(spec.get("inference_id") or DEFAULT_SEMANTIC_INFERENCE_ID),
                    spec.get("search_inference_id"),
                )
            )
        elif isinstance(spec.get("properties"), dict):
            _walk(spec["properties"], f"{path}.", found)


def indices_using_endpoint(documents: Documents, endpoint_id: str) -> list[str]:
    """Names of indices with a semantic_text field on the endpoint, sorted."""
    return sorted(
        name
        for name, index in documents.indices.items()
        if any(f.uses(endpoint_id) for f in semantic_fields(index.mappings))
    )


def _targets(call: Call, expression: str) -> list[Index]:
    """Indices a mapping read names: explicit names must exist and be visible (else 404/403);
    wildcards expand to the visible ones only."""
    docs = call.emulator.documents
    visible: dict[str, Index] = {}
    for part in [p for p in expression.split(",") if p] or ["_all"]:
        if part in ("_all", "*") or "*" in part:
            pattern = "*" if part == "_all" else part
            for index in docs.read_targets(None if pattern == "*" else pattern):
                if may(call, index.name, VIEW_PRIVILEGES):
                    visible[index.name] = index
            continue
        for index in docs.read_targets(part):
            if not may(call, index.name, VIEW_PRIVILEGES) and not may(call, part, VIEW_PRIVILEGES):
                raise index_denied(call, ACTION_GET_MAPPINGS, part, VIEW_PRIVILEGES)
            visible[index.name] = index
    return list(visible.values())


async def get_mapping(call: Call) -> Reply:
    """GET /_mapping and GET /<index>/_mapping: `{"<index>": {"mappings": {...}}}`."""
    expression = call.path_params.get("index", "_all")
    for name in ("allow_no_indices", "expand_wildcards", "ignore_unavailable", "local"):
        call.param(name)
    call.param("master_timeout")
    call.check_params()
    if expression.startswith("_") and expression != "_all":
        raise index_missing(expression)
    return 200, {i.name: {"mappings": i.mappings} for i in _targets(call, expression)}


def build_routes() -> list[Route]:
    """The mapping routes (real paths)."""
    return [
        Route("GET", "/_mapping", "indices.get_mapping", get_mapping),
        Route("GET", "/{index}/_mapping", "indices.get_mapping", get_mapping),
    ]
