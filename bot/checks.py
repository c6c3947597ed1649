"""`ml-chatops check-config`: validate, connect, check privileges and scopes, print a table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from elasticsearch import ApiError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.audit import describe_sinks, sink_problems
from bot.adapters.elasticsearch import ClusterGateway, Clusters, ElasticError, to_domain_error
from bot.adapters.elasticsearch.errors import _reason
from bot.adapters.elasticsearch.privileges import SECURITY_OFF
from bot.bootstrap import slack_client
from bot.core.config import AppConfig
from bot.core.policy import PolicyError, RoleMap, load_role_map
from bot.logs import redact
from bot.settings import (
    DEFAULT_CLUSTER,
    Settings,
    SettingsError,
    default_cluster_name,
    load_app_config,
    resolve_each,
)

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
# What Elasticsearch answers `_has_privileges` with when security is disabled (a 500).
SECURITY_OFF_ROW = (
    'security is off on this cluster (Elasticsearch: "Security must be explicitly '
    'enabled"): it lets anyone who reaches it do anything, so privileges were not checked; '
    "the bot works, but enable security before production"
)
CHECK_TIMEOUT = 15.0  # per cluster or Slack check, so an unanswering host cannot hang CI


@dataclass(frozen=True)
class Check:
    """One line of the table: PASS, FAIL, or WARN (passes, but worth reading)."""

    name: str
    ok: bool
    detail: str
    warn: bool = False

    @property
    def status(self) -> str:
        """PASS, WARN or FAIL."""
        if not self.ok:
            return "FAIL"
        return "WARN" if self.warn else "PASS"


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
    except ApiError as exc:
        if SECURITY_OFF in _reason(exc):
            checks.append(Check(f"privileges on {gateway.name}", True, SECURITY_OFF_ROW, warn=True))
        else:
            err = to_domain_error(exc, cluster=gateway.name, operation="check privileges")
            checks.append(Check(f"privileges on {gateway.name}", False, err.message))
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
    lines = [f"{c.status}  {c.name.ljust(width)}  {c.detail}" for c in checks]
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


def role_map_warnings(role_map: RoleMap, path: Path | None) -> list[Check]:
    """Warnings for a role map that denies everyone, or roles that nobody holds."""
    name = "role map"
    if path is None:
        return [
            Check(
                name,
                True,
                "no config file (ML_CHATOPS_CONFIG is not set): no roles and no bindings, "
                "so every command is denied",
                warn=True,
            )
        ]
    if not role_map.roles:
        return [Check(name, True, f"{path} defines no `roles`: every command is denied", warn=True)]
    if not role_map.bindings:
        return [
            Check(
                name,
                True,
                f"{path} has no `bindings`: nobody holds a role, so every command is denied "
                f"(bind {', '.join(sorted(role_map.roles))} to users, user groups or channels)",
                warn=True,
            )
        ]
    bound = {b.role for b in role_map.bindings}
    unbound = sorted(set(role_map.roles) - bound)
    if unbound:
        return [
            Check(
                name,
                True,
                f"role(s) {', '.join(unbound)} in {path} are bound to nobody (no `bindings` "
                "entry names them)",
                warn=True,
            )
        ]
    return []


def _config(settings: Settings) -> tuple[AppConfig, RoleMap, list[Check]]:
    """The config file's two loaders; every problem a FAIL row (each line once)."""
    path = settings.ml_chatops_config
    config, role_map = AppConfig(), RoleMap()
    lines: list[str] = []
    if path is not None and not Path(path).is_file():
        what = "does not exist" if not Path(path).exists() else "is not a file"
        lines.append(f"{path} {what} (the config file: ML_CHATOPS_CONFIG or --config)")
    elif path is not None:
        try:
            config = load_app_config(path)
        except SettingsError as exc:
            lines += str(exc).splitlines()
        try:
            role_map = load_role_map(path)
        except PolicyError as exc:
            lines += [line for line in str(exc).splitlines() if line not in lines]
    if lines:
        return config, role_map, [Check("config", False, line) for line in lines]
    checks = [Check("config", True, str(path or "no file (defaults)"))]
    return config, role_map, checks + role_map_warnings(role_map, path)


