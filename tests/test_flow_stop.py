"""/ml-stop end to end: real Bolt over signed HTTP, the real client against the emulator."""

from __future__ import annotations

import asyncio

import pytest
from conftest import Bench, button_value, text_of

ADMIN = "U0ADMIN1"


def stop_paths(bench: Bench) -> list[str]:
    return [r.path for r in bench.emulator.requests if r.path.endswith("/deployment/_stop")]


def test_one_id_preview_confirm_stop_and_channel_result(bench: Bench) -> None:
    preview = bench.command('ner-prod --reason "INC-4711 ML node OOM"')
    text = text_of(preview)
    assert preview["response_type"] == "ephemeral"
    for expected in ("ner-prod", "default", "INC-4711 ML node OOM", "9,214", "normal"):
        assert expected in text
    assert stop_paths(bench) == []  # nothing runs before the click

    result = bench.confirm()
    assert "ner-prod" in text_of(result) and "stopped" in text_of(result)
    assert f"<@{ADMIN}>" in text_of(result)
    calls = bench.emulator.stop_calls("ner-prod")
    assert len(calls) == 1
    assert calls[0].body == {"allow_no_match": False}
    assert not bench.emulator.state.deployments.get("ner-prod")
    # The preview is replaced by its final state: no live button left behind.
    final = bench.ephemeral()
    assert "ml_stop.confirm" not in text_of(final)


def test_wildcard_resolves_to_each_deployment_and_stops_each_once(bench: Bench) -> None:
    preview = bench.command("elser-* --force")
    text = text_of(preview)
    assert "elser-prod" in text and "elser-search" in text and "elser-ingest" in text
    bench.confirm()
    assert len(bench.emulator.stop_calls("elser-prod")) == 1
    assert len(bench.emulator.stop_calls("elser-search")) == 1
    assert all(
        c.body == {"allow_no_match": False, "force": True} for c in bench.emulator.stop_calls()
    )


def test_comma_list_with_an_unknown_id_previews_it_as_not_found(bench: Bench) -> None:
    preview = bench.command("ner-prod,search-e5,ner-prdo")
    text = text_of(preview)
    assert "ner-prdo" in text and "search-e5" in text
    result = bench.confirm()
    assert "ner-prdo" not in text_of(result).split("stopped")[0] or "not found" in text_of(result)
    assert sorted(stop_paths(bench)) == [
        "/_ml/trained_models/ner-prod/deployment/_stop",
        "/_ml/trained_models/search-e5/deployment/_stop",
    ]


def test_no_allow_no_match_refuses_a_partial_match(bench: Bench) -> None:
    reply = bench.command("ner-prod,ner-prdo --no-allow-no-match")
    assert "ner-prdo" in text_of(reply) and "no-allow-no-match" in text_of(reply)
    assert "ml_stop.confirm" not in text_of(reply)


def test_typo_is_reported_as_not_found_never_as_stopped(bench: Bench) -> None:
    reply = bench.command("ner-prdo")
    text = text_of(reply)
    assert "ner-prdo" in text and "Nothing was stopped" in text
    assert "ml_stop.confirm" not in text
    assert stop_paths(bench) == []


def test_model_id_gets_a_hint_naming_its_deployments(bench: Bench) -> None:
    model_id = bench.emulator.state.deployments["elser-prod"].model_id
    reply = bench.command(model_id)
    assert "elser-prod" in text_of(reply) and "not a deployment" in text_of(reply)


def test_referenced_deployment_without_force_reports_the_pipeline(bench: Bench) -> None:
    # Issue 12: ES would refuse (409), so the bot says why instead of offering a Stop.
    reply = bench.command("elser-prod")
    text = text_of(reply)
    assert "is used by ingest pipeline `elser-ingest`" in text and "add `--force`" in text
    assert "ml_stop.confirm" not in text
    assert "elser-prod" in bench.emulator.state.deployments  # still running
    assert bench.emulator.stop_calls("elser-prod") == []


def test_force_stops_a_referenced_deployment(bench: Bench) -> None:
    preview = bench.command("elser-prod --force")
    assert "elser-ingest" in text_of(preview)
    bench.confirm()
    assert "elser-prod" not in bench.emulator.state.deployments
    assert bench.emulator.stop_calls("elser-prod")[0].body == {
        "allow_no_match": False,
        "force": True,
    }


