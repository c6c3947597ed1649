"""A local stand-in for the Slack Web API and `response_url` webhooks, answering like Slack.

Serve it on a `BackgroundLoop` with `SlackStandIn().start(loop)`; point the bot's
`AsyncWebClient(token=standin.bot_token, base_url=standin.api_url)` at it. Every call is
recorded; messages are stored so tests can read back what users would see.
Routes: `/api/{method}` (Web API), `/response/{id}` (response_url) and `/link/` (the Socket
Mode WebSocket); over HTTP the driver posts events to the bot directly.

Web API: any HTTP verb; params merged from the query string and a form or JSON body
(AsyncWebClient sends `users.info`, `conversations.info`, `usergroups.users.list` as GET and
`auth.test`, `chat.delete`, `functions.*` as POST with a query string). Token from
`Authorization: Bearer` or the legacy `token` param; missing -> `not_authed`, unknown ->
`invalid_auth` (both HTTP 200). A pending injected fault wins over everything else.
`apps.connections.open` takes only the app-level token (`app_token`; any other known token:
`not_allowed_token_type`) and answers `socket_mode_url` if set, else a ws:// URL that refuses
connections, unless `accept_socket_mode()` was called: then a URL of the stand-in's own Socket
Mode server (`socket_mode`, tests/support/socket_mode.py), which pushes envelopes and reads acks.

Message limits: every `chat.postMessage`, `chat.postEphemeral`, `chat.update` and response_url
body is checked by `slack_limits.check_message` (Block Kit limits through slack_sdk's models,
block/action ids unique, ~12,000 characters of block text, a `text` fallback, 40,000 of
`text`): refusals answer `invalid_blocks` (with `errors`), `msg_blocks_too_long` or
`msg_too_long` as Slack does (views.open / views.update: `invalid_arguments`); every
problem, warnings included, is kept for `limit_problems()`, which the `slack` fixture
asserts empty. A request URI over 8 KB: 414.

response_url (Slack documents the rules, not the wire answers): JSON POST; 5 uses within
30 minutes of minting. Success is 200 `ok` (text/plain). UNVERIFIED answers: 404 `used_url`
(6th use), 404 `expired_url` (after 30 min), 404 `no_service` (unknown url), 400
`invalid_payload` (not a JSON object), 400 `no_text` (no text/blocks/attachments); rejected
posts do not count as uses. Effects: `delete_original` deletes the source message;
`replace_original` replaces it whole; with no source message (a slash command's url) both are
ignored and a new message is posted (bolt-python #1268). Else `response_type: in_channel`
posts to the channel, and the default is an ephemeral for the url's user.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from . import slack_limits
from .loop import BackgroundLoop
from .socket_mode import SOCKET_PATH, SocketModeServer

T = TypeVar("T")
JSONDict = dict[str, Any]

RESPONSE_URL_MAX_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60.0
# Form-encoded clients send these as JSON strings; decode them so tests compare structures.
_JSON_FIELDS = ("blocks", "attachments", "outputs", "metadata", "inputs")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_SCOPE_NEEDED = {
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "conversations.info": "channels:read",
}
DEFAULT_SCOPES = ("commands", "chat:write", "usergroups:read", "users:read", "channels:read")
# Methods whose `blocks` the stand-in checks against Slack's limits (views.* check their
# `view` in `_checked_view`).
_BLOCK_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update"})
# Longer request URIs (path and query) are answered 414, as front-end servers do (~8 KB).
URI_MAX = 8192
# Methods that take the app-level token (xapp-, scope connections:write) and no other.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


class StandInClock:
    """Wall-clock time plus an offset that tests advance (response_url expiry, `at` stamps)."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        """Current stand-in time, in Unix seconds."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the stand-in's clock forward."""
        self._offset += seconds