def _gateways(
    settings: Settings, config: AppConfig
) -> tuple[dict[str, ClusterGateway], list[Check]]:
    """A gateway per cluster that can be built; a FAIL row naming the setting for the rest."""
    source = str(settings.ml_chatops_config or "the config file")
    resolved, problems = resolve_each(settings, config, source)
    checks = [Check("clusters", False, line) for line in problems]
    gateways: dict[str, ClusterGateway] = {}
    for name, cluster in resolved.items():
        try:
            gateways[name] = Clusters.from_config({name: cluster}, name).gateways[name]
        except ValueError as exc:  # the client refused its options
            checks.append(Check(f"cluster {name}", False, f"cannot build a client: {exc}"))
    if not resolved and not problems:
        checks.append(
            Check(
                "clusters",
                False,
                "no Elasticsearch cluster: set ELASTICSEARCH_URL (or ELASTICSEARCH_CLOUD_ID) "
                "or list clusters in the ML_CHATOPS_CONFIG file",
            )
        )
    elif resolved:
        try:
            default_cluster_name(config, set(resolved) | _named_clusters(settings, config))
        except SettingsError as exc:
            checks.append(Check("default cluster", False, str(exc)))
    return gateways, checks


def _named_clusters(settings: Settings, config: AppConfig) -> set[str]:
    names = set(config.clusters)
    if settings.elasticsearch_url or settings.elasticsearch_cloud_id:
        names.add(DEFAULT_CLUSTER)
    return names


def _audit(config: AppConfig, clusters: set[str]) -> list[Check]:
    """Whether every configured audit sink can be written (before the first event)."""
    checks: list[Check] = []
    for problem in sink_problems(config.audit):
        checks.append(Check("audit", False, problem))
    if config.audit.index and config.audit.cluster and config.audit.cluster not in clusters:
        known = ", ".join(sorted(clusters)) or "none"
        checks.append(
            Check(
                "audit",
                False,
                f"audit.cluster: unknown cluster {config.audit.cluster!r} (known: {known})",
            )
        )
    if not checks:
        checks.append(Check("audit", True, describe_sinks(config.audit)))
    return checks


@contextlib.contextmanager
def _quiet_transport() -> Iterator[None]:
    """No retry warnings with stack traces around the table: each failure is one row."""
    logger = logging.getLogger("elastic_transport")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


async def check_config(settings: Settings, settings_problems: Sequence[str] = ()) -> int:
    """Run every check, print the table, return 0 if all pass; creates and writes no state.

    Every problem is a row; one broken part never hides the rows of the others."""
    checks = [Check("settings", False, line) for line in settings_problems] or [
        Check("settings", True, "environment valid")
    ]
    config, role_map, config_checks = _config(settings)
    grants = [g for role in role_map.roles.values() for g in role]
    extra = SCALE_ACTIONS if any("scale" in g.action for g in grants) else ()
    checks += config_checks
    gateways, cluster_checks = _gateways(settings, config)
    checks += cluster_checks
    checks += _audit(config, _named_clusters(settings, config))
    client = slack_client(settings)
    try:
        with _quiet_transport():
            results = await asyncio.gather(
                _bounded("state", _state(settings.ml_chatops_state)),
                *(_bounded(f"cluster {n}", _cluster(g, extra)) for n, g in gateways.items()),
                _bounded("slack", _slack(settings, client, incidents=config.incidents is not None)),
            )
        checks += [c for group in results for c in group]
    finally:
        await asyncio.gather(*(g.close() for g in gateways.values()))
    print(redact(render(checks)))
    return 0 if all(c.ok for c in checks) else 1