def test_finish_pending_work_waits_for_queued_work(
    bench: Bench, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Order, not time: the queued work is held until the stop has arrived, so the stop
    # certainly finds it pending; with --finish-pending-work it completes, nothing fails.
    lifecycle = bench.emulator.lifecycle
    stop_arrived = asyncio.Event()
    pending_at_stop: list[int] = []
    real_stop, real_work = lifecycle.stop, lifecycle._work

    async def stop(deployment_id: str, finish_pending_work: bool) -> None:
        pending_at_stop.append(lifecycle.state.deployments[deployment_id].pending_requests)
        stop_arrived.set()
        await real_stop(deployment_id, finish_pending_work)

    async def work_after_the_stop(deployment_id: str) -> None:
        await stop_arrived.wait()
        await real_work(deployment_id)

    monkeypatch.setattr(lifecycle, "stop", stop)
    monkeypatch.setattr(lifecycle, "_work", work_after_the_stop)
    deployment = bench.emulator.state.deployments["ner-prod"]
    inferences, errors = deployment.inference_count, deployment.error_count
    bench.run(_queue(bench, "ner-prod", count=3, seconds_each=0.01))

    preview = bench.command("ner-prod --finish-pending-work")
    assert "finish" in text_of(preview).lower()
    result = bench.confirm()
    assert "stopped" in text_of(result)
    call = bench.emulator.stop_calls("ner-prod")[0]
    assert call.body == {"allow_no_match": False, "finish_pending_work": True}
    assert pending_at_stop == [3]  # the stop found the work queued ...
    assert deployment.inference_count == inferences + 3  # ... and let all of it finish
    assert deployment.error_count == errors and deployment.pending_requests == 0
    assert "ner-prod" not in bench.emulator.state.deployments
    audit = [d for d in bench.audit.docs if d["event"]["action"] == "stop"]
    assert audit[0]["event"]["outcome"] == "success"


async def _queue(bench: Bench, deployment: str, count: int, seconds_each: float) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        url = f"{bench.es_url}/_emulator/deployments/{deployment}/queue"
        async with session.post(url, json={"count": count, "seconds_each": seconds_each}) as r:
            assert r.status == 200


@pytest.mark.parametrize(
    ("user", "channel", "text", "why"),
    [
        ("U0NOBODY", "C0INCIDENTS", "ner-prod", "no role grants stop"),  # user
        ("U0OPS1", "C0INCIDENTS", "elser-prod", "elser-prod"),  # group: pattern not covered
        ("U0OPS1", "C0ELSEWHERE", "ner-prod", "no role grants stop"),  # channel
        ("U0OPS1", "C0INCIDENTS", "ner-prod --force", "--force"),  # option
        ("U0OPS1", "C0INCIDENTS", "ner-* ", "wildcard"),  # wildcard option
    ],
)
def test_denials_explain_themselves_and_change_nothing(
    bench: Bench, user: str, channel: str, text: str, why: str
) -> None:
    reply = bench.command(text, user=user, channel=channel)
    assert "denied" in text_of(reply)
    assert why in text_of(reply)
    assert "ml_stop.confirm" not in text_of(reply)
    assert stop_paths(bench) == []


def test_operator_in_group_and_channel_is_allowed(bench: Bench) -> None:
    preview = bench.command("ner-prod", user="U0OPS1")
    assert "ml_stop.confirm" in text_of(preview)
    bench.confirm(user="U0OPS1")
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


STAGING = """
clusters:
  staging: {url: "{ES_URL}"}
default_cluster: default
roles:
  ml-operator:
    - {action: [stop], deployments: ["ner-*"], clusters: [default]}
bindings:
  - {role: ml-operator, users: [U0ADMIN1]}
"""


@pytest.mark.parametrize("role_map_text", [STAGING])
def test_cluster_denied(bench: Bench) -> None:
    reply = bench.command("ner-prod --cluster staging")
    assert "denied" in text_of(reply) and "staging" in text_of(reply)
    allowed = bench.command("ner-prod")
    assert "ml_stop.confirm" in text_of(allowed)


def test_unknown_cluster_is_named(bench: Bench) -> None:
    reply = bench.command("ner-prod --cluster nope")
    assert "unknown cluster `nope`" in text_of(reply)


def test_usergroup_lookup_failure_fails_closed(bench: Bench) -> None:
    bench.slack.fail_next("usergroups.users.list", error="ratelimited", count=10)
    reply = bench.command("ner-prod", user="U0OPS1")
    assert "denied" in text_of(reply) and "could not check membership" in text_of(reply)
    assert "failing closed" in text_of(reply)
    assert "ml_stop.confirm" not in text_of(reply)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ner-prod --froce", "--force"),
        ("../etc/passwd", "`../etc/passwd`"),
        ("ner-prod?force=true", "ner-prod?force=true"),
        ("ner-prod --force --force", "--force"),
        ("<@U123ABC>", "mention"),
        ("--force", "deployment"),
        ("NER-PROD", "lowercase"),
    ],
)
def test_usage_errors_say_what_is_wrong(bench: Bench, text: str, fragment: str) -> None:
    reply = bench.command(text)
    assert fragment in text_of(reply)
    assert "/ml-stop" in text_of(reply)  # the usage line
    assert bench.emulator.requests == []


