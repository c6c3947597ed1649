"""Best-effort Slack posts: a bounded retry, every failure logged with the method and error.

A Slack post is never on the critical path of a cluster change: callers get a `Delivery`
back (what Slack answered, or the error code) instead of an exception, and decide how to
deliver what could not be shown (a new post instead of an update, a private message).
The Web API client already retries 429 (after Retry-After) and dropped connections; this
adds a bounded retry for Slack's own transient failures (500s, `internal_error`) and a
deadline on the whole call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("bot.slack.delivery")

ATTEMPTS = 3  # one call and two retries, for failures that a retry can fix
CALL_DEADLINE = 20.0  # per attempt, including the client's own 429/connection retries
BACKOFF = 0.25  # seconds before the first retry; doubles

# Slack's `error` codes that mean "try again" (docs.slack.dev, per-method error lists).
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "timeout"}
)


@dataclass(frozen=True)
class Delivery:
    """What became of one Slack call: Slack's answer, or the error code it failed with."""

    data: Mapping[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Slack took the call."""
        return self.error is None


def error_code(exc: BaseException) -> str:
    """Slack's `error` code, `http_<status>` for a bare HTTP failure, or the exception's kind."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        code = response.get("error") if response is not None else None
        status = getattr(response, "status_code", None)
        return str(code) if code else f"http_{status}"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return type(exc).__name__  # e.g. ServerDisconnectedError: no host, no token


def transient(code: str) -> bool:
    """Whether another try may succeed (a 429 is not: the client already waited it out)."""
    if code in TRANSIENT_ERRORS or code.startswith("http_5"):
        return True
    # A connection-level failure, named by its exception class (Slack's codes are lower case).
    return code[:1].isupper()


def _data(response: Any) -> Mapping[str, Any]:
    data = getattr(response, "data", None)
    return data if isinstance(data, Mapping) else {}


async def deliver(
    method: str,
    send: Callable[[], Awaitable[Any]],
    *,
    action_id: str | None = None,
    attempts: int = ATTEMPTS,
    deadline: float = CALL_DEADLINE,
) -> Delivery:
    """Call `send` (one Slack Web API call) up to `attempts` times; never raises.

    Each failure is logged once with the method, the error code and the attempt.
    """
    code = "not_attempted"
    for attempt in range(1, attempts + 1):
        try:
            response = await asyncio.wait_for(send(), deadline)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            code = error_code(exc)
            again = transient(code) and attempt < attempts
            log.warning(
                "slack %s failed: %s%s",
                method,
                code,
                f" (attempt {attempt} of {attempts}, retrying)" if again else "",
                extra={
                    "slack.method": method,
                    "slack.error": code,
                    "slack.attempt": attempt,
                    "ml_chatops.action_id": action_id,
                },
            )
            if not again:
                return Delivery(error=code)
            await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
            continue
        return Delivery(data=_data(response))
    return Delivery(error=code)


async def privately(
    client: AsyncWebClient,
    channel: str,
    user: str,
    message: Mapping[str, Any],
    action_id: str | None = None,
) -> bool:
    """An ephemeral message to `user` in `channel`, or else a DM; False if neither went."""
    if channel and user:
        ephemeral = await deliver(
            "chat.postEphemeral",
            lambda: client.chat_postEphemeral(channel=channel, user=user, **message),
            action_id=action_id,
        )
        if ephemeral.ok:
            return True
    if not user:
        return False
    # A user id as the channel: the app's direct messages with that user.
    direct = await deliver(
        "chat.postMessage",
        lambda: client.chat_postMessage(channel=user, **message),
        action_id=action_id,
    )
    if not direct.ok:
        log.error(
            "a private message to %s could not be delivered by any route",
            user,
            extra={"ml_chatops.action_id": action_id},
        )
    return direct.ok
