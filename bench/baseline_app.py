"""The floor: a bare Bolt AsyncApp on the bot's HTTP stack (aiohttp + Bolt's adapter).

It acks `/ml-stop` and answers with one message holding a Stop button (via response_url);
it acks a click on that button and posts one message in the channel. Nothing else: no
parsing, policy, store, Elasticsearch calls, audit or logging set-up. It imports the
libraries the product must use (slack-bolt, elasticsearch's async client, pydantic-settings,
which reads its settings), so its peak RSS is the floor those libraries set. Run as a script:
`SLACK_BOT_TOKEN=... SLACK_SIGNING_SECRET=... SLACK_API_URL=... PORT=... python
bench/baseline_app.py`; it serves `POST /slack/events` and `GET /healthz` until SIGTERM.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from typing import Any

from aiohttp import web
from elasticsearch import AsyncElasticsearch  # noqa: F401  (a mandated library: its memory)
from pydantic_settings import BaseSettings
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

COMMAND = "/ml-stop"
CONFIRM_ACTION_ID = "ml_stop.confirm"  # the bot's Stop button, so the same clicks fit both


class Settings(BaseSettings):
    """The environment, read the way the product reads it."""

    slack_bot_token: str
    slack_signing_secret: str
    slack_api_url: str
    port: int = 3000


def prompt(text: str, value: str) -> dict[str, Any]:
    """One message with a Stop button carrying `value`."""
    button = {
        "type": "button",
        "action_id": CONFIRM_ACTION_ID,
        "text": {"type": "plain_text", "text": "Stop"},
        "style": "danger",
        "value": value,
    }
    return {
        "text": f"Stop `{text}`?",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"Stop `{text}`?"}},
            {"type": "actions", "block_id": "confirm", "elements": [button]},
        ],
    }


def create_bolt_app(client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """The bare Bolt app: one command listener and one button listener."""
    app = AsyncApp(
        client=client, signing_secret=signing_secret, raise_error_for_unhandled_request=False
    )
    ids = itertools.count(1)

    @app.command(COMMAND)
    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await respond(**prompt(command.get("text", ""), f"b{next(ids)}"), response_type="ephemeral")

    @app.action(CONFIRM_ACTION_ID)
    async def on_confirm(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
        await client.chat_postMessage(channel=channel, text="stopped")

    return app


def create_web_app(bolt: AsyncApp) -> web.Application:
    """`POST /slack/events` through Bolt's aiohttp adapter, and `GET /healthz`."""

    async def events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/healthz", healthz)
    return app


async def serve() -> None:
    """Serve on PORT until SIGTERM or SIGINT."""
    settings = Settings()  # type: ignore[call-arg]
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = create_bolt_app(client, settings.slack_signing_secret)
    runner = web.AppRunner(create_web_app(bolt))
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
