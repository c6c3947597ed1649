"""`/ml-scale` and `/ml-status` end to end: the real Bolt app over HTTP, the real client
against the emulator. Pins the Elasticsearch requests a scale makes (as test_flow_reads does)."""

from __future__ import annotations

import time

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of

from bot.core.model import ActionState

SCALE = "/ml-scale"
CONFIRM = "ml_scale.confirm"


@pytest.fixture
def role_map_text() -> str:
    """The shared role map, with `scale` (and its options) granted to the admins."""
    return ROLE_MAP.replace(
        '- {action: [stop, start, status, freeze], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all]}",
        '- {action: [stop, start, status, freeze, scale], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all, adaptive_off,"
        " scale_to_zero]}",
    )


def _stats(bench: Bench, dep_id: str) -> dict:  # type: ignore[type-arg]
    return dict(bench.emulator.state.deployments[dep_id].__dict__)


def test_scale_up_previews_before_and_after_then_updates_once_and_verifies(bench: Bench) -> None:
    preview = bench.command("ner-prod --allocations 3 --reason 'queue full'", command=SCALE)
    shown = text_of(preview)
    assert CONFIRM in shown
    assert "1 allocation" in shown and "3 allocations" in shown
    assert "_ml/trained_models/ner-prod/deployment/_update" in shown  # the API it takes
    assert "ML memory" in shown
    bench.emulator.requests.clear()
    result = bench.confirm(action_id=CONFIRM)
    log = list(bench.emulator.requests)
    updates = [r for r in log if r.endpoint == "ml.update"]
    assert len(updates) == 1
    assert updates[0].method == "POST"
    assert updates[0].path == "/_ml/trained_models/ner-prod/deployment/_update"
    assert str(updates[0].headers.get("x-opaque-id", "")).startswith("ml-chatops/")
    assert "scaled" in text_of(result) and "verified" in text_of(result)
    assert "ml_scale.revert" in text_of(result)
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 3


def test_a_bare_allocation_count_on_an_adaptive_deployment_is_refused_before_asking(
    bench: Bench,
) -> None:
    bench.emulator.requests.clear()
    reply = bench.command("elser-search --allocations 3", command=SCALE)
    shown = text_of(reply)
    assert "cannot be set if adaptive allocations is enabled" in shown
    assert "--adaptive off" in shown and CONFIRM not in shown
    assert not [r for r in bench.emulator.requests if r.method != "GET"]


def test_adaptive_off_with_a_count_is_accepted_and_the_body_says_both(bench: Bench) -> None:
    bench.command("elser-search --adaptive off --allocations 2", command=SCALE)
    bench.emulator.requests.clear()
    result = bench.confirm(action_id=CONFIRM)
    updates = [r for r in bench.emulator.requests if r.endpoint == "ml.update"]
    assert len(updates) == 1
    assert "scaled" in text_of(result)


def test_a_change_that_changes_nothing_offers_no_button(bench: Bench) -> None:
    reply = bench.command("ner-prod --allocations 1", command=SCALE)
    assert "nothing to change" in text_of(reply) and CONFIRM not in text_of(reply)


def test_an_endpoint_deployment_is_scaled_through_the_inference_api(bench: Bench) -> None:
    preview = bench.command("elser-endpoint --allocations 2", command=SCALE)
    assert "_inference/sparse_embedding/elser-endpoint/_update" in text_of(preview)
    bench.emulator.requests.clear()
    result = bench.confirm(action_id=CONFIRM)
    updates = [r for r in bench.emulator.requests if r.method == "PUT"]
    assert [r.path for r in updates] == ["/_inference/sparse_embedding/elser-endpoint/_update"]
    assert "scaled" in text_of(result), text_of(result)


