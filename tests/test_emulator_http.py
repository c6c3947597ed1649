"""Emulator HTTP surface through the real client: product header, media types, routing errors."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator, Iterator

import pytest
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    BadRequestError,
    Elasticsearch,
    NotFoundError,
)

from bot.emulator import Emulator, demo_state
from bot.emulator.testing import ThreadedEmulator

JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(demo_state())) as running:
        yield running


@pytest.fixture
def es(server: ThreadedEmulator) -> Iterator[Elasticsearch]:
    client = Elasticsearch(server.url)
    yield client
    client.close()


def raw(
    url: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A plain urllib request, to see exact headers and bodies."""
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_cluster_info(es: Elasticsearch) -> None:
    info = es.info()
    assert info["version"]["number"] == "9.1.0"
    assert info["version"]["build_flavor"] == "default"
    assert info["version"]["minimum_wire_compatibility_version"] == "8.19.0"
    assert info["tagline"] == "You Know, for Search"
    assert info["cluster_name"] == "ml-demo"
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"


def test_compat_media_type_is_echoed(server: ThreadedEmulator) -> None:
    compat = "application/vnd.elasticsearch+json; compatible-with=9"
    status, headers, _ = raw(server.url + "/", headers={"Accept": compat})
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.elasticsearch+json;compatible-with=9"
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    status, headers, _ = raw(server.url + "/", headers={"Accept": "application/json"})
    assert headers["Content-Type"] == "application/json"


def test_product_header_on_errors_too(server: ThreadedEmulator) -> None:
    status, headers, body = raw(server.url + "/_ml/trained_models/nope/_stats")
    assert status == 404
    assert headers["X-Elastic-Product"] == "Elasticsearch"
    assert json.loads(body)["error"]["root_cause"][0]["type"] == "resource_not_found_exception"


def test_wrong_compat_version_is_rejected() -> None:
    with ThreadedEmulator(Emulator(version="8.15.0")) as old:
        status, _, body = raw(
            old.url + "/",
            headers={"Accept": "application/vnd.elasticsearch+json; compatible-with=9"},
        )
    error = json.loads(body)["error"]
    assert status == 400
    assert error["type"] == "media_type_header_exception"
    assert error["caused_by"]["reason"].startswith(
        "Accept version must be either version 8 or 7, but found 9."
    )


def test_wrong_method_is_405_with_string_error(es: Elasticsearch) -> None:
    with pytest.raises(ApiError) as caught:
        es.perform_request("GET", "/_ml/trained_models/x/deployment/_stop", headers=JSON_HEADERS)
    assert caught.value.status_code == 405
    assert caught.value.body == {
        "error": "Incorrect HTTP method for uri [/_ml/trained_models/x/deployment/_stop] and "
        "method [GET], allowed: [POST]",
        "status": 405,
    }
    assert caught.value.meta.headers["allow"] == "POST"


def test_unknown_path_is_400_no_handler(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.perform_request("GET", "/_ml/nothing/here", headers=JSON_HEADERS)
    assert caught.value.body == {
        "error": "no handler found for uri [/_ml/nothing/here] and method [GET]",
        "status": 400,
    }


def test_single_segment_path_is_get_index(es: Elasticsearch) -> None:
    with pytest.raises(NotFoundError) as caught:
        es.perform_request("GET", "/my-index", headers=JSON_HEADERS)
    assert caught.value.body["error"]["reason"] == "no such index [my-index]"


def test_body_on_bodyless_endpoint(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.perform_request("GET", "/_ml/trained_models/_stats", body={"a": 1}, headers=JSON_HEADERS)
    assert str(caught.value.body["error"]["reason"]) == (
        "request [GET /_ml/trained_models/_stats] does not support having a body"
    )


def test_unknown_query_param(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as caught:
        es.perform_request(
            "GET",
            "/_ml/trained_models/_stats",
            params={"allow_no_matches": "true"},
            headers=JSON_HEADERS,
        )
    assert caught.value.body["error"]["reason"] == (
        "request [/_ml/trained_models/_stats] contains unrecognized parameter: "
        "[allow_no_matches] -> did you mean [allow_no_match]?"
    )


def test_request_log_records_everything(server: ThreadedEmulator, es: Elasticsearch) -> None:
    server.emulator.requests.clear()
    es.options(opaque_id="trace-42").ml.get_trained_models_stats(
        model_id="elser-*", allow_no_match=False
    )
    _, _, body = raw(server.url + "/_emulator/requests")
    log = json.loads(body)
    assert len(log) == 1  # admin requests are not logged
    entry = log[0]
    assert entry["method"] == "GET"
    assert entry["path"] == "/_ml/trained_models/elser-*/_stats"
    assert entry["query"] == {"allow_no_match": "false"}
    assert entry["status"] == 200
    assert entry["endpoint"] == "ml.stats"
    assert entry["headers"]["x-opaque-id"] == "trace-42"
    assert entry["principal"] is None
    raw(server.url + "/_emulator/requests", method="DELETE")
    assert server.emulator.requests == []


async def test_async_client_info_and_stats() -> None:
    emulator = Emulator(demo_state())
    url = await emulator.start()
    client = AsyncElasticsearch(url)
    try:
        info = await client.info()
        assert info["version"]["number"] == "9.1.0"
        stats = await client.ml.get_trained_models_stats(model_id="_all")
        assert stats["count"] == 6
    finally:
        await client.close()
        await emulator.stop()


@pytest.fixture
async def async_es() -> AsyncIterator[tuple[Emulator, AsyncElasticsearch]]:
    emulator = Emulator(demo_state())
    url = await emulator.start()
    client = AsyncElasticsearch(url)
    yield emulator, client
    await client.close()
    await emulator.stop()


async def test_opaque_id_echoed(async_es: tuple[Emulator, AsyncElasticsearch]) -> None:
    _, client = async_es
    resp = await client.options(opaque_id="abc").info()
    assert resp.meta.headers["x-opaque-id"] == "abc"


def test_ping_uses_head(es: Elasticsearch) -> None:
    assert es.ping() is True
