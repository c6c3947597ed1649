"""Posting to a response_url over the one shared HTTP session, with every refusal logged.

Bolt's `respond` and a bare `AsyncWebhookClient(url)` open (and close) an aiohttp session,
and so a new connection, per message; a flow sends several. Slack's refusals come back as a
status, not an exception, so each post here logs one line when Slack did not take it. A
response_url is a bearer capability: only its host is ever logged.
"""

from __future__ import annotations

import hashlib
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

# Slack documents it: a response_url takes at most 5 posts within 30 minutes of minting.
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
# Slack's answers (HTTP 404 bodies) when a response_url is spent or too old; the bodies are
# not documented, so any 404 counts as a spent url (tests/support/slack_standin.py).
SPENT_ANSWERS = frozenset({"used_url", "expired_url"})

# The store's replay check: mark `key` for `ttl` seconds; True if it was marked already.
Seen = Callable[[str, float], Awaitable[bool]]


class ResponseBudget:
    """Counts the posts made to each response_url, across replicas (the store's `seen`).

    A url's hash, never the url itself (a bearer capability), names its counters.
    """

    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    async def take(self, url: str) -> bool:
        """Take one of the url's 5 uses; False when they are spent (do not post then)."""
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        for use in range(1, RESPONSE_URL_USES + 1):
            try:
                if not await self.seen(f"response_url:{key}:{use}", RESPONSE_URL_LIFETIME):
                    return True
            except Exception as exc:  # the store cannot count: post, Slack will say if spent
                log.warning("response_url budget not checked: %s", type(exc).__name__)
                return True
        log.info("response_url budget spent (host %s)", _host(url))
        return False


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
    url: str,
    body: dict[str, Any],
    session: aiohttp.ClientSession | None = None,
    budget: ResponseBudget | None = None,
) -> bool:
    """POST `body` to a response_url; True if Slack took it (failures are logged, not raised).

    With a `budget`, a url whose 5 uses are spent is not posted to (False).
    """
    if budget is not None and not await budget.take(url):
        return False
    try:
        response = await webhook(url, session).send_dict(body)
    except Exception as exc:  # aiohttp's errors name host and port at most
        log.warning("response_url post failed: %s (host %s)", type(exc).__name__, _host(url))
        return False
    return log_response_post(url, response)


class Responder:
    """Bolt's `respond(**message)` for one response_url, on the shared session, logging."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession | None,
        budget: ResponseBudget | None = None,
        fallback: Respond | None = None,
    ) -> None:
        self.url = url
        self.session = session
        self.budget = budget
        # Where a message goes when the url's uses are spent (chat.postEphemeral, a DM).
        self.fallback = fallback

    async def __call__(self, **message: Any) -> WebhookResponse:
        """Send `message` (text, blocks, response_type, replace_original...) as JSON.

        A refusal is logged and returned, as Bolt's respond returns it; a failed connection
        is logged and raised on, so the listener's error boundary still sees it.
        """
        body = {k: v for k, v in message.items() if v is not None}
        if self.budget is not None and not await self.budget.take(self.url):
            return await self._instead(
                body, WebhookResponse(url=self.url, status_code=404, body="used_url", headers={})
            )
        try:
            response = await webhook(self.url, self.session).send_dict(body)
        except Exception as exc:
            log.warning(
                "response_url post failed: %s (host %s)", type(exc).__name__, _host(self.url)
            )
            raise
        spent = response.status_code == 404 or str(response.body) in SPENT_ANSWERS
        if not log_response_post(self.url, response) and spent:
            return await self._instead(body, response)
        return response

    async def _instead(self, body: dict[str, Any], refused: WebhookResponse) -> WebhookResponse:
        """The url is spent: deliver through the fallback (if any); return Slack's refusal."""
        if self.fallback is not None:
            content = {k: body[k] for k in ("text", "blocks") if k in body}
            await self.fallback(**content)
        return refused
