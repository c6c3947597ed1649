"""Odd answers from Elasticsearch (or a proxy before it) never become a false claim.

Every answer is checked against its schema; an answer that cannot be read is one clear error
naming the cluster and the API, and a stop whose outcome cannot be read is "outcome unknown",
never "stopped" and never "failed". Driven through the real bot over HTTP and the real client
against the emulator, made to answer with a status, a body and a content type of the test's
choosing (`/_emulator/respond`).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from conftest import Bench, text_of

from bot.core.model import ActionState

HTML = "<html><body><h1>Welcome to nginx!</h1></body></html>"
# A `_stats` answer whose deployment lacks `deployment_id` (always written since 8.8).
NO_DEPLOYMENT_ID = {
    "count": 1,
    "trained_model_stats": [
        {"model_id": "ner-prod", "deployment_stats": {"model_id": "ner-prod", "state": "stopping"}}
    ],
}


def respond(bench: Bench, endpoint: str, body: Any, **rule: Any) -> None:
    """Arm a canned answer on the emulator over its admin API."""
    text = body if isinstance(body, str) else json.dumps(body)
    payload = {"endpoint": endpoint, "body": text, "count": rule.pop("count", 1), **rule}
    request = urllib.request.Request(
        f"{bench.es_url}/_emulator/respond",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


def final_state(bench: Bench) -> ActionState:
    """The state of the newest action."""
    actions = bench.run(bench.runtime.store.history(0.0))
    return max(actions, key=lambda a: a.created_at).state


def outcome_line(result: dict[str, Any], deployment_id: str) -> str:
    lines = [ln for ln in text_of(result).splitlines() if f"`{deployment_id}`" in ln]
    return " ".join(lines)


# --------------------------------------------------------------------------- verification


def test_a_verify_read_without_deployment_id_is_not_a_verified_stop(bench: Bench) -> None:
    bench.emulator.lifecycle.linger = 30  # still `stopping` after the stop answered
    bench.command("ner-prod")
    respond(bench, "ml.stats", NO_DEPLOYMENT_ID, following="ml.stop", count=50)
    result = bench.confirm()
    text = text_of(result)
    assert "stopped (verified)" not in text and "failed" not in text
    assert "outcome unknown" in text and "/ml-deployments" in text
    assert "`trained_model_stats.0.deployment_stats.deployment_id` is missing" in text
    assert "GET _ml/trained_models/_stats" in text and "cluster `default`" in text
    assert final_state(bench) is ActionState.UNKNOWN
    stops = [e for e in bench.audit.docs if e["event"]["action"] == "elasticsearch.stop"]
    assert [e["event"]["outcome"] for e in stops] == ["unknown"]


def test_an_html_answer_to_a_stop_that_stopped_is_verified_by_reading_back(bench: Bench) -> None:
    bench.command("ner-prod")
    respond(bench, "ml.stop", HTML, content_type="text/html", handled=True)
    result = bench.confirm()
    text = text_of(result)
    assert "ner-prod" not in bench.emulator.state.deployments  # the stop reached the cluster
    assert "failed" not in text and "0 of 1" not in text
    line = outcome_line(result, "ner-prod")
    assert "stopped (verified" in line
    assert "answer could not be read" in line and "text/html page instead of JSON" in line
    assert final_state(bench) is ActionState.SUCCEEDED


def test_an_html_answer_to_a_stop_that_did_not_stop_is_unknown(bench: Bench) -> None:
    bench.command("ner-prod")
    respond(bench, "ml.stop", HTML, content_type="text/html")  # the proxy kept it
    result = bench.confirm()
    text = text_of(result)
    assert "ner-prod" in bench.emulator.state.deployments
    assert "outcome unknown" in text and "failed" not in text
    assert "stopped (verified" not in text
    line = outcome_line(result, "ner-prod")
    assert "still started" in line and "answer could not be read" in line
    assert final_state(bench) is ActionState.UNKNOWN
    assert len(bench.emulator.stop_calls("ner-prod")) == 1  # never sent twice


def test_a_connection_lost_after_the_stop_was_sent_is_not_failed(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.emulator.faults.drops.append(_drop("ml.stop"))
    result = bench.confirm()
    text = text_of(result)
    assert "outcome unknown" in text and "failed" not in text
    assert "no answer came back" in outcome_line(result, "ner-prod")
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


def test_a_stop_answered_with_stopped_false_is_unknown(bench: Bench) -> None:
    bench.command("ner-prod")
    respond(bench, "ml.stop", {"stopped": False})
    result = bench.confirm()
    assert "`stopped: false`" in outcome_line(result, "ner-prod")
    assert "failed" not in text_of(result)


def test_an_unreadable_start_answer_is_unknown(bench: Bench) -> None:
    bench.command("ner-prod")
    stopped = bench.confirm()
    assert "stopped (verified)" in text_of(stopped)
    respond(bench, "ml.start", [1, 2], count=1)
    bench.driver.click_button("ml_deployment.restart", user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    result = bench.confirm(action_id="ml_start.confirm")
    text = text_of(result)
    assert "outcome unknown" in text and "failed" not in text
    assert "a JSON list instead of an object" in text
    assert "POST _ml/trained_models/{id}/deployment/_start" in text


# --------------------------------------------------------------------------- preview


def test_a_json_list_at_preview_is_one_clear_error(bench: Bench) -> None:
    respond(bench, "ml.stats", [])
    text = text_of(bench.command("ner-prod"))
    assert (
        "cluster `default` answered `GET _ml/trained_models/_stats` in an unexpected shape: "
        "a JSON list instead of an object"
    ) in text
    assert "ml_stop.confirm" not in text


def test_deployment_stats_as_a_list_at_preview_is_one_clear_error(bench: Bench) -> None:
    body = {"count": 1, "trained_model_stats": [{"model_id": "ner-prod", "deployment_stats": []}]}
    respond(bench, "ml.stats", body)
    text = text_of(bench.command("ner-prod"))
    assert "something went wrong" not in text.lower()
    assert "answered `GET _ml/trained_models/_stats` in an unexpected shape" in text
    assert "`trained_model_stats.0.deployment_stats`" in text


def test_truncated_json_at_preview_is_one_clear_error(bench: Bench) -> None:
    respond(bench, "ml.stats", '{"count": 1, "trained_model_st')
    text = text_of(bench.command("ner-prod"))
    assert "in an unexpected shape: a body that is not valid JSON" in text


def test_an_html_pipelines_answer_at_preview_names_the_api(bench: Bench) -> None:
    respond(bench, "ingest.get_pipeline", HTML, content_type="text/html", count=2)
    text = text_of(bench.command("ner-prod"))
    assert "answered `GET _ingest/pipeline` in an unexpected shape: a text/html page" in text
    assert "ml_stop.confirm" not in text


def test_an_odd_inference_answer_is_an_unknown_impact_line(bench: Bench) -> None:
    respond(bench, "inference.get", {"endpoints": {"not": "a list"}})
    text = text_of(bench.command("ner-prod"))
    assert "could not read inference endpoints" in text
    assert "answered `GET _inference/_all` in an unexpected shape: `endpoints`" in text


def test_every_error_has_a_reason_after_the_colon(bench: Bench) -> None:
    for body in ([], "", "null", 42, {"count": "x", "trained_model_stats": []}):
        respond(bench, "ml.stats", body if isinstance(body, str) else json.dumps(body))
        text = text_of(bench.command("ner-prod"))
        assert "unexpected shape: " in text, text
        reason = text.split("unexpected shape: ", 1)[1].strip()
        assert reason and reason[0] not in ".;:", text


def _drop(endpoint: str) -> Any:
    from bot.emulator.faults import DropRule

    return DropRule(count=1, endpoint=endpoint)