def test_an_operator_is_denied_beyond_the_bound_named(bench: Bench) -> None:
    text = (
        bench.config_path.read_text()
        .replace(
            "  ml-viewer:\n",
            "  ml-scaler:\n"
            '    - {action: scale, deployments: ["ner-*"], allocations: {min: 1, max: 4}}\n'
            "  ml-viewer:\n",
        )
        .replace("bindings:\n", "bindings:\n  - {role: ml-scaler, users: [U0SCALER]}\n")
    )
    bench.rewrite_config(text)
    reply = bench.command("ner-prod --allocations 6", command=SCALE, user="U0SCALER")
    assert "between 1 and 4 allocations" in text_of(reply)
    ok = bench.command("ner-prod --allocations 4", command=SCALE, user="U0SCALER")
    assert CONFIRM in text_of(ok)


def test_revert_to_previous_is_a_new_preview_that_brings_the_settings_back(bench: Bench) -> None:
    bench.command("ner-prod --allocations 2", command=SCALE)
    result = bench.confirm(action_id=CONFIRM)
    action_id = button_value(result, "ml_scale.revert")
    reply = bench.driver.click_button(
        "ml_scale.revert", user_id="U0ADMIN1", channel_id="C0INCIDENTS"
    )
    assert reply.status == 200
    preview = bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if "revert of action" in text_of(m) and CONFIRM in text_of(m)
            ),
            None,
        )
    )
    assert action_id in text_of(preview)
    bench.confirm(action_id=CONFIRM)
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 1


