"""bot.slack.delivery: which failures are retried, and how each is named in the log."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack import delivery
from bot.slack.delivery import deliver, error_code, transient


def _api_error(status: int, data: dict[str, Any]) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None,  # type: ignore[arg-type]
        http_verb="POST",
        api_url="https://slack.com/api/chat.update",
        req_args={},
        data=data,
        headers={},
        status_code=status,
    )
    return SlackApiError("failed", response)


def test_errors_are_named_by_slacks_code_or_the_http_status_or_the_failure() -> None:
    assert error_code(_api_error(200, {"ok": False, "error": "not_in_channel"})) == (
        "not_in_channel"
    )
    assert error_code(_api_error(500, {})) == "http_500"  # a bare HTML error page
    assert error_code(aiohttp.ServerDisconnectedError()) == "ServerDisconnectedError"
    assert error_code(TimeoutError()) == "timeout"


@pytest.mark.parametrize(
    ("code", "again"),
    [
        ("internal_error", True),
        ("http_503", True),
        ("ServerDisconnectedError", True),
        ("timeout", True),
        ("ratelimited", False),  # the client already waited out Retry-After
        ("not_in_channel", False),
        ("invalid_blocks", False),
        ("http_404", False),
    ],
)
def test_only_failures_a_retry_can_fix_are_retried(code: str, again: bool) -> None:
    assert transient(code) is again


async def test_deliver_retries_a_bounded_number_of_times_and_logs_each_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(delivery, "BACKOFF", 0.0)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise _api_error(200, {"ok": False, "error": "internal_error"})

    with caplog.at_level(logging.WARNING):
        result = await deliver("chat.update", failing, action_id="a1")
    assert not result.ok and result.error == "internal_error"
    assert calls == delivery.ATTEMPTS
    logged = [r for r in caplog.records if r.name == "bot.slack.delivery"]
    assert len(logged) == delivery.ATTEMPTS
    assert {getattr(r, "slack.method") for r in logged} == {"chat.update"}


async def test_deliver_does_not_retry_a_permanent_refusal() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise _api_error(200, {"ok": False, "error": "channel_not_found"})

    result = await deliver("chat.postMessage", refused)
    assert (result.error, calls) == ("channel_not_found", 1)
