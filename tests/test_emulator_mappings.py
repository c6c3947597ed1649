"""Emulator index mappings through the real client: `semantic_text` fields (nested too), the
index privileges that read them, and the inference-endpoint delete they block."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from elasticsearch import AuthorizationException, ConflictError, Elasticsearch, NotFoundError

from bot.emulator import ClusterState, Emulator
from bot.emulator.mappings import semantic_fields
from bot.emulator.testing import ThreadedEmulator

AUTH = ("elastic", "changeme")
ELSER = ".elser_model_2_linux-x86_64"
DOCS_MAPPINGS: dict[str, Any] = {
    "properties": {
        "title": {"type": "text"},
        "body": {"type": "semantic_text", "inference_id": "elser-endpoint"},
        "meta": {
            "properties": {
                "summary": {
                    "type": "semantic_text",
                    "inference_id": "ingest-endpoint",
                    "search_inference_id": "elser-endpoint",
                }
            }
        },
    }
}


def cluster() -> ClusterState:
    state = ClusterState()
    state.add_model(ELSER, inference_config={"text_expansion": {}}, created_by="_xpack")
    state.add_inference_endpoint("elser-endpoint", "sparse_embedding", ELSER)
    state.add_inference_endpoint("ingest-endpoint", "sparse_embedding", ELSER)
    state.add_role("docs-reader", indices=[{"names": ["docs*"], "privileges": ["read"]}])
    state.add_role(
        "docs-viewer", indices=[{"names": ["docs"], "privileges": ["view_index_metadata"]}]
    )
    state.add_user("reader", "reader-password", ["docs-reader"])
    state.add_user("viewer", "viewer-password", ["docs-viewer"])
    return state


@pytest.fixture
def maps() -> Iterator[tuple[Emulator, Elasticsearch, str]]:
    emulator = Emulator(cluster(), auth=AUTH)
    with ThreadedEmulator(emulator) as running:
        client = Elasticsearch(running.url, basic_auth=AUTH)
        client.indices.create(index="docs", mappings=DOCS_MAPPINGS)
        client.indices.create(index="logs", mappings={"properties": {"msg": {"type": "text"}}})
        yield emulator, client, running.url
        client.close()


def reason(exc: Any) -> str:
    return str(exc.body["error"]["root_cause"][0]["reason"])


def test_get_mapping_by_name_pattern_and_all(maps: tuple[Emulator, Elasticsearch, str]) -> None:
    _, es, _ = maps
    assert es.indices.get_mapping(index="docs").body == {"docs": {"mappings": DOCS_MAPPINGS}}
    assert list(es.indices.get_mapping(index="doc*")) == ["docs"]
    assert sorted(es.indices.get_mapping()) == ["docs", "logs"]
    assert sorted(es.indices.get_mapping(index="docs,logs")) == ["docs", "logs"]
    with pytest.raises(NotFoundError) as caught:
        es.indices.get_mapping(index="nope")
    assert caught.value.body["error"]["type"] == "index_not_found_exception"
    assert reason(caught.value) == "no such index [nope]"


def test_semantic_fields_are_found_inside_objects() -> None:
    found = [
        (f.path, f.inference_id, f.search_inference_id) for f in semantic_fields(DOCS_MAPPINGS)
    ]
    assert found == [
        ("body", "elser-endpoint", None),
        ("meta.summary", "ingest-endpoint", "elser-endpoint"),
    ]


def test_reading_mappings_needs_view_index_metadata(
    maps: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, _, url = maps
    with Elasticsearch(url, basic_auth=("reader", "reader-password")) as reader:
        with pytest.raises(AuthorizationException) as caught:
            reader.indices.get_mapping(index="docs")
        assert reason(caught.value) == (
            "action [indices:admin/mappings/get] is unauthorized for user [reader] with effective "
            "roles [docs-reader] on indices [docs], this action is granted by the index "
            "privileges [view_index_metadata,manage,all]"
        )
        # Wildcards only expand to what the caller may see.
        assert reader.indices.get_mapping().body == {}
    with Elasticsearch(url, basic_auth=("viewer", "viewer-password")) as viewer:
        assert list(viewer.indices.get_mapping(index="docs")) == ["docs"]
        assert list(viewer.indices.get_mapping()) == ["docs"]


def test_endpoint_used_by_a_semantic_text_field_cannot_be_deleted(
    maps: tuple[Emulator, Elasticsearch, str],
) -> None:
    emulator, es, _ = maps
    text = (
        " Inference endpoint elser-endpoint is being used in the mapping for indexes: [docs]. "
        "Ensure that no index mappings are using this inference endpoint, or use force to "
        "ignore this warning and delete the inference endpoint."
    )
    with pytest.raises(ConflictError) as caught:
        es.inference.delete(inference_id="elser-endpoint")
    assert reason(caught.value) == text
    dry = es.inference.delete(inference_id="elser-endpoint", dry_run=True)
    assert dry.body == {
        "acknowledged": False,
        "pipelines": [],
        "indexes": ["docs"],
        "error_message": text,
    }
    # search_inference_id counts too (SemanticTextInfoExtractor).
    with pytest.raises(ConflictError):
        es.inference.delete(inference_id="ingest-endpoint")
    assert es.inference.delete(inference_id="elser-endpoint", force=True)["acknowledged"] is True
    assert "elser-endpoint" not in emulator.state.deployments


def test_both_pipelines_and_indexes_in_one_message(
    maps: tuple[Emulator, Elasticsearch, str],
) -> None:
    _, es, _ = maps
    es.ingest.put_pipeline(id="p1", processors=[{"inference": {"model_id": "elser-endpoint"}}])
    with pytest.raises(ConflictError) as caught:
        es.inference.delete(inference_id="elser-endpoint")
    assert reason(caught.value) == (
        "Inference endpoint elser-endpoint is referenced by pipelines: [p1]. Ensure that no "
        "pipelines are using this inference endpoint, or use force to ignore this warning and "
        "delete the inference endpoint. Inference endpoint elser-endpoint is being used in the "
        "mapping for indexes: [docs]. Ensure that no index mappings are using this inference "
        "endpoint, or use force to ignore this warning and delete the inference endpoint."
    )


def test_state_seeds_indices_into_the_document_store() -> None:
    state = cluster()
    state.add_index("seeded", {"properties": {"f": {"type": "semantic_text"}}})
    emulator = Emulator(state, auth=AUTH)
    with ThreadedEmulator(emulator) as running, Elasticsearch(running.url, basic_auth=AUTH) as es:
        assert es.indices.get_mapping(index="seeded")["seeded"]["mappings"] == {
            "properties": {"f": {"type": "semantic_text"}}
        }