def test_a_scale_runs_once_however_often_it_is_clicked(bench: Bench) -> None:
    bench.command("ner-prod --allocations 2", command=SCALE)
    target = bench.slack.wait_for(
        lambda: bench.driver.latest_click_target(
            CONFIRM, user_id="U0ADMIN1", channel_id="C0INCIDENTS"
        )
    )
    bench.emulator.requests.clear()
    for _ in range(3):  # the same button value, as a double-click or a redelivery sends it
        bench.driver.click(CONFIRM, str(target.value), user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    bench.result_of(str(target.value))
    assert len([r for r in bench.emulator.requests if r.endpoint == "ml.update"]) == 1
    action = bench.run(bench.runtime.store.get(str(target.value)))
    assert action is not None and action.state is ActionState.SUCCEEDED


def test_status_shows_one_deployment_with_its_fields(bench: Bench) -> None:
    reply = bench.command("elser-prod", command="/ml-status")
    shown = text_of(reply)
    for field in (
        "allocations: target",
        "queue:",
        "rejected",
        "timeouts",
        "inference time",
        "throughput",
        "last access",
        "ML memory",
    ):
        assert field in shown, field


def test_status_without_an_argument_lists_every_deployment(bench: Bench) -> None:
    reply = bench.command("", command="/ml-status")
    shown = text_of(reply)
    assert "ner-prod" in shown and "elser-prod" in shown


def _run_scale_step(bench: Bench, **inputs: object) -> tuple[str, str]:
    full = {"requested_by": "U0ADMIN1", "channel": "C0INCIDENTS", **inputs}
    execution = bench.slack.new_function_execution("scale_ml_deployment", full)
    event = {
        "type": "function_executed",
        "function": {
            "id": "Fn0SCALE",
            "callback_id": "scale_ml_deployment",
            "title": "Scale ML deployment",
            "type": "app",
            "input_parameters": [],
            "output_parameters": [],
            "app_id": bench.slack.app_id,
        },
        "inputs": full,
        "function_execution_id": execution.id,
        "workflow_execution_id": "Wx0SCALE",
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": execution.token,
    }
    assert bench.driver.event(event).status == 200
    return execution.id, execution.token


def test_the_workflow_step_scales_with_confirmation_in_the_channel(bench: Bench) -> None:
    execution_id, token = _run_scale_step(
        bench, deployment_id="ner-prod", allocations=2, reason="INC-9 from workflow"
    )
    preview = bench.slack.wait_for(
        lambda: next(
            (m for m in bench.slack.messages("C0INCIDENTS") if CONFIRM in text_of(m)), None
        )
    )
    extra = {
        "function_data": {
            "execution_id": execution_id,
            "function": {"callback_id": "scale_ml_deployment"},
            "inputs": {},
        },
        "bot_access_token": token,
        "interactivity": {"interactor": {"id": "U0ADMIN1"}, "interactivity_pointer": "1.2.abc"},
    }
    reply = bench.driver.click(
        CONFIRM,
        button_value(preview, CONFIRM),
        user_id="U0ADMIN1",
        channel_id="C0INCIDENTS",
        message_ts=preview["ts"],
        message=preview,
        ephemeral=False,
        extra=extra,
    )
    assert reply.status == 200
    state = bench.slack.wait_for(
        lambda: (
            ((s := bench.slack.function_execution(execution_id))["state"] != "running" and s)
            or None
        ),
        timeout=15,
    )
    assert state["state"] == "completed", state
    assert state["outputs"]["outcome"] == "succeeded"
    assert state["outputs"]["settings_after"] == "ner-prod: target 2, 2 allocated"
    assert [r for r in bench.emulator.requests if r.endpoint == "ml.update"]


def test_the_workflow_step_fails_readably_on_a_refused_scale(bench: Bench) -> None:
    execution_id, _ = _run_scale_step(bench, deployment_id="elser-search", allocations=3)
    state = bench.slack.wait_for(
        lambda: (
            ((s := bench.slack.function_execution(execution_id))["state"] != "running" and s)
            or None
        ),
        timeout=15,
    )
    assert state["state"] == "failed"
    assert "adaptive allocations is enabled" in str(state.get("error")), state


def test_a_scale_that_is_not_placed_in_time_is_requested_never_done(bench: Bench) -> None:
    bench.emulator.placement.configure("manual", 0, None)
    bench.command("ner-prod --allocations 3", command=SCALE)
    result = bench.confirm(action_id=CONFIRM)
    shown = text_of(result)
    assert "requested, not yet placed" in shown, shown
    assert "target 3, 1 allocated" in shown
    assert "scaled to" not in shown


def test_elasticsearch_429_is_reported_as_not_enough_resources_with_nothing_claimed(
    bench: Bench,
) -> None:
    preview = bench.command("ner-prod --allocations 64", command=SCALE)
    assert CONFIRM in text_of(preview)
    result = bench.confirm(action_id=CONFIRM)
    shown = text_of(result)
    assert "not enough ML resources" in shown and "nothing was changed" in shown, shown
    assert "(429)" in shown
    assert "scaled to" not in shown
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 1


def test_status_shows_a_healthy_an_overloaded_and_a_failing_deployment(bench: Bench) -> None:
    healthy = text_of(bench.command("elser-prod", command="/ml-status"))
    assert "healthy" in healthy and "ml_status" not in healthy
    overloaded = bench.command("search-e5", command="/ml-status")
    shown = text_of(overloaded)
    assert "queue full" in shown and "requests rejected" in shown and "timeouts" in shown
    assert "/ml-scale search-e5 --allocations 4" in shown
    assert "ml_status.scale" in shown
    failing = text_of(bench.command("canary-ner", command="/ml-status"))
    assert "failed" in failing and "process stopped unexpectedly" in failing
    assert "ml_status.stop" in failing


def test_status_lists_the_unhealthy_first_within_slacks_limits(bench: Bench) -> None:
    message = bench.command("", command="/ml-status")
    shown = text_of(message)
    assert shown.index("canary-ner") < shown.index("search-e5") < shown.index("elser-prod")
    assert len(message["blocks"]) <= 50
    ids = [b.get("block_id") for b in message["blocks"] if b.get("block_id")]
    assert len(ids) == len(set(ids))


def test_the_status_scale_up_button_opens_the_matching_preview(bench: Bench) -> None:
    status = bench.command("search-e5", command="/ml-status")
    value = button_value(status, "ml_status.scale")
    assert value.startswith("search-e5 --allocations 4")
    reply = bench.driver.click(
        "ml_status.scale", value, user_id="U0ADMIN1", channel_id="C0INCIDENTS"
    )
    assert reply.status == 200
    preview = bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if CONFIRM in text_of(m)
            ),
            None,
        )
    )
    assert "2 allocations" in text_of(preview) and "4 allocations" in text_of(preview)


