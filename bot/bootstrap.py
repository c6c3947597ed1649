"""Wiring: build the service, its store, clusters, audit log and Slack client from settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.audit import (
    AuditLog,
    AuditSink,
    FallbackFileSink,
    JsonLinesSink,
    Spool,
    remote_sinks,
    sink_problems,
)
from bot.adapters.elasticsearch import Clusters, ElasticError
from bot.adapters.metrics import Metrics, MetricsSink
from bot.adapters.store_sqlite import ActionStore, open_store
from bot.adapters.usergroups import (
    Fetch,
    GroupCache,
    RateLimited,
    RedisGroupCache,
    UsergroupResolver,
    members_in,
)
from bot.app.service import Service
from bot.core.config import AppConfig
from bot.core.policy import PolicyError, RoleMap, load_role_map
from bot.settings import (
    Settings,
    SettingsError,
    default_cluster_name,
    load_app_config,
    resolve_clusters,
)
from bot.slack.notices import channel_poster

log = logging.getLogger(__name__)

SLACK_API_DEFAULT = "https://slack.com/api/"
USERGROUP_TTL = 300.0  # seconds a user group's members are trusted before asking Slack again


class RoleMapSource:
    """The role map (and the `freeze` switch) from the config file, re-read when it changes.

    A changed file that no longer validates is refused (logged) and the last
    good role map stays in force, so a typo cannot open or close everything. While the
    server runs, `watch` re-reads the file in a worker thread, off the event loop; without
    it (the shell, tests), a call re-reads a changed file itself. The file's size, depth
    and alias expansion are bounded (bot.core.yamlfile), so a read costs milliseconds.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.mtime: float | None = None
        self.refused: str | None = None  # why the file on disk is not the one in force
        self.watching = False
        # One tuple, swapped whole: the watcher thread replaces it while the loop reads it.
        self._current: tuple[RoleMap, bool] = (RoleMap(), False)
        if path is not None:
            self._current = (load_role_map(path), _frozen_in(path))
            self.mtime = path.stat().st_mtime

    def frozen(self) -> bool:
        """`freeze: true` in the config file (as of its last good read)."""
        self()
        return self._current[1]

    def __call__(self) -> RoleMap:
        """The current role map."""
        if not self.watching:
            self.reload_if_changed()
        return self._current[0]

    def reload_if_changed(self) -> bool:
        """Re-read the file if its mtime changed; True if a new role map is in force."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self.mtime:
            return False
        try:  # both parts read before either is used: a bad file changes nothing
            self._current = (load_role_map(self.path), _frozen_in(self.path))
        except (PolicyError, SettingsError) as exc:
            self.refused = str(exc)
            log.error("config reload refused; keeping the previous role map: %s", exc)
            return False
        else:
            self.refused = None
            log.info("config reloaded from %s", self.path)
            return True
        finally:
            self.mtime = mtime  # last: who waits for a reload sees its outcome with it

    async def watch(self, interval: float = 1.0) -> None:
        """Re-read the file when it changes, in a worker thread, until cancelled."""
        self.watching = True
        try:
            while True:
                try:
                    await asyncio.to_thread(self.reload_if_changed)
                except Exception:  # the watcher must outlive one bad read
                    log.exception("config reload failed; keeping the previous role map")
                await asyncio.sleep(interval)
        finally:
            self.watching = False


def _frozen_in(path: Path) -> bool:
    return load_app_config(path).freeze


def slack_client(settings: Settings) -> AsyncWebClient:
    """The Web API client, retrying 429 (Retry-After) and connection errors."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url or SLACK_API_DEFAULT,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
        ],
    )


def slack_usergroup_fetch(client: AsyncWebClient) -> Fetch:
    """`usergroups.users.list` as the resolver's fetch function.

    Its own client never sleeps on a 429: the resolver fails closed at once and waits out the
    Retry-After itself, so a rate-limited group never holds a request.
    """
    lookups = AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)],
    )

    async def fetch(group: str) -> frozenset[str]:
        try:
            resp = await lookups.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            if exc.response.status_code == 429:
                raise RateLimited(_retry_after(exc.response.headers)) from None
            raise
        return members_in(resp.data if isinstance(resp.data, dict) else {})

    return fetch


def _retry_after(headers: Mapping[str, Any]) -> float:
    """Slack's Retry-After (seconds), however the header is cased; 1 when absent or odd."""
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) and value else value
            try:
                return float(raw)
            except (TypeError, ValueError):
                return 1.0
    return 1.0


class InFlight:
    """Work still running after its Slack request was answered; shutdown waits for it.

    Bolt runs a listener as a background task and answers Slack at `ack()`, so an HTTP
    server that has drained its requests may still have stops running.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def add(self, task: asyncio.Task[Any]) -> None:
        """Track `task` until it is done."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def add_current(self) -> None:
        """Track the running task (called from inside the work itself)."""
        task = asyncio.current_task()
        if task is not None:
            self.add(task)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start `coro` as a tracked background task."""
        task = asyncio.create_task(coro)
        self.add(task)
        return task

    async def wait(self, timeout: float) -> bool:
        """Wait until nothing is in flight (work started meanwhile too); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True


