"""The `ml-chatops` command: serve, shell, check-config, explain."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from bot import blocks
from bot.actions import Who
from bot.commands import StopRequest, UsageError, parse
from bot.logs import setup_logging
from bot.policy import Caller, PolicyError, explain
from bot.runtime import build_runtime, require_slack
from bot.settings import Settings, SettingsError, load_settings
from bot.shell import ShellSession, repl

log = logging.getLogger("bot")

SHUTDOWN_GRACE = 60.0  # seconds running stops get to finish after SIGTERM


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-chatops",
        description="Stop Elasticsearch ML deployments from Slack, safely.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "serve",
        help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, HTTP on PORT otherwise)",
        description="Run the bot. Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT "
        "with POST /slack/events, GET /healthz, /readyz and /metrics.",
    )
    shell = sub.add_parser(
        "shell",
        help="type slash commands locally and press buttons by label",
        description="The local text adapter on the same core as the Slack bot.",
    )
    shell.add_argument("--demo", action="store_true", help="start an in-process demo cluster")
    shell.add_argument("--user", default="U0ADMIN1", help="Slack user id to act as")
    shell.add_argument("--channel", default="C0DEMO", help="Slack channel id to act in")
    sub.add_parser(
        "check-config",
        help="validate settings and config, reach every cluster and Slack",
        description="Validate the environment and config file, connect to each cluster, "
        "check the bot's privileges there and Slack's auth.test; non-zero exit on failure.",
    )
    exp = sub.add_parser(
        "explain",
        help="print the policy decision for a command, without running it",
        description='Example: ml-chatops explain --user U0123 --channel C0456 -- "/ml-stop x"',
    )
    exp.add_argument("--user", required=True, help="Slack user id")
    exp.add_argument("--usergroup", action="append", default=[], help="user group id (repeat)")
    exp.add_argument("--channel", default="", help="Slack channel id")
    exp.add_argument("--cluster", default=None, help="cluster name (default: the default)")
    exp.add_argument("text", nargs=argparse.REMAINDER, help='the command, e.g. "/ml-stop x"')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            setup_logging()
            return asyncio.run(_serve(load_settings()))
        if args.command == "shell":
            setup_logging("WARNING")
            return asyncio.run(_shell(args.demo, args.user, args.channel))
        if args.command == "check-config":
            setup_logging("WARNING")
            from bot.checks import check_config

            return asyncio.run(check_config(load_settings()))
        if args.command == "explain":
            return _explain(args)
    except (SettingsError, PolicyError) as exc:
        print(f"ml-chatops: {exc}", file=sys.stderr)
        return 2
    return 2


async def _shell(demo: bool, user: str, channel: str) -> int:
    who = Who(user_id=user, user_name=user, team_id="T0LOCAL", channel_id=channel)
    if demo:
        from bot.demo import demo_runtime

        async with demo_runtime() as (runtime, _):
            await repl(ShellSession(runtime.service, who))
        return 0
    runtime = build_runtime(load_settings())
    try:
        await repl(ShellSession(runtime.service, who))
    finally:
        await runtime.close()
    return 0


def _explain(args: argparse.Namespace) -> int:
    text = " ".join(a for a in args.text if a != "--").strip()
    command, _, rest = text.partition(" ")
    request = parse(command, rest)
    if isinstance(request, UsageError):
        print(blocks.to_text(blocks.usage_error(request)))
        return 2
    settings = load_settings()
    runtime = build_runtime(settings)
    try:
        caller = Caller(args.user, args.channel, frozenset(args.usergroup))
        cluster = args.cluster or getattr(request, "cluster", None) or runtime.clusters.default
        if isinstance(request, StopRequest):
            exact = None if request.is_wildcard or request.is_all else list(request.ids)
            print(
                explain(
                    runtime.service.role_map(), caller, "stop", cluster, exact, request.options()
                )
            )
        else:
            print(explain(runtime.service.role_map(), caller, "status", cluster, None))
    finally:
        asyncio.run(runtime.close())
    return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _serve(settings: Settings) -> int:
    _, secret = require_slack(settings)
    runtime = build_runtime(settings)
    from bot.server import create_web_app
    from bot.slack_app import create_bolt_app

    bolt = create_bolt_app(runtime.service, client=runtime.slack, signing_secret=secret or "-")
    runner = web.AppRunner(create_web_app(runtime, bolt), shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.port).start()
    socket_handler = None
    if settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
        await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("serving in Socket Mode; operational endpoints on port %s", settings.port)
    else:
        log.info("serving HTTP on port %s", settings.port)
    await _wait_for_signal()
    log.info("shutting down: no new requests, letting running stops finish")
    if socket_handler is not None:
        await socket_handler.close_async()  # type: ignore[no-untyped-call]
    await runner.cleanup()
    await runtime.close()
    return 0
