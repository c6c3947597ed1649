"""Plays Slack's part towards the bot: signed slash commands, button clicks and events.

Over HTTP it posts to the bot; the `socket_*` helpers push the same payloads as Socket Mode
envelopes through the stand-in's WebSocket (`SlackStandIn.accept_socket_mode()`) instead.

Requests are signed as Slack signs them (`v0=HMAC_SHA256(secret, "v0:{ts}:{raw body}")`,
headers `X-Slack-Signature` / `X-Slack-Request-Timestamp`) with slack_sdk's SignatureVerifier.
Sync methods use urllib (no event loop needed); `a*` variants use aiohttp for concurrency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from .slack_standin import SlackStandIn
from .socket_mode import Ack, envelope

JSONDict = dict[str, Any]
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass(frozen=True)
class SentRequest:
    """What the driver sent: the raw body and headers (kept so it can be replayed)."""

    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Reply:
    """The bot's HTTP answer."""

    status: int
    headers: dict[str, str]
    body_text: str
    json: Any
    request: SentRequest


@dataclass(frozen=True)
class ClickTarget:
    """A button the bot showed: where it is and what clicking it sends."""

    action_id: str
    value: str | None
    block_id: str | None
    text: str
    channel: str
    ts: str
    ephemeral: bool
    message: JSONDict


class CommandFields(TypedDict, total=False):
    """Optional slash-command form fields (defaults: admin in #incidents)."""

    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    team_id: str
    team_domain: str
    enterprise_id: str
    enterprise_name: str
    is_enterprise_install: bool
    api_app_id: str
    response_url: str
    trigger_id: str


class ClickFields(TypedDict, total=False):
    """Optional block_actions fields; `extra` is merged into the payload (e.g. function_data)."""

    user_id: str
    user_name: str
    channel_id: str
    channel_name: str
    message_ts: str
    message: JSONDict
    ephemeral: bool
    response_url: str
    block_id: str
    text: str
    extra: JSONDict


