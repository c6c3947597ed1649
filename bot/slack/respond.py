"""Posting to a response_url over the one shared HTTP session, with every refusal logged.

Bolt's `respond` and a bare `AsyncWebhookClient(url)` open (and close) an aiohttp session,
and so a new connection, per message; a flow sends several. Slack's refusals come back as a
status, not an exception, so each post here logs one line when Slack did not take it. A
response_url is a bearer capability: only its host is ever logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

log = logging.getLogger("bot.slack.notices")  # the name operators already filter on

# Bolt's AsyncRespond or a Responder: called with the message's fields as keywords.
Respond = Callable[..., Awaitable[Any]]


def webhook(url: str, session: aiohttp.ClientSession | None) -> AsyncWebhookClient:
    """A webhook client on `session` (a closed or missing session falls back to its own)."""
    return AsyncWebhookClient(url, session=session)


def _host(url: str | None) -> str:
    """Only the host of a response_url: the rest of it is a bearer capability."""
    return urlsplit(url or "").hostname or "?"


def log_response_post(url: str | None, response: WebhookResponse) -> bool:
    """True if Slack took the post; else log one warning with status and error, host only."""
    if response.status_code == 200:
        return True
    log.warning(
        "response_url post refused: %s %s (host %s)",
        response.status_code,
        str(response.body or "")[:200],
        _host(url),
        extra={"slack_status": response.status_code, "response_url_host": _host(url)},
    )
    return False


async def post_response_url(
    url: str, body: dict[str, Any], session: aiohttp.ClientSession | None = None
) -> bool:
    """POST `body` to a response_url; True if Slack took it (failures are logged, not raised)."""
    try:
        response = await webhook(url, session).send_dict(body)
    except Exception as exc:  # aiohttp's errors name host and port at most
        log.warning("response_url post failed: %s (host %s)", type(exc).__name__, _host(url))
        return False
    return log_response_post(url, response)


class Responder:
    """Bolt's `respond(**message)` for one response_url, on the shared session, logging."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None) -> None:
        self.url = url
        self.session = session

    async def __call__(self, **message: Any) -> WebhookResponse:
        """Send `message` (text, blocks, response_type, replace_original...) as JSON.

        A refusal is logged and returned, as Bolt's respond returns it; a failed connection
        is logged and raised on, so the listener's error boundary still sees it.
        """
        body = {k: v for k, v in message.items() if v is not None}
        try:
            response = await webhook(self.url, self.session).send_dict(body)
        except Exception as exc:
            log.warning(
                "response_url post failed: %s (host %s)", type(exc).__name__, _host(self.url)
            )
            raise
        log_response_post(self.url, response)
        return response
