"""`/ml-scale` over Socket Mode: the same listeners, so a scale previews, runs once, verifies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROLE_MAP, button_value, text_of
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn
from test_socket_mode import ADMIN, CHANNEL, SocketBot, start_socket_bot


@pytest.fixture
def scale_bot(bg_loop: BackgroundLoop, slack: SlackStandIn, tmp_path: Path) -> Iterator[SocketBot]:
    # `scale` granted to the admins from the start (the served file is watched, not re-read).
    granted = ROLE_MAP.replace(
        "[stop, start, status, freeze]", "[stop, start, status, freeze, scale]"
    )
    state = f"sqlite:///{tmp_path / 'state.db'}"
    yield from start_socket_bot(bg_loop, slack, tmp_path, state, granted)


def test_a_scale_over_socket_mode_previews_then_scales_exactly_once(scale_bot: SocketBot) -> None:
    sb = scale_bot
    sb.driver.socket_command(
        "/ml-scale", "ner-prod --allocations 2", user_id=ADMIN, channel_id=CHANNEL
    )
    url = sb.driver.last_response_url
    preview = sb.slack.wait_for(lambda: sb.slack.response_posts(url) or None, timeout=15)[0].body
    assert preview is not None and "2 allocations" in text_of(preview)
    value = button_value(preview, "ml_scale.confirm")
    for _ in range(2):
        sb.driver.socket_click(
            "ml_scale.confirm", value, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
        )
    sb.slack.wait_for(
        lambda: (
            [m for m in sb.slack.messages(CHANNEL) if "scaled to 2 allocations" in text_of(m)]
            or None
        ),
        timeout=15,
    )
    sb.drain()
    updates = [r for r in sb.emulator.requests if r.endpoint == "ml.update"]
    assert len(updates) == 1
    assert sb.emulator.state.deployments["ner-prod"].number_of_allocations == 2
