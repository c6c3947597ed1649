"""What the user sees when Elasticsearch or the request itself is wrong: nothing runs twice."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import Bench, text_of

ADMIN = "U0ADMIN1"


def admin(bench: Bench, path: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{bench.es_url}/_emulator/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("bot_es_user", [("viewer", "viewer-password")])
def test_forbidden_stop_names_the_missing_privilege(bench: Bench) -> None:
    bench.emulator.state.add_role("ml-viewer", cluster=["monitor_ml", "read_pipeline"])
    preview = bench.command("ner-prod")  # reading needs monitor_ml only
    assert "ml_stop.confirm" in text_of(preview)
    result = bench.confirm()
    text = text_of(result)
    assert "may not stop" in text and "manage_inference,manage_ml,manage,all" in text
    assert "ner-prod" in bench.emulator.state.deployments
    assert [r.principal for r in bench.emulator.stop_calls()] == ["viewer"]


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("bot_es_user", [("viewer", "viewer-password")])
def test_missing_read_privilege_is_named_at_preview(bench: Bench) -> None:
    reply = bench.command("ner-prod")
    assert "may not read" in text_of(reply) and "read_pipeline" in text_of(reply)


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("bot_es_user", [("viewer", "wrong")])
def test_bad_credentials_are_reported_at_preview(bench: Bench) -> None:
    reply = bench.command("ner-prod")
    assert "rejected the bot's credentials" in text_of(reply)
    assert "wrong" not in text_of(reply)


def test_server_error_on_stop_is_reported_and_not_retried(bench: Bench) -> None:
    bench.command("ner-prod")
    admin(bench, "fail", {"count": 1, "status": 503, "endpoint": "ml.stop"})
    result = bench.confirm()
    assert "503" in text_of(result) and "master_not_discovered_exception" in text_of(result)
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
    assert "ner-prod" in bench.emulator.state.deployments


def test_server_error_while_resolving_is_reported(bench: Bench) -> None:
    admin(bench, "fail", {"count": 4, "status": 500, "endpoint": "ml.stats"})
    reply = bench.command("ner-prod")
    assert "500" in text_of(reply) and "ml_stop.confirm" not in text_of(reply)


@pytest.mark.parametrize("es_timeout", [0.5])
def test_timeout_on_stop_says_it_may_still_be_in_progress(bench: Bench) -> None:
    bench.command("ner-prod")
    admin(bench, "latency", {"endpoint": "ml.stop", "seconds": 1.5})
    result = bench.confirm()
    text = text_of(result)
    assert "did not answer the stop within 0.5 s" in text
    # The stop may have landed: read back gone it is verified, else the outcome is unknown;
    # never "failed".
    assert "stopped (verified" in text or ("outcome unknown" in text and "/ml-deployments" in text)
    assert "failed" not in text
    assert len(bench.emulator.stop_calls("ner-prod")) <= 1


def test_cluster_down_is_named(bench: Bench) -> None:
    bench.run(bench.emulator.stop())
    reply = bench.command("ner-prod")
    assert "cannot reach cluster `default`" in text_of(reply)
    assert "ml_stop.confirm" not in text_of(reply)


def test_cluster_down_at_click_fails_cleanly(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.run(bench.emulator.stop())
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id="C0INCIDENTS")
    # The re-check at the click cannot reach the cluster: nothing runs, the clicker is told.
    bench.slack.wait_for(
        lambda: any("cannot reach cluster" in text_of(e) for e in bench.slack.ephemerals()) or None
    )
    assert bench.slack.messages("C0INCIDENTS") == []


def _nothing_recorded(bench: Bench, before: int) -> None:
    assert bench.slack.calls() == [] or len(bench.slack.calls()) == before
    assert bench.emulator.requests == []
    assert bench.audit.docs == []


def test_forged_signature_is_rejected_and_nothing_happens(bench: Bench) -> None:
    reply = bench.driver.forged_command("/ml-stop", "ner-prod --force")
    assert reply.status == 401
    _nothing_recorded(bench, 0)
    assert bench.slack.response_posts() == []


def test_replayed_old_request_is_rejected_and_nothing_happens(bench: Bench) -> None:
    body = bench.driver.build_command("/ml-stop", "ner-prod")
    reply = bench.driver.replay(body, age_seconds=600)
    assert reply.status == 401
    _nothing_recorded(bench, 0)
    assert bench.slack.response_posts() == []


def test_forged_click_does_not_stop(bench: Bench) -> None:
    bench.command("ner-prod")
    requests_before = len(bench.emulator.requests)
    body = bench.driver.build_click("ml_stop.confirm", "anything", user_id=ADMIN)
    headers = bench.driver.signed_headers(body, secret="not-the-secret")
    assert bench.driver.post_raw(body, headers).status == 401
    assert len(bench.emulator.requests) == requests_before
    assert bench.emulator.stop_calls() == []


def test_unknown_action_id_in_a_click_is_answered(bench: Bench) -> None:
    bench.driver.click("ml_stop.confirm", "a0000000000000000", user_id=ADMIN, ephemeral=True)
    answer = bench.slack.wait_for(lambda: bench.slack.ephemerals(user=ADMIN) or None)
    assert "not known" in text_of(answer[-1])


def test_unexpected_failure_gets_an_error_id(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(bench.runtime.service, "dispatch", boom)
    reply = bench.command("ner-prod")
    text = text_of(reply)
    assert "error id" in text and "kaboom" not in text
    error_id = text.split("error id `", 1)[1].split("`", 1)[0]
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)


def test_channel_post_failure_gives_the_result_privately(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.slack.bot_not_in("C0INCIDENTS")
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id="C0INCIDENTS")
    note = bench.slack.wait_for(
        lambda: next(
            (e for e in bench.slack.ephemerals(user=ADMIN) if "/invite" in text_of(e)), None
        )
    )
    assert "ner-prod" in text_of(note) and "stopped" in text_of(note)
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