def test_a_viewer_may_read_status_but_not_scale(bench: Bench) -> None:
    status = text_of(bench.command("search-e5", command="/ml-status", user="U0VIEWER"))
    assert "search-e5" in status
    denied = text_of(bench.command("search-e5 --allocations 4", command=SCALE, user="U0VIEWER"))
    assert "denied" in denied and CONFIRM not in denied


def test_the_deployments_table_shows_allocation_columns(bench: Bench) -> None:
    shown = text_of(bench.command("elser-*", command="/ml-deployments"))
    assert "2/2 allocations" in shown  # allocated/target
    assert "adaptive 1-4" in shown and "2 threads each" in shown  # elser-search


# --------------------------------------------------------------------------- the stop's safety


def _scale_roles() -> str:
    return ROLE_MAP.replace("[stop, start, status, freeze]", "[stop, start, status, freeze, scale]")


FOUR_EYES = (
    _scale_roles()
    + """
approvals:
  - {actions: [scale], deployments: ["ner-*"], required: 1, approvers: [ml-admin]}
"""
)


def _card(bench: Bench) -> dict:  # type: ignore[type-arg]
    return bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in reversed(bench.slack.messages("C0INCIDENTS"))
                if "ml_stop.approve" in text_of(m)
            ),
            None,
        )
    )


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_four_eyes_on_a_scale_then_it_runs_once(bench: Bench) -> None:
    preview = bench.command("ner-prod --allocations 2 --reason INC-3", command=SCALE)
    assert "approval" in text_of(preview).lower()
    card = _card(bench)
    assert "1 allocation" in text_of(card) and "2 allocations" in text_of(card)
    bench.driver.click_button(CONFIRM, user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if "more approval" in text_of(m)
            ),
            None,
        )
    )
    assert not [r for r in bench.emulator.requests if r.endpoint == "ml.update"]
    reply = bench.driver.click(
        "ml_stop.approve",
        button_value(card, "ml_stop.approve"),
        user_id="U0ADMIN2",
        channel_id="C0INCIDENTS",
        message_ts=card["ts"],
        message=card,
        ephemeral=False,
    )
    assert reply.status == 200
    bench.slack.wait_for(
        lambda: (
            "<@U0ADMIN2>" in text_of(bench.slack.message("C0INCIDENTS", card["ts"]) or {}) or None
        )
    )
    result = bench.confirm(action_id=CONFIRM)
    assert "scaled" in text_of(result) and "U0ADMIN2" in text_of(result)
    assert len([r for r in bench.emulator.requests if r.endpoint == "ml.update"]) == 1
    audit = [d for d in bench.audit.docs if d["event"]["action"] == "scale"]
    assert audit and audit[0]["ml_chatops"]["approvers"] == ["U0ADMIN2"]


def test_freeze_refuses_a_scale(bench: Bench) -> None:
    reply = bench.driver.command(
        "/ml-stop", "freeze --reason drill", user_id="U0ADMIN1", channel_id="C0INCIDENTS"
    )
    assert reply.status == 200
    bench.slack.wait_for(
        lambda: [m for m in bench.slack.messages("C0INCIDENTS") if "drill" in text_of(m)] or None
    )
    answer = bench.command("ner-prod --allocations 2", command=SCALE)
    assert "frozen" in text_of(answer).lower() and CONFIRM not in text_of(answer)


def test_a_pending_stop_locks_the_deployment_against_a_scale(bench: Bench) -> None:
    bench.command("ner-prod")
    reply = bench.command("ner-prod --allocations 2", command=SCALE)
    assert CONFIRM not in text_of(reply)
    assert "ner-prod" in text_of(reply)


