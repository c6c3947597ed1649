"""A timed scale (issue 22) end to end: `/ml-scale <id> --allocations N --until HH:MM` scales
back to the captured settings at its time, once; a scale made since is not overridden."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import ROLE_MAP, Bench, text_of

from bot.core.model import ActionState, PendingAction
from bot.server import sweep_once
from bot.slack.notices import SlackNotices

SCALE, CONFIRM, CHANNEL = "/ml-scale", "ml_scale.confirm", "C0INCIDENTS"


@pytest.fixture
def role_map_text() -> str:
    """The shared role map, with `scale` granted to the admins."""
    return ROLE_MAP.replace(
        '- {action: [stop, start, status, freeze], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all]}",
        '- {action: [stop, start, status, freeze, scale], deployments: ["*"],\n'
        "       options: [force, finish_pending_work, wildcard, list, all, adaptive_off,"
        " scale_to_zero]}",
    )


def _sweep(bench: Bench) -> None:
    notices = SlackNotices(bench.runtime.slack, bench.runtime.service.clock)
    bench.run(sweep_once(bench.runtime, notices))


def _get(bench: Bench, action_id: str) -> PendingAction:
    action = bench.run(bench.runtime.store.get(action_id))
    assert action is not None
    return action


def _allocations(bench: Bench) -> int:
    return int(bench.emulator.state.deployments["ner-prod"].number_of_allocations)


def _timed_scale(bench: Bench) -> tuple[PendingAction, PendingAction, float]:
    # Two hours from the bot's clock, as HH:MM in UTC (the config's default zone).
    due = (int(bench.clock()) // 60 + 120) * 60
    until = datetime.fromtimestamp(due, UTC).strftime("%H:%M")
    preview = bench.command(f"ner-prod --allocations 3 --until {until}", command=SCALE)
    shown = text_of(preview)
    assert f"Scale now; at <!date^{due}^" in shown
    assert "scale back* to the settings it has now" in shown and "1 allocation" in shown
    bench.confirm(action_id=CONFIRM)
    assert _allocations(bench) == 3
    history = bench.run(bench.runtime.store.history(0))
    change = next(a for a in history if a.revert_at is not None)
    assert change.revert_id is not None
    revert = _get(bench, change.revert_id)
    assert revert.state is ActionState.SCHEDULED and revert.expires_at == due
    return change, revert, due


def _updates(bench: Bench) -> list[object]:
    return [r for r in bench.emulator.requests if r.endpoint == "ml.update"]


def test_a_timed_scale_scales_back_at_its_time_once(bench: Bench) -> None:
    change, revert, due = _timed_scale(bench)
    bench.clock.advance(due - bench.clock() + 1)
    _sweep(bench)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    assert _allocations(bench) == 1
    assert len(_updates(bench)) == 2  # the scale and its revert, nothing more
    report = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert done" in text_of(m))
    assert "scale back" in text_of(report) and "verified" in text_of(report)
    del change


def test_a_scale_made_since_is_not_overridden(bench: Bench) -> None:
    _, revert, due = _timed_scale(bench)
    bench.emulator.state.deployments["ner-prod"].number_of_allocations = 5  # by hand
    bench.emulator.state.deployments["ner-prod"].target_allocation_count = 5
    bench.clock.advance(due - bench.clock() + 1)
    _sweep(bench)
    ended = _get(bench, revert.id)
    assert ended.state is ActionState.CANCELLED
    assert len(_updates(bench)) == 1
    note = next(m for m in bench.slack.messages(CHANNEL) if "Timed revert not run" in text_of(m))
    assert "someone scaled it since" in text_of(note)
