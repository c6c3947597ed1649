"""`filter_path` over HTTP through the real client: the bot's filters keep what it reads."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from bot.adapters.elasticsearch.reads import ENDPOINT_FILTER, MAPPING_FILTER, MODELS_FILTER
from bot.core.impact import parse_endpoints, parse_semantic_fields
from bot.emulator import ClusterState, Emulator, demo_state
from bot.emulator.testing import ThreadedEmulator

ELSER = ".elser_model_2_linux-x86_64"


def _state() -> ClusterState:
    state = demo_state()
    # A nested semantic_text field with a search endpoint, and an endpoint on an existing
    # deployment, so every leaf the bot's filters keep occurs at least once.
    state.add_index(
        "kb",
        {
            "properties": {
                "title": {
                    "type": "text",
                    "analyzer": "english",
                    "fields": {"raw": {"type": "keyword", "ignore_above": 256}},
                },
                "body": {
                    "properties": {
                        "text": {
                            "type": "semantic_text",
                            "inference_id": "elser-endpoint",
                            "search_inference_id": "elser-endpoint",
                        }
                    }
                },
            }
        },
    )
    state.add_inference_endpoint(
        "elser-shared", "sparse_embedding", ELSER, deployment_id="elser-prod"
    )
    return state


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(_state())) as running:
        yield running


@pytest.fixture
def es(server: ThreadedEmulator) -> Iterator[Elasticsearch]:
    client = Elasticsearch(server.url)
    yield client
    client.close()


def _get(es: Elasticsearch, path: str, **params: Any) -> dict[str, Any]:
    """The request as the bot's gateway sends it (perform_request with list params)."""
    body = es.perform_request("GET", path, params=params).body
    assert isinstance(body, dict)
    return body


def _size(body: Any) -> int:
    return len(json.dumps(body, separators=(",", ":")))


def test_models_filter_keeps_ids_aliases_and_count(es: Elasticsearch) -> None:
    page = {"from": 0, "size": 100}
    full = _get(es, "/_ml/trained_models", **page)
    filtered = _get(es, "/_ml/trained_models", **page, filter_path=MODELS_FILTER)

    def project(cfg: dict[str, Any]) -> dict[str, Any]:
        aliases = cfg.get("metadata", {}).get("model_aliases")
        out: dict[str, Any] = {"model_id": cfg["model_id"]}
        return out | ({"metadata": {"model_aliases": aliases}} if aliases is not None else {})

    expected = {
        "count": full["count"],
        "trained_model_configs": [project(c) for c in full["trained_model_configs"]],
    }
    assert filtered == expected
    with_alias = [c for c in filtered["trained_model_configs"] if "metadata" in c]
    assert with_alias and all(c["metadata"]["model_aliases"] for c in with_alias)
    assert _size(filtered) < _size(full) / 3


def test_a_wrong_models_filter_loses_the_aliases(es: Elasticsearch) -> None:
    wrong = ["count", "trained_model_configs.model_id", "trained_model_configs.model_aliases"]
    body = _get(es, "/_ml/trained_models", filter_path=wrong)
    assert body["count"] > 0
    assert all(set(c) == {"model_id"} for c in body["trained_model_configs"])


def test_endpoint_filter_keeps_what_parse_endpoints_reads(es: Elasticsearch) -> None:
    full = _get(es, "/_inference/_all")
    filtered = _get(es, "/_inference/_all", filter_path=ENDPOINT_FILTER)
    keys = ("inference_id", "task_type", "service", "service_settings")
    assert filtered == {"endpoints": [{k: e[k] for k in keys if k in e} for e in full["endpoints"]]}
    assert len(parse_endpoints(full)) >= 2
    assert parse_endpoints(filtered) == parse_endpoints(full)
    assert _size(filtered) < _size(full)


def test_mapping_filter_keeps_every_semantic_text_field(es: Elasticsearch) -> None:
    full = _get(es, "/_mapping")
    filtered = _get(es, "/_mapping", filter_path=MAPPING_FILTER)
    fields = parse_semantic_fields(full)
    assert {(f.index, f.path) for f in fields} >= {
        ("kb", "body.text"),
        ("docs-semantic", "content"),
    }
    assert parse_semantic_fields(filtered) == fields
    kb = filtered["kb"]["mappings"]["properties"]
    assert kb["body"] == {
        "properties": {
            "text": {
                "type": "semantic_text",
                "inference_id": "elser-endpoint",
                "search_inference_id": "elser-endpoint",
            }
        }
    }
    assert kb["title"] == {"type": "text", "fields": {"raw": {"type": "keyword"}}}
    assert _size(filtered) < _size(full)


def test_empty_answers_filter_to_an_empty_object_that_parses_the_same() -> None:
    with ThreadedEmulator(Emulator(ClusterState())) as bare, Elasticsearch(bare.url) as es:
        full = _get(es, "/_inference/_all")
        filtered = _get(es, "/_inference/_all", filter_path=ENDPOINT_FILTER)
        assert full == {"endpoints": []}
        assert filtered == {}
        assert parse_endpoints(filtered) == parse_endpoints(full) == ()
        assert _get(es, "/_mapping", filter_path=MAPPING_FILTER) == {}


def test_error_bodies_are_not_filtered(es: Elasticsearch) -> None:
    with pytest.raises(NotFoundError) as missing:
        es.ml.get_trained_models(model_id="nope", filter_path="count")
    assert missing.value.body["error"]["root_cause"][0]["type"] == "resource_not_found_exception"
    assert missing.value.body["status"] == 404
    with pytest.raises(BadRequestError) as bad:
        es.perform_request("GET", "/_no_such_api", params={"filter_path": "x"})
    assert "no handler found" in bad.value.body["error"]


def test_filter_path_with_pretty_and_exclusions(server: ThreadedEmulator) -> None:
    url = server.url + "/?pretty&filter_path=version.number,-version.build*"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    assert json.loads(text) == {"version": {"number": "9.1.0"}}
    assert text.endswith("}\n") and "\n  " in text
    with urllib.request.urlopen(server.url + "/?filter_path=-version,-tagline", timeout=5) as resp:
        rest = json.loads(resp.read())
    assert "version" not in rest and "tagline" not in rest and rest["cluster_name"] == "ml-demo"