def test_help_and_empty_show_usage(bench: Bench) -> None:
    for text in ("", "help"):
        reply = bench.command(text)
        assert "--finish-pending-work" in text_of(reply)


def test_click_by_someone_else_is_refused_privately(bench: Bench) -> None:
    preview = bench.command("ner-prod")
    action = button_value(preview)
    reply = bench.driver.click("ml_stop.confirm", action, user_id="U0ADMIN2", ephemeral=True)
    assert reply.status == 200
    refusal = bench.slack.wait_for(
        lambda: [e for e in bench.slack.ephemerals(user="U0ADMIN2")] or None
    )
    assert f"<@{ADMIN}>" in text_of(refusal[-1])
    assert stop_paths(bench) == []


def test_double_click_stops_once(bench: Bench) -> None:
    preview = bench.command("ner-prod")
    action = button_value(preview)
    first = bench.driver.click("ml_stop.confirm", action, user_id=ADMIN, ephemeral=True)
    second = bench.driver.click("ml_stop.confirm", action, user_id=ADMIN, ephemeral=True)
    assert first.status == second.status == 200
    bench.result_of(action)
    bench.slack.wait_for(lambda: len(bench.slack.response_posts()) >= 4 or None)
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


def test_concurrent_clicks_stop_once(bench: Bench) -> None:
    preview = bench.command("search-e5")
    action = button_value(preview)

    async def burst() -> list[int]:
        replies = await asyncio.gather(
            *(
                bench.driver.aclick("ml_stop.confirm", action, user_id=ADMIN, ephemeral=True)
                for _ in range(20)
            )
        )
        return [r.status for r in replies]

    assert set(asyncio.run(burst())) == {200}
    bench.result_of(action)
    assert len(bench.emulator.stop_calls("search-e5")) == 1


def test_expired_prompt_stops_nothing(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.clock.advance(601)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id="C0INCIDENTS")
    final = bench.slack.wait_for(
        lambda: ("expired" in text_of(bench.ephemeral()) and bench.ephemeral()) or None
    )
    assert "ml_stop.confirm" not in text_of(final)
    assert stop_paths(bench) == []


def test_cancel_stops_nothing_and_removes_buttons(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.driver.click_button("ml_stop.cancel", user_id=ADMIN, channel_id="C0INCIDENTS")
    final = bench.slack.wait_for(
        lambda: ("cancelled" in text_of(bench.ephemeral()) and bench.ephemeral()) or None
    )
    assert "ml_stop.confirm" not in text_of(final)
    assert stop_paths(bench) == []
    # A late Stop on the cancelled prompt answers with its state.
    preview_value = button_value(bench.slack.response_posts()[0].body)
    bench.driver.click("ml_stop.confirm", preview_value, user_id=ADMIN, ephemeral=True)
    bench.slack.wait_for(lambda: "cancelled" in text_of(bench.ephemeral()) or None)
    assert stop_paths(bench) == []


def test_pipeline_through_a_model_alias_shows_in_preview_and_blocks(bench: Bench) -> None:
    sentiment = "distilbert-base-uncased-finetuned-sst-2-english"
    preview = text_of(bench.command(sentiment))
    assert "`reviews-sentiment` (through model alias `sentiment-current`)" in preview
    assert "add `--force`" in preview and "ml_stop.confirm" not in preview
    assert sentiment in bench.emulator.state.deployments
