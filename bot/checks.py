"""`ml-chatops check-config`: validate, connect, check privileges and scopes, print a table."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import yaml
from slack_sdk.errors import SlackApiError

from bot.elastic import ClusterGateway, ElasticError, to_domain_error
from bot.policy import PolicyError
from bot.runtime import build_runtime
from bot.settings import Settings, SettingsError

# Stop and start by action name: `manage_inference` grants them too, so asking for
# `manage_ml` would give false negatives. Reads by privilege name (implied by manage_ml).
CLUSTER_ACTIONS = (
    "cluster:admin/xpack/ml/trained_models/deployment/stop",
    "cluster:admin/xpack/ml/trained_models/deployment/start",
    "monitor_ml",
    "read_pipeline",
)
MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"


@dataclass(frozen=True)
class Check:
    """One line of the table."""

    name: str
    ok: bool
    detail: str


def manifest_scopes(path: Path = MANIFEST) -> set[str]:
    """The bot scopes the Slack app manifest asks for."""
    if not path.exists():
        return {"commands", "chat:write", "usergroups:read"}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return set(data["oauth_config"]["scopes"]["bot"])


async def _cluster(gateway: ClusterGateway) -> list[Check]:
    try:
        version = await gateway.ping()
    except ElasticError as exc:
        return [Check(f"cluster {gateway.name}", False, exc.message)]
    checks = [Check(f"cluster {gateway.name}", True, f"Elasticsearch {version}")]
    try:
        resp = await gateway.client.security.has_privileges(cluster=list(CLUSTER_ACTIONS))
        granted = resp.body.get("cluster", {})
        missing = [a for a in CLUSTER_ACTIONS if not granted.get(a)]
        detail = "all granted" if not missing else "missing: " + ", ".join(missing)
        checks.append(Check(f"privileges on {gateway.name}", not missing, detail))
    except Exception as exc:
        err = to_domain_error(exc, cluster=gateway.name, operation="check privileges")
        checks.append(Check(f"privileges on {gateway.name}", False, err.message))
    return checks


async def _slack(settings: Settings, client: object) -> list[Check]:
    if settings.slack_bot_token is None:
        return [Check("slack", False, "SLACK_BOT_TOKEN is not set")]
    try:
        resp = await client.auth_test()  # type: ignore[attr-defined]
    except (SlackApiError, OSError) as exc:
        detail = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
        return [Check("slack auth.test", False, str(detail))]
    scopes = {s.strip() for s in (resp.headers.get("x-oauth-scopes") or "").split(",") if s}
    missing = manifest_scopes() - scopes
    return [
        Check("slack auth.test", True, f"team {resp.get('team')} as {resp.get('user')}"),
        Check(
            "slack scopes",
            not missing,
            "ok" if not missing else "missing: " + ", ".join(sorted(missing)),
        ),
    ]


def render(checks: list[Check]) -> str:
    """A pass/fail table."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'PASS' if c.ok else 'FAIL'}  {c.name.ljust(width)}  {c.detail}" for c in checks]
    return "\n".join(lines)


async def check_config(settings: Settings) -> int:
    """Run every check, print the table, return 0 if all pass."""
    checks = [Check("settings", True, "environment valid")]
    try:
        runtime = build_runtime(settings)
    except (SettingsError, PolicyError) as exc:
        checks.append(Check("config", False, str(exc)))
        print(render(checks))
        return 1
    checks.append(Check("config", True, str(settings.ml_chatops_config or "no file (defaults)")))
    try:
        results = await asyncio.gather(*(_cluster(g) for g in runtime.clusters.gateways.values()))
        checks += [c for group in results for c in group]
        checks += await _slack(settings, runtime.slack)
    finally:
        await runtime.close()
    print(render(checks))
    return 0 if all(c.ok for c in checks) else 1
