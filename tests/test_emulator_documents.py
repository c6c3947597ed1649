"""Emulator document APIs through the real client: indices, data streams, _bulk, reads."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError

from bot.emulator import Emulator, demo_state
from bot.emulator.testing import ThreadedEmulator


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(demo_state())) as running:
        yield running


@pytest.fixture
def es(server: ThreadedEmulator) -> Iterator[Elasticsearch]:
    client = Elasticsearch(server.url)
    yield client
    client.close()


def doc(n: int, **extra: object) -> dict[str, object]:
    return {"@timestamp": f"2026-01-01T00:00:{n:02d}.000Z", "event": {"action": "stop"}, **extra}


def test_bulk_auto_creates_an_index_and_answers_per_item(es: Elasticsearch) -> None:
    ops = [{"create": {"_index": "audit", "_id": "e1"}}, doc(1), {"index": {"_index": "audit"}}]
    ops.append(doc(2))
    resp = es.bulk(operations=ops)
    assert resp["errors"] is False and isinstance(resp["took"], int)
    first, second = resp["items"]
    assert first["create"] == {
        "_index": "audit",
        "_id": "e1",
        "_version": 1,
        "result": "created",
        "_shards": {"total": 2, "successful": 1, "failed": 0},
        "_seq_no": 0,
        "_primary_term": 1,
        "status": 201,
    }
    assert second["index"]["status"] == 201 and len(second["index"]["_id"]) == 20
    assert es.count(index="audit")["count"] == 2
    assert es.indices.exists(index="audit")
    assert not es.indices.exists(index="nothing-here")


def test_bulk_partial_failure_is_200_with_item_errors(es: Elasticsearch) -> None:
    es.bulk(operations=[{"create": {"_index": "audit", "_id": "e1"}}, doc(1)])
    resp = es.bulk(
        operations=[
            {"create": {"_index": "audit", "_id": "e1"}},
            doc(1),
            {"create": {"_index": "audit", "_id": "e2"}},
            doc(2),
        ]
    )
    assert resp.meta.status == 200 and resp["errors"] is True
    conflict, created = (item["create"] for item in resp["items"])
    assert conflict["status"] == 409
    assert conflict["error"]["type"] == "version_conflict_engine_exception"
    assert conflict["error"]["reason"] == (
        "[e1]: version conflict, document already exists (current version [1])"
    )
    assert conflict["error"]["shard"] == "0" and conflict["error"]["index"] == "audit"
    assert created["status"] == 201
    assert es.count(index="audit")["count"] == 2


def test_injected_item_failures_hit_only_the_next_items(
    es: Elasticsearch, server: ThreadedEmulator
) -> None:
    armed = urllib.request.Request(
        server.url + "/_emulator/bulk_item_fail",
        data=json.dumps({"count": 1, "status": 429}).encode(),
        method="POST",
    )
    urllib.request.urlopen(armed).close()
    ops: list[dict[str, object]] = []
    for n in range(3):
        ops += [{"create": {"_index": "audit", "_id": f"e{n}"}}, doc(n)]
    items = [i["create"] for i in es.bulk(operations=ops)["items"]]
    assert [i["status"] for i in items] == [429, 201, 201]
    assert items[0]["error"]["type"] == "es_rejected_execution_exception"


def test_data_stream_needs_a_template_then_takes_only_creates(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.indices.create_data_stream(name="logs-audit-default")
    assert caught.value.body["error"]["reason"] == (
        "no matching index template found for data stream [logs-audit-default]"
    )
    es.indices.put_index_template(
        name="audit", index_patterns=["logs-audit-*"], data_stream={}, priority=500
    )
    assert es.indices.create_data_stream(name="logs-audit-default")["acknowledged"]
    with pytest.raises(BadRequestError) as again:
        es.indices.create_data_stream(name="logs-audit-default")
    assert again.value.body["error"]["type"] == "resource_already_exists_exception"
    stream = es.indices.get_data_stream(name="logs-audit-default")["data_streams"][0]
    backing = stream["indices"][0]["index_name"]
    assert backing.startswith(".ds-logs-audit-default-") and backing.endswith("-000001")
    resp = es.bulk(
        operations=[
            {"create": {"_index": "logs-audit-default", "_id": "a"}},
            doc(1),
            {"index": {"_index": "logs-audit-default", "_id": "b"}},
            doc(2),
            {"create": {"_index": "logs-audit-default", "_id": "c"}},
            {"no": "timestamp"},
        ]
    )
    ok, wrong_op, no_ts = (next(iter(i.values())) for i in resp["items"])
    assert ok["status"] == 201 and ok["_index"] == backing
    assert wrong_op["status"] == 400 and wrong_op["error"]["reason"] == (
        "only write ops with an op_type of create are allowed in data streams"
    )
    assert no_ts["status"] == 400 and no_ts["error"]["type"] == "document_parsing_exception"
    assert es.count(index="logs-audit-default")["count"] == 1


def test_bulk_into_a_data_stream_template_auto_creates_the_stream(es: Elasticsearch) -> None:
    es.indices.put_index_template(name="t", index_patterns=["logs-x-*"], data_stream={})
    es.bulk(operations=[{"create": {"_index": "logs-x-default", "_id": "a"}}, doc(1)])
    streams = es.indices.get_data_stream(name="logs-x-default")["data_streams"]
    assert [s["name"] for s in streams] == ["logs-x-default"]


def test_create_index_validates_the_name_and_refuses_duplicates(es: Elasticsearch) -> None:
    resp = es.indices.create(index="audit", mappings={"properties": {"a": {"type": "keyword"}}})
    assert resp.body == {"acknowledged": True, "shards_acknowledged": True, "index": "audit"}
    with pytest.raises(BadRequestError) as dup:
        es.indices.create(index="audit")
    assert dup.value.body["error"]["type"] == "resource_already_exists_exception"
    with pytest.raises(BadRequestError) as upper:
        es.indices.create(index="Audit")
    assert upper.value.body["error"]["reason"] == "Invalid index name [Audit], must be lowercase"
    got = es.indices.get(index="audit")
    assert got["audit"]["mappings"] == {"properties": {"a": {"type": "keyword"}}}


def test_single_document_apis(es: Elasticsearch) -> None:
    created = es.create(index="audit", id="x1", document=doc(1))
    assert created.meta.status == 201 and created["result"] == "created"
    with pytest.raises(ConflictError) as conflict:
        es.create(index="audit", id="x1", document=doc(1))
    assert conflict.value.body["error"]["type"] == "version_conflict_engine_exception"
    updated = es.index(index="audit", id="x1", document=doc(2))
    assert updated.meta.status == 200 and updated["_version"] == 2
    got = es.get(index="audit", id="x1")
    assert got["found"] is True and got["_source"] == doc(2)
    with pytest.raises(NotFoundError) as missing:
        es.get(index="audit", id="nope")
    assert missing.value.body == {"_index": "audit", "_id": "nope", "found": False}


def test_search_and_count_with_term_queries(es: Elasticsearch) -> None:
    ops: list[dict[str, object]] = []
    for n, action in enumerate(["stop", "confirm", "stop"]):
        ops += [{"create": {"_index": "audit", "_id": f"e{n}"}}, doc(n, event={"action": action})]
    es.bulk(operations=ops, refresh=True)
    query = {"term": {"event.action": "stop"}}
    assert es.count(index="audit", query=query)["count"] == 2
    hits = es.search(index="audit", query=query, sort=[{"@timestamp": "desc"}], size=1)["hits"]
    assert hits["total"] == {"value": 2, "relation": "eq"}
    assert [h["_id"] for h in hits["hits"]] == ["e2"]
    with pytest.raises(BadRequestError) as bad:
        es.search(index="audit", query={"fuzzy_thing": {}})
    assert bad.value.body["error"]["type"] == "parsing_exception"
    with pytest.raises(NotFoundError):
        es.count(index="missing")


def test_bulk_body_must_end_with_a_newline(server: ThreadedEmulator) -> None:
    request = urllib.request.Request(
        server.url + "/_bulk",
        data=b'{"create":{"_index":"a","_id":"1"}}\n{"x":1}',
        headers={"Content-Type": "application/x-ndjson"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    body = json.loads(caught.value.read())
    assert body["error"]["reason"] == "The bulk request must be terminated by a newline [\\n]"


def test_api_paths_are_not_indices(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.perform_request("GET", "/_nothing", headers={"accept": "application/json"})
    assert caught.value.body["error"] == "no handler found for uri [/_nothing] and method [GET]"
