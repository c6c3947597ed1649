"""The `ml-chatops` command: serve, shell, check-config, explain, manifest."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

# Only the standard library at import time: `--help` and usage errors are answered by
# argparse before anything heavy (pydantic, Bolt, Elasticsearch, aiohttp) is imported.
# tests/test_cli_imports.py pins it.
if TYPE_CHECKING:
    from bot.settings import Settings

EXIT_FAILED = 1  # check-config found a problem; explain: denied
EXIT_USAGE = 2  # bad arguments, settings or config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-chatops",
        description="Stop Elasticsearch ML deployments from Slack, safely. "
        "Settings come from the environment (and .env); see README, Configuration.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "serve",
        help="run the bot (Socket Mode when SLACK_APP_TOKEN is set, HTTP on PORT otherwise)",
        description="Run the bot: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT "
        "with POST /slack/events. /healthz, /readyz and /metrics are served on PORT in both "
        "modes. SIGTERM stops taking requests and lets running stops finish (up to 60 s).",
    )
    shell = sub.add_parser(
        "shell",
        help="type slash commands locally and press buttons by label",
        description="The local text adapter on the same core as the Slack bot. With --demo "
        "it starts an in-process demo cluster and role map and needs no credentials.",
    )
    shell.add_argument("--demo", action="store_true", help="start an in-process demo cluster")
    shell.add_argument("--user", default="U0ADMIN1", help="Slack user id to act as")
    shell.add_argument("--channel", default="C0DEMO", help="Slack channel id to act in")
    check = sub.add_parser(
        "check-config",
        help="validate settings and config, reach every cluster and Slack",
        description="Validate the environment and config file, connect to each cluster, "
        "check the bot's privileges there, the audit sinks, and Slack's auth.test and "
        "scopes; print a PASS/WARN/FAIL table with every problem, one a row. Exit 0 when "
        "nothing fails (warnings pass), 1 otherwise.",
    )
    check.add_argument(
        "--config", type=Path, metavar="FILE", help="the config file (default: ML_CHATOPS_CONFIG)"
    )
    man = sub.add_parser(
        "manifest",
        help="print the Slack app manifest (Socket Mode, or HTTP mode with --http-url)",
        description="Print the Slack app manifest to paste at api.slack.com/apps. Without "
        "--http-url: Socket Mode (manifest.yml). With it: HTTP mode, every request URL "
        "set to URL/slack/events.",
    )
    man.add_argument("--http-url", type=_http_url, metavar="URL", help="https://host")
    man.add_argument("--json", action="store_true", help="JSON instead of YAML")
    man.add_argument(
        "--no-workflow-steps",
        action="store_true",
        help="leave out the Workflow Builder step (and org_deploy_enabled), for workspaces "
        "that cannot use them",
    )
    exp = sub.add_parser(
        "explain",
        help="print the policy decision for a command, without running it",
        description="Print every role binding considered, why it matched or not, and the "
        "decision, without calling Elasticsearch or Slack. Exit 0 if allowed, 1 if denied. "
        'Example: ml-chatops explain --user U0123 --channel C0456 -- "/ml-stop ner-*"',
    )
    exp.add_argument("--user", required=True, help="Slack user id")
    exp.add_argument("--usergroup", action="append", default=[], help="user group id (repeat)")
    exp.add_argument("--channel", default="", help="Slack channel id")
    exp.add_argument("--cluster", default=None, help="cluster name (default: the default)")
    exp.add_argument(
        "--config", type=Path, metavar="FILE", help="the config file (default: ML_CHATOPS_CONFIG)"
    )
    exp.add_argument("text", nargs=argparse.REMAINDER, help='the command, e.g. "/ml-stop x"')
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ml-chatops")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _http_url(value: str) -> str:
    from bot.manifest import http_url

    return http_url(value)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    from bot.core.policy import PolicyError
    from bot.logs import redact, setup_logging
    from bot.settings import SettingsError, load_settings

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
            from bot.settings import load_settings_leniently

            overrides = {"ml_chatops_config": args.config} if args.config else {}
            settings, problems = load_settings_leniently(**overrides)
            return asyncio.run(check_config(_with_secrets(settings), problems))
        if args.command == "manifest":
            from bot.manifest import print_manifest

            return print_manifest(
                args.http_url, as_json=args.json, workflow_steps=not args.no_workflow_steps
            )
        return _explain(args)
    except (SettingsError, PolicyError) as exc:
        # One line naming the setting (a role map may list several problems, one a line).
        print(redact(f"ml-chatops: {exc}"), file=sys.stderr)
        return EXIT_USAGE


def _with_secrets(settings: Settings) -> Settings:
    """Register every configured secret with the log redactor; return the settings."""
    from bot.logs import add_secrets
    from bot.settings import SettingsError, load_app_config

    values: list[str | None] = [
        secret.get_secret_value()
        for secret in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.elasticsearch_api_key,
            settings.elasticsearch_password,
        )
        if secret is not None
    ]
    values.append(urlsplit(settings.ml_chatops_state).password)  # redis://:PASSWORD@host
    # Cluster secrets live in variables the config file names (`*_env`).
    try:
        config = load_app_config(settings.ml_chatops_config)
    except SettingsError:
        config = None  # reported properly by whoever loads it next
    if config is not None:
        for cluster in config.clusters.values():
            values += [os.environ.get(v or "") for v in (cluster.api_key_env, cluster.password_env)]
    add_secrets(values)
    return settings


async def _serve(settings: Settings) -> int:
    from bot.bootstrap import build_runtime, require_slack
    from bot.server import serve
    from bot.slack.app import create_bolt_app

    _, secret = require_slack(_with_secrets(settings))
    # Bolt reads SLACK_BOT_TOKEN itself when it is in the environment, and then warns that
    # the `client` given to it wins (slack_bolt AsyncApp.__init__). The settings hold it now.
    os.environ.pop("SLACK_BOT_TOKEN", None)
    runtime = build_runtime(settings)
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
    # In Socket Mode Bolt verifies nothing over HTTP; it still wants a non-empty secret.
    bolt = create_bolt_app(
        runtime.service,
        client=runtime.slack,
        signing_secret=secret or "-",
        incidents=runtime.config.incidents,
        metrics=runtime.metrics,
    )
    return await serve(runtime, bolt, port=settings.port, app_token=app_token)


async def _shell(demo: bool, user: str, channel: str) -> int:
    from bot.bootstrap import build_runtime
    from bot.core.outcomes import Who
    from bot.settings import load_settings
    from bot.shell.session import ShellClock, ShellSession, repl

    who = Who(user_id=user, user_name=user, team_id="T0LOCAL", channel_id=channel)
    if demo:
        from bot.demo import demo_runtime

        clock = ShellClock()  # `:advance 30m` moves it: timed changes fall due in the demo
        async with demo_runtime(clock) as (runtime, _):
            await repl(ShellSession(runtime.service, who, clock=clock))
        return 0
    runtime = build_runtime(_with_secrets(load_settings()))
    try:
        await repl(ShellSession(runtime.service, who))
    finally:
        await runtime.close()
    return 0


def _explain(args: argparse.Namespace) -> int:
    from bot.app.dispatch import gate_of
    from bot.core.commands import HelpRequest, UsageError, parse
    from bot.core.policy import Caller, RoleMap, authorize, explain, load_role_map
    from bot.settings import load_settings_leniently
    from bot.slack import blocks

    text = " ".join(a for a in args.text if a != "--").strip()
    command, _, rest = text.partition(" ")
    request = parse(command, rest)
    if isinstance(request, HelpRequest):
        print(plain(blocks.to_text(blocks.help_message(request.command))))
        return 0
    if isinstance(request, UsageError):
        print(plain(blocks.to_text(blocks.usage_error(request))))
        return EXIT_USAGE
    # Only the config file is read: no cluster, Slack or state setting is needed or checked.
    overrides = {"ml_chatops_config": args.config} if args.config else {}
    settings, _ = load_settings_leniently(**overrides)
    path = settings.ml_chatops_config
    role_map = load_role_map(path) if path is not None else RoleMap()
    cluster = args.cluster or getattr(request, "cluster", None) or _default_cluster(settings)
    caller = Caller(args.user, args.channel, frozenset(args.usergroup))
    gate = gate_of(request)  # the same gate the dispatch table applies
    assert gate is not None  # help and usage errors returned above
    action, options = gate.action, gate.options
    deployments = list(gate.deployments) if gate.deployments is not None else None
    patterns = tuple(getattr(request, "ids", ())) if deployments is None else ()
    numbers = gate.allocations  # a scale's numbers, checked against the grants' bounds
    print(
        explain(
            role_map,
            caller,
            action,
            cluster,
            deployments,
            options,
            patterns=patterns,
            allocations=numbers,
        )
    )
    decision = authorize(
        role_map, caller, action, cluster, deployments, options, allocations=numbers
    )
    return 0 if decision.allowed else EXIT_FAILED


_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_`])_(?=\S)([^_\n`]+?)(?<=\S)_(?![\w_])")


def plain(text: str) -> str:
    """Slack's *bold* and _italic_ marks dropped, for a terminal."""
    return _ITALIC.sub(r"\1", _EMPHASIS.sub(r"\1", text))


def _default_cluster(settings: Settings) -> str:
    """The default cluster's name from the cluster names alone: explain needs no secrets.

    With no cluster named anywhere, the cluster ELASTICSEARCH_URL would define: `default`."""
    from bot.settings import DEFAULT_CLUSTER, default_cluster_name, load_app_config

    config = load_app_config(settings.ml_chatops_config)
    names = set(config.clusters)
    if settings.elasticsearch_url or settings.elasticsearch_cloud_id or not names:
        names.add(DEFAULT_CLUSTER)
    return default_cluster_name(config, names)
