"""Posting to a response_url over the one shared HTTP session.

Bolt's `respond` and a bare `AsyncWebhookClient(url)` open (and close) an aiohttp session,
and so a new connection, per message; a flow sends several.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

# Bolt's AsyncRespond or a Responder: called with the message's fields as keywords.
Respond = Callable[..., Awaitable[Any]]


def webhook(url: str, session: aiohttp.ClientSession | None) -> AsyncWebhookClient:
    """A webhook client on `session` (a closed or missing session falls back to its own)."""
    return AsyncWebhookClient(url, session=session)


class Responder:
    """Bolt's `respond(**message)` for one response_url, on the shared session."""

    def __init__(self, url: str, session: aiohttp.ClientSession | None) -> None:
        self.url = url
        self.session = session

    async def __call__(self, **message: Any) -> WebhookResponse:
        """Send `message` (text, blocks, response_type, replace_original...) as JSON."""
        body = {k: v for k, v in message.items() if v is not None}
        return await webhook(self.url, self.session).send_dict(body)