@dataclass
class Runtime:
    """Everything a running bot holds."""

    settings: Settings
    config: AppConfig
    service: Service
    clusters: Clusters
    store: ActionStore
    slack: AsyncWebClient
    metrics: Metrics = field(default_factory=Metrics)
    inflight: InFlight = field(default_factory=InFlight)
    audit: AuditLog = field(default_factory=lambda: AuditLog([], time.time))
    role_maps: RoleMapSource | None = None
    _watcher: asyncio.Task[None] | None = None

    def watch_config(self) -> None:
        """Re-read the config file off the event loop from now on (inside the running loop)."""
        if self.role_maps is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self.role_maps.watch())

    def open_http(self) -> None:
        """Give the Slack client one HTTP session (inside the running loop) for every call.

        Without it slack_sdk opens a session and a connection per Web API call and per
        response_url message; Bolt's per-request clients and our webhooks share this one.
        """
        if self.slack.session is None or self.slack.session.closed:
            timeout = aiohttp.ClientTimeout(total=self.slack.timeout)
            self.slack.session = aiohttp.ClientSession(timeout=timeout)

    async def close(self) -> None:
        """Release connections and files."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.audit.close()  # its last flush may still need a cluster (or Slack)
        await self.clusters.close()
        await self.store.close()
        if self.slack.session is not None:
            await self.slack.session.close()


@dataclass
class Wiring:
    """The validated config, clusters and Slack client: everything but state (check-config)."""

    settings: Settings
    config: AppConfig
    role_map: RoleMapSource
    clusters: Clusters
    slack: AsyncWebClient
    remote_sinks: list[AuditSink]
    metrics: Metrics


def wire(settings: Settings) -> Wiring:
    """Validate settings and config, make the clients; opens no store and writes no file."""
    # The role map first: its loader names FILE:LINE for YAML and schema errors alike.
    role_map = RoleMapSource(settings.ml_chatops_config)
    config = load_app_config(settings.ml_chatops_config)
    clusters_cfg = resolve_clusters(settings, config)
    metrics = Metrics()
    clusters = Clusters.from_config(
        clusters_cfg, default_cluster_name(config, clusters_cfg), metrics
    )
    client = slack_client(settings)
    sinks = _remote_audit_sinks(config, clusters, client)
    return Wiring(settings, config, role_map, clusters, client, sinks, metrics)


def build_runtime(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    audit_sinks: list[AuditSink] | None = None,
) -> Runtime:
    """Validate everything and wire the service; SettingsError/PolicyError on bad config."""
    parts = wire(settings)
    config, clusters, client, metrics = parts.config, parts.clusters, parts.slack, parts.metrics
    try:
        store = open_store(settings.ml_chatops_state)
    except (ValueError, OSError, ImportError, sqlite3.Error) as exc:
        # Name the setting, not the URL: a redis URL may carry a password.
        raise SettingsError(
            f"invalid setting ML_CHATOPS_STATE: cannot open the store: {exc}"
        ) from None
    sinks: list[AuditSink] = (
        audit_sinks if audit_sinks is not None else [_file_sink(config, client)]
    )
    sinks += parts.remote_sinks
    audit = AuditLog([*sinks, MetricsSink(metrics)], clock)
    metrics.track_audit_backlog(audit.backlog)
    service = Service(
        store=store,
        clusters=clusters,
        role_map=parts.role_map,
        groups=UsergroupResolver(
            slack_usergroup_fetch(client), clock=clock, cache=_shared_group_cache(store)
        ),
        audit=audit,
        expire_after=config.expire_after_seconds,
        verify_within=config.verify_timeout_seconds,
        timezone=config.timezone,
        revert_max=float(config.revert_max_seconds),
        heads_up=float(config.heads_up_seconds),
        config_frozen=parts.role_map.frozen,
        clock=clock,
    )
    runtime = Runtime(
        settings,
        config,
        service,
        clusters,
        store,
        client,
        metrics,
        audit=audit,
        role_maps=parts.role_map,
    )
    metrics.track_inflight(lambda: len(runtime.inflight))
    return runtime


def _file_sink(config: AppConfig, client: AsyncWebClient) -> AuditSink:
    """The audit file (with its spool), or stdout; SettingsError if a sink cannot be written.

    The spool of the index and channel sinks is checked here too: `serve` refuses to start
    with an audit trail it already knows it cannot keep."""
    problems = sink_problems(config.audit)
    if problems:
        raise SettingsError("; ".join(problems))
    if not config.audit.file:
        return JsonLinesSink(None)
    spool = Spool(config.audit.spool, "file")
    return FallbackFileSink(config.audit.file, spool, notify=channel_poster(client))


def _remote_audit_sinks(
    config: AppConfig, clusters: Clusters, client: AsyncWebClient
) -> list[AuditSink]:
    es_client = None
    if config.audit.index:
        try:
            es_client = clusters.get(config.audit.cluster).client
        except ElasticError as exc:
            raise SettingsError(f"audit.cluster: {exc.message}") from None
    return remote_sinks(config.audit, es_client, channel_poster(client))


def _shared_group_cache(store: ActionStore) -> GroupCache | None:
    """Replicas on Redis share the user group cache; otherwise each process keeps its own."""
    if not type(store).__module__.endswith("store_redis"):
        return None  # and the optional redis package is not imported
    from bot.adapters.store_redis import RedisStore

    assert isinstance(store, RedisStore)
    return RedisGroupCache(store.client, USERGROUP_TTL, store.prefix)


def require_slack(settings: Settings) -> tuple[str, str]:
    """The bot token and signing secret, or a SettingsError naming what is missing."""
    if settings.slack_bot_token is None:
        raise SettingsError("missing setting SLACK_BOT_TOKEN: the bot token (xoxb-...)")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise SettingsError(
            "missing setting SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
        )
    secret = settings.slack_signing_secret
    return settings.slack_bot_token.get_secret_value(), secret.get_secret_value() if secret else ""