def test_a_scale_moved_by_someone_else_since_the_preview_is_not_run(bench: Bench) -> None:
    bench.command("ner-prod --allocations 2", command=SCALE)
    bench.emulator.state.deployments["ner-prod"].number_of_allocations = 3
    target = bench.slack.wait_for(
        lambda: bench.driver.latest_click_target(
            CONFIRM, user_id="U0ADMIN1", channel_id="C0INCIDENTS"
        )
    )
    bench.emulator.requests.clear()
    bench.driver.click(CONFIRM, str(target.value), user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    answer = bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if "Changed since your preview" in text_of(m)
            ),
            None,
        )
    )
    # The preview now shows the new before → after and asks again; nothing was sent.
    assert "now has 3 allocations (was 1 allocation)" in text_of(answer)
    assert "3 allocations (" in text_of(answer) and CONFIRM in text_of(answer)
    assert not [r for r in bench.emulator.requests if r.endpoint == "ml.update"]
    result = bench.confirm(action_id=CONFIRM)
    assert "scaled to 2 allocations" in text_of(result)


# --------------------------------------------------------------------------- the requests


READS = ["indices.get_mapping", "inference.get", "ingest.get_pipeline", "ml.get", "ml.stats"]


def test_the_requests_a_scale_makes_are_pinned(bench: Bench) -> None:
    bench.emulator.requests.clear()
    bench.command("ner-prod --allocations 2", command=SCALE)
    preview = list(bench.emulator.requests)
    # The preview: the stop's one parallel round of reads, plus ML memory; all GETs.
    assert sorted(r.endpoint for r in preview) == sorted([*READS, "ml.memory_stats", "xpack.info"])
    assert {r.method for r in preview} == {"GET"}
    assert [r.path for r in preview if r.endpoint == "ml.stats"] == [
        "/_ml/trained_models/ner-prod/_stats"
    ]
    bench.emulator.requests.clear()
    bench.confirm(action_id=CONFIRM)
    click = list(bench.emulator.requests)
    endpoints = [r.endpoint for r in click]
    # The click: the re-check round, then one update, then _stats of the one deployment.
    assert sorted(endpoints[: len(READS)]) == READS, endpoints
    assert endpoints[len(READS)] == "ml.update"
    assert endpoints[len(READS) + 1 :] == ["ml.stats"], endpoints
    update = click[len(READS)]
    assert (update.method, update.path) == (
        "POST",
        "/_ml/trained_models/ner-prod/deployment/_update",
    )
    assert update.body == {"number_of_allocations": 2}
    assert [r.path for r in click if r.endpoint == "ml.stats"] == [
        "/_ml/trained_models/ner-prod/_stats"
    ] * 2
    opaque = {r.headers.get("x-opaque-id") or r.headers.get("X-Opaque-Id") for r in click}
    assert len(opaque) == 1 and str(opaque.pop()).startswith("ml-chatops/")


def test_an_endpoint_deployment_goes_adaptive_and_back_through_the_inference_api(
    bench: Bench,
) -> None:
    bench.command("elser-endpoint --adaptive on --min 1 --max 3", command=SCALE)
    result = bench.confirm(action_id=CONFIRM)
    assert "scaled to adaptive (min 1, max 3)" in text_of(result), text_of(result)
    bench.command("elser-endpoint --adaptive off --allocations 2", command=SCALE)
    result = bench.confirm(action_id=CONFIRM)
    assert "scaled to 2 allocations" in text_of(result), text_of(result)
    puts = [r for r in bench.emulator.requests if r.method == "PUT"]
    assert len(puts) == 2 and all(
        r.path == "/_inference/sparse_embedding/elser-endpoint/_update" for r in puts
    )


def test_rejections_rising_between_two_looks_are_called_rising(bench: Bench) -> None:
    first = text_of(bench.command("search-e5", command="/ml-status"))
    assert "requests rejected" in first and "rising" not in first
    second = text_of(bench.command("search-e5", command="/ml-status"))
    assert "rising (+" in second, second


def test_a_scale_is_counted_in_the_metrics(bench: Bench) -> None:
    bench.command("ner-prod --allocations 2", command=SCALE)
    bench.confirm(action_id=CONFIRM)
    text = bench.runtime.metrics.render().decode()
    assert 'ml_chatops_scales_total{cluster="default",outcome="success"} 1.0' in text
    assert 'ml_chatops_commands_total{command="/ml-scale",outcome="proposed"} 1.0' in text


