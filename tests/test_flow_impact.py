"""What a stop breaks, read through the real client from the emulator (issue 12)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Bench, text_of
from elasticsearch import AsyncElasticsearch
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


# ------------------------------------------------------------------- the preview and the click

ADMIN, OPERATOR, CHANNEL = "U0ADMIN1", "U0OPS1", "C0INCIDENTS"


def _es(bench: Bench) -> Any:
    return bench.runtime.clusters.get(None).client


def _endpoint_on_search_e5(bench: Bench) -> None:
    """Put an inference endpoint on the existing deployment `search-e5`, over HTTP."""
    bench.run(
        _es(bench).inference.put(
            task_type="text_embedding",
            inference_id="e5-endpoint",
            inference_config={
                "service": "elasticsearch",
                "service_settings": {"deployment_id": "search-e5"},
            },
        )
    )


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        str(e.get("action_id"))
        for b in message.get("blocks", [])
        for e in b.get("elements", [])
        if isinstance(e, dict) and e.get("type") == "button"
    ]


def test_a_refused_stop_offers_no_button_and_says_why(bench: Bench) -> None:
    reply = bench.command("elser-endpoint")
    text = text_of(reply)
    assert (
        "deployment `elser-endpoint` was created by inference endpoint `elser-endpoint` "
        "(semantic_text index `docs-semantic.content`); add `--force` to stop it anyway"
    ) in text
    assert "Retype the command with `--force`" in text
    assert "ml_stop.confirm" not in _buttons(reply)
    assert not bench.emulator.stop_calls("elser-endpoint")


def test_a_pipeline_refusal_is_said_before_the_click(bench: Bench) -> None:
    reply = bench.command("elser-prod")
    text = text_of(reply)
    assert "is used by ingest pipeline `elser-ingest`" in text
    assert "ml_stop.confirm" not in _buttons(reply)


def test_force_is_offered_only_to_a_role_that_grants_it(bench: Bench) -> None:
    _endpoint_on_search_e5(bench)
    reply = bench.command("search-e5", user=OPERATOR)
    text = text_of(reply)
    assert "is used by inference endpoint `e5-endpoint`" in text
    assert "which your role does not grant" in text
    assert "add `--force`" not in text
    assert "ml_stop.confirm" not in _buttons(reply)
    assert not bench.emulator.stop_calls("search-e5")


def test_with_force_the_preview_lists_what_breaks_and_the_stop_works(bench: Bench) -> None:
    reply = bench.command("elser-endpoint --force")
    text = text_of(reply)
    assert "inference endpoint `elser-endpoint` (sparse_embedding) created this deployment" in text
    assert "semantic_text `docs-semantic.content`" in text
    assert "`--force` overrides" in text and "ml_stop.confirm" in _buttons(reply)
    result = bench.confirm()
    assert "stopped" in text_of(result)
    assert "elser-endpoint" not in bench.emulator.state.deployments


def test_an_endpoint_that_appears_before_the_click_is_a_change(bench: Bench) -> None:
    preview = bench.command("search-e5")
    assert "ml_stop.confirm" in _buttons(preview)
    _endpoint_on_search_e5(bench)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    changed = bench.slack.wait_for(
        lambda: next(
            (e for e in bench.slack.ephemerals(user=ADMIN) if "e5-endpoint" in text_of(e)), None
        )
    )
    text = text_of(changed)
    assert "Changed since your preview" in text
    assert "`search-e5` now breaks inference endpoint `e5-endpoint`" in text
    assert "ml_stop.confirm" not in _buttons(changed)
    assert not bench.emulator.stop_calls("search-e5")


def test_a_mapping_that_appears_before_a_forced_click_is_a_change(bench: Bench) -> None:
    preview = bench.command("elser-endpoint --force")
    assert "ml_stop.confirm" in _buttons(preview)
    bench.run(
        _es(bench).indices.create(
            index="faq",
            mappings={
                "properties": {
                    "answer": {"type": "semantic_text", "inference_id": "elser-endpoint"}
                }
            },
        )
    )
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    changed = bench.slack.wait_for(
        lambda: next(
            (e for e in bench.slack.ephemerals(user=ADMIN) if "faq.answer" in text_of(e)), None
        )
    )
    assert "`elser-endpoint` now breaks semantic_text `faq.answer`" in text_of(changed)
    assert "ml_stop.confirm" in _buttons(changed)  # --force was typed: confirm again
    assert not bench.emulator.stop_calls("elser-endpoint")


# ------------------------------------------------------------------------------ start, restart


def _start_preview(bench: Bench) -> dict[str, Any]:
    return bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_start.confirm" in text_of(e)
            ),
            None,
        )
    )


def test_restart_brings_the_endpoint_back(bench: Bench) -> None:
    bench.command("elser-endpoint --force")
    result = bench.confirm()
    assert "ml_deployment.restart" in text_of(result)
    bench.driver.click_button("ml_deployment.restart", user_id=ADMIN, channel_id=CHANNEL)
    preview = _start_preview(bench)
    assert "brings back inference endpoint `elser-endpoint`" in text_of(preview)
    bench.confirm(action_id="ml_start.confirm")
    assert bench.emulator.state.deployments["elser-endpoint"].state == "started"
    start = next(r for r in bench.emulator.requests if r.path.endswith("/_start"))
    assert start.query["deployment_id"] == "elser-endpoint"
    # The endpoint answers for its deployment again: a plain stop is refused once more.
    assert "created by inference endpoint" in text_of(bench.command("elser-endpoint"))


def test_ml_start_of_a_missing_model_offers_no_start(bench: Bench) -> None:
    reply = bench.command("no-such-model", command="/ml-start")
    text = text_of(reply)
    assert "no trained model `no-such-model`" in text
    assert "ml_start.confirm" not in _buttons(reply)


def test_ml_start_under_the_endpoint_id_follows_its_settings(bench: Bench) -> None:
    model = bench.emulator.state.deployments["elser-endpoint"].model_id
    bench.command("elser-endpoint --force")
    bench.confirm()
    reply = bench.command(f"{model} --deployment-id elser-endpoint", command="/ml-start")
    assert "brings back inference endpoint `elser-endpoint`" in text_of(reply)
    assert "ml_start.confirm" in _buttons(reply)


# ------------------------------------------- mappings the bot may not view (issue 12)

SECURED = pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
DOCS_ONLY = ("docs-bot", "docs-bot-password")


def _semantic_faq(bench: Bench) -> None:
    """An index outside `docs-*` whose semantic_text field uses `elser-endpoint`, as admin."""

    async def create() -> None:
        async with AsyncElasticsearch(bench.es_url, basic_auth=("elastic", "changeme")) as es:
            await es.indices.create(
                index="faq",
                mappings={
                    "properties": {
                        "answer": {"type": "semantic_text", "inference_id": "elser-endpoint"}
                    }
                },
            )

    bench.run(create())


@SECURED
@pytest.mark.parametrize("bot_es_user", [("ml-bot", "ml-bot-password")])
def test_a_bot_that_may_view_no_index_says_unknown_not_nothing(bench: Bench) -> None:
    # `GET _mapping` answers `{}` (no 403) to a user without view_index_metadata anywhere.
    text = text_of(bench.command("elser-endpoint --force"))
    assert "unknown: could not read index mappings: missing view_index_metadata" in text
    assert "semantic_text `" not in text
    assert "ml_stop.confirm" in text  # the stop itself is still offered


@SECURED
@pytest.mark.parametrize("bot_es_user", [DOCS_ONLY])
def test_a_bot_that_may_view_some_indices_says_its_check_was_partial(bench: Bench) -> None:
    state = bench.emulator.state
    state.add_role(
        "ml-docs",
        cluster=["manage_ml", "monitor", "read_pipeline"],
        indices=[{"names": ["docs-*"], "privileges": ["view_index_metadata"]}],
    )
    state.add_user(*DOCS_ONLY, ["ml-docs"])
    _semantic_faq(bench)
    text = text_of(bench.command("elser-endpoint --force"))
    assert "semantic_text `docs-semantic.content`" in text  # the index it may view
    assert "faq.answer" not in text  # the one it may not: hence the note
    assert (
        "semantic_text usage: checked only the indices the bot may view "
        "(`view_index_metadata` is not granted on every index)"
    ) in text
    assert "could not read index mappings" not in text


@SECURED
@pytest.mark.parametrize("bot_es_user", [("elastic", "changeme")])
def test_a_bot_that_may_view_every_index_says_nothing_partial(bench: Bench) -> None:
    _semantic_faq(bench)
    text = text_of(bench.command("elser-endpoint --force"))
    assert "semantic_text `faq.answer`" in text and "docs-semantic.content" in text
    assert "checked only" not in text and "unknown:" not in text


def test_a_cluster_without_security_shows_every_index_as_checked(bench: Bench) -> None:
    # Security off: `_has_privileges` answers 500, and every index is visible anyway.
    text = text_of(bench.command("elser-endpoint --force"))
    assert "semantic_text `docs-semantic.content`" in text
    assert "checked only" not in text and "unknown:" not in text


@SECURED
@pytest.mark.parametrize("bot_es_user", [("ml-bot", "ml-bot-password")])
def test_the_privilege_read_is_cached_across_previews(bench: Bench) -> None:
    bench.emulator.requests.clear()
    first = text_of(bench.command("elser-endpoint --force"))
    # Only a deployment an endpoint uses carries mapping notes: preview it again, unlocked.
    bench.driver.click_button("ml_stop.cancel", user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    bench.slack.wait_for(lambda: "cancelled" in text_of(bench.ephemeral()) or None)
    second = text_of(bench.command("elser-endpoint --force"))
    reads = [r for r in bench.emulator.requests if r.endpoint == "security.has_privileges"]
    assert len(reads) == 1
    assert [r.method for r in reads] == ["GET"]
    assert len([r for r in bench.emulator.requests if r.endpoint == "indices.get_mapping"]) == 2
    # The cached answer still shapes the second preview.
    assert "missing view_index_metadata" in first and "missing view_index_metadata" in second


@SECURED
@pytest.mark.parametrize("bot_es_user", [("ml-bot", "ml-bot-password")])
def test_a_deployment_no_endpoint_uses_carries_no_mapping_note(bench: Bench) -> None:
    # The endpoints were read and none uses ner-prod: no semantic_text can depend on it.
    text = text_of(bench.command("ner-prod"))
    assert "view_index_metadata" not in text and "checked only" not in text
