"""Wiring: build the service, its store, clusters, audit log and Slack client from settings."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions import Service
from bot.audit import AuditLog, AuditSink, JsonLinesSink
from bot.elastic import Clusters
from bot.policy import PolicyError, RoleMap, load_role_map
from bot.settings import (
    AppConfig,
    Settings,
    SettingsError,
    default_cluster_name,
    load_app_config,
    resolve_clusters,
)
from bot.store import ActionStore, open_store
from bot.usergroups import Fetch, UsergroupResolver

log = logging.getLogger(__name__)

SLACK_API_DEFAULT = "https://slack.com/api/"


class RoleMapSource:
    """The role map from the config file, re-read when the file changes.

    A changed file that no longer validates is refused (logged) and the last
    good role map stays in force, so a typo cannot open or close everything.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._mtime: float | None = None
        self._role_map = RoleMap()
        if path is not None:
            self._role_map = load_role_map(path)
            self._mtime = path.stat().st_mtime

    def __call__(self) -> RoleMap:
        """The current role map."""
        if self.path is None:
            return self._role_map
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return self._role_map
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._role_map = load_role_map(self.path)
            except PolicyError as exc:
                log.error("config reload refused; keeping the previous role map: %s", exc)
        return self._role_map


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
    """`usergroups.users.list` as the resolver's fetch function."""

    async def fetch(group: str) -> frozenset[str]:
        resp = await client.usergroups_users_list(usergroup=group)
        return frozenset(resp.get("users") or [])

    return fetch


@dataclass
class Runtime:
    """Everything a running bot holds."""

    settings: Settings
    config: AppConfig
    service: Service
    clusters: Clusters
    store: ActionStore
    slack: AsyncWebClient

    async def close(self) -> None:
        """Release connections and files."""
        await self.clusters.close()
        await self.store.close()


def build_runtime(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    audit_sinks: list[AuditSink] | None = None,
) -> Runtime:
    """Validate everything and wire the service; SettingsError/PolicyError on bad config."""
    config = load_app_config(settings.ml_chatops_config)
    clusters_cfg = resolve_clusters(settings, config)
    clusters = Clusters.from_config(clusters_cfg, default_cluster_name(config, clusters_cfg))
    role_map = RoleMapSource(settings.ml_chatops_config)
    client = slack_client(settings)
    store = open_store(settings.ml_chatops_state)
    sinks: list[AuditSink] = (
        audit_sinks if audit_sinks is not None else [JsonLinesSink(config.audit.file)]
    )
    service = Service(
        store=store,
        clusters=clusters,
        role_map=role_map,
        groups=UsergroupResolver(slack_usergroup_fetch(client), clock=clock),
        audit=AuditLog(sinks, clock),
        expire_after=config.expire_after_seconds,
        clock=clock,
    )
    return Runtime(settings, config, service, clusters, store, client)


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
