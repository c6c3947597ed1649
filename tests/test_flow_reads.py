"""What a flow reads from Elasticsearch (the emulator's request log): only what the action needs.

Issue 15: a click costs Elasticsearch round trips and little else. These pin the requests,
never their timing: the `_stats` read names the targets, every other read happens once, and
a click is one round of parallel re-check reads, the stop, and the verification.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import Bench, text_of

from bot.adapters.elasticsearch import ClusterGateway
from bot.app.ports import CallContext
from bot.emulator.server import RequestRecord

# One of each, in one parallel round: the preview and the click's re-check read the same.
READS = ["indices.get_mapping", "inference.get", "ingest.get_pipeline", "ml.get", "ml.stats"]
# Whether the bot may view every index's mappings: read in the first round, then cached.
# `_xpack` first: with security disabled (the default bench) it says so and `_has_privileges`
# (a 500 there, which elastic_transport counts as a dead node) is never asked.
PRIVILEGES = "xpack.info"
FIRST_READS = sorted([*READS, PRIVILEGES])


def _log(bench: Bench) -> list[RequestRecord]:
    return list(bench.emulator.requests)


def _stats_paths(log: list[RequestRecord]) -> list[str]:
    return [r.path for r in log if r.endpoint == "ml.stats"]


def test_a_preview_reads_the_named_deployment_and_everything_else_once(bench: Bench) -> None:
    bench.emulator.requests.clear()
    preview = bench.command("ner-prod")
    assert "ml_stop.confirm" in text_of(preview)
    log = _log(bench)
    assert sorted(r.endpoint for r in log) == FIRST_READS
    assert _stats_paths(log) == ["/_ml/trained_models/ner-prod/_stats"]
    assert {r.method for r in log} == {"GET"}
    # Every read carries the action's opaque id, so the cluster's own logs name the person.
    opaque = {r.headers.get("x-opaque-id") or r.headers.get("X-Opaque-Id") for r in log}
    assert len(opaque) == 1 and str(opaque.pop()).startswith("ml-chatops/")


def test_a_click_is_one_round_of_re_check_reads_then_the_stop_then_the_verification(
    bench: Bench,
) -> None:
    bench.command("ner-prod")
    bench.emulator.requests.clear()
    result = bench.confirm()
    assert "stopped" in text_of(result)
    log = _log(bench)
    endpoints = [r.endpoint for r in log]
    assert len(log) == len(READS) + 2, endpoints
    assert sorted(endpoints[: len(READS)]) == READS  # the re-check, before the stop
    assert endpoints[len(READS) :] == ["ml.stop", "ml.stats"]
    assert _stats_paths(log) == ["/_ml/trained_models/ner-prod/_stats"] * 2
    assert log[len(READS)].path == "/_ml/trained_models/ner-prod/deployment/_stop"


def test_a_comma_list_is_read_as_one_stats_request_naming_both(bench: Bench) -> None:
    bench.emulator.requests.clear()
    preview = bench.command("ner-prod,elser-prod --force")
    assert "ner-prod" in text_of(preview) and "elser-prod" in text_of(preview)
    log = _log(bench)
    assert sorted(r.endpoint for r in log) == FIRST_READS
    assert _stats_paths(log) == ["/_ml/trained_models/ner-prod,elser-prod/_stats"]


def test_a_wildcard_is_read_as_the_pattern(bench: Bench) -> None:
    bench.emulator.requests.clear()
    preview = bench.command("ner-*")
    assert "ner-prod" in text_of(preview)
    assert _stats_paths(_log(bench)) == ["/_ml/trained_models/ner-*/_stats"]


def test_an_id_that_matches_nothing_falls_back_to_every_model_and_is_still_named(
    bench: Bench,
) -> None:
    # Elasticsearch answers 404 for a whole list when one explicit id is missing; the bot
    # then reads every model, so it can still say which id matched nothing.
    bench.emulator.requests.clear()
    preview = bench.command("ner-prod,ner-prdo")
    assert "ner-prdo" in text_of(preview)
    assert _stats_paths(_log(bench)) == [
        "/_ml/trained_models/ner-prod,ner-prdo/_stats",
        "/_ml/trained_models/_stats",
    ]


def test_a_model_id_still_gets_its_hint_from_the_narrow_read(bench: Bench) -> None:
    model = bench.emulator.state.deployments["ner-prod"].model_id
    bench.emulator.requests.clear()
    reply = bench.command(model)
    assert "is a model, not a deployment" in text_of(reply) and "ner-prod" in text_of(reply)
    assert _stats_paths(_log(bench)) == [f"/_ml/trained_models/{model}/_stats"]


def test_a_click_re_check_is_not_queued_behind_previews(bench: Bench) -> None:
    # Previews and listings share a bounded number of snapshot reads; a click's re-check
    # (urgent) goes past them, so a burst of previews cannot hold up a Stop.
    gateway = bench.runtime.clusters.get(None)
    assert isinstance(gateway, ClusterGateway)

    async def scenario() -> tuple[list[str], bool, list[str]]:
        held = 0
        while not gateway._reading.locked():
            await gateway._reading.acquire()
            held += 1
        preview = asyncio.create_task(gateway.resolve(["ner-prod"], CallContext()))
        urgent = await gateway.resolve(["ner-prod"], CallContext(urgent=True))
        queued = not preview.done()
        for _ in range(held):
            gateway._reading.release()
        late = await preview
        ids = [d.deployment_id for d in urgent.deployments]
        return ids, queued, [d.deployment_id for d in late.deployments]

    urgent, queued, late = bench.run(scenario())
    assert urgent == ["ner-prod"] and queued and late == ["ner-prod"]


def test_concurrent_previews_share_cluster_wide_reads_but_a_click_never_does(
    bench: Bench,
) -> None:
    gateway = bench.runtime.clusters.get(None)

    async def previews_then_mixed() -> tuple[list[str], list[str]]:
        bench.emulator.requests.clear()
        await asyncio.gather(
            gateway.resolve(["ner-prod"], CallContext(opaque_id="a")),
            gateway.resolve(["elser-prod"], CallContext(opaque_id="b")),
        )
        two_previews = sorted(r.endpoint for r in bench.emulator.requests)
        bench.emulator.requests.clear()
        await asyncio.gather(
            gateway.resolve(["ner-prod"], CallContext(opaque_id="a")),
            gateway.resolve(["ner-prod"], CallContext(opaque_id="c", urgent=True)),
        )
        return two_previews, sorted(r.endpoint for r in bench.emulator.requests)

    two_previews, preview_and_click = bench.run(previews_then_mixed())
    # Each preview reads its own targets' stats; the five cluster-wide reads happen once.
    assert two_previews == sorted([*FIRST_READS, "ml.stats"])
    # The click's re-check reads everything itself, after the click (privileges: cached).
    assert preview_and_click == sorted(READS * 2)


def test_with_security_off_the_node_is_never_marked_dead(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 20: the demo (security off) logged "putting on 1 second timeout" at the first
    # command, because `_has_privileges` answers 500 there.
    caplog.set_level(logging.INFO, logger="elastic_transport")
    for deployment in ("ner-prod", "search-e5"):
        assert "ml_stop.confirm" in text_of(bench.command(deployment))
    endpoints = [r.endpoint for r in _log(bench)]
    assert "security.has_privileges" not in endpoints
    assert endpoints.count("xpack.info") == 1  # remembered for the client's life
    assert not [r for r in caplog.records if "timeout" in r.getMessage()]


class TestWithSecurityOn:
    @pytest.fixture
    def es_auth(self) -> tuple[str, str]:
        return ("elastic", "changeme")

    @pytest.fixture
    def bot_es_user(self) -> tuple[str, str]:
        return ("elastic", "changeme")

    def test_the_preview_asks_xpack_then_has_privileges_once(self, bench: Bench) -> None:
        bench.emulator.requests.clear()
        assert "ml_stop.confirm" in text_of(bench.command("ner-prod"))
        endpoints = sorted(r.endpoint for r in _log(bench))
        assert endpoints == sorted([*READS, "security.has_privileges", "xpack.info"])