class SlackDriver:
    """Sends what Slack sends to a bot's `POST /slack/events`, signed."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        standin: SlackStandIn | None = None,
        *,
        path: str = "/slack/events",
        verification_token: str = "vErIfIcAtIoN0tOkEn0123456",
    ) -> None:
        self.events_url = bot_url.rstrip("/") + path
        self.signing_secret = signing_secret
        self.standin = standin
        self.verification_token = verification_token
        self.team_id = standin.team_id if standin else "T0TEAM"
        self.team_domain = standin.team_domain if standin else "ml-chatops"
        self.api_app_id = standin.app_id if standin else "A0MLCHATOPS"
        self.last_response_url: str | None = None
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ---- signing -------------------------------------------------------------------------

    def signed_headers(
        self,
        body: bytes | str,
        ts: int | str | None = None,
        secret: str | None = None,
        content_type: str = FORM,
    ) -> dict[str, str]:
        """Headers Slack would send with `body`, signed at `ts` (default now) with `secret`."""
        timestamp = str(int(time.time()) if ts is None else ts)
        verifier = SignatureVerifier(secret if secret is not None else self.signing_secret)
        signature = verifier.generate_signature(timestamp=timestamp, body=body)
        assert signature is not None
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }

    def sign_bytes(
        self, body: bytes, ts: int | str | None = None, content_type: str = FORM
    ) -> dict[str, str]:
        """Headers signing exactly `body`, even bytes that are not UTF-8 (slack_sdk decodes)."""
        timestamp = str(int(time.time()) if ts is None else ts)
        base = b"v0:" + timestamp.encode() + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": "v0=" + digest,
        }

    def post_bytes(self, body: bytes, content_type: str = FORM) -> Reply:
        """POST `body` signed over its raw bytes (for bodies Slack would never send)."""
        return self.post_raw(body, self.sign_bytes(body, content_type=content_type))

    # ---- slash commands ------------------------------------------------------------------

    def build_command(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> bytes:
        """The form body of a slash command, with every field Slack sends."""
        return urlencode(self._command_form(command, text, fields)).encode()

    def command_payload(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> JSONDict:
        """A slash command as a Socket Mode payload (the same fields, as strings)."""
        return dict(self._command_form(command, text, fields))

    def _command_form(
        self, command: str, text: str, fields: CommandFields
    ) -> list[tuple[str, str]]:
        user_id = fields.get("user_id", "U0ADMIN1")
        channel_id = fields.get("channel_id", "C0INCIDENTS")
        response_url = fields.get("response_url") or self._mint(channel_id, user_id)
        self.last_response_url = response_url
        form: list[tuple[str, str]] = [
            ("token", self.verification_token),
            ("team_id", fields.get("team_id", self.team_id)),
            ("team_domain", fields.get("team_domain", self.team_domain)),
        ]
        if "enterprise_id" in fields:
            form.append(("enterprise_id", fields["enterprise_id"]))
            form.append(("enterprise_name", fields.get("enterprise_name", "Example Org")))
        form += [
            ("channel_id", channel_id),
            ("channel_name", fields.get("channel_name", self._channel_name(channel_id))),
            ("user_id", user_id),
            ("user_name", fields.get("user_name", self._user_name(user_id))),
            ("command", command),
            # Slack escapes typed text: & → &amp;, < → &lt;, > → &gt; (reference/slack.md §8).
            ("text", _slack_escaped(text)),
            ("api_app_id", fields.get("api_app_id", self.api_app_id)),
            ("is_enterprise_install", _bool(fields.get("is_enterprise_install", False))),
            ("response_url", response_url),
            ("trigger_id", fields.get("trigger_id", _trigger_id())),
        ]
        return form

    def command(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> Reply:
        """Send a signed slash command."""
        return self.post_signed(self.build_command(command, text, **fields))

    async def acommand(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> Reply:
        """Async `command()`, for concurrency tests."""
        return await self.apost_signed(self.build_command(command, text, **fields))

    def forged_command(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> Reply:
        """A slash command signed with the wrong secret (current timestamp)."""
        body = self.build_command(command, text, **fields)
        return self.post_raw(body, self.signed_headers(body, secret="not-" + self.signing_secret))

    # ---- block_actions -------------------------------------------------------------------

    def build_click(
        self, action_id: str, value: str | None, **fields: Unpack[ClickFields]
    ) -> bytes:
        """The form body (`payload=<json>`) of a block_actions button click."""
        payload = self.click_payload(action_id, value, **fields)
        return urlencode({"payload": json.dumps(payload)}).encode()

    def click_payload(
        self, action_id: str, value: str | None, **fields: Unpack[ClickFields]
    ) -> JSONDict:
        """The block_actions payload Slack sends for a button click."""
        user_id = fields.get("user_id", "U0ADMIN1")
        channel_id = fields.get("channel_id", "C0INCIDENTS")
        ephemeral = fields.get("ephemeral", False)
        message = fields.get("message") or self._stored_message(channel_id, fields)
        message_ts = fields.get("message_ts") or str(message.get("ts") or _fresh_ts())
        response_url = fields.get("response_url") or self._mint(
            channel_id, user_id, ts=message_ts, ephemeral=ephemeral
        )
        self.last_response_url = response_url
        payload: JSONDict = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user_object(user_id, fields.get("user_name")),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel_id,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": _trigger_id(),
            "channel": {
                "id": channel_id,
                "name": fields.get("channel_name", self._channel_name(channel_id)),
            },
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [self._action(action_id, value, fields)],
        }
        if not ephemeral:
            payload["message"] = message | {"ts": message_ts}
        return payload | fields.get("extra", {})

    def click(self, action_id: str, value: str | None, **fields: Unpack[ClickFields]) -> Reply:
        """Send a signed block_actions click."""
        return self.post_signed(self.build_click(action_id, value, **fields))

    async def aclick(
        self, action_id: str, value: str | None, **fields: Unpack[ClickFields]
    ) -> Reply:
        """Async `click()`, for concurrency tests."""
        return await self.apost_signed(self.build_click(action_id, value, **fields))

    def latest_click_target(
        self, action_id: str, *, user_id: str = "U0ADMIN1", channel_id: str = "C0INCIDENTS"
    ) -> ClickTarget | None:
        """The newest button `action_id` the bot showed `user_id` in `channel_id`, if any."""
        standin = self._require_standin()
        candidates = [(m, False) for m in standin.messages(channel_id)]
        candidates += [(e, True) for e in standin.ephemerals(channel=channel_id, user=user_id)]
        candidates.sort(key=lambda c: _ts_key(str(c[0]["ts"])), reverse=True)
        for message, ephemeral in candidates:
            target = _target_in(message, action_id, channel_id, ephemeral)
            if target is not None:
                return target
        return None

    def click_button(
        self,
        action_id: str,
        *,
        user_id: str = "U0ADMIN1",
        channel_id: str = "C0INCIDENTS",
        timeout: float = 5.0,
    ) -> Reply:
        """Click the newest `action_id` button shown in `channel_id` (waiting for it to appear).

        Like Slack, every click carries a freshly minted response_url tied to that message.
        """
        value, fields = self._newest_button(action_id, user_id, channel_id, timeout)
        return self.click(action_id, value, **fields)

    def _newest_button(
        self, action_id: str, user_id: str, channel_id: str, timeout: float
    ) -> tuple[str | None, ClickFields]:
        """The value and click fields of the newest `action_id` button, once it is shown."""
        standin = self._require_standin()
        target = standin.wait_for(
            lambda: self.latest_click_target(action_id, user_id=user_id, channel_id=channel_id),
            timeout=timeout,
        )
        fields: ClickFields = {
            "user_id": user_id,
            "channel_id": channel_id,
            "message_ts": target.ts,
            "ephemeral": target.ephemeral,
            "text": target.text,
        }
        if target.block_id:
            fields["block_id"] = target.block_id
        if not target.ephemeral:
            fields["message"] = _public_message(target.message)
        return target.value, fields

    # ---- Events API ----------------------------------------------------------------------

    def build_event(
        self, event: JSONDict, *, event_id: str | None = None, envelope: JSONDict | None = None
    ) -> bytes:
        """The JSON body of an Events API delivery (wrapped in `event_callback` if needed)."""
        if event.get("type") in ("event_callback", "url_verification", "app_rate_limited"):
            return json.dumps(event).encode()
        body: JSONDict = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [self._authorization()],
            "is_ext_shared_channel": False,
            "event_context": f"4-{secrets.token_urlsafe(24)}",
        }
        return json.dumps(body | (envelope or {})).encode()

    def event(
        self,
        event: JSONDict,
        *,
        event_id: str | None = None,
        envelope: JSONDict | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Reply:
        """Send a signed Events API delivery; `retry_num` adds Slack's retry headers."""
        body = self.build_event(event, event_id=event_id, envelope=envelope)
        return self.post_raw(body, self._event_headers(body, retry_num, retry_reason))

    async def aevent(
        self,
        event: JSONDict,
        *,
        event_id: str | None = None,
        envelope: JSONDict | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> Reply:
        """Async `event()`."""
        body = self.build_event(event, event_id=event_id, envelope=envelope)
        return await self.apost_raw(body, self._event_headers(body, retry_num, retry_reason))

    def _event_headers(
        self, body: bytes, retry_num: int | None, retry_reason: str
    ) -> dict[str, str]:
        headers = self.signed_headers(body, content_type=JSON)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = retry_reason
        return headers

    # ---- Socket Mode (through the stand-in's WebSocket) ----------------------------------

    def socket_push(
        self,
        kind: str,
        payload: JSONDict,
        *,
        envelope_id: str | None = None,
        retry_attempt: int | None = None,
        retry_reason: str = "",
    ) -> JSONDict:
        """Push one envelope to the connected bot without waiting; return the envelope."""
        sent = envelope(
            kind,
            payload,
            envelope_id=envelope_id,
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        self._require_standin().socket_mode.push(sent)
        return sent

    def socket_ack(self, sent: JSONDict, timeout: float = 15.0) -> Ack:
        """Wait for the bot's ack of an envelope pushed earlier."""
        return self._require_standin().socket_mode.wait_ack(sent["envelope_id"], timeout)

    def socket_command(
        self, command: str = "/ml-stop", text: str = "", **fields: Unpack[CommandFields]
    ) -> Ack:
        """A slash command over Socket Mode; waits for its ack."""
        payload = self.command_payload(command, text, **fields)
        return self.socket_ack(self.socket_push("slash_commands", payload))

    def socket_click(self, action_id: str, value: str | None, **fields: Unpack[ClickFields]) -> Ack:
        """A block_actions click over Socket Mode; waits for its ack."""
        payload = self.click_payload(action_id, value, **fields)
        return self.socket_ack(self.socket_push("interactive", payload))

    def socket_click_button(
        self,
        action_id: str,
        *,
        user_id: str = "U0ADMIN1",
        channel_id: str = "C0INCIDENTS",
        timeout: float = 5.0,
    ) -> Ack:
        """`click_button()` over Socket Mode; waits for its ack."""
        value, fields = self._newest_button(action_id, user_id, channel_id, timeout)
        return self.socket_click(action_id, value, **fields)

    def event_payload(
        self, event: JSONDict, *, event_id: str | None = None, envelope: JSONDict | None = None
    ) -> JSONDict:
        """An Events API body (`event_callback`) as a Socket Mode payload."""
        payload: JSONDict = json.loads(
            self.build_event(event, event_id=event_id, envelope=envelope)
        )
        return payload

    def socket_event(
        self,
        event: JSONDict,
        *,
        event_id: str | None = None,
        retry_attempt: int | None = None,
        retry_reason: str = "",
    ) -> Ack:
        """An Events API delivery over Socket Mode; waits for its ack."""
        payload = self.event_payload(event, event_id=event_id)
        sent = self.socket_push(
            "events_api", payload, retry_attempt=retry_attempt, retry_reason=retry_reason
        )
        return self.socket_ack(sent)

    # ---- raw sending, replay -------------------------------------------------------------

    def post_signed(self, body: bytes, content_type: str = FORM) -> Reply:
        """POST `body` signed now with the right secret."""
        return self.post_raw(body, self.signed_headers(body, content_type=content_type))

    async def apost_signed(self, body: bytes, content_type: str = FORM) -> Reply:
        """Async `post_signed()`."""
        return await self.apost_raw(body, self.signed_headers(body, content_type=content_type))

    def replay(self, reply_or_body: Reply | bytes | str, age_seconds: int = 600) -> Reply:
        """Resend a request validly signed, but with a timestamp `age_seconds` old."""
        body, content_type = _body_of(reply_or_body)
        ts = int(time.time()) - age_seconds
        return self.post_raw(body, self.signed_headers(body, ts=ts, content_type=content_type))

    def post_raw(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST exactly `body` with exactly `headers` to the bot's events URL."""
        request = urllib.request.Request(
            self.events_url, data=body, headers=dict(headers), method="POST"
        )
        sent = SentRequest(body, dict(headers))
        try:
            with self._opener.open(request, timeout=15) as response:
                return _reply(response.status, response.headers.items(), response.read(), sent)
        except urllib.error.HTTPError as err:
            return _reply(err.code, err.headers.items(), err.read(), sent)

    async def apost_raw(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        """Async `post_raw()` with aiohttp."""
        sent = SentRequest(body, dict(headers))
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.events_url, data=body, headers=dict(headers)) as response,
        ):
            raw = await response.read()
            return _reply(response.status, response.headers.items(), raw, sent)

    # ---- helpers -------------------------------------------------------------------------

    def _require_standin(self) -> SlackStandIn:
        if self.standin is None:
            raise RuntimeError("this helper needs the driver to know the SlackStandIn")
        return self.standin

    def _mint(
        self, channel_id: str, user_id: str, *, ts: str | None = None, ephemeral: bool = False
    ) -> str:
        if self.standin is None:
            return f"https://hooks.slack.com/commands/{self.team_id}/{secrets.token_hex(6)}/x"
        return self.standin.new_response_url(
            channel=channel_id, user=user_id, ts=ts, ephemeral=ephemeral
        )

    def _channel_name(self, channel_id: str) -> str:
        info = self.standin.channels.get(channel_id) if self.standin else None
        if channel_id.startswith("D"):
            return "directmessage"
        return str(info["name"]) if info else channel_id.lower()

    def _user_name(self, user_id: str) -> str:
        user = self.standin.users.get(user_id) if self.standin else None
        return str(user["name"]) if user else user_id.lower()

    def _user_object(self, user_id: str, user_name: str | None) -> JSONDict:
        name = user_name or self._user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _stored_message(self, channel_id: str, fields: ClickFields) -> JSONDict:
        ts = fields.get("message_ts")
        found = self.standin.message(channel_id, ts) if self.standin and ts else None
        if found is not None:
            return _public_message(found)
        bot_user, bot_id = ("U0BOT", "B0BOT")
        if self.standin:
            bot_user, bot_id = self.standin.bot_user_id, self.standin.bot_id
        return {"type": "message", "user": bot_user, "bot_id": bot_id, "text": "", "blocks": []}

    def _action(self, action_id: str, value: str | None, fields: ClickFields) -> JSONDict:
        action: JSONDict = {
            "action_id": action_id,
            "block_id": fields.get("block_id") or secrets.token_urlsafe(3),
            "text": {"type": "plain_text", "text": fields.get("text", "Stop"), "emoji": True},
            "type": "button",
            "action_ts": _fresh_ts(),
        }
        if value is not None:
            action["value"] = value
        return action

    def _authorization(self) -> JSONDict:
        bot_user = self.standin.bot_user_id if self.standin else "U0BOT"
        return {
            "enterprise_id": None,
            "team_id": self.team_id,
            "user_id": bot_user,
            "is_bot": True,
            "is_enterprise_install": False,
        }


def iter_buttons(blocks: Iterable[JSONDict]) -> Iterable[tuple[str | None, JSONDict]]:
    """Yield `(block_id, button)` for buttons in `actions` blocks and section accessories."""
    for block in blocks:
        elements = list(block.get("elements") or []) if block.get("type") == "actions" else []
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            elements.append(accessory)
        for element in elements:
            if isinstance(element, dict) and element.get("type") == "button":
                yield block.get("block_id"), element


def _target_in(
    message: JSONDict, action_id: str, channel: str, ephemeral: bool
) -> ClickTarget | None:
    for block_id, button in iter_buttons(message.get("blocks") or []):
        if button.get("action_id") == action_id:
            text = button.get("text") or {}
            return ClickTarget(
                action_id=action_id,
                value=button.get("value"),
                block_id=block_id,
                text=str(text.get("text", "")),
                channel=channel,
                ts=str(message["ts"]),
                ephemeral=ephemeral,
                message=message,
            )
    return None


def _public_message(message: JSONDict) -> JSONDict:
    """Drop the stand-in's bookkeeping keys from a stored message."""
    return {k: v for k, v in message.items() if k not in ("deleted", "via", "channel")}


def _reply(status: int, headers: Iterable[tuple[str, str]], raw: bytes, sent: SentRequest) -> Reply:
    text = raw.decode("utf-8", errors="replace")
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return Reply(status, {k.lower(): v for k, v in headers}, text, parsed, sent)


def _body_of(reply_or_body: Reply | bytes | str) -> tuple[bytes, str]:
    if isinstance(reply_or_body, Reply):
        sent = reply_or_body.request
        return sent.body, sent.headers.get("Content-Type", FORM)
    body = reply_or_body.encode() if isinstance(reply_or_body, str) else reply_or_body
    return body, JSON if body.lstrip().startswith(b"{") else FORM


def _slack_escaped(text: str) -> str:
    """Typed text as Slack sends it in a slash command (exactly these three, `&` first)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _trigger_id() -> str:
    digits = secrets.randbelow(10**12) + 10**12
    return f"{digits}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"


def _fresh_ts() -> str:
    return f"{time.time():.6f}"


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, micros = ts.partition(".")
    return int(seconds), int(micros or 0)