@dataclass(frozen=True)
class SlackCall:
    """One Web API call as the stand-in received it (query and body merged into `params`)."""

    method: str
    params: JSONDict
    token: str | None
    headers: dict[str, str]
    at: float
    http_method: str = "POST"


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url, with what the stand-in answered and did with it."""

    url: str
    body: JSONDict | None
    status: int
    answer: str
    effects: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class FunctionExecution:
    """A workflow step run whose `xwfp-` token may call `functions.complete*`."""

    id: str
    token: str
    callback_id: str
    inputs: JSONDict


@dataclass
class _ResponseUrl:
    url: str
    channel: str | None
    user: str | None
    ts: str | None  # the source message; None for a slash command's url
    ephemeral: bool
    minted_at: float
    uses: int = 0


@dataclass(frozen=True)
class _Fault:
    kind: Literal["error", "ratelimit", "http"]
    error: str = ""
    status: int = 200
    retry_after: int = 1


@dataclass
class _Execution:
    info: FunctionExecution
    state: str = "running"
    outputs: JSONDict | None = None
    error: str | None = None


class _SlackError(Exception):
    """Raised inside method handlers; becomes HTTP 200 `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Store:
    messages: dict[str, dict[str, JSONDict]] = field(default_factory=dict)
    ephemerals: list[JSONDict] = field(default_factory=list)
    calls: list[SlackCall] = field(default_factory=list)
    response_posts: list[ResponsePost] = field(default_factory=list)
    response_urls: dict[str, _ResponseUrl] = field(default_factory=dict)
    faults: dict[str, deque[_Fault]] = field(default_factory=dict)
    executions: dict[str, _Execution] = field(default_factory=dict)


class SlackStandIn:
    """The Slack Web API and response_url endpoints, with Slack's errors and fault injection."""

    def __init__(self, *, bot_token: str = "xoxb-0000-standin-bot-token") -> None:
        self.bot_token = bot_token
        self.app_token = "xapp-1-A0MLCHATOPS-0000-standin-app-token"
        # What `apps.connections.open` answers if set; empty: see `accept_socket_mode()`.
        self.socket_mode_url = ""
        self.scopes: list[str] = list(DEFAULT_SCOPES)
        self.team_id, self.team_domain = "T0TEAM", "ml-chatops"
        self.bot_user_id, self.bot_id, self.app_id = "U0BOT", "B0BOT", "A0MLCHATOPS"
        self.bot_name = "mlops-bot"
        # Off by default: a test that wants the bot connected calls `accept_socket_mode()`.
        self.socket_mode = SocketModeServer(self.app_id)
        self._serve_socket_mode = False
        self.usergroups: dict[str, list[str] | None] = {}
        self.users: dict[str, JSONDict] = {}
        self.channels: dict[str, JSONDict] = {}
        # Unlisted channel ids shaped like C.../G.../D... are created on first use.
        self.auto_channels = True
        self.clock = StandInClock()
        self.base_url = ""
        self._missing_channels: set[str] = set()
        self._lock = threading.RLock()
        self._store = _Store()
        self._last_ts_us = 0
        self._loop: BackgroundLoop | None = None
        self._strays: list[str] = []
        # Every message-limit problem the bot caused (tests/support/slack_limits.py).
        self._limit_problems: list[tuple[str, slack_limits.Problem]] = []
        self._views: dict[str, JSONDict] = {}
        self._used_triggers: set[str] = set()
        self.add_user("U0ADMIN1", "admin")
        self.add_channel("C0INCIDENTS", "incidents")

    # ---- serving -------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Web API base URL for slack_sdk (`urljoin` needs the trailing slash)."""
        return f"{self.base_url}/api/"

    def web_app(self) -> web.Application:
        """The aiohttp application answering the Web API and response_url routes."""
        # A URI up to 64 KB reaches the handlers, which answer 414 beyond URI_MAX like Slack.
        app = web.Application(handler_args={"max_line_size": 65536})
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{id}", self._handle_response_url)
        app.router.add_get(SOCKET_PATH, self._handle_socket_mode)
        app.router.add_route("*", "/{tail:.*}", self._handle_stray)
        return app

    async def _handle_stray(self, request: web.Request) -> web.StreamResponse:
        # Anything else the bot calls (a URL a sender named, say) is recorded, then refused.
        self._strays.append(f"{request.method} {request.path_qs}")
        return web.Response(status=404)

    async def _handle_socket_mode(self, request: web.Request) -> web.StreamResponse:
        if not self._serve_socket_mode:
            return web.Response(status=404)
        return await self.socket_mode.handle(request)

    def accept_socket_mode(self) -> SocketModeServer:
        """Make `apps.connections.open` hand out this stand-in's Socket Mode server."""
        self._serve_socket_mode = True
        return self.socket_mode

    def strays(self) -> list[str]:
        """Requests to paths that are neither the Web API nor a minted response_url."""
        return list(self._strays)

    def start(self, loop: BackgroundLoop) -> SlackStandIn:
        """Serve on `loop` at a free port and remember the base URL."""
        self._loop = loop
        self.socket_mode.attach(loop)
        self.base_url = loop.serve(self.web_app())
        return self

    def stop(self) -> None:
        """Stop serving (the recorded state stays readable)."""
        if self._loop is not None:
            self._loop.stop(self.base_url)
            self._loop = None

    # ---- configuration -------------------------------------------------------------------

    def add_user(self, user_id: str, name: str, **fields: Any) -> JSONDict:
        """Register a user for `users.info` (fields override the realistic defaults)."""
        user = _default_user(user_id, name, self.team_id) | fields
        self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        private: bool = False,
        member: bool = True,
    ) -> JSONDict:
        """Register a channel for `conversations.info` and posting rules."""
        info = _default_channel(channel_id, name, private=private, member=member)
        with self._lock:
            self._missing_channels.discard(channel_id)
            self.channels[channel_id] = info
        return info

    def bot_not_in(self, channel_id: str) -> None:
        """Make the bot a non-member: posts fail with `not_in_channel` (or `channel_not_found`)."""
        with self._lock:
            info = self._channel(channel_id) or self.add_channel(channel_id)
            info["is_member"] = False

    def remove_channel(self, channel_id: str) -> None:
        """Make every call naming this channel answer `channel_not_found`."""
        with self._lock:
            self.channels.pop(channel_id, None)
            self._missing_channels.add(channel_id)

    def seed_message(self, channel: str, text: str, *, user: str = "U0ADMIN1") -> str:
        """Store a message a person wrote (the bot may not update or delete it); return its ts."""
        with self._lock:
            ts = self._next_ts()
            message = {"type": "message", "user": user, "ts": ts, "text": text, "blocks": []}
            self._store.messages.setdefault(channel, {})[ts] = message
            return ts

    def new_function_execution(
        self, callback_id: str = "stop_ml_deployment", inputs: JSONDict | None = None
    ) -> FunctionExecution:
        """Start a workflow step run; its `xwfp-` token is accepted by the stand-in."""
        info = FunctionExecution(
            id=f"Fx{secrets.token_hex(5).upper()}",
            token=f"xwfp-{secrets.token_hex(12)}",
            callback_id=callback_id,
            inputs=dict(inputs or {}),
        )
        with self._lock:
            self._store.executions[info.id] = _Execution(info)
        return info

    def function_execution(self, execution_id: str) -> JSONDict:
        """State of a step run: `state` (running/completed/failed), `outputs`, `error`."""
        with self._lock:
            ex = self._store.executions[execution_id]
            return {"state": ex.state, "outputs": ex.outputs, "error": ex.error}

    def advance(self, seconds: float) -> None:
        """Advance the stand-in clock (response_url expiry)."""
        self.clock.advance(seconds)

    # ---- fault injection -----------------------------------------------------------------

    def fail_next(self, method: str, error: str = "internal_error", count: int = 1) -> None:
        """The next `count` calls of `method` answer 200 `{"ok": false, "error": error}`."""
        self._add_faults(method, _Fault("error", error=error), count)

    def rate_limit_next(self, method: str, retry_after: int = 1, count: int = 1) -> None:
        """The next `count` calls of `method` answer 429 with an integer `Retry-After`."""
        self._add_faults(method, _Fault("ratelimit", status=429, retry_after=retry_after), count)

    def http_error_next(self, method: str, status: int = 500, count: int = 1) -> None:
        """The next `count` calls of `method` answer a bare HTTP error page."""
        self._add_faults(method, _Fault("http", status=status), count)

    def _add_faults(self, method: str, fault: _Fault, count: int) -> None:
        with self._lock:
            self._store.faults.setdefault(method, deque()).extend([fault] * count)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._store.faults.get(method)
        return queue.popleft() if queue else None

    # ---- reading back --------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[SlackCall]:
        """Recorded Web API calls, oldest first, optionally of one method."""
        with self._lock:
            return [c for c in self._store.calls if method is None or c.method == method]

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[JSONDict]:
        """Channel messages (current text/blocks after updates), oldest first."""
        with self._lock:
            stored = self._store.messages.get(channel, {}).values()
            return [_copy(m) for m in stored if include_deleted or not m.get("deleted")]

    def message(self, channel: str, ts: str) -> JSONDict | None:
        """One channel message by ts (deleted ones too, flagged `deleted`)."""
        with self._lock:
            found = self._store.messages.get(channel, {}).get(ts)
            return _copy(found) if found is not None else None

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[JSONDict]:
        """Ephemeral messages (`user` is who sees it; `via` is api or response_url)."""
        with self._lock:
            return [
                _copy(e)
                for e in self._store.ephemerals
                if (channel is None or e["channel"] == channel)
                and (user is None or e["user"] == user)
                and not e.get("deleted")
            ]

    def response_posts(self, url: str | None = None) -> list[ResponsePost]:
        """POSTs received on response_urls, oldest first."""
        with self._lock:
            return [p for p in self._store.response_posts if url is None or p.url == url]

    def clear(self) -> None:
        """Forget calls, messages, response posts and pending faults.

        Configuration, minted response_urls and step runs stay valid.
        """
        with self._lock:
            old = self._store
            self._store = _Store(response_urls=old.response_urls, executions=old.executions)

    def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0) -> T:
        """Poll `predicate` until it returns something truthy; return it or fail the test."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s: {predicate!r}")
            time.sleep(0.01)

    def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Wait until at least `count` calls of `method` were received; return them all."""
        try:
            return self.wait_for(lambda: _at_least(self.calls(method), count), timeout)
        except AssertionError:
            seen = len(self.calls(method))
            raise AssertionError(f"expected {count} {method} call(s), saw {seen}") from None

    # ---- response_url --------------------------------------------------------------------

    def new_response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        ts: str | None = None,
        ephemeral: bool = False,
    ) -> str:
        """Mint a response_url; `ts` names the message a click came from (None: a command)."""
        url = f"{self.base_url}/response/{secrets.token_hex(8)}"
        entry = _ResponseUrl(url, channel, user, ts, ephemeral, self.clock.now())
        with self._lock:
            self._store.response_urls[url.rsplit("/", 1)[1]] = entry
        return url

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        if len(request.raw_path) > URI_MAX:
            return web.Response(status=414, text="Request-URI Too Long")
        raw = await request.text()
        body = _json_object(raw)
        with self._lock:
            entry = self._store.response_urls.get(request.match_info["id"])
            status, answer, effects = self._respond(entry, body)
            self._store.response_posts.append(
                ResponsePost(str(request.url), body, status, answer, effects, self.clock.now())
            )
        # UNVERIFIED: Slack's exact status/body for response_url answers (module docstring).
        return web.Response(status=status, text=answer, content_type="text/plain")

    def _respond(
        self, entry: _ResponseUrl | None, body: JSONDict | None
    ) -> tuple[int, str, tuple[str, ...]]:
        fault = self._take_fault("response_url")
        if fault is not None:
            return fault.status, fault.error or "error", ("rejected",)
        if entry is None:
            return 404, "no_service", ("rejected",)
        if self.clock.now() - entry.minted_at > RESPONSE_URL_LIFETIME:
            return 404, "expired_url", ("rejected",)
        if entry.uses >= RESPONSE_URL_MAX_USES:
            return 404, "used_url", ("rejected",)
        if body is None:
            return 400, "invalid_payload", ("rejected",)
        if not _has_content(body) and not body.get("delete_original"):
            return 400, "no_text", ("rejected",)
        refusal = self._limits_refusal("response_url", body)
        if refusal is not None:  # UNVERIFIED: Slack's exact answer; we answer 400 + the error
            return 400, refusal, ("rejected",)
        entry.uses += 1
        return 200, "ok", self._apply_response(entry, body)

    def _apply_response(self, entry: _ResponseUrl, body: JSONDict) -> tuple[str, ...]:
        effects: list[str] = []
        if body.get("delete_original"):
            # Slack does not support delete_original for slash commands: nothing to delete.
            effects.append("deleted" if self._delete_source(entry) else "ignored")
            if not _has_content(body):
                return tuple(effects)
        if body.get("replace_original") and self._replace_source(entry, body):
            effects.append("replaced")
        elif body.get("response_type") == "in_channel" and entry.channel:
            self._post_message(entry.channel, _content(body))
            effects.append("in_channel")
        else:
            channel, user = entry.channel or "", entry.user or ""
            self._post_ephemeral(channel, user, _content(body), "response_url")
            effects.append("ephemeral")
        return tuple(effects)

    def _source(self, entry: _ResponseUrl) -> JSONDict | None:
        if entry.ts is None or entry.channel is None:
            return None
        if entry.ephemeral:
            return next((e for e in self._store.ephemerals if e["ts"] == entry.ts), None)
        return self._store.messages.get(entry.channel, {}).get(entry.ts)

    def _delete_source(self, entry: _ResponseUrl) -> bool:
        source = self._source(entry)
        if source is None or source.get("deleted"):
            return False
        source["deleted"] = True
        return True

    def _replace_source(self, entry: _ResponseUrl, body: JSONDict) -> bool:
        source = self._source(entry)
        if source is None or source.get("deleted"):
            return False
        # A replacement is a whole new message body: absent blocks mean no blocks.
        source["text"] = body.get("text", "")
        source["blocks"] = list(body.get("blocks") or [])
        return True

    # ---- Web API -------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if len(request.raw_path) > URI_MAX:
            return web.Response(status=414, text="Request-URI Too Long")
        params, token = await _read_params(request)
        with self._lock:
            self._store.calls.append(
                SlackCall(
                    method, params, token, dict(request.headers), self.clock.now(), request.method
                )
            )
            fault = self._take_fault(method)
            if fault is not None:
                return _fault_response(fault)
            payload = self._dispatch(method, params, token)
        headers = {"x-oauth-scopes": ",".join(self.scopes)} if method == "auth.test" else None
        return web.json_response(payload, headers=headers)

    def _dispatch(self, method: str, params: JSONDict, token: str | None) -> JSONDict:
        handler = self._handlers().get(method)
        try:
            if handler is None:
                raise _SlackError("unknown_method")
            self._check_auth(method, token)
            self._check_limits(method, params)
            return {"ok": True} | handler(params, token)
        except _SlackError as err:
            return {"ok": False, "error": err.error} | err.extra

    def _handlers(self) -> dict[str, Callable[[JSONDict, str | None], JSONDict]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "functions.completeSuccess": self._functions_complete_success,
            "functions.completeError": self._functions_complete_error,
        }

    def _check_auth(self, method: str, token: str | None) -> None:
        if not token:
            raise _SlackError("not_authed")
        if method in _APP_TOKEN_METHODS or token == self.app_token:
            if method in _APP_TOKEN_METHODS and token == self.app_token:
                return
            known = token in (self.bot_token, self.app_token)
            raise _SlackError("not_allowed_token_type" if known else "invalid_auth")
        if token != self.bot_token and not self._execution_for_token(token):
            raise _SlackError("invalid_auth")
        needed = _SCOPE_NEEDED.get(method)
        if token == self.bot_token and needed and needed not in self.scopes:
            raise _SlackError("missing_scope", needed=needed, provided=",".join(self.scopes))

    # ---- message limits (tests/support/slack_limits.py) -------------------------------------

    def limit_problems(self, *, clear: bool = False) -> list[tuple[str, slack_limits.Problem]]:
        """(method, problem) for every message Slack would refuse, truncate or warn about."""
        with self._lock:
            found = list(self._limit_problems)
            if clear:
                self._limit_problems.clear()
            return found

    def _check_limits(self, method: str, params: JSONDict) -> None:
        if method not in _BLOCK_METHODS:
            return
        truncates = method == "chat.postMessage"
        problems = slack_limits.check_message(
            params, long_text="truncate" if truncates else "refuse"
        )
        self._limit_problems += [(method, p) for p in problems]
        answer = slack_limits.slack_answer(problems)
        if answer is not None:
            raise _SlackError(answer.pop("error"), **answer)
        if isinstance(params.get("text"), str):  # chat.postMessage keeps the first 40,000
            params["text"] = params["text"][: slack_limits.TEXT_MAX]

    def _limits_refusal(self, method: str, body: JSONDict) -> str | None:
        problems = slack_limits.check_message(body, long_text="refuse")
        kind = slack_limits.check_response_type(body)
        problems = [kind, *problems] if kind is not None else problems
        self._limit_problems += [(method, p) for p in problems]
        answer = slack_limits.slack_answer(problems)
        return None if answer is None else str(answer["error"])

    # ---- views (modals) ------------------------------------------------------------------

    def views(self) -> list[JSONDict]:
        """Open modals, as last opened or updated (with `id` and `hash`), oldest first."""
        with self._lock:
            return [_copy(v) for v in self._views.values()]

    def _views_open(self, params: JSONDict, token: str | None) -> JSONDict:
        trigger = str(params.get("trigger_id") or "")
        if not trigger:
            raise _SlackError("invalid_arguments")
        if trigger in self._used_triggers:  # a trigger opens one view
            raise _SlackError("exchanged_trigger_id")
        view = self._checked_view(params)
        self._used_triggers.add(trigger)
        stored = view | {"id": f"V{secrets.token_hex(5).upper()}", "hash": self._next_ts()}
        self._views[stored["id"]] = stored
        return {"view": _copy(stored)}

    def _views_update(self, params: JSONDict, token: str | None) -> JSONDict:
        current = self._views.get(str(params.get("view_id") or ""))
        if current is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _SlackError("hash_conflict")
        view = self._checked_view(params)
        current.clear()
        current.update(view | {"id": params["view_id"], "hash": self._next_ts()})
        return {"view": _copy(current)}

    def _checked_view(self, params: JSONDict) -> JSONDict:
        view = params.get("view")
        view = _json_or_str(view) if isinstance(view, str) else view
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise _SlackError("invalid_arguments")
        title = view.get("title") or {}
        problems = slack_limits.check_message(view, surface="view")
        if title.get("type") != "plain_text" or not 0 < len(str(title.get("text", ""))) <= 24:
            problems.append(slack_limits.Problem("invalid_arguments", "title", "/view/title"))
        self._limit_problems += [("views", p) for p in problems]
        if problems:
            # UNVERIFIED wording; Slack answers views.* problems as invalid_arguments.
            messages = [f"[ERROR] {p.message()}" for p in problems]
            raise _SlackError("invalid_arguments", response_metadata={"messages": messages})
        return dict(view)

    def _execution_for_token(self, token: str) -> _Execution | None:
        found = (e for e in self._store.executions.values() if e.info.token == token)
        return next(found, None)

    def _auth_test(self, params: JSONDict, token: str | None) -> JSONDict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": "ML ChatOps Stand-in",
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, params: JSONDict, token: str | None) -> JSONDict:
        if self.socket_mode_url:
            return {"url": self.socket_mode_url}
        if self._serve_socket_mode:
            return {"url": self.socket_mode.url(self.base_url)}
        return {"url": _refusing_ws_url()}

    def _chat_post_message(self, params: JSONDict, token: str | None) -> JSONDict:
        channel = self._postable_channel(params.get("channel"))
        message = self._post_message(channel, _content(_require_content(params)))
        return {"channel": channel, "ts": message["ts"], "message": _copy(message)}

    def _chat_post_ephemeral(self, params: JSONDict, token: str | None) -> JSONDict:
        channel = self._postable_channel(params.get("channel"))
        user = params.get("user")
        if not user:
            raise _SlackError("user_not_found")
        content = _content(_require_content(params))
        ephemeral = self._post_ephemeral(channel, str(user), content, "api")
        return {"message_ts": ephemeral["ts"]}

    def _chat_update(self, params: JSONDict, token: str | None) -> JSONDict:
        channel, ts = self._known_channel(params.get("channel")), str(params.get("ts", ""))
        if any(e["ts"] == ts for e in self._store.ephemerals):
            raise _SlackError("cant_update_message")
        message = self._store.messages.get(channel, {}).get(ts)
        if message is None or message.get("deleted"):
            raise _SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise _SlackError("cant_update_message")
        _update_message(message, _require_content(params), self.bot_user_id, self._next_ts())
        return {"channel": channel, "ts": ts, "text": message["text"], "message": _copy(message)}

    def _chat_delete(self, params: JSONDict, token: str | None) -> JSONDict:
        channel, ts = self._known_channel(params.get("channel")), str(params.get("ts", ""))
        message = self._store.messages.get(channel, {}).get(ts)
        if message is None or message.get("deleted"):
            raise _SlackError("message_not_found")
        if message.get("bot_id") != self.bot_id:
            raise _SlackError("cant_delete_message")
        message["deleted"] = True
        return {"channel": channel, "ts": ts}

    def _usergroups_users_list(self, params: JSONDict, token: str | None) -> JSONDict:
        group = str(params.get("usergroup", ""))
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        members = self.usergroups[group]
        # None: `ok: true` without `users`, an answer the bot must not read as an empty group.
        return {} if members is None else {"users": list(members)}

    def _users_info(self, params: JSONDict, token: str | None) -> JSONDict:
        user = self.users.get(str(params.get("user", "")))
        if user is None:
            raise _SlackError("user_not_found")
        return {"user": _copy(user)}

    def _conversations_info(self, params: JSONDict, token: str | None) -> JSONDict:
        info = self._known_channel(params.get("channel"))
        return {"channel": _copy(self.channels[info])}

    def _functions_complete_success(self, params: JSONDict, token: str | None) -> JSONDict:
        execution = self._running_execution(params)
        execution.state, execution.outputs = "completed", dict(params.get("outputs") or {})
        return {}

    def _functions_complete_error(self, params: JSONDict, token: str | None) -> JSONDict:
        execution = self._running_execution(params)
        execution.state, execution.error = "failed", str(params.get("error", ""))
        return {}

    def _running_execution(self, params: JSONDict) -> _Execution:
        execution = self._store.executions.get(str(params.get("function_execution_id", "")))
        # Slack answers not_found both for unknown runs and runs already completed.
        if execution is None or execution.state != "running":
            raise _SlackError("function_execution_not_found")
        return execution

    # ---- channels and messages -----------------------------------------------------------

    def _channel(self, channel_id: str) -> JSONDict | None:
        if channel_id in self._missing_channels:
            return None
        if channel_id not in self.channels and self.auto_channels and _CHANNEL_ID.match(channel_id):
            self.channels[channel_id] = _default_channel(channel_id, None)
        return self.channels.get(channel_id)

    def _known_channel(self, channel_id: Any) -> str:
        info = self._channel(str(channel_id or ""))
        if info is None or (info["is_private"] and not info["is_member"]):
            raise _SlackError("channel_not_found")
        return str(info["id"])

    def _postable_channel(self, channel_id: Any) -> str:
        channel = self._known_channel(channel_id)
        info = self.channels[channel]
        # chat:write.public lets a bot post in public channels it has not joined.
        if not info["is_member"] and "chat:write.public" not in self.scopes:
            raise _SlackError("not_in_channel")
        return channel

    def _post_message(self, channel: str, content: JSONDict) -> JSONDict:
        message = self._bot_message(content)
        self._store.messages.setdefault(channel, {})[message["ts"]] = message
        return message

    def _post_ephemeral(self, channel: str, user: str, content: JSONDict, via: str) -> JSONDict:
        ephemeral = self._bot_message(content) | {"channel": channel, "user": user, "via": via}
        self._store.ephemerals.append(ephemeral)
        return ephemeral

    def _bot_message(self, content: JSONDict) -> JSONDict:
        return {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": self._next_ts(),
            "text": "",
            "blocks": [],
        } | content

    def _next_ts(self) -> str:
        # Slack ts: seconds.microseconds, unique and increasing within a channel.
        now_us = int(self.clock.now() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 100)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"


# ---- request/response helpers ------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[JSONDict, str | None]:
    """Merge query and body (form or JSON) params; take the Bearer token or legacy `token`."""
    params: JSONDict = dict(request.query)
    raw = await request.text()
    if raw:
        if request.content_type == "application/json":
            params.update(_json_object(raw) or {})
        else:
            params.update(parse_qsl(raw, keep_blank_values=True))
    for key in _JSON_FIELDS:
        if isinstance(params.get(key), str):
            params[key] = _json_or_str(params[key])
    auth = request.headers.get("Authorization", "")
    form_token = params.pop("token", None)
    token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else form_token
    return params, token


def _fault_response(fault: _Fault) -> web.Response:
    if fault.kind == "ratelimit":
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(int(fault.retry_after))},
        )
    if fault.kind == "http":
        page = f"<html><body><h1>{fault.status}</h1></body></html>"
        return web.Response(status=fault.status, text=page, content_type="text/html")
    return web.json_response({"ok": False, "error": fault.error})


def _json_object(raw: str) -> JSONDict | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_or_str(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _has_content(params: JSONDict) -> bool:
    return bool(params.get("text") or params.get("blocks") or params.get("attachments"))


def _require_content(params: JSONDict) -> JSONDict:
    blocks = params.get("blocks")
    if blocks is not None and not isinstance(blocks, list):
        raise _SlackError("invalid_blocks_format")
    if not _has_content(params):
        raise _SlackError("no_text")
    return params


def _content(params: JSONDict) -> JSONDict:
    """The message-shaping fields of a post (text, blocks, attachments, thread_ts, metadata)."""
    keys = ("text", "blocks", "attachments", "thread_ts", "metadata")
    return {k: params[k] for k in keys if params.get(k) is not None}


def _update_message(message: JSONDict, params: JSONDict, editor: str, edit_ts: str) -> None:
    # chat.update keeps fields it is not given; an explicit empty list clears blocks.
    for key in ("text", "blocks", "attachments"):
        if key in params:
            message[key] = params[key]
    message["edited"] = {"user": editor, "ts": edit_ts}


def _default_user(user_id: str, name: str, team_id: str) -> JSONDict:
    return {
        "id": user_id,
        "team_id": team_id,
        "name": name,
        "real_name": name.title(),
        "deleted": False,
        "is_bot": False,
        "is_admin": False,
        "is_owner": False,
        "tz": "Europe/Amsterdam",
        "profile": {
            "real_name": name.title(),
            "display_name": name,
            "email": f"{name}@example.com",
        },
    }


def _default_channel(
    channel_id: str, name: str | None, *, private: bool = False, member: bool = True
) -> JSONDict:
    is_im = channel_id.startswith("D")
    return {
        "id": channel_id,
        "name": name or channel_id.lower(),
        "is_channel": not is_im and not private,
        "is_group": private,
        "is_im": is_im,
        "is_private": private or is_im or channel_id.startswith("G"),
        "is_archived": False,
        "is_member": member,
        "created": 1700000000,
    }


def _refusing_ws_url() -> str:
    """A Socket Mode-shaped ws:// URL on a local port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"ws://127.0.0.1:{port}/link/?ticket=standin-{secrets.token_hex(8)}&app_id=A0MLCHATOPS"


def _copy(value: JSONDict) -> JSONDict:
    copied: JSONDict = json.loads(json.dumps(value))
    return copied


def _at_least(items: list[T], count: int) -> list[T]:
    return items if len(items) >= count else []
