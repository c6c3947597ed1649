"""Timed changes (issue 22) end to end: the real Bolt app over HTTP, the emulator, the real
store; time moves only through the bot's injectable clock, and the sweep is run by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Bench, text_of

from bot.core.model import ActionState, PendingAction
from bot.server import sweep_once
from bot.slack.notices import SlackNotices

ADMIN, CHANNEL = "U0ADMIN1", "C0INCIDENTS"


def _freeze(bench: Bench, text: str) -> None:
    """`/ml-stop freeze|unfreeze`: answered in the channel, not on the response_url."""
    before = len(bench.slack.messages(CHANNEL))
    reply = bench.driver.command("/ml-stop", text, user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200
    bench.slack.wait_for(lambda: len(bench.slack.messages(CHANNEL)) > before or None)


def _sweep(bench: Bench) -> None:
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.run(sweep_once(bench.runtime, notices))


def _get(bench: Bench, action_id: str) -> PendingAction:
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None
    return action


def _timed_stop(
    bench: Bench, text: str = "ner-prod --for 30m"
) -> tuple[PendingAction, PendingAction]:
    preview = bench.command(text)
    shown = text_of(preview)
    assert "Stop now; at <!date^" in shown and "restart* with the settings it has now" in shown
    assert "1 allocation, adaptive off" in shown and "30 min after it runs" in shown
    result = bench.confirm()
    assert "stopped" in text_of(result)
    assert bench.emulator.state.deployments.get("ner-prod") is None
    changes = [a for a in _history(bench) if a.revert_seconds]
    change = changes[-1]
    assert change.revert_id is not None
    revert = _get(bench, change.revert_id)
    assert revert.state is ActionState.SCHEDULED and revert.revert_of == change.id
    assert (
        revert.expires_at == change.finished_at + 1800
        or abs(revert.expires_at - bench.clock() - 1800) < 1
    )
    return change, revert


def _history(bench: Bench) -> list[PendingAction]:
    return list(bench.run(bench.runtime.store.history(0)))


def _thread(bench: Bench, change: PendingAction) -> list[dict[str, Any]]:
    assert change.result_ref is not None
    ts = change.result_ref.ts
    return [m for m in bench.slack.messages(CHANNEL) if m.get("thread_ts") == ts]


def _starts(bench: Bench) -> list[Any]:
    return [r for r in bench.emulator.requests if r.path.endswith("/_start")]


def test_a_timed_stop_restarts_itself_once_at_its_time(bench: Bench) -> None:
    change, revert = _timed_stop(bench)
    change = _get(bench, change.id)
    live = bench.slack.wait_for(
        lambda: next((m for m in _thread(bench, change) if "Reverts at" in text_of(m)), None)
    )
    assert "ml_revert.now" in text_of(live) and "ml_revert.extend_30m" in text_of(live)
    _sweep(bench)  # not due yet: nothing runs
    assert _get(bench, revert.id).state is ActionState.SCHEDULED and not _starts(bench)
    bench.clock.advance(1800 - 590)  # the heads-up, once, mentioning the requester
    _sweep(bench)
    _sweep(bench)
    heads = [m for m in _thread(bench, change) if "⏰" in m.get("text", "") or "⏰" in text_of(m)]
    assert len(heads) == 1 and f"<@{ADMIN}>" in text_of(heads[0])
    redrawn = next(m for m in _thread(bench, change) if "Reverts at" in text_of(m))
    assert "(in 10 min)" in text_of(redrawn)  # the live line was redrawn with the heads-up
    bench.clock.advance(600)
    _sweep(bench)
    done = _get(bench, revert.id)
    assert done.state is ActionState.SUCCEEDED, done
    assert bench.emulator.state.deployments["ner-prod"].state == "started"
    starts = _starts(bench)
    assert len(starts) == 1
    # Attributed to the original request, run as its requester.
    assert starts[0].headers.get("x-opaque-id", "").endswith(f"/{ADMIN}/{change.id}")
    _sweep(bench)  # nothing runs twice
    assert len(_starts(bench)) == 1
    report = [m for m in bench.slack.messages(CHANNEL) if "Timed revert done" in text_of(m)]
    assert len(report) == 1 and not report[0].get("thread_ts")
    live = bench.slack.wait_for(
        lambda: next((m for m in _thread(bench, change) if "Reverted" in text_of(m)), None)
    )
    assert "ml_revert.now" not in text_of(live)
    events = [d["event"]["action"] for d in bench.audit.docs]
    assert "revert.schedule" in events


def test_two_replicas_sweeping_run_a_due_revert_once(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    bench.clock.advance(1801)
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)

    async def both() -> None:
        import asyncio

        await asyncio.gather(sweep_once(bench.runtime, notices), sweep_once(bench.runtime, notices))

    bench.run(both())
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    assert len(_starts(bench)) == 1


def test_a_bot_down_across_the_due_time_runs_it_late_and_says_so(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    bench.clock.advance(1800 + 2 * 3600)  # nobody swept for two hours
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    report = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert done" in text_of(m))
    assert "ran 2 h late" in text_of(report)


def test_a_revert_due_while_frozen_waits_for_a_click(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    _freeze(bench, "freeze --reason maintenance")
    bench.clock.advance(1801)
    _sweep(bench)
    _sweep(bench)
    held = _get(bench, revert.id)
    assert held.state is ActionState.SCHEDULED and held.held and "frozen" in held.held
    assert not _starts(bench)
    notes = [m for m in bench.slack.messages(CHANNEL) if "Timed revert not run" in text_of(m)]
    assert len(notes) == 1 and "maintenance" in text_of(notes[0])
    # Revert now while still frozen: refused.
    bench.driver.click_button("ml_revert.now", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(
        lambda: (
            any(
                "froze" in text_of(e) or "frozen" in text_of(e)
                for e in bench.slack.ephemerals(user=ADMIN)
            )
            or None
        )
    )
    assert not _starts(bench)
    _freeze(bench, "unfreeze")
    bench.driver.click_button("ml_revert.now", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: _get(bench, revert.id).state.is_final or None, timeout=15)
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    assert len(_starts(bench)) == 1


def test_a_revert_after_a_restart_by_hand_reports_and_does_not_apply(bench: Bench) -> None:
    change, revert = _timed_stop(bench)
    state = bench.emulator.state
    state.start_deployment(change.targets[0].model_id, "ner-prod")  # someone restarted it
    bench.clock.advance(1801)
    _sweep(bench)
    ended = _get(bench, revert.id)
    assert ended.state is ActionState.CANCELLED
    assert not _starts(bench)
    note = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert not run" in text_of(m))
    assert "already (someone started it)" in text_of(note)


def test_extend_and_revert_now_at_the_same_moment_one_wins(bench: Bench) -> None:
    change, revert = _timed_stop(bench)
    bench.slack.wait_for(
        lambda: next(
            (m for m in _thread(bench, _get(bench, change.id)) if "Reverts at" in text_of(m)), None
        )
    )
    shown = f"{revert.id}:{int(revert.expires_at)}"
    import asyncio

    async def race() -> list[object]:
        service = bench.runtime.service
        from bot.core.outcomes import Who

        who = Who(ADMIN, "admin", "T0", CHANNEL)
        return list(
            await asyncio.gather(
                service.extend_revert(revert.id, int(revert.expires_at), 1800, who),
                service.revert_now(revert.id, shown.split(":")[1], who),
            )
        )

    outcomes = bench.run(race())
    kinds = sorted(type(o).__name__ for o in outcomes)
    assert kinds in (["Already", "Rescheduled"], ["Already", "Started"]), kinds
    latest = _get(bench, revert.id)
    if kinds == ["Already", "Rescheduled"]:
        assert (
            latest.state is ActionState.SCHEDULED and latest.expires_at == revert.expires_at + 1800
        )
    else:
        assert latest.state is ActionState.EXECUTING and latest.expires_at == revert.expires_at


def test_extend_and_keep_through_the_buttons(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    bench.driver.click_button("ml_revert.extend_1h", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: _get(bench, revert.id).expires_at > revert.expires_at or None)
    assert _get(bench, revert.id).expires_at == revert.expires_at + 3600
    bench.slack.wait_for(
        lambda: next(
            (m for m in bench.slack.messages(CHANNEL) if "extended by 1 h" in text_of(m)), None
        )
    )
    bench.driver.click_button("ml_revert.keep", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: _get(bench, revert.id).state is ActionState.CANCELLED or None)
    kept = _get(bench, revert.id)
    assert any("kept by" in e for e in kept.revert_log) and any(
        "extended" in e for e in kept.revert_log
    )
    bench.clock.advance(5 * 3600)
    _sweep(bench)
    assert not _starts(bench)
    events = [d["event"]["action"] for d in bench.audit.docs]
    assert "revert.extend" in events and "revert.keep" in events


def test_a_viewer_may_not_press_the_revert_buttons(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    outcome = bench.run(
        bench.runtime.service.keep_change(revert.id, int(revert.expires_at), _who("U0NOBODY"))
    )
    assert type(outcome).__name__ == "Denied"
    assert _get(bench, revert.id).state is ActionState.SCHEDULED


def _who(user: str):  # type: ignore[no-untyped-def]
    from bot.core.outcomes import Who

    return Who(user, user, "T0", CHANNEL)


def test_bad_windows_are_usage_errors_that_change_nothing(bench: Bench) -> None:
    for text, rule in [
        ("ner-prod --for 0m", "more than zero"),
        ("ner-prod --for 30m --until 06:00", "give one of them"),
        ("ner-prod --until 2001-01-01T00:00:00Z", "in the past"),
        ("ner-prod --for 8d", "longest window is 7 d"),
    ]:
        assert rule in text_of(bench.command(text)), text
    assert not [a for a in _history(bench) if a.is_timed]


def test_a_timed_freeze_unfreezes_itself_once(bench: Bench) -> None:
    _freeze(bench, "freeze --for 2h --reason window")
    froze = next(m for m in bench.slack.messages(CHANNEL) if "froze" in text_of(m))
    assert "unfreezes itself at" in text_of(froze)
    assert bench.run(bench.runtime.service.frozen()) is not None
    bench.clock.advance(3600)
    _sweep(bench)
    assert bench.run(bench.runtime.service.frozen()) is not None
    bench.clock.advance(3601)
    _sweep(bench)
    _sweep(bench)
    assert bench.run(bench.runtime.service.frozen()) is None
    unfrozen = [m for m in bench.slack.messages(CHANNEL) if "timed freeze ended" in text_of(m)]
    assert len(unfrozen) == 1
    assert json.dumps([d["event"]["action"] for d in bench.audit.docs]).count('"unfreeze"') == 1


def test_a_replica_killed_while_reverting_leaves_it_unknown_never_run_twice(
    bench: Bench, bench_state_url: str
) -> None:
    import asyncio
    from dataclasses import replace

    from bot.adapters.store_sqlite import SQLiteStore

    _, revert = _timed_stop(bench)
    path = bench_state_url.removeprefix("sqlite:///")

    async def die_mid_revert() -> None:
        dead = SQLiteStore(path, owner="elsewhere|pid:[1]|4242|dead0000", lease_seconds=0.05)
        claimed = await dead.mutate(
            revert.id, lambda a: replace(a, state=ActionState.EXECUTING, started_at=a.expires_at)
        )
        assert claimed is not None
        await dead._keeper.stop()  # type: ignore[attr-defined]  # kill -9: no clean close
        await asyncio.sleep(0.1)  # past its lease

    bench.run(die_mid_revert())
    bench.clock.advance(1801)
    _sweep(bench)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.UNKNOWN
    assert not _starts(bench)  # never run (again) by the survivor
    told = [m for m in bench.slack.messages(CHANNEL) if "stopped answering" in text_of(m)]
    # Told once in the channel (and once in the change's thread), not again by later sweeps.
    assert len([m for m in told if not m.get("thread_ts")]) == 1
    assert "while starting ner-prod" in told[0]["text"]


def test_deployments_status_and_audit_show_the_pending_revert(bench: Bench) -> None:
    change, revert = _timed_stop(bench)
    bench.driver.click_button("ml_revert.extend_30m", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: _get(bench, revert.id).expires_at > revert.expires_at or None)
    listing = text_of(bench.command("", command="/ml-deployments"))
    assert "Pending reverts" in listing and "restart `ner-prod`" in listing
    assert change.id in listing
    status = text_of(bench.command("ner-prod", command="/ml-status"))
    assert "Pending reverts" in status and "restart `ner-prod`" in status
    audit = text_of(bench.command("", command="/ml-audit"))
    assert f"timed revert of `{change.id}`" in audit
    assert f"extended by 30 min by <@{ADMIN}>" in audit
    assert "timed: reverts 30 min after it ran" in audit
    table = text_of(bench.command("--format markdown", command="/ml-audit"))
    assert f"extended by 30 min by @{ADMIN}" in table


def test_the_workflow_step_takes_an_optional_revert_after(bench: Bench) -> None:
    from test_flow_workflow import click_step_button, run_step, step_state

    execution_id, token = run_step(bench, deployment_id="ner-prod", revert_after="1h")
    preview = next(m for m in bench.slack.messages(CHANNEL) if "ml_stop.confirm" in text_of(m))
    assert "Stop now; at <!date^" in text_of(preview) and "1 h after it runs" in text_of(preview)
    click_step_button(bench, "ml_stop.confirm", execution_id, token)
    assert step_state(bench, execution_id)["state"] == "completed"
    change = next(a for a in _history(bench) if a.function_execution_id == execution_id)
    assert change.revert_seconds == 3600
    revert = bench.slack.wait_for(lambda: _get(bench, change.id).revert_id)
    bench.clock.advance(3601)
    _sweep(bench)
    assert _get(bench, revert).state is ActionState.SUCCEEDED
    assert bench.emulator.state.deployments["ner-prod"].state == "started"


def test_the_workflow_step_refuses_a_bad_revert_after(bench: Bench) -> None:
    from test_flow_workflow import run_step, step_state

    execution_id, _ = run_step(bench, deployment_id="ner-prod", revert_after="soon")
    state = step_state(bench, execution_id)
    assert state["state"] == "failed" and "not a duration" in str(state), state


def test_a_revert_elasticsearch_refuses_says_why_and_offers_retry(bench: Bench) -> None:
    from bot.emulator.faults import FailRule

    _, revert = _timed_stop(bench)
    bench.emulator.faults.fails.append(
        FailRule(count=1, status=429, endpoint="ml.start", type="es_rejected_execution_exception")
    )
    bench.clock.advance(1801)
    _sweep(bench)
    failed = _get(bench, revert.id)
    assert failed.state is ActionState.FAILED
    report = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert failed" in text_of(m))
    assert "rejected execution" in text_of(report)  # Elasticsearch's own reason
    assert "Retry" in text_of(report)
    bench.driver.click_button("ml_revert.now", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(
        lambda: bench.emulator.state.deployments.get("ner-prod") is not None or None, timeout=15
    )
    retried = [a for a in _history(bench) if a.revert_of == failed.revert_of and a.id != revert.id]
    assert len(retried) == 1
    bench.slack.wait_for(lambda: _get(bench, retried[0].id).state.is_final or None, timeout=15)
    assert _get(bench, retried[0].id).state is ActionState.SUCCEEDED
    # A second Retry on the same failed revert does nothing more.
    outcome = bench.run(bench.runtime.service.revert_now(revert.id, "retry", _who(ADMIN)))
    assert type(outcome).__name__ == "Already"
    assert len(_starts(bench)) == 2  # the refused one and the retry


def test_a_revert_after_the_model_was_deleted_is_explained(bench: Bench) -> None:
    change, revert = _timed_stop(bench)
    del bench.emulator.state.models[change.targets[0].model_id]
    bench.clock.advance(1801)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.CANCELLED
    note = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert not run" in text_of(m))
    assert "is gone" in text_of(note) and not _starts(bench)


def test_a_timed_stop_of_an_endpoint_deployment_brings_the_endpoint_back(bench: Bench) -> None:
    bench.command("elser-endpoint --force --for 1m")
    bench.confirm()
    assert bench.emulator.state.deployments.get("elser-endpoint") is None
    change = next(a for a in _history(bench) if a.is_timed)
    revert_id = bench.slack.wait_for(lambda: _get(bench, change.id).revert_id)
    bench.clock.advance(61)
    _sweep(bench)
    assert _get(bench, revert_id).state is ActionState.SUCCEEDED
    assert bench.emulator.state.deployments["elser-endpoint"].state == "started"
    start = next(r for r in bench.emulator.requests if r.path.endswith("/_start"))
    assert start.query["deployment_id"] == "elser-endpoint"
    # The endpoint answers for its deployment again: a plain stop is refused once more.
    assert "created by inference endpoint" in text_of(bench.command("elser-endpoint"))


def test_slack_failing_during_a_revert_never_holds_it_back(bench: Bench) -> None:
    _, revert = _timed_stop(bench)
    bench.clock.advance(1801)
    bench.slack.http_error_next("chat.postMessage", status=500, count=20)
    bench.slack.http_error_next("chat.update", status=500, count=20)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    assert bench.emulator.state.deployments["ner-prod"].state == "started"
    _sweep(bench)
    assert len(_starts(bench)) == 1


RUN_AS = """
clusters:
  default:
    url: "{ES_URL}"
    username: impersonator
    password_env: ML_CHATOPS_TEST_IMPERSONATOR_PW
    run_as: true
    run_as_users: {U0ADMIN1: ml-bot, U0ADMIN2: viewer}
