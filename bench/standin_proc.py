"""The Slack stand-in in a process of its own, for the bench: `python -m bench.standin_proc`.

It serves tests/support's `SlackStandIn` (Web API at `/api/`, response_urls at `/response/`)
unchanged, plus a small control interface for the load generator:

- `GET  /healthz`             200 once serving
- `POST /_bench/response_url  {"channel": C, "user": U}` → `{"url": ...}` (a slash command's)
- `GET  /_bench/events`       a stream of JSON lines, one per post the bot made that a flow
  waits for: `{"kind": "response", "key": <url id>, "at", "status", "button", "ts"}` for a
  response_url post (`button` is the Stop button's `[block_id, value]`, `ts` the ephemeral
  it showed, `click_url` a response_url minted for a click on it),
  `{"kind": "channel", "key": <channel>, "at", "status", "method", "result"}` for
  `chat.postMessage` / `chat.update` (`result`: it shows an outcome, not progress).

`at` is `time.time()` when the post arrived, so the bench's latencies do not include the hop
to the bench. Work here (parsing, Block Kit scans) runs on this process's CPU, not the
load generator's or the bot's. (Importing the `bench` package, which `-m` does first, puts
`tests/` on `sys.path` for `support`.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from support.driver import iter_buttons
from support.shared import USERGROUPS
from support.slack_standin import SlackStandIn

CONFIRM_ACTION_ID = "ml_stop.confirm"
CHANNEL_WRITES = ("chat.postMessage", "chat.update")
# The bot first posts a progress line in the channel and later replaces it with the result
# (chat.update); a channel write still showing this mark is not the result yet.
IN_PROGRESS_MARK = "\u23f3"  # ⏳

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StreamingStandIn(SlackStandIn):
    """The stand-in, telling every subscriber of `/_bench/events` about the posts that matter."""

    def __init__(self) -> None:
        super().__init__()
        self.usergroups.update(USERGROUPS)
        self._subscribers: list[asyncio.Queue[bytes]] = []

    def web_app(self) -> web.Application:
        """The stand-in's routes, watched by a middleware, plus the control routes."""
        app = super().web_app()
        app.middlewares.append(self._watch)
        app.router.add_get("/healthz", _healthz)
        app.router.add_post("/_bench/response_url", self._mint)
        app.router.add_get("/_bench/events", self._events)
        return app

    async def _mint(self, request: web.Request) -> web.Response:
        body = await request.json()
        url = self.new_response_url(channel=body.get("channel"), user=body.get("user"))
        return web.json_response({"url": url})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            await response.write(b'{"kind": "hello"}\n')
            while True:
                await response.write(await queue.get())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._subscribers.remove(queue)
        return response

    def _publish(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event) + "\n").encode()
        for queue in self._subscribers:
            queue.put_nowait(line)

    @web.middleware
    async def _watch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        at = time.time()
        response = await handler(request)
        info = request.match_info
        if not self._subscribers:
            return response
        if "id" in info:  # POST /response/{id}
            body = _params(request.content_type, await request.text())
            entry = self._store.response_urls.get(info["id"])
            shown = self.ephemerals(channel=entry.channel, user=entry.user) if entry else []
            ts = str(shown[-1]["ts"]) if shown else None
            click_url = None
            if entry is not None and ts is not None:
                click_url = self.new_response_url(
                    channel=entry.channel, user=entry.user, ts=ts, ephemeral=True
                )
            self._publish(
                {
                    "kind": "response",
                    "key": info["id"],
                    "at": at,
                    "status": response.status,
                    "button": _confirm_button(body),
                    "ts": ts,
                    "click_url": click_url,
                    "text": str(body.get("text", ""))[:200],
                }
            )
        elif info.get("method") in CHANNEL_WRITES:  # /api/{method}
            params = _params(request.content_type, await request.text())
            self._publish(
                {
                    "kind": "channel",
                    "key": str(params.get("channel", "")),
                    "at": at,
                    "status": response.status,
                    "method": info["method"],
                    "result": _is_result(params),
                }
            )
        return response


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _params(content_type: str, raw: str) -> dict[str, Any]:
    if content_type == "application/json":
        try:
            value = json.loads(raw or "{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    params: dict[str, Any] = dict(parse_qsl(raw, keep_blank_values=True))
    if isinstance(params.get("blocks"), str):
        with contextlib.suppress(ValueError):
            params["blocks"] = json.loads(params["blocks"])
    return params


def _is_result(params: dict[str, Any]) -> bool:
    """A channel write that shows an outcome, not work in progress."""
    blocks = json.dumps(params.get("blocks") or [], ensure_ascii=False)
    return IN_PROGRESS_MARK not in str(params.get("text", "")) + blocks


def _confirm_button(message: dict[str, Any]) -> list[str | None] | None:
    for block_id, button in iter_buttons(message.get("blocks") or []):
        if button.get("action_id") == CONFIRM_ACTION_ID and button.get("value"):
            return [block_id, str(button["value"])]
    return None


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    standin = StreamingStandIn()
    runner = web.AppRunner(standin.web_app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    standin.base_url = f"http://{host}:{port}"
    print(f"Slack stand-in listening on {standin.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.standin_proc")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
