"""A response_url post Slack refuses is logged (status and error), never with the URL itself."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from conftest import Bench

ADMIN = "U0ADMIN1"


def _logged(caplog: pytest.LogCaptureFixture, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if needle in r.getMessage()]


def test_a_refused_response_url_post_is_logged_with_its_status(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.slack.http_error_next("response_url", status=500)
    with caplog.at_level(logging.WARNING):
        reply = bench.driver.command("/ml-stop", "help", user_id=ADMIN, channel_id="C0INCIDENTS")
        assert reply.status == 200
        url = bench.driver.last_response_url
        assert url is not None
        posts = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
        assert posts[-1].status == 500  # the stand-in did refuse it
        records = bench.slack.wait_for(lambda: _logged(caplog, "response_url post refused"))
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    message = records[0].getMessage()
    assert "500" in message and urlsplit(url).hostname in message
    # The URL is a bearer capability: its path (the secret part) is in no log record.
    secret_part = urlsplit(url).path
    for record in caplog.records:
        assert secret_part not in record.getMessage()
        assert secret_part not in str(vars(record))


def test_an_accepted_response_url_post_logs_nothing(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        bench.command("help")
    assert _logged(caplog, "response_url post") == []