roles:
  ml-admin:
    - {action: [stop, start, status], deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
"""


@pytest.fixture
def impersonator_pw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CHATOPS_TEST_IMPERSONATOR_PW", "imp-pw")


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("role_map_text", [RUN_AS])
def test_a_revert_runs_as_the_requester_whoever_clicks(impersonator_pw: None, bench: Bench) -> None:
    state = bench.emulator.state
    state.add_role("impersonate", cluster=["monitor_ml", "read_pipeline"], run_as=["*"])
    state.add_user("impersonator", "imp-pw", ["impersonate"])
    state.add_role("ml-operator", cluster=["manage_ml", "monitor", "read_pipeline"])
    _, revert = _timed_stop(bench)
    # Another admin (mapped to a read-only ES user) presses Revert now: the revert still runs
    # as the requester of the change (ml-bot), attributed to the original request.
    outcome = bench.run(
        bench.runtime.service.revert_now(revert.id, str(int(revert.expires_at)), _who("U0ADMIN2"))
    )
    assert type(outcome).__name__ == "Started"
    final = bench.run(bench.runtime.service.execute(outcome.action, _who("U0ADMIN2")))
    assert final.state is ActionState.SUCCEEDED, final.outcomes
    start = _starts(bench)[0]
    assert start.headers.get("es-security-runas-user") == "ml-bot"
