"""The HTTP edge: verify, dedupe and parse a Slack request before Bolt sees any of it.

Pure decisions (`verify`, `parse`, `route`) over the raw bytes and headers; the server does
the I/O. Nothing in a request is used (logged with attribution, answered, stored) until its
signature has been checked against the raw bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest

from bot.slack import ids

# Slack's own window: a timestamp further than 5 minutes from now is a replay or a bad clock.
REPLAY_WINDOW = 300
# A signature stays remembered for the whole span in which its timestamp would pass (±window).
SIGNATURE_TTL = 2 * REPLAY_WINDOW
# Slack retries an event 3 times over about an hour and a half at most; remember ids longer.
EVENT_TTL = 2 * 3600
# Larger than any body Slack sends (a click carries its message: 50 blocks of 3,000 chars).
MAX_BODY_BYTES = 1024 * 1024
# Slack's message composer stops at 40,000 characters; a slash command cannot carry more.
MAX_COMMAND_TEXT = 40_000

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True)
class Refused:
    """An answer given at the edge: HTTP status, a reason for the one log line, a body."""

    status: int
    reason: str
    body: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Verified:
    """A request whose signature matched: its parsed body and replay keys."""

    body: dict[str, Any]
    signature: str


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if isinstance(value, str) else None


def verify(headers: Mapping[str, str], raw: bytes, secret: str, now: float) -> Refused | str:
    """The request's signature if it is Slack's and fresh, else a 401 saying why.

    HMAC over the raw bytes (as Slack signs them): slack_sdk's verifier decodes the body as
    UTF-8 first, so it can neither verify nor refuse a body that is not, and it raises on a
    timestamp that is not an integer.
    """
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    signature = _header(headers, "X-Slack-Signature")
    if not timestamp or not signature:
        return Refused(401, "missing signature headers")
    if not _TIMESTAMP.fullmatch(timestamp):
        return Refused(401, "malformed timestamp")
    if abs(now - int(timestamp)) > REPLAY_WINDOW:
        return Refused(401, "stale timestamp")
    if not _SIGNATURE.fullmatch(signature):
        return Refused(401, "malformed signature")
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return Refused(401, "wrong signature")
    return signature


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse(raw: bytes, content_type: str | None) -> dict[str, Any] | Refused:
    """The body as Slack meant it, by content type (never by sniffing the text), or a 400.

    A form with the single field `payload` is an interaction (JSON inside); any other form
    is a slash command, whatever its text says.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Refused(400, "body is not UTF-8")
    mime = _mime(content_type)
    if mime == JSON:
        return _json_object(text, "body")
    if mime != FORM:
        return Refused(400, f"unsupported content type {mime[:40]!r}")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return Refused(400, "form field is not UTF-8")
    if [k for k, _ in pairs] == ["payload"]:
        return _json_object(pairs[0][1], "payload")
    return dict(pairs)


def _json_object(text: str, what: str) -> dict[str, Any] | Refused:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return Refused(400, f"{what} is not JSON")
    if not isinstance(value, dict):
        return Refused(400, f"{what} is not a JSON object")
    return value


def _text(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _id_of(value: Any) -> str | None:
    inner = value.get("id") if isinstance(value, dict) else None
    return inner if isinstance(inner, str) and inner else None


def route(body: Mapping[str, Any]) -> Refused | None:
    """None if a Bolt listener handles `body`; else the answer the edge gives itself.

    Shapes our listeners rely on are checked here (400); events and interaction types the app
    does not handle get Slack's expected 200, so Slack neither shows an error nor retries. An
    unknown command or button is a manifest out of step with the code: 404, as Bolt answers.
    """
    if "command" in body:
        return _route_command(body)
    kind = body.get("type")
    if kind == "block_actions":
        return _route_actions(body)
    if kind == "event_callback":
        return _route_event(body)
    if kind in ("url_verification", "ssl_check") or body.get("ssl_check") == "1":
        return None  # Bolt answers these itself
    return Refused(200, f"ignored request type {str(kind)[:40]!r}")


def _route_command(body: Mapping[str, Any]) -> Refused | None:
    if _text(body, "command") not in ids.COMMANDS:
        return Refused(404, "no listener for this command")  # a manifest out of step: say so
    if not _text(body, "user_id"):
        return Refused(400, "slash command without user_id")
    if len(str(body.get("text", ""))) > MAX_COMMAND_TEXT:
        text = f"That command is longer than Slack allows ({MAX_COMMAND_TEXT:,} characters)."
        answer = {"response_type": "ephemeral", "text": text}
        return Refused(200, "command text too long", answer)
    return None


def _route_actions(body: Mapping[str, Any]) -> Refused | None:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return Refused(400, "block_actions without actions")
    if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
        return Refused(400, "block_actions with malformed actions")
    if not _id_of(body.get("user")):
        return Refused(400, "block_actions without user.id")
    for key in ("channel", "container", "team", "message"):
        if key in body and not isinstance(body[key], dict):
            return Refused(400, f"block_actions with malformed {key}")
    if ids.routed(str(actions[0]["action_id"])) not in ids.ACTION_IDS:
        return Refused(404, "no listener for this action")
    return None


def _route_event(body: Mapping[str, Any]) -> Refused | None:
    event = body.get("event")
    if not isinstance(event, dict) or not _text(body, "event_id"):
        return Refused(400, "event_callback without event or event_id")
    if event.get("type") != "function_executed":
        return Refused(200, f"ignored event {str(event.get('type'))[:40]!r}")
    function = event.get("function")
    callback = function.get("callback_id") if isinstance(function, dict) else None
    if callback not in ids.FUNCTIONS:
        return Refused(200, "ignored function")
    if not _text(event, "function_execution_id") or not isinstance(event.get("inputs"), dict):
        return Refused(400, "function_executed without execution id or inputs")
    return None


def dedupe_keys(body: Mapping[str, Any]) -> list[str]:
    """Keys that identify one Slack delivery across retries (an event and its execution)."""
    if body.get("type") != "event_callback":
        return []
    keys = [f"event:{body['event_id']}"]
    event = body["event"]
    execution = event.get("function_execution_id") if isinstance(event, dict) else None
    if isinstance(execution, str) and execution:
        keys.append(f"execution:{execution}")
    return keys


class VerifiedRequest(AsyncBoltRequest):
    """A Bolt request built from a body the edge already verified and parsed.

    Bolt's own `parse_body` decides "interaction" by finding the substring `payload`
    anywhere in a form body, so a command mentioning it was routed nowhere (404).
    Bolt accepts a dict only in Socket Mode; the raw text is restored so Bolt's own
    signature check still runs on the same bytes.
    """

    def __init__(
        self,
        *,
        raw: str,
        body: dict[str, Any],
        headers: Mapping[str, Any],
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(body=body, headers=dict(headers), context=context, mode="socket_mode")
        self.raw_body = raw
        self.mode = "http"

    def to_copyable(self) -> AsyncBoltRequest:
        """A copy with the same parsed body (Bolt's copy would parse the raw text again)."""
        return VerifiedRequest(
            raw=self.raw_body,
            body=self.body,
            headers=self.headers,
            context=self.context.to_copyable(),
        )
