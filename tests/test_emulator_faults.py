"""Emulator faults, ingest pipelines, state files and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    NotFoundError,
    SerializationError,
)

from bot.emulator import Emulator, demo_state, dump_state, load_state
from bot.emulator import server as emulator_server
from bot.emulator.demo import SENTIMENT
from bot.emulator.testing import ThreadedEmulator

ROOT = Path(__file__).resolve().parents[1]


def admin(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url + path,
        method="POST",
        data=json.dumps(body or {}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


@pytest.fixture
def server() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(Emulator(demo_state())) as running:
        yield running


def test_fail_503_exhausts_client_retries(server: ThreadedEmulator) -> None:
    admin(server.url, "/_emulator/fail", {"count": 4, "status": 503, "endpoint": "ml.stop"})
    es = Elasticsearch(server.url)
    with pytest.raises(ApiError) as caught:
        es.ml.stop_trained_model_deployment(model_id="ner-prod")
    assert caught.value.status_code == 503
    assert caught.value.body == {
        "error": {
            "root_cause": [{"type": "master_not_discovered_exception", "reason": None}],
            "type": "master_not_discovered_exception",
            "reason": None,
        },
        "status": 503,
    }
    assert [r.status for r in server.emulator.stop_calls("ner-prod")] == [503] * 4
    assert "ner-prod" in server.emulator.state.deployments
    assert es.ml.stop_trained_model_deployment(model_id="ner-prod") == {"stopped": True}


def test_fail_is_retried_transparently_when_short(server: ThreadedEmulator) -> None:
    admin(server.url, "/_emulator/fail", {"count": 2, "status": 429})
    assert Elasticsearch(server.url).info()["tagline"] == "You Know, for Search"
    assert [r.status for r in server.emulator.requests] == [429, 429, 200]


def test_fail_429_circuit_breaker_and_500(server: ThreadedEmulator) -> None:
    es = Elasticsearch(server.url, max_retries=0)
    admin(
        server.url,
        "/_emulator/fail",
        {"count": 1, "status": 429, "type": "circuit_breaking_exception"},
    )
    with pytest.raises(ApiError) as caught:
        es.ml.get_trained_models_stats()
    assert caught.value.body["error"]["type"] == "circuit_breaking_exception"
    assert caught.value.body["error"]["durability"] == "PERMANENT"
    admin(server.url, "/_emulator/fail", {"count": 1, "status": 500, "endpoint": "ml.*"})
    with pytest.raises(ApiError) as caught:
        es.ml.get_trained_models_stats()
    assert (caught.value.status_code, caught.value.body["error"]["type"]) == (500, "exception")


class RecordedSleeps:
    """`asyncio` for the emulator's server module, with a sleep that records and returns."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        await asyncio.sleep(0)


