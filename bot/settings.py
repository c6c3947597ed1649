"""Settings: environment variables (and `.env`) plus the YAML config file.

Secrets only ever come from the environment; the config file names the
environment variable that holds each cluster's key (`api_key_env`).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core import yamlfile
from bot.core.config import (
    DEFAULT_CONNECTIONS,
    AppConfig,
    ResolvedCluster,
)

DEFAULT_CLUSTER = "default"


class SettingsError(Exception):
    """A setting is missing or invalid; one line a person can act on per problem."""


class Settings(BaseSettings):
    """Environment variables of the public contract (README, "Configuration")."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str | None = None

    elasticsearch_url: str | None = None
    elasticsearch_cloud_id: str | None = None
    elasticsearch_api_key: SecretStr | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: SecretStr | None = None
    elasticsearch_ca_certs: str | None = None
    elasticsearch_request_timeout: float = Field(default=30.0, gt=0)
    elasticsearch_connections: int = Field(default=DEFAULT_CONNECTIONS, ge=1, le=1000)

    ml_chatops_config: Path | None = None
    ml_chatops_state: str = "sqlite:///ml-chatops.db"
    port: int = Field(default=3000, ge=1, le=65535)

    @field_validator("slack_api_url")
    @classmethod
    def _api_url_ends_with_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("ml_chatops_state")
    @classmethod
    def _state_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "redis://", "rediss://")):
            raise ValueError("must be sqlite:///path.db or redis://host:port/0")
        return value


StateKind = Literal["sqlite", "redis"]


def _first_error_line(exc: ValidationError, names: dict[str, str]) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    label = names.get(field, field)
    return f"invalid setting {label}: {err['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment (and `.env`); raise SettingsError with one clear line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        names = {name: name.upper() for name in Settings.model_fields}
        raise SettingsError(_first_error_line(exc, names)) from None


def load_settings_leniently(**overrides: Any) -> tuple[Settings, list[str]]:
    """Settings with every invalid variable left at its default, and one line per problem.

    For `check-config`, which reports every problem and checks what it still can."""
    problems: list[str] = []
    values = dict(overrides)
    for _ in range(len(Settings.model_fields) + 1):
        try:
            return Settings(**values), problems
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                if field not in Settings.model_fields or field in values:
                    raise SettingsError(_first_error_line(exc, {})) from None
                problems.append(f"invalid setting {field.upper()}: {err['msg']}")
                values[field] = Settings.model_fields[field].default
    raise SettingsError("; ".join(problems))  # pragma: no cover - each round fixes a field


def load_app_config(path: Path | None) -> AppConfig:
    """Read the config file (everything but the role map's contents); no file means defaults.

    Errors are ``FILE:LINE: where: what``, one line each, as the role map's are."""
    if path is None:
        return AppConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"ML_CHATOPS_CONFIG: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text ({exc.reason})") from None
    try:
        raw, root = yamlfile.compose(text, str(path))
    except yamlfile.YamlFileError as exc:
        raise SettingsError(str(exc)) from None
    problems = yamlfile.duplicate_keys(root, ()) if root is not None else []
    config: AppConfig | None = None
    try:
        config = AppConfig.model_validate(raw)
    except ValidationError as exc:
        problems += yamlfile.problems_of(exc, root, AppConfig)
    if problems or config is None:
        raise SettingsError(yamlfile.render(str(path), problems))
    return config


def _secret_from_env(var: str | None, what: str) -> SecretStr | None:
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise SettingsError(f"cluster {what}: environment variable {var} is not set")
    return SecretStr(value)


