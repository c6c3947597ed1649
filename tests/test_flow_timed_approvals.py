"""Four eyes cover a timed change's revert: the approval card shows it, the revert carries
the change's approvals and runs without asking again."""

from __future__ import annotations

import pytest
from conftest import ROLE_MAP, Bench, text_of
from test_flow_timed import _get, _history, _starts, _sweep

from bot.core.model import ActionState

CHANNEL = "C0INCIDENTS"


@pytest.fixture
def role_map_text() -> str:
    return ROLE_MAP + "approvals:\n  - {actions: [stop], required: 1, approvers: [ml-admin]}\n"


def test_the_card_shows_the_revert_and_the_revert_keeps_the_approvals(bench: Bench) -> None:
    preview = text_of(bench.command("ner-prod --for 30m"))
    assert "what approvers approve" in preview
    card = bench.slack.wait_for(
        lambda: next(
            (m for m in bench.slack.messages(CHANNEL) if "ml_stop.approve" in text_of(m)), None
        )
    )
    assert "Stop now; at <!date^" in text_of(card) and "restart" in text_of(card)
    bench.driver.click_button("ml_stop.approve", user_id="U0ADMIN2", channel_id=CHANNEL)
    change = bench.slack.wait_for(
        lambda: next((a for a in _history(bench) if a.is_timed and a.approvals), None)
    )
    bench.confirm()
    change = _get(bench, change.id)
    assert change.revert_id is not None
    revert = _get(bench, change.revert_id)
    assert [a.user_id for a in revert.approvals] == ["U0ADMIN2"]
    bench.clock.advance(1801)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.SUCCEEDED
    assert len(_starts(bench)) == 1
