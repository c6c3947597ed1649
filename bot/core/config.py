"""The config file's schema (clusters, audit, incidents, kill switch) as pydantic models.

Pure data: loading the YAML and reading secrets from the environment is `bot.settings`'s job.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from bot.core.incidents import IncidentConfig
from bot.core.timing import known_zone

# The client's own default is 10, which caps one process near 12 flows/s at 200 ms per call
# (bench/); more lets bursts through without queueing every call behind ten.
DEFAULT_CONNECTIONS = 32


class ClusterConfig(BaseModel):
    """One Elasticsearch cluster; secrets are named by environment variable."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    cloud_id: str | None = None
    api_key_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = Field(default=30.0, gt=0)
    connections_per_node: int = Field(default=DEFAULT_CONNECTIONS, ge=1, le=1000)
    run_as: bool = False
    run_as_users: dict[str, str] = {}

    @model_validator(mode="after")
    def _one_address(self) -> ClusterConfig:
        if bool(self.url) == bool(self.cloud_id):
            raise ValueError("give exactly one of `url` or `cloud_id`")
        return self


class ResolvedCluster(BaseModel):
    """A cluster with its secrets read from the environment."""

    name: str
    url: str | None = None
    cloud_id: str | None = None
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    request_timeout: float = 30.0
    connections_per_node: int = DEFAULT_CONNECTIONS
    run_as: bool = False
    run_as_users: dict[str, str] = {}


class AuditConfig(BaseModel):
    """Where audit events go."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None  # JSON lines; None means stdout
    index: str | None = None  # an Elasticsearch index or data stream name
    data_stream: bool = False  # create `index` as a data stream (with its index template)
    cluster: str | None = None  # which configured cluster holds `index` (default: the default)
    channel: str | None = None  # Slack channel id for one-line summaries of mutating actions
    spool: str = "ml-chatops-spool"  # directory of undelivered events (index and channel)


class AppConfig(BaseModel):
    """The YAML config file: every key it may hold, anywhere (a typo is an error)."""

    model_config = ConfigDict(extra="forbid")

    clusters: dict[str, ClusterConfig] = {}
    default_cluster: str | None = None
    expire_after_seconds: int = Field(default=600, ge=10, le=86_400)
    verify_timeout_seconds: float = Field(default=30.0, ge=0, le=600)
    # Timed changes (`--for` / `--until`): the zone `--until HH:MM` is read in, the longest
    # window, and how long before a revert the heads-up comes.
    timezone: str = "UTC"
    revert_max_seconds: int = Field(default=7 * 86_400, ge=60, le=90 * 86_400)
    heads_up_seconds: int = Field(default=600, ge=0, le=86_400)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        """An IANA time zone name (`Europe/Berlin`) or UTC: `--until HH:MM` is read in it."""
        if name.upper() != "UTC" and not known_zone(name):
            raise ValueError(f"unknown time zone {name!r}; use an IANA name like Europe/Berlin")
        return name

    audit: AuditConfig = AuditConfig()
    freeze: bool = False
    incidents: IncidentConfig | None = None
    # The role map's sections: bot.core.policy validates them (with their own errors).
    roles: Any = None
    bindings: Any = None
    approvals: Any = None


TOP_LEVEL_KEYS: tuple[str, ...] = tuple(AppConfig.model_fields)