def tls_problem(cluster: ResolvedCluster, key: str) -> str | None:
    """Why the client could not be built with this cluster's TLS settings (None: it can).

    The client raises a bare ValueError ("ca_certs parameter is not a path", "TLS options
    require scheme to be 'https'"); this names the setting instead."""
    if cluster.ca_certs:
        ca = Path(cluster.ca_certs)
        if not ca.exists():
            return f"{key}: the CA file {ca} does not exist"
        if not ca.is_file() or not os.access(ca, os.R_OK):
            return f"{key}: the CA file {ca} is not a readable file"
        if cluster.url and cluster.url.lower().startswith("http://"):
            return (
                f"{key}: a CA file is only used over https, but cluster {cluster.name}'s URL is "
                f"{cluster.url}; use https:// or drop the CA file"
            )
    return None


def resolve_each(
    settings: Settings, config: AppConfig, source: str = "the config file"
) -> tuple[dict[str, ResolvedCluster], list[str]]:
    """Every cluster that resolves, and one line per problem (each naming its setting)."""
    clusters: dict[str, ResolvedCluster] = {}
    problems: list[str] = []
    if settings.elasticsearch_url or settings.elasticsearch_cloud_id:
        if settings.elasticsearch_username and not settings.elasticsearch_password:
            problems.append(
                "invalid setting ELASTICSEARCH_PASSWORD: required with ELASTICSEARCH_USERNAME"
            )
        else:
            default = ResolvedCluster(
                name=DEFAULT_CLUSTER,
                url=settings.elasticsearch_url,
                cloud_id=settings.elasticsearch_cloud_id,
                api_key=settings.elasticsearch_api_key,
                username=settings.elasticsearch_username,
                password=settings.elasticsearch_password,
                ca_certs=settings.elasticsearch_ca_certs,
                request_timeout=settings.elasticsearch_request_timeout,
                connections_per_node=settings.elasticsearch_connections,
            )
            problem = tls_problem(default, "invalid setting ELASTICSEARCH_CA_CERTS")
            if problem:
                problems.append(problem)
            else:
                clusters[DEFAULT_CLUSTER] = default
    for name, cfg in config.clusters.items():
        try:
            cluster = ResolvedCluster(
                name=name,
                url=cfg.url,
                cloud_id=cfg.cloud_id,
                api_key=_secret_from_env(cfg.api_key_env, name),
                username=cfg.username,
                password=_secret_from_env(cfg.password_env, name),
                ca_certs=cfg.ca_certs,
                verify_certs=cfg.verify_certs,
                request_timeout=cfg.request_timeout,
                connections_per_node=cfg.connections_per_node,
                run_as=cfg.run_as,
                run_as_users=cfg.run_as_users,
            )
        except SettingsError as exc:
            problems.append(str(exc))
            continue
        problem = tls_problem(cluster, f"{source}: clusters.{name}.ca_certs")
        if problem:
            problems.append(problem)
        else:
            clusters[name] = cluster
    return clusters, problems


def resolve_clusters(settings: Settings, config: AppConfig) -> dict[str, ResolvedCluster]:
    """Merge the env-defined `default` cluster with the config file's clusters.

    SettingsError lists every problem, one a line."""
    source = str(settings.ml_chatops_config or "the config file")
    clusters, problems = resolve_each(settings, config, source)
    if problems:
        raise SettingsError("\n".join(problems))
    return clusters


def default_cluster_name(config: AppConfig, clusters: Collection[str]) -> str:
    """The cluster a command without `--cluster` targets."""
    if config.default_cluster:
        if config.default_cluster not in clusters:
            known = ", ".join(sorted(clusters)) or "none"
            raise SettingsError(
                f"default_cluster: unknown cluster {config.default_cluster!r} (known: {known})"
            )
        return config.default_cluster
    if DEFAULT_CLUSTER in clusters:
        return DEFAULT_CLUSTER
    if len(clusters) == 1:
        return next(iter(clusters))
    if not clusters:
        raise SettingsError(
            "no Elasticsearch cluster: set ELASTICSEARCH_URL (or ELASTICSEARCH_CLOUD_ID) "
            "or list clusters in the ML_CHATOPS_CONFIG file"
        )
    raise SettingsError("default_cluster: several clusters are configured; name the default")
