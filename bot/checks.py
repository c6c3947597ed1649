"""`ml-chatops check-config`: validate, connect, check privileges and scopes, print a table."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.elasticsearch import ClusterGateway, ElasticError, to_domain_error
from bot.bootstrap import wire
from bot.core.policy import PolicyError
from bot.logs import redact
from bot.settings import Settings, SettingsError

# Stop and start by action name: `manage_inference` grants them too, so asking for
# `manage_ml` would give false negatives. Reads by privilege name (implied by manage_ml);
# read_pipeline because a stop first finds the ingest pipelines that use the deployment;
# `GET /` (cluster:monitor/main, in `monitor`) because /readyz and this check ping with it;
# monitor_inference and view_index_metadata because a stop preview lists the inference
# endpoints and semantic_text fields it breaks (without them it says "unknown").
CLUSTER_ACTIONS = (
    "cluster:admin/xpack/ml/trained_models/deployment/stop",
    "cluster:admin/xpack/ml/trained_models/deployment/start",
    "monitor_ml",
    "read_pipeline",
    "cluster:monitor/main",
    "monitor_inference",
)
INDEX_PRIVILEGES = ("view_index_metadata",)  # on every index: GET _mapping
# Asked only when a role grants `scale`: the trained-model update (manage_ml, not
# manage_inference); a deployment an inference endpoint created also needs manage_inference.
SCALE_ACTIONS = ("cluster:admin/xpack/ml/trained_models/deployment/update",)
# The bot scopes the code needs; manifest.yml asks for exactly these (tests/test_manifest.py).
# commands: the slash commands; chat:write: chat.postMessage and chat.update;
# usergroups:read: usergroups.users.list, for role bindings on user groups.
REQUIRED_SCOPES = frozenset({"commands", "chat:write", "usergroups:read"})
# conversations.info, read only when `incidents:` is configured (channel name or topic).
INCIDENT_SCOPES = frozenset({"channels:read", "groups:read"})
CHECK_TIMEOUT = 15.0  # per cluster or Slack check, so an unanswering host cannot hang CI


@dataclass(frozen=True)
class Check:
    """One line of the table."""

    name: str
    ok: bool
    detail: str


async def _cluster(gateway: ClusterGateway, extra: tuple[str, ...] = ()) -> list[Check]:
    try:
        checks = [Check(f"cluster {gateway.name}", True, f"Elasticsearch {await gateway.ping()}")]
    except ElasticError as exc:
        checks = [Check(f"cluster {gateway.name}", False, exc.message)]
        if exc.kind != "forbidden":
            return checks  # unreachable or bad credentials: nothing more to ask it
        # Forbidden: the credentials work, so list every privilege the role lacks.
    try:
        actions = (*CLUSTER_ACTIONS, *extra)
        resp = await gateway.client.security.has_privileges(
            cluster=list(actions),
            index=[{"names": ["*"], "privileges": list(INDEX_PRIVILEGES)}],
        )
        granted = resp.body.get("cluster", {})
        on_all = resp.body.get("index", {}).get("*", {})
        missing = [a for a in actions if not granted.get(a)]
        missing += [f"{p} on indices *" for p in INDEX_PRIVILEGES if not on_all.get(p)]
        detail = "all granted" if not missing else "missing: " + ", ".join(missing)
        checks.append(Check(f"privileges on {gateway.name}", not missing, detail))
    except Exception as exc:
        err = to_domain_error(exc, cluster=gateway.name, operation="check privileges")
        checks.append(Check(f"privileges on {gateway.name}", False, err.message))
    return checks


def _slack_error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error"))
    return f"cannot reach the Slack API ({exc})"


async def _slack(
    settings: Settings, client: AsyncWebClient, *, incidents: bool = False
) -> list[Check]:
    if settings.slack_bot_token is None:
        return [Check("slack auth.test", False, "SLACK_BOT_TOKEN is not set")]
    try:
        resp = await client.auth_test()
    except (SlackApiError, OSError) as exc:
        return [Check("slack auth.test", False, _slack_error(exc))]
    scopes = {s.strip() for s in (resp.headers.get("x-oauth-scopes") or "").split(",") if s}
    missing = (REQUIRED_SCOPES | (INCIDENT_SCOPES if incidents else frozenset())) - scopes
    return [
        Check("slack auth.test", True, f"team {resp.get('team')} as {resp.get('user')}"),
        Check(
            "slack scopes",
            not missing,
            "ok" if not missing else "missing: " + ", ".join(sorted(missing)),
        ),
        await _slack_mode(settings, client),
    ]


async def _slack_mode(settings: Settings, client: AsyncWebClient) -> Check:
    if settings.slack_app_token is not None:
        # Asking for a WebSocket URL proves the app token; the URL is left unused.
        try:
            await client.apps_connections_open(
                app_token=settings.slack_app_token.get_secret_value()
            )
        except (SlackApiError, OSError) as exc:
            return Check("slack socket mode", False, "SLACK_APP_TOKEN: " + _slack_error(exc))
        return Check("slack socket mode", True, "app token accepted")
    if settings.slack_signing_secret is None:
        return Check(
            "slack mode",
            False,
            "set SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)",
        )
    return Check("slack http mode", True, "SLACK_SIGNING_SECRET is set")


async def _bounded(name: str, work: Awaitable[list[Check]]) -> list[Check]:
    try:
        return await asyncio.wait_for(work, CHECK_TIMEOUT)
    except TimeoutError:
        return [Check(name, False, f"no answer within {CHECK_TIMEOUT:g} s")]


def render(checks: list[Check]) -> str:
    """A pass/fail table."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'PASS' if c.ok else 'FAIL'}  {c.name.ljust(width)}  {c.detail}" for c in checks]
    return "\n".join(lines)


