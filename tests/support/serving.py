"""Serving Bolt apps on the background loop, and clients pointed at the Slack stand-in."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from .loop import BackgroundLoop
from .slack_standin import SlackStandIn

BoltFactory = Callable[[], "AsyncApp | web.Application | Awaitable[AsyncApp | web.Application]"]


def standin_client(
    standin: SlackStandIn, retry_handlers: list[AsyncRetryHandler] | None = None
) -> AsyncWebClient:
    """An AsyncWebClient with the stand-in's bot token and base URL."""
    return AsyncWebClient(
        token=standin.bot_token, base_url=standin.api_url, retry_handlers=retry_handlers
    )


def serve_bolt(
    bg_loop: BackgroundLoop, app_factory: BoltFactory, path: str = "/slack/events"
) -> str:
    """Build the app on the loop and serve it; return the base URL (stop with `bg_loop.stop`).

    The factory may return a Bolt `AsyncApp` (served at `POST {path}` by Bolt's own aiohttp
    server, `app.web_app()`) or a ready `aiohttp.web.Application`.
    """
    return bg_loop.serve(bg_loop.run(_build(app_factory, path)))


async def _build(app_factory: BoltFactory, path: str) -> web.Application:
    # Built on the loop: aiohttp and Bolt objects bind to the running loop when created.
    built = app_factory()
    if inspect.isawaitable(built):
        built = await built
    if isinstance(built, AsyncApp):
        return built.web_app(path=path)
    return built
