"""Slack's Socket Mode side, for the stand-in: a WebSocket that pushes envelopes, reads acks.

The bot's client (slack_sdk.socket_mode.aiohttp) gets a `wss://` URL from
`apps.connections.open`, connects, waits for `{"type": "hello"}`, then receives envelopes
`{"envelope_id", "type", "payload", "accepts_response_payload"[, "retry_attempt",
"retry_reason"]}` and acks each with `{"envelope_id"[, "payload"]}` on the same socket.
Pings are answered by aiohttp (autoping), as the client's ping-pong monitor expects.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from .loop import BackgroundLoop

JSONDict = dict[str, Any]
SOCKET_PATH = "/link/"


@dataclass(frozen=True)
class Ack:
    """One acknowledgement the bot sent for an envelope."""

    envelope_id: str
    payload: JSONDict | None
    raw: JSONDict


def envelope(
    kind: str,
    payload: JSONDict,
    *,
    envelope_id: str | None = None,
    retry_attempt: int | None = None,
    retry_reason: str = "",
) -> JSONDict:
    """An envelope as Slack sends it; events_api ones carry the retry fields."""
    found: JSONDict = {
        "envelope_id": envelope_id or _envelope_id(),
        "payload": payload,
        "type": kind,
        # Slack lets slash commands (and view submissions) answer in the ack.
        "accepts_response_payload": kind == "slash_commands",
    }
    if kind == "events_api":
        found["retry_attempt"] = retry_attempt or 0
        found["retry_reason"] = retry_reason
    return found


class SocketModeServer:
    """The Socket Mode WebSocket endpoint: connections, pushed envelopes, received acks."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._lock = threading.Lock()
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: list[Ack] = []
        self._unparsed: list[str] = []
        self._opened = 0
        self._loop: BackgroundLoop | None = None

    def attach(self, loop: BackgroundLoop) -> None:
        """Remember the loop the WebSocket is served on (pushes run there)."""
        self._loop = loop

    def url(self, base_url: str) -> str:
        """A fresh connection URL on the stand-in, shaped like Slack's."""
        ws_base = base_url.replace("http", "ws", 1)
        return f"{ws_base}{SOCKET_PATH}?ticket={secrets.token_hex(16)}&app_id={self.app_id}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Accept one connection, say hello, record every ack until it closes."""
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        with self._lock:
            self._sockets.append(ws)
            self._opened += 1
            count = len(self._sockets)
        await ws.send_json(_hello(count, self.app_id))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._record(message.data)
        finally:
            with self._lock:
                self._sockets.remove(ws)
        return ws

    def _record(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        with self._lock:
            if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
                self._acks.append(Ack(data["envelope_id"], data.get("payload"), data))
            else:
                self._unparsed.append(text)

    # ---- test side (any thread) ------------------------------------------------------------

    def connections(self) -> int:
        """How many bot connections are open."""
        with self._lock:
            return len(self._sockets)

    def opened(self) -> int:
        """How many connections the bot has opened in all (reconnects count)."""
        with self._lock:
            return self._opened

    def wait_connected(self, count: int = 1, timeout: float = 20.0) -> None:
        """Wait until `count` connections are open."""
        _poll(lambda: self.connections() >= count, timeout, f"{count} Socket Mode connection(s)")

    def wait_opened(self, count: int, timeout: float = 20.0) -> None:
        """Wait until the bot has opened `count` connections in all and one is open."""
        _poll(
            lambda: self.opened() >= count and self.connections() > 0,
            timeout,
            f"{count} Socket Mode connection(s) opened",
        )

    def push(self, message: JSONDict) -> None:
        """Send `message` on the newest connection (Slack picks one; tests want it open)."""
        with self._lock:
            if not self._sockets:
                raise AssertionError("no Socket Mode connection to push to")
            ws = self._sockets[-1]
        if self._loop is None:
            raise RuntimeError("SocketModeServer is not attached to a loop")
        self._loop.run(ws.send_str(json.dumps(message)))

    def acks(self, envelope_id: str | None = None) -> list[Ack]:
        """Acks received, oldest first, optionally for one envelope."""
        with self._lock:
            return [a for a in self._acks if envelope_id is None or a.envelope_id == envelope_id]

    def unparsed(self) -> list[str]:
        """Text frames from the bot that were not acks (there should be none)."""
        with self._lock:
            return list(self._unparsed)

    def wait_ack(self, envelope_id: str, timeout: float = 15.0) -> Ack:
        """Wait for the bot's ack of `envelope_id`; return it."""
        _poll(lambda: bool(self.acks(envelope_id)), timeout, f"an ack of {envelope_id}")
        return self.acks(envelope_id)[0]

    def refresh(self) -> None:
        """Ask the bot to reconnect, as Slack does before it recycles a connection."""
        self.push(
            {
                "type": "disconnect",
                "reason": "refresh_requested",
                "debug_info": {"host": "applink-standin"},
            }
        )

    def disconnect_all(self) -> None:
        """Close every connection as Slack does when it recycles them (the bot reconnects)."""
        with self._lock:
            sockets = list(self._sockets)
        if self._loop is not None:
            for ws in sockets:
                self._loop.run(ws.close())


def _hello(count: int, app_id: str) -> JSONDict:
    return {
        "type": "hello",
        "num_connections": count,
        "debug_info": {
            "host": "applink-standin",
            "build_number": 1,
            "approximate_connection_time": 18060,
        },
        "connection_info": {"app_id": app_id},
    }


def _envelope_id() -> str:
    # Slack's envelope ids are UUIDs.
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def _poll(ready: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout}s")
        time.sleep(0.01)
