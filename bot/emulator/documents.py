"""Document APIs the audit sink uses: indices, index templates, data streams, `_bulk`,
single-document writes, get, `_count` and `_search`, with Elasticsearch's response shapes.

Semantics kept: `_bulk` answers 200 with `errors` and one item per action (per-item
`status`, `error` objects for failures: 409 `version_conflict_engine_exception` for a
`create` of an existing id, 400 for a non-`create` write to a data stream or a data-stream
document without `@timestamp`, 403 per item without the index privilege); writes to a
missing target auto-create an index, or a data stream when a data-stream index template
matches; index names are validated. Simplified: one shard, documents are searchable at
once (`refresh` is accepted and ignored), mappings are stored but not enforced, queries
are `match_all`, `term`, `terms`, `ids` and `bool` (`filter`/`must`) on exact values.

Test interface: `POST /_emulator/bulk_item_fail {"count": N, "status": 429}` makes the next
N bulk items fail with that status's real error (429 `es_rejected_execution_exception`).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.errors import EsError, RawError, illegal_argument, validation_failed
from bot.emulator.faults import DEFAULT_ERRORS
from bot.emulator.privileges import glob_match
from bot.emulator.routing import Call, Reply, Route

if TYPE_CHECKING:
    from bot.emulator.server import Emulator

JSON = dict[str, Any]
SHARDS = {"total": 2, "successful": 1, "failed": 0}  # one primary, one unassigned replica
SEARCH_SHARDS = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
_BAD_CHARS = '\\/*?"<>| ,#:'
NDJSON_ENDPOINTS = frozenset({"bulk"})  # read their raw body: newline-delimited JSON
WRITE_PRIVILEGES = {
    "create": "create_doc,create,index,write,all",
    "index": "create,index,write,all",
    "delete": "delete,write,all",
    "update": "index,write,all",
}


@dataclass
class Index:
    """One index: its documents by id, versions and sequence numbers."""

    name: str
    mappings: JSON = field(default_factory=dict)
    settings: JSON = field(default_factory=dict)
    data_stream: str | None = None
    uuid: str = field(default_factory=lambda: secrets.token_urlsafe(16)[:22])
    created: int = field(default_factory=lambda: int(time.time() * 1000))
    docs: dict[str, JSON] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    seq_no: int = -1

    def write(self, doc_id: str, source: JSON) -> tuple[str, int, int]:
        """Store a document; (result, version, seq_no)."""
        result = "updated" if doc_id in self.docs else "created"
        self.docs[doc_id] = source
        self.versions[doc_id] = self.versions.get(doc_id, 0) + 1
        self.seq_no += 1
        return result, self.versions[doc_id], self.seq_no


@dataclass
class DataStream:
    """A data stream and its backing indices (the last one takes writes)."""

    name: str
    template: str
    indices: list[str] = field(default_factory=list)


@dataclass
class IndexTemplate:
    """A composable index template."""

    name: str
    index_patterns: list[str]
    data_stream: bool
    priority: int
    template: JSON


@dataclass
class Documents:
    """Everything the document APIs know; one per emulator."""

    indices: dict[str, Index] = field(default_factory=dict)
    data_streams: dict[str, DataStream] = field(default_factory=dict)
    templates: dict[str, IndexTemplate] = field(default_factory=dict)
    item_faults: list[list[int]] = field(default_factory=list)  # [[remaining, status], ...]

    def template_for(self, name: str) -> IndexTemplate | None:
        """The highest-priority template whose patterns match `name`."""
        matching = [
            t for t in self.templates.values() if any(glob_match(p, name) for p in t.index_patterns)
        ]
        return max(matching, key=lambda t: t.priority, default=None)

    def create_index(self, name: str, mappings: JSON | None, settings: JSON | None) -> Index:
        """Create an index (after validation); 400 if it exists."""
        validate_index_name(name)
        if name in self.indices or name in self.data_streams:
            existing = self.indices.get(name)
            raise EsError(
                400,
                "resource_already_exists_exception",
                f"index [{name}/{existing.uuid if existing else '_na_'}] already exists",
                extra={"index_uuid": existing.uuid if existing else "_na_", "index": name},
            )
        template = self.template_for(name)
        base = template.template if template and not template.data_stream else {}
        index = Index(
            name, mappings or base.get("mappings") or {}, settings or base.get("settings") or {}
        )
        self.indices[name] = index
        return index

    def create_data_stream(self, name: str) -> DataStream:
        """Create a data stream with its first backing index; needs a data-stream template."""
        validate_index_name(name)
        if name in self.data_streams:
            raise EsError(
                400, "resource_already_exists_exception", f"data_stream [{name}] already exists"
            )
        template = self.template_for(name)
        if template is None or not template.data_stream:
            raise illegal_argument(f"no matching index template found for data stream [{name}]")
        day = datetime.now(UTC).strftime("%Y.%m.%d")
        backing = Index(
            f".ds-{name}-{day}-000001",
            template.template.get("mappings") or {},
            template.template.get("settings") or {},
            data_stream=name,
        )
        self.indices[backing.name] = backing
        stream = DataStream(name, template.name, [backing.name])
        self.data_streams[name] = stream
        return stream

    def write_target(self, name: str) -> Index:
        """The index a write to `name` lands in, auto-creating it (or its data stream)."""
        if name in self.data_streams:
            return self.indices[self.data_streams[name].indices[-1]]
        if name in self.indices:
            return self.indices[name]
        template = self.template_for(name)
        if template is not None and template.data_stream:
            stream = self.create_data_stream(name)
            return self.indices[stream.indices[-1]]
        return self.create_index(name, None, None)

    def read_targets(self, expression: str | None) -> list[Index]:
        """Indices a read names (comma list, globs, data streams); 404 for a missing name."""
        if not expression or expression in ("_all", "*"):
            return [i for i in self.indices.values() if not i.name.startswith(".")] + [
                self.indices[n] for s in self.data_streams.values() for n in s.indices
            ]
        found: list[Index] = []
        for part in expression.split(","):
            if "*" in part:
                found += [i for n, i in self.indices.items() if glob_match(part, n)]
                for stream in self.data_streams.values():
                    if glob_match(part, stream.name):
                        found += [self.indices[n] for n in stream.indices]
            elif part in self.data_streams:
                found += [self.indices[n] for n in self.data_streams[part].indices]
            elif part in self.indices:
                found.append(self.indices[part])
            else:
                raise index_missing(part)
        return list({i.name: i for i in found}.values())

    def take_item_fault(self) -> int | None:
        """The status of an armed bulk item failure, consuming it."""
        for fault in self.item_faults:
            if fault[0] > 0:
                fault[0] -= 1
                return fault[1]
        return None


def validate_index_name(name: str) -> None:
    """MetadataCreateIndexService.validateIndexOrAliasName and the lowercase rule."""

    def invalid(why: str) -> EsError:
        return EsError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], {why}",
            extra={"index_uuid": "_na_", "index": name},
        )

    if any(c in name for c in _BAD_CHARS):
        raise invalid(f"must not contain the following characters {list(_BAD_CHARS)}")
    if name.startswith(("_", "-", "+")):
        raise invalid("must not start with '_', '-', or '+'")
    if name != name.lower():
        raise invalid("must be lowercase")
    if name in (".", ".."):
        raise invalid("must not be '.' or '..'")


def index_missing(name: str) -> EsError:
    """IndexNotFoundException."""
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        extra={
            "resource.type": "index_or_alias",
            "resource.id": name,
            "index_uuid": "_na_",
            "index": name,
        },
    )


def _docs(call: Call) -> Documents:
    return call.emulator.documents


def _no_handler(call: Call) -> RawError:
    return RawError(
        400,
        {
            "error": f"no handler found for uri [{call.uri}] and method [{call.method}]",
            "status": 400,
        },
    )


def _single_index(call: Call) -> str:
    name = call.path_params["index"]
    if name.startswith("_"):
        raise _no_handler(call)  # `/_something` is an API path, not an index
    return name


def may(call: Call, index: str, privileges: str) -> bool:
    """Whether the caller holds one of the comma-listed index privileges on `index`."""
    principal = call.principal
    if principal is None:
        return True
    security = call.emulator.security
    return any(security.index_privilege(principal, index, p) for p in privileges.split(","))


def index_denied(call: Call, action: str, index: str, privileges: str) -> EsError:
    """The 403 for an index action (AuthorizationDenialMessages, index variant)."""
    principal = call.principal
    assert principal is not None
    roles = ",".join(call.emulator.security.effective_roles(principal.roles))
    return EsError(
        403,
        "security_exception",
        f"action [{action}] is unauthorized for user [{principal.username}] with effective "
        f"roles [{roles}] on indices [{index}], this action is granted by the index "
        f"privileges [{privileges}]",
    )


# ---- indices, templates, data streams -----------------------------------------------------


async def create_index(call: Call) -> Reply:
    """PUT /<index>."""
    name = _single_index(call)
    call.param("wait_for_active_shards")
    call.param("timeout")
    call.param("master_timeout")
    call.check_params()
    if not may(call, name, "create_index,manage,all"):
        raise index_denied(call, "indices:admin/create", name, "create_index,manage,all")
    body = call.body or {}
    if not isinstance(body, dict):
        raise illegal_argument("request body must be an object")
    _docs(call).create_index(name, body.get("mappings"), body.get("settings"))
    return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}


async def index_exists(call: Call) -> Reply:
    """HEAD /<index>: 200 or 404 with no body (a data stream name counts)."""
    name = _single_index(call)
    call.check_params()
    docs = _docs(call)
    try:
        docs.read_targets(name)
    except EsError:
        raise RawError(404, None) from None
    return 200, None


async def get_index(call: Call) -> Reply:
    """GET /<index>: settings and mappings of each index the expression names."""
    name = _single_index(call)
    call.check_params()
    out: JSON = {}
    for index in _docs(call).read_targets(name):
        entry: JSON = {
            "aliases": {},
            "mappings": index.mappings,
            "settings": {
                "index": {
                    "creation_date": str(index.created),
                    "number_of_shards": "1",
                    "number_of_replicas": "1",
                    "uuid": index.uuid,
                    "provided_name": index.name,
                    **index.settings.get("index", {}),
                }
            },
        }
        if index.data_stream:
            entry["data_stream"] = index.data_stream
        out[index.name] = entry
    return 200, out


async def delete_index(call: Call) -> Reply:
    """DELETE /<index> (concrete indices only)."""
    name = _single_index(call)
    call.check_params()
    docs = _docs(call)
    if name in docs.data_streams:
        raise illegal_argument(
            f"index [{name}] is the write index for data stream [{name}] and cannot be deleted"
        )
    if name not in docs.indices:
        raise index_missing(name)
    del docs.indices[name]
    return 200, {"acknowledged": True}


async def put_index_template(call: Call) -> Reply:
    """PUT /_index_template/<name>."""
    call.param("create")
    call.param("master_timeout")
    call.authorize("indices:admin/index_template/put")
    body = call.body
    if not isinstance(body, dict) or not body.get("index_patterns"):
        raise validation_failed("index patterns are missing")
    patterns = body["index_patterns"]
    template = IndexTemplate(
        name=call.path_params["name"],
        index_patterns=[patterns] if isinstance(patterns, str) else list(patterns),
        data_stream=isinstance(body.get("data_stream"), dict),
        priority=int(body.get("priority") or 0),
        template=body.get("template") or {},
    )
    _docs(call).templates[template.name] = template
    return 200, {"acknowledged": True}


async def create_data_stream(call: Call) -> Reply:
    """PUT /_data_stream/<name>."""
    name = call.path_params["name"]
    call.param("master_timeout")
    call.param("timeout")
    call.check_params()
    if not may(call, name, "create_index,manage,all"):
        raise index_denied(
            call, "indices:admin/data_stream/create", name, "create_index,manage,all"
        )
    _docs(call).create_data_stream(name)
    return 200, {"acknowledged": True}


async def get_data_stream(call: Call) -> Reply:
    """GET /_data_stream/<name>."""
    name = call.path_params["name"]
    call.check_params()
    docs = _docs(call)
    names = [n for n in docs.data_streams if glob_match(name, n)] if "*" in name else [name]
    if "*" not in name and name not in docs.data_streams:
        raise index_missing(name)
    streams = []
    for stream_name in names:
        stream = docs.data_streams[stream_name]
        streams.append(
            {
                "name": stream.name,
                "timestamp_field": {"name": "@timestamp"},
                "indices": [
                    {"index_name": n, "index_uuid": docs.indices[n].uuid} for n in stream.indices
                ],
                "generation": len(stream.indices),
                "status": "YELLOW",
                "template": stream.template,
                "hidden": False,
                "system": False,
                "allow_custom_routing": False,
                "replicated": False,
            }
        )
    return 200, {"data_streams": streams}


# ---- writes -------------------------------------------------------------------------------


def _item_error(status: int, type_: str, reason: str, index: Index | None, name: str) -> JSON:
    error: JSON = {"type": type_, "reason": reason}
    if index is not None:
        error |= {"index_uuid": index.uuid, "shard": "0", "index": index.name}
    elif status != 403:
        error |= {"index_uuid": "_na_", "index": name}
    return error


def _write_one(call: Call, op: str, name: str, doc_id: str | None, source: Any) -> JSON:
    """One write as a bulk item result (status and either the result or an error)."""
    docs = _docs(call)
    item: JSON = {"_index": name, "_id": doc_id}
    privileges = WRITE_PRIVILEGES.get(op, "write,all")
    if not may(call, name, privileges):
        principal = call.principal
        assert principal is not None
        denied = index_denied(call, "indices:data/write/bulk[s]", name, privileges)
        return item | {
            "status": 403,
            "error": _item_error(403, "security_exception", str(denied.reason), None, name),
        }
    fault = docs.take_item_fault()
    if fault is not None:
        type_, reason = DEFAULT_ERRORS.get(fault, ("exception", "injected failure"))
        return item | {
            "status": fault,
            "error": _item_error(fault, type_, reason or type_, None, name),
        }
    try:
        index = docs.write_target(name)
    except EsError as exc:
        return item | {
            "status": exc.status,
            "error": _item_error(exc.status, exc.type, str(exc.reason), None, name),
        }
    item["_index"] = index.name
    if index.data_stream:
        if op not in ("create", "delete"):
            reason = "only write ops with an op_type of create are allowed in data streams"
            return item | {
                "status": 400,
                "error": _item_error(400, "illegal_argument_exception", reason, None, name),
            }
        if op == "create" and isinstance(source, dict) and "@timestamp" not in source:
            reason = "[1:2] failed to parse: data stream timestamp field [@timestamp] is missing"
            return item | {
                "status": 400,
                "error": _item_error(400, "document_parsing_exception", reason, index, name),
            }
    if op == "delete":
        assert doc_id is not None
        if doc_id not in index.docs:
            return item | {"_version": 1, "result": "not_found", "_shards": SHARDS, "status": 404}
        del index.docs[doc_id]
        index.seq_no += 1
        index.versions[doc_id] += 1
        return item | _written("deleted", index.versions[doc_id], index.seq_no, 200)
    if not isinstance(source, dict):
        return item | {
            "status": 400,
            "error": _item_error(
                400, "document_parsing_exception", "[1:1] failed to parse", index, name
            ),
        }
    if op == "update":
        assert doc_id is not None
        if doc_id not in index.docs:
            reason = f"[{doc_id}]: document missing"
            return item | {
                "status": 404,
                "error": _item_error(404, "document_missing_exception", reason, index, name),
            }
        merged = {**index.docs[doc_id], **(source.get("doc") or {})}
        _, version, seq = index.write(doc_id, merged)
        return item | _written("updated", version, seq, 200)
    doc_id = doc_id or _auto_id()
    item["_id"] = doc_id
    if op == "create" and doc_id in index.docs:
        reason = (
            f"[{doc_id}]: version conflict, document already exists "
            f"(current version [{index.versions[doc_id]}])"
        )
        return item | {
            "status": 409,
            "error": _item_error(409, "version_conflict_engine_exception", reason, index, name),
        }
    result, version, seq = index.write(doc_id, source)
    return item | _written(result, version, seq, 201 if result == "created" else 200)


def _written(result: str, version: int, seq_no: int, status: int) -> JSON:
    return {
        "_version": version,
        "result": result,
        "_shards": SHARDS,
        "_seq_no": seq_no,
        "_primary_term": 1,
        "status": status,
    }


def _auto_id() -> str:
    # Elasticsearch's auto ids are 20 URL-safe base64 characters (time-based UUIDs).
    return secrets.token_urlsafe(15)


def _parse_bulk(call: Call) -> list[tuple[str, JSON, Any]]:
    raw = call.raw_body
    if not raw.strip():
        raise validation_failed("no requests added")
    if not raw.endswith("\n"):
        raise illegal_argument("The bulk request must be terminated by a newline [\\n]")
    lines = raw.split("\n")[:-1]
    ops: list[tuple[str, JSON, Any]] = []
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            action = json.loads(lines[i])
        except ValueError:
            raise illegal_argument(
                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT"
            ) from None
        if not isinstance(action, dict) or len(action) != 1:
            raise illegal_argument(
                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT or END_OBJECT"
                " but found [VALUE_STRING]"
            )
        ((op, meta),) = action.items()
        if op not in ("index", "create", "update", "delete"):
            raise illegal_argument(
                f"Action/metadata line [{i + 1}] contains an unknown parameter [{op}]"
            )
        if op == "delete":
            ops.append((op, meta, None))
            i += 1
            continue
        if i + 1 >= len(lines):
            raise validation_failed("no requests added")  # an action without its source
        try:
            source = json.loads(lines[i + 1])
        except ValueError:
            source = None
        ops.append((op, meta, source))
        i += 2
    return ops


async def bulk(call: Call) -> Reply:
    """POST|PUT /_bulk and /<index>/_bulk: newline-delimited actions, one item per action."""
    started = time.monotonic()
    default_index = call.path_params.get("index")
    call.param("refresh")
    call.param("timeout")
    call.param("wait_for_active_shards")
    call.param("pipeline")
    call.param("routing")
    call.param("require_alias")
    call.param("require_data_stream")
    call.check_params()
    items = []
    for op, meta, source in _parse_bulk(call):
        name = meta.get("_index") or default_index
        if not name:
            raise validation_failed("index is missing")
        doc_id = meta.get("_id")
        if op in ("update", "delete") and not doc_id:
            raise validation_failed("id is missing")
        items.append({op: _write_one(call, op, str(name), doc_id, source)})
    errors = any("error" in next(iter(item.values())) for item in items)
    took = int((time.monotonic() - started) * 1000)
    return 200, {"errors": errors, "took": took, "items": items}


def _single_write(call: Call, op: str, doc_id: str | None) -> Reply:
    name = _single_index(call)
    call.param("refresh")
    call.param("timeout")
    call.param("routing")
    call.param("pipeline")
    call.param("wait_for_active_shards")
    op_type = call.param("op_type")
    if op_type is not None:
        if op_type not in ("index", "create"):
            raise illegal_argument(f"opType must be 'create' or 'index', found: [{op_type}]")
        op = op_type
    call.check_params()
    if call.body is None:
        raise validation_failed("source is missing", "content type is missing")
    item = _write_one(call, op, name, doc_id, call.body)
    status = int(item.pop("status"))
    if "error" in item:
        error = item["error"]
        raise EsError(
            status,
            error["type"],
            error["reason"],
            extra={k: v for k, v in error.items() if k not in ("type", "reason")},
        )
    return status, item


async def index_doc(call: Call) -> Reply:
    """POST /<index>/_doc and PUT|POST /<index>/_doc/<id>."""
    return _single_write(call, "index", call.path_params.get("id"))


async def create_doc(call: Call) -> Reply:
    """PUT|POST /<index>/_create/<id>."""
    return _single_write(call, "create", call.path_params["id"])


async def get_doc(call: Call) -> Reply:
    """GET /<index>/_doc/<id>."""
    name = _single_index(call)
    call.param("realtime")
    call.param("refresh")
    call.check_params()
    doc_id = call.path_params["id"]
    targets = _docs(call).read_targets(name)
    for index in targets:
        if doc_id in index.docs:
            return 200, {
                "_index": index.name,
                "_id": doc_id,
                "_version": index.versions[doc_id],
                "_seq_no": index.seq_no,
                "_primary_term": 1,
                "found": True,
                "_source": index.docs[doc_id],
            }
    return 404, {"_index": targets[0].name if targets else name, "_id": doc_id, "found": False}


# ---- reads --------------------------------------------------------------------------------


def _field(doc: JSON, path: str) -> Any:
    if path in doc:
        return doc[path]
    value: Any = doc
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _equals(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, list):
        return any(_equals(a, wanted) for a in actual)
    return actual == wanted or str(actual) == str(wanted)


def _matcher(query: Any) -> Any:
    """A predicate over (doc id, source) for the supported query subset."""
    if query is None:
        return lambda _id, _doc: True
    if not isinstance(query, dict) or len(query) != 1:
        raise EsError(
            400, "parsing_exception", "[_na] query malformed, no start_object after query name"
        )
    ((kind, spec),) = query.items()
    if kind == "match_all":
        return lambda _id, _doc: True
    if kind in ("term", "match"):
        ((path, wanted),) = spec.items()
        if isinstance(wanted, dict):
            wanted = wanted.get("value", wanted.get("query"))
        return lambda _id, doc: _equals(_field(doc, path), wanted)
    if kind == "terms":
        ((path, values),) = spec.items()
        return lambda _id, doc: any(_equals(_field(doc, path), v) for v in values)
    if kind == "ids":
        ids = set(spec.get("values") or [])
        return lambda doc_id, _doc: doc_id in ids
    if kind == "bool":
        clauses = [
            _matcher(c)
            for key in ("filter", "must")
            for c in (spec.get(key) if isinstance(spec.get(key), list) else [spec.get(key)])
            if c is not None
        ]
        return lambda doc_id, doc: all(m(doc_id, doc) for m in clauses)
    raise EsError(400, "parsing_exception", f"unknown query [{kind}]", extra={"line": 1, "col": 12})


def _hits(call: Call) -> list[tuple[Index, str, JSON]]:
    body = call.body if isinstance(call.body, dict) else {}
    name = call.path_params.get("index")
    if name is not None and name.startswith("_") and name != "_all":
        raise _no_handler(call)
    match = _matcher(body.get("query"))
    return [
        (index, doc_id, doc)
        for index in _docs(call).read_targets(name)
        for doc_id, doc in index.docs.items()
        if match(doc_id, doc)
    ]


async def count(call: Call) -> Reply:
    """GET|POST /_count and /<index>/_count."""
    call.check_params()
    return 200, {"count": len(_hits(call)), "_shards": SEARCH_SHARDS}


async def search(call: Call) -> Reply:
    """GET|POST /_search and /<index>/_search (size, from, sort by one field)."""
    started = time.monotonic()
    size = call.int_param("size", None)
    offset = call.int_param("from", None)
    call.param("track_total_hits")
    call.check_params()
    body = call.body if isinstance(call.body, dict) else {}
    size = size if size is not None else int(body.get("size", 10))
    offset = offset if offset is not None else int(body.get("from", 0))
    hits = _hits(call)
    sort = body.get("sort")
    if sort:
        spec = sort[0] if isinstance(sort, list) else sort
        path, order = (spec, "asc") if isinstance(spec, str) else next(iter(spec.items()))
        direction = order.get("order", "asc") if isinstance(order, dict) else order
        hits.sort(key=lambda h: str(_field(h[2], path)), reverse=direction == "desc")
    page = hits[offset : offset + size]
    return 200, {
        "took": int((time.monotonic() - started) * 1000),
        "timed_out": False,
        "_shards": SEARCH_SHARDS,
        "hits": {
            "total": {"value": len(hits), "relation": "eq"},
            "max_score": 1.0 if page and not sort else None,
            "hits": [
                {
                    "_index": index.name,
                    "_id": doc_id,
                    "_score": None if sort else 1.0,
                    "_source": doc,
                }
                for index, doc_id, doc in page
            ],
        },
    }


# ---- registration -------------------------------------------------------------------------


def build_routes() -> list[Route]:
    """The document routes (real paths and methods)."""
    r = Route
    routes = [
        r("PUT", "/{index}", "indices.create", create_index, body=True),
        r("HEAD", "/{index}", "indices.exists", index_exists),
        r("GET", "/{index}", "indices.get", get_index),
        r("DELETE", "/{index}", "indices.delete", delete_index),
        r(
            "PUT",
            "/_index_template/{name}",
            "indices.put_index_template",
            put_index_template,
            body=True,
        ),
        r(
            "POST",
            "/_index_template/{name}",
            "indices.put_index_template",
            put_index_template,
            body=True,
        ),
        r("PUT", "/_data_stream/{name}", "indices.create_data_stream", create_data_stream),
        r("GET", "/_data_stream/{name}", "indices.get_data_stream", get_data_stream),
        r("POST", "/{index}/_doc", "index", index_doc, body=True),
        r("GET", "/{index}/_doc/{id}", "get", get_doc),
    ]
    for method in ("PUT", "POST"):
        routes += [
            r(method, "/_bulk", "bulk", bulk, body=True),
            r(method, "/{index}/_bulk", "bulk", bulk, body=True),
            r(method, "/{index}/_doc/{id}", "index", index_doc, body=True),
            r(method, "/{index}/_create/{id}", "create", create_doc, body=True),
        ]
    for method in ("GET", "POST"):
        routes += [
            r(method, "/_count", "count", count, body=True),
            r(method, "/{index}/_count", "count", count, body=True),
            r(method, "/_search", "search", search, body=True),
            r(method, "/{index}/_search", "search", search, body=True),
        ]
    return routes


def admin_routes(emulator: Emulator) -> list[web.RouteDef]:
    """`/_emulator/bulk_item_fail` and `/_emulator/documents` (a dump, for debugging tests)."""

    async def bulk_item_fail(request: web.Request) -> web.Response:
        body = json.loads(await request.text() or "{}")
        rule = [int(body.get("count", 1)), int(body.get("status", 429))]
        emulator.documents.item_faults.append(rule)
        return web.json_response({"armed": {"count": rule[0], "status": rule[1]}})

    async def dump(request: web.Request) -> web.Response:
        docs = emulator.documents
        return web.json_response(
            {
                "indices": {
                    n: {"data_stream": i.data_stream, "count": len(i.docs)}
                    for n, i in docs.indices.items()
                },
                "data_streams": {n: s.indices for n, s in docs.data_streams.items()},
                "templates": sorted(docs.templates),
            }
        )

    return [
        web.post("/_emulator/bulk_item_fail", bulk_item_fail),
        web.get("/_emulator/documents", dump),
    ]