SQLITE_MAGIC = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def sqlite_state(url: str) -> Check:
    """Whether the bot could open this SQLite store, judged without creating or opening it."""
    path = Path(url.removeprefix("sqlite:///"))
    name = "state (sqlite)"
    if str(path) == ":memory:":
        return Check(name, True, "in memory: actions are lost when the bot stops")
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            return Check(name, False, f"{path}: not readable and writable by this user")
        with path.open("rb") as fh:
            magic = fh.read(len(SQLITE_MAGIC))
        if magic and magic != SQLITE_MAGIC:  # an empty file is one sqlite can use
            return Check(name, False, f"{path}: exists but is not an SQLite database")
        return Check(name, True, f"{path} exists")
    folder = path.parent
    if not folder.is_dir():
        return Check(name, False, f"{path}: directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check(name, False, f"{path}: directory {folder} is not writable")
    return Check(name, True, f"{path} will be created when the bot starts")


async def redis_state(url: str) -> Check:
    """PING the Redis store; nothing is written."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        # The message names host and port at most; the URL (and its password) is not repeated.
        return Check("state (redis)", False, f"PING failed: {exc}")
    finally:
        await client.aclose()
    return Check("state (redis)", True, "PING answered")


async def _state(url: str) -> list[Check]:
    if url.startswith("sqlite:///"):
        return [sqlite_state(url)]
    return [await redis_state(url)]


async def check_config(settings: Settings) -> int:
    """Run every check, print the table, return 0 if all pass; creates and writes no state."""
    checks = [Check("settings", True, "environment valid")]
    try:
        parts = wire(settings)
    except (SettingsError, PolicyError) as exc:
        checks += [Check("config", False, line) for line in str(exc).splitlines()]
        print(redact(render(checks)))
        return 1
    checks.append(Check("config", True, str(settings.ml_chatops_config or "no file (defaults)")))
    grants = [g for role in parts.role_map().roles.values() for g in role]
    extra = SCALE_ACTIONS if any("scale" in g.action for g in grants) else ()
    try:
        results = await asyncio.gather(
            _bounded("state", _state(settings.ml_chatops_state)),
            *(
                _bounded(f"cluster {n}", _cluster(g, extra))
                for n, g in parts.clusters.gateways.items()
            ),
            _bounded(
                "slack",
                _slack(settings, parts.slack, incidents=parts.config.incidents is not None),
            ),
        )
        checks += [c for group in results for c in group]
    finally:
        await parts.clusters.close()
    print(redact(render(checks)))
    return 0 if all(c.ok for c in checks) else 1
