"""What a stop breaks, read through the real client from the emulator (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Bench, text_of
from pydantic import SecretStr
from support.loop import BackgroundLoop

from bot.adapters.elasticsearch import ClusterGateway, build_client
from bot.core.config import ResolvedCluster
from bot.core.impact import Reach
from bot.core.model import Deployment
from bot.emulator import Emulator, demo_state
from bot.emulator.faults import FailRule


def _deployments(bench: Bench) -> dict[str, Deployment]:
    gateway = bench.runtime.clusters.get(None)
    return {d.deployment_id: d for d in bench.run(gateway.list(None))}


def test_the_endpoint_deployment_shows_endpoint_and_semantic_index(bench: Bench) -> None:
    dep = _deployments(bench)["elser-endpoint"]
    assert dep.impact is not None and dep.impact.refuses
    assert [(e.endpoint_id, e.created) for e in dep.impact.endpoints] == [("elser-endpoint", True)]
    assert [(s.index, s.path) for s in dep.impact.semantic] == [("docs-semantic", "content")]


def test_every_pipeline_shows_and_only_refusing_ones_are_marked(bench: Bench) -> None:
    deps = _deployments(bench)
    ner = deps["ner-prod"].impact
    assert ner is not None and not ner.refuses  # ES stops ner-prod without force
    assert [(p.name, p.reach, p.refuses) for p in ner.pipelines] == [
        ("ner-enrich", Reach.ALIAS, False)
    ]
    sentiment = deps["distilbert-base-uncased-finetuned-sst-2-english"].impact
    assert sentiment is not None and sentiment.refuses
    assert deps["elser-search"].impact is not None and deps["elser-search"].impact.empty


def test_the_reads_join_the_snapshot_and_keep_mappings_small(bench: Bench) -> None:
    _deployments(bench)
    paths = [r.path for r in bench.emulator.requests]
    assert "/_inference/_all" in paths and "/_mapping" in paths
    mapping = next(r for r in bench.emulator.requests if r.path == "/_mapping")
    assert "filter_path" in mapping.query


def test_a_403_on_mappings_is_unknown_not_nothing(bench: Bench) -> None:
    bench.emulator.faults.fails.append(
        FailRule(
            1,
            403,
            "indices.get_mapping",
            type="security_exception",
            reason="action [indices:admin/mappings/get] is unauthorized for user [ml-bot]",
        )
    )
    impact = _deployments(bench)["elser-endpoint"].impact
    assert impact is not None
    assert impact.unknown == ("could not read index mappings: missing view_index_metadata",)
    assert impact.endpoints  # the other reads still answered


@pytest.fixture
def no_inference_gateway(bg_loop: BackgroundLoop) -> Iterator[ClusterGateway]:
    """A bot user with manage_ml and read_pipeline but without monitor_inference."""
    state = demo_state()
    state.add_role("ml-no-inference", cluster=["manage_ml", "read_pipeline"])
    state.add_user("bot", "bot-password", ["ml-no-inference"])
    emulator = Emulator(state, auth=("elastic", "changeme"))
    url = bg_loop.run(emulator.start())
    cluster = ResolvedCluster(
        name="default", url=url, username="bot", password=SecretStr("bot-password")
    )
    gateway = ClusterGateway("default", build_client(cluster))
    yield gateway
    bg_loop.run(gateway.close())
    bg_loop.run(emulator.stop())


def test_a_cluster_denying_monitor_inference_says_unknown(
    bg_loop: BackgroundLoop, no_inference_gateway: ClusterGateway
) -> None:
    deps = {d.deployment_id: d for d in bg_loop.run(no_inference_gateway.list(None))}
    impact = deps["elser-endpoint"].impact
    assert impact is not None
    assert "could not read inference endpoints: missing monitor_inference" in impact.unknown


def test_ml_deployments_marks_endpoint_deployments(bench: Bench) -> None:
    text = text_of(bench.command("elser-*", command="/ml-deployments"))
    assert "inference endpoint `elser-endpoint`" in text
    assert text.count("inference endpoint") == 1  # elser-prod and elser-search have none