def test_latency_and_reset(server: ThreadedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # A controllable clock instead of a stopwatch: the injected latency is what the emulator
    # sleeps before answering, recorded rather than waited.
    clock = RecordedSleeps()
    monkeypatch.setattr(emulator_server, "asyncio", clock)
    es = Elasticsearch(server.url)
    admin(server.url, "/_emulator/latency", {"endpoint": "ml.stats", "seconds": 0.3})
    es.ml.get_trained_models_stats()
    es.info()  # another endpoint: no latency
    assert clock.slept == [0.3]
    admin(server.url, "/_emulator/reset")
    es.ml.get_trained_models_stats()
    assert clock.slept == [0.3]  # nothing more after the reset


def test_latency_hits_the_client_timeout(server: ThreadedEmulator) -> None:
    admin(server.url, "/_emulator/latency", {"endpoint": "*", "seconds": 0.5})
    es = Elasticsearch(server.url, request_timeout=0.1, max_retries=0)
    with pytest.raises(ConnectionTimeout):
        es.info()


async def test_drop_closes_the_connection() -> None:
    emulator = Emulator(demo_state())
    url = await emulator.start()
    es = AsyncElasticsearch(url, max_retries=0)
    try:
        async with aiohttp.ClientSession() as session:
            await session.post(url + "/_emulator/drop", json={"count": 1, "endpoint": "ml.stop"})
        # The client's first request opens a fresh connection, so aiohttp does not resend it.
        with pytest.raises(ConnectionError):
            await es.ml.stop_trained_model_deployment(model_id="ner-prod")
        assert all(r.status is None for r in emulator.stop_calls())
        assert await es.ml.stop_trained_model_deployment(model_id="ner-prod") == {"stopped": True}
    finally:
        await es.close()
        await emulator.stop()


# ---- ingest pipelines ------------------------------------------------------------------------


@pytest.fixture
async def async_es() -> AsyncIterator[AsyncElasticsearch]:
    emulator = Emulator(demo_state())
    url = await emulator.start()
    client = AsyncElasticsearch(url)
    yield client
    await client.close()
    await emulator.stop()


async def test_get_pipeline_forms(async_es: AsyncElasticsearch) -> None:
    one = await async_es.ingest.get_pipeline(id="elser-ingest")
    assert list(one) == ["elser-ingest"]
    assert one["elser-ingest"]["processors"][0]["inference"]["model_id"] == "elser-prod"
    assert set(await async_es.ingest.get_pipeline(id="elser-*,ner-enrich")) == {
        "elser-ingest",
        "ner-enrich",
    }
    assert len(await async_es.ingest.get_pipeline()) == 4
    assert set(await async_es.ingest.get_pipeline(id="elser-ingest,missing")) == {"elser-ingest"}
    summary = await async_es.ingest.get_pipeline(id="ner-enrich", summary=True)
    assert summary == {"ner-enrich": {}}


async def test_missing_pipeline_is_404_empty_body(async_es: AsyncElasticsearch) -> None:
    with pytest.raises(NotFoundError) as caught:
        await async_es.ingest.get_pipeline(id="missing")
    assert caught.value.body == {}
    with pytest.raises(NotFoundError):
        await async_es.ingest.get_pipeline(id="nope*")


async def test_put_and_delete_pipeline(async_es: AsyncElasticsearch) -> None:
    await async_es.ingest.put_pipeline(id="new", processors=[{"inference": {"model_id": "x"}}])
    assert "new" in await async_es.ingest.get_pipeline(id="new")
    assert (await async_es.ingest.delete_pipeline(id="new"))["acknowledged"] is True
    with pytest.raises(NotFoundError) as caught:
        await async_es.ingest.delete_pipeline(id="new")
    assert caught.value.body["error"]["reason"] == "pipeline [new] is missing"


async def test_demo_state_shape(async_es: AsyncElasticsearch) -> None:
    stats = await async_es.ml.get_trained_models_stats(model_id=".elser_model_2_linux-x86_64")
    assert stats["count"] == 1
    deployments = [s["deployment_stats"]["deployment_id"] for s in stats["trained_model_stats"]]
    # elser-endpoint is the deployment the demo's ELSER inference endpoint started.
    assert deployments == ["elser-endpoint", "elser-prod", "elser-search"]
    assert all(s["deployment_stats"]["inference_count"] > 0 for s in stats["trained_model_stats"])
    low = await async_es.ml.get_trained_models_stats(model_id="sentiment-batch")
    assert low["trained_model_stats"][0]["deployment_stats"]["priority"] == "low"
    with pytest.raises(ApiError) as caught:
        await async_es.ml.stop_trained_model_deployment(model_id=SENTIMENT)
    assert caught.value.body["error"]["reason"] == (
        f"Cannot stop deployment [{SENTIMENT}] as it has a model_alias [sentiment-current] that "
        "is still referenced by ingest processors; use force to stop the deployment"
    )
    # Aliases are looked up by the deployment id as a model id, so `ner-prod` is not blocked
    # by the pipeline that uses the NER model's alias.
    assert await async_es.ml.stop_trained_model_deployment(model_id="ner-prod") == {"stopped": True}


# ---- state files and the command line ---------------------------------------------------------


DATA_YAML = """
cluster_name: from-file
models:
  - {model_id: my-ner, description: NER, inference_config: {ner: {}}}
  - {model_id: idle}
deployments:
  - {model_id: my-ner, deployment_id: ner-a, number_of_allocations: 2, inference_count: 7,
     priority: normal, cache_size: 10mb}
aliases: {ner-now: my-ner}
pipelines:
  p1: {processors: [{inference: {model_id: ner-a}}]}
roles:
  ops: {cluster: [manage_ml]}
users:
  bot: {password: bot-password, roles: [ops]}
api_keys:
  - {owner: bot, name: bot-key, id: key1, api_key: secret-value}
"""


def test_load_state_yaml_and_json_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(DATA_YAML)
    state = load_state(path)
    assert state.cluster_name == "from-file"
    assert state.deployments["ner-a"].inference_count == 7
    assert state.aliases == {"ner-now": "my-ner"}
    as_json = tmp_path / "state.json"
    as_json.write_text(json.dumps(dump_state(state)))
    again = load_state(as_json)
    assert again.deployments["ner-a"].number_of_allocations == 2
    assert again.api_keys["key1"].owner == "bot"
    with ThreadedEmulator(Emulator(again, auth=("elastic", "pw-elastic"))) as running:
        es = Elasticsearch(running.url, api_key=("key1", "secret-value"))
        assert es.security.has_privileges(cluster=["manage_ml"])["has_all_requested"] is True
        with pytest.raises(ApiError) as caught:
            es.ml.stop_trained_model_deployment(model_id="ner-a")
        assert caught.value.status_code == 409


def run_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    # Port 0 and the URL the emulator prints: no race with other processes for a free port.
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.emulator", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, line
    return proc, line.rsplit(" ", 1)[-1].strip()


def test_cli_demo_serves() -> None:
    proc, url = run_cli("--demo", "--auth", "elastic:changeme")
    try:
        es = Elasticsearch(url, basic_auth=("elastic", "changeme"))
        assert es.info()["version"]["number"] == "9.1.0"
        assert es.ml.get_trained_models_stats(model_id="elser-prod")["count"] == 1
        viewer = Elasticsearch(url, basic_auth=("viewer", "viewer-password"))
        assert viewer.security.has_privileges(cluster=["manage_ml"])["has_all_requested"] is False
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_cli_data_file(tmp_path: Path) -> None:
    path = tmp_path / "state.yaml"
    path.write_text(DATA_YAML)
    proc, url = run_cli("--data", str(path), "--version", "9.0.0")
    try:
        es = Elasticsearch(url)
        assert es.info()["version"]["number"] == "9.0.0"
        stats = es.ml.get_trained_models_stats(model_id="ner-a")
        assert stats["trained_model_stats"][0]["deployment_stats"]["cache_size"] == "10mb"
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_places_new_allocations_over_time() -> None:
    proc, url = run_cli("--demo", "--placement-seconds", "0.05")
    try:
        es = Elasticsearch(url)
        answer = es.ml.update_trained_model_deployment(model_id="ner-prod", number_of_allocations=3)
        routes = answer["assignment"]["routing_table"]
        assert [r["current_allocations"] for r in routes.values()] == [1]
        deadline = time.monotonic() + 20  # a bound on waiting, not a timing assertion
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            stats = es.ml.get_trained_models_stats(model_id="ner-prod")["trained_model_stats"]
            status = stats[0]["deployment_stats"]["allocation_status"]
            if status["state"] == "fully_allocated":
                break
            time.sleep(0.05)
        assert status == {
            "allocation_count": 3,
            "target_allocation_count": 3,
            "state": "fully_allocated",
        }
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_respond_answers_a_status_body_and_content_type_of_the_tests_choosing(
    server: ThreadedEmulator,
) -> None:
    es = Elasticsearch(server.url, max_retries=0)
    page = "<html><body>proxy</body></html>"
    admin(
        server.url,
        "/_emulator/respond",
        {"endpoint": "ml.stats", "body": page, "content_type": "text/html", "count": 1},
    )
    assert es.ml.get_trained_models_stats().body == page
    admin(server.url, "/_emulator/respond", {"endpoint": "ml.stats", "body": "[1, 2]"})
    assert es.ml.get_trained_models_stats().body == [1, 2]
    admin(server.url, "/_emulator/respond", {"endpoint": "ml.stats", "body": '{"count": 1'})
    with pytest.raises(SerializationError):
        es.ml.get_trained_models_stats()
    admin(
        server.url,
        "/_emulator/respond",
        {"endpoint": "ml.stats", "status": 502, "body": page, "content_type": "text/html"},
    )
    with pytest.raises(ApiError) as caught:
        es.ml.get_trained_models_stats()
    assert caught.value.status_code == 502
    # Used up: the next answer is the real one.
    assert es.ml.get_trained_models_stats()["count"] > 0


def test_respond_handled_runs_the_request_and_replaces_only_its_answer(
    server: ThreadedEmulator,
) -> None:
    es = Elasticsearch(server.url, max_retries=0)
    admin(
        server.url,
        "/_emulator/respond",
        {"endpoint": "ml.stop", "body": "<html/>", "content_type": "text/html", "handled": True},
    )
    assert es.ml.stop_trained_model_deployment(model_id="ner-prod").body == "<html/>"
    assert "ner-prod" not in server.emulator.state.deployments  # the stop happened
    assert [r.status for r in server.emulator.stop_calls("ner-prod")] == [200]


def test_respond_following_waits_for_the_named_endpoint(server: ThreadedEmulator) -> None:
    es = Elasticsearch(server.url, max_retries=0)
    admin(
        server.url,
        "/_emulator/respond",
        {"endpoint": "ml.stats", "body": "[]", "following": "ml.stop", "count": 1},
    )
    assert es.ml.get_trained_models_stats()["count"] > 0  # before any stop: the real answer
    es.ml.stop_trained_model_deployment(model_id="ner-prod")
    assert es.ml.get_trained_models_stats().body == []
    admin(server.url, "/_emulator/reset")
    assert server.emulator.faults.responds == [] and server.emulator.faults.seen == set()