RUN_AS = """
clusters:
  default:
    url: "{ES_URL}"
    username: impersonator
    password_env: ML_CHATOPS_TEST_IMPERSONATOR_PW
    run_as: true
    run_as_users: {U0ADMIN1: ml-bot, U0ADMIN2: viewer}
verify_timeout_seconds: 2
roles:
  ml-admin:
    - {action: [scale, status], deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
"""


@pytest.fixture
def run_as_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CHATOPS_TEST_IMPERSONATOR_PW", "imp-pw")


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("role_map_text", [RUN_AS])
def test_a_scale_runs_as_the_person_and_their_privileges_decide(
    run_as_env: None, bench: Bench
) -> None:
    state = bench.emulator.state
    state.add_role("impersonate", cluster=["monitor_ml", "read_pipeline"], run_as=["*"])
    state.add_user("impersonator", "imp-pw", ["impersonate"])
    state.add_role("ml-operator", cluster=["manage_ml", "monitor", "read_pipeline"])
    state.add_role("ml-viewer", cluster=["monitor_ml", "read_pipeline"])

    bench.command("ner-prod --allocations 2", command=SCALE)
    result = bench.confirm(action_id=CONFIRM)
    assert "scaled" in text_of(result), text_of(result)
    update = next(r for r in bench.emulator.requests if r.endpoint == "ml.update")
    assert update.headers.get("es-security-runas-user") == "ml-bot"

    bench.command("search-e5 --allocations 3", command=SCALE, user="U0ADMIN2")
    denied = bench.confirm(action_id=CONFIRM, user="U0ADMIN2")
    shown = text_of(denied)
    assert "as your Elasticsearch user" in shown and "nothing was changed" in shown, shown
    assert state.deployments["search-e5"].number_of_allocations == 2


def test_up_down_to_adaptive_with_zero_and_back_on_a_trained_model_deployment(
    bench: Bench,
) -> None:
    steps = [
        ("ner-prod --allocations 3", "scaled to 3 allocations"),
        ("ner-prod --allocations 2", "scaled to 2 allocations"),
        ("ner-prod --adaptive on --min 0 --max 3", "scaled to adaptive (min 0, max 3)"),
        ("ner-prod --adaptive off --allocations 1", "scaled to 1 allocation"),
    ]
    for text, expected in steps:
        bench.command(text, command=SCALE)
        result = text_of(bench.confirm(action_id=CONFIRM))
        assert expected in result, result
    assert len([r for r in bench.emulator.requests if r.endpoint == "ml.update"]) == len(steps)


def test_status_of_an_unknown_deployment_says_so(bench: Bench) -> None:
    shown = text_of(bench.command("nope-*", command="/ml-status"))
    assert "No deployments" in shown or "no deployment matches" in shown


def test_the_status_stop_button_opens_the_stop_preview(bench: Bench) -> None:
    status = bench.command("canary-ner", command="/ml-status")
    value = button_value(status, "ml_status.stop")
    reply = bench.driver.click(
        "ml_status.stop", value, user_id="U0ADMIN1", channel_id="C0INCIDENTS"
    )
    assert reply.status == 200
    bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if "ml_stop.confirm" in text_of(m) and "canary-ner" in text_of(m)
            ),
            None,
        )
    )
    assert bench.emulator.stop_calls() == []  # a preview, nothing stopped


def test_a_scale_someone_else_already_made_is_cancelled_at_the_click(bench: Bench) -> None:
    bench.command("ner-prod --allocations 2", command=SCALE)
    bench.emulator.state.deployments["ner-prod"].number_of_allocations = 2
    target = bench.slack.wait_for(
        lambda: bench.driver.latest_click_target(
            CONFIRM, user_id="U0ADMIN1", channel_id="C0INCIDENTS"
        )
    )
    bench.emulator.requests.clear()
    bench.driver.click(CONFIRM, str(target.value), user_id="U0ADMIN1", channel_id="C0INCIDENTS")
    answer = bench.slack.wait_for(
        lambda: next(
            (
                m
                for m in bench.slack.ephemerals(channel="C0INCIDENTS", user="U0ADMIN1")
                if "nothing was scaled" in text_of(m)
            ),
            None,
        )
    )
    assert "already has 2 allocations" in text_of(answer)
    assert not [r for r in bench.emulator.requests if r.endpoint == "ml.update"]
    action = bench.run(bench.runtime.store.get(str(target.value)))
    assert action is not None and action.state is ActionState.CANCELLED


