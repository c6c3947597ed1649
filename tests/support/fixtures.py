"""Pytest fixtures for the Slack side of the bench, not registered here.

Register them by importing into tests/conftest.py (`pytest_plugins` is refused in a conftest
below the rootdir): `from support.fixtures import bg_loop, no_slack_oauth_env, signing_secret,
slack`. `serve_bolt` and `standin_client` are plain helpers, re-exported for convenience.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .loop import BackgroundLoop
from .serving import serve_bolt, standin_client
from .shared import SIGNING_SECRET
from .slack_standin import SlackStandIn

__all__ = [
    "bg_loop",
    "no_slack_oauth_env",
    "serve_bolt",
    "signing_secret",
    "slack",
    "standin_client",
]


@pytest.fixture(scope="session")
def bg_loop() -> Iterator[BackgroundLoop]:
    """One background event loop for the session; every server on it stops at the end."""
    with BackgroundLoop() as loop:
        yield loop


@pytest.fixture
def signing_secret() -> str:
    """The signing secret shared by the bot under test and the driver."""
    return SIGNING_SECRET


@pytest.fixture
def slack(bg_loop: BackgroundLoop) -> Iterator[SlackStandIn]:
    """A fresh Slack Web API stand-in, served on the background loop (`slack.api_url`).

    A test fails if anything posted a message real Slack would refuse, truncate or warn about
    (tests/support/slack_limits.py); a test that sends one on purpose reads them with
    `slack.limit_problems(clear=True)`.
    """
    standin = SlackStandIn().start(bg_loop)
    yield standin
    standin.stop()
    problems = standin.limit_problems()
    assert not problems, f"messages real Slack would not take: {problems}"


@pytest.fixture
def no_slack_oauth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide env vars that make Bolt switch to OAuth or pick up a real token/secret."""
    for name in (
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