def test_unreadable_endpoints_take_the_trained_model_api_and_es_409_is_reported(
    bench: Bench,
) -> None:
    from bot.emulator.faults import FailRule

    bench.emulator.faults.fails.append(
        FailRule(
            count=100,
            status=403,
            endpoint="inference.get",
            type="security_exception",
            reason="action [cluster:monitor/xpack/inference/get] is unauthorized for user [bot]",
        )
    )
    preview = text_of(bench.command("elser-endpoint --allocations 2", command=SCALE))
    assert "inference endpoints could not be read" in preview
    assert "_ml/trained_models/elser-endpoint/deployment/_update" in preview
    result = text_of(bench.confirm(action_id=CONFIRM))
    assert "nothing was changed" in result and "(409)" in result, result
    assert "created by inference endpoint" in result
    assert bench.emulator.state.deployments["elser-endpoint"].number_of_allocations == 1


def test_a_step_whose_scale_is_no_longer_possible_at_the_click_completes_with_an_error(
    bench: Bench,
) -> None:
    execution_id, token = _run_scale_step(bench, deployment_id="ner-prod", allocations=2)
    preview = bench.slack.wait_for(
        lambda: next(
            (m for m in bench.slack.messages("C0INCIDENTS") if CONFIRM in text_of(m)), None
        )
    )
    bench.emulator.state.deployments["ner-prod"].number_of_allocations = 2  # someone did it
    extra = {
        "function_data": {
            "execution_id": execution_id,
            "function": {"callback_id": "scale_ml_deployment"},
            "inputs": {},
        },
        "bot_access_token": token,
        "interactivity": {"interactor": {"id": "U0ADMIN1"}, "interactivity_pointer": "1.2.abc"},
    }
    bench.driver.click(
        CONFIRM,
        button_value(preview, CONFIRM),
        user_id="U0ADMIN1",
        channel_id="C0INCIDENTS",
        message_ts=preview["ts"],
        message=preview,
        ephemeral=False,
        extra=extra,
    )
    state = bench.slack.wait_for(
        lambda: (
            ((s := bench.slack.function_execution(execution_id))["state"] != "running" and s)
            or None
        ),
        timeout=15,
    )
    assert state["state"] == "failed" and "cancelled" in str(state.get("error")), state
    assert not [r for r in bench.emulator.requests if r.endpoint == "ml.update"]


# --------------------------------------------------------------------------- odd answers


def test_an_html_answer_to_an_update_that_applied_is_verified_by_reading_back(
    bench: Bench,
) -> None:
    from test_flow_es_answers import HTML, final_state, respond

    bench.command("ner-prod --allocations 2", command=SCALE)
    respond(bench, "ml.update", HTML, content_type="text/html", handled=True)
    result = bench.confirm(action_id=CONFIRM)
    text = text_of(result)
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 2
    assert "failed" not in text and "outcome unknown" not in text
    assert "verified" in text and "answer could not be read" in text
    assert final_state(bench) is ActionState.SUCCEEDED


def test_an_html_answer_to_an_update_that_did_not_apply_is_unknown_never_failed(
    bench: Bench,
) -> None:
    from test_flow_es_answers import HTML, final_state, respond

    bench.command("ner-prod --allocations 2", command=SCALE)
    respond(bench, "ml.update", HTML, content_type="text/html")  # a proxy kept it
    result = bench.confirm(action_id=CONFIRM)
    text = text_of(result)
    assert bench.emulator.state.deployments["ner-prod"].number_of_allocations == 1
    assert "outcome unknown" in text and "failed" not in text
    assert "scaled to" not in text and "/ml-status ner-prod" in text
    assert final_state(bench) is ActionState.UNKNOWN
    assert len([r for r in bench.emulator.requests if r.endpoint == "ml.update"]) == 1
