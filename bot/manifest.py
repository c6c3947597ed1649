"""The Slack app manifest, from one source: this module.

`ml-chatops manifest` prints it for Socket Mode (the checked-in `manifest.yml` is exactly
that output) and, with `--http-url https://host`, for HTTP mode: Socket Mode off and every
request URL (slash commands, interactivity, events) set to `https://host/slack/events`.
tests/test_manifest.py checks it against the code and against Slack's manifest schema.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any
from urllib.parse import urlsplit

import yaml

EVENTS_PATH = "/slack/events"  # Bolt serves commands, interactivity and events on one path

# Every bot scope, and why. bot/checks.py holds the same sets (REQUIRED_SCOPES, and
# INCIDENT_SCOPES, which `check-config` requires only when `incidents:` is configured).
SCOPES: dict[str, str] = {
    "commands": "the slash commands",
    "chat:write": "post results in the channel, update the bot's own messages",
    "usergroups:read": "usergroups.users.list, for role bindings on user groups",
    "channels:read": "conversations.info: an incident channel's name or topic (`incidents:`)",
    "groups:read": "the same for private channels (only with `incidents:`)",
}

_COMMANDS: list[dict[str, Any]] = [
    {
        "command": "/ml-stop",
        "description": "Stop an Elasticsearch ML deployment (preview, then confirm)",
        "usage_hint": "<deployment_id|pattern|a,b|_all> [--force] [--finish-pending-work] "
        "[--allow-no-match|--no-allow-no-match] [--cluster NAME] [--reason TEXT] "
        "[--for DURATION|--until TIME] | freeze [--for DURATION|--until TIME] | unfreeze",
        "should_escape": False,
    },
    {
        "command": "/ml-deployments",
        "description": "List ML deployments and their state (read-only)",
        "usage_hint": "[pattern] [--cluster NAME]",
        "should_escape": False,
    },
    {
        "command": "/ml-start",
        "description": "Start an Elasticsearch ML deployment (preview, then confirm)",
        "usage_hint": "<model_id> [--deployment-id ID] [--allocations N] [--threads N] "
        "[--priority normal|low] [--cluster NAME] [--reason TEXT]",
        "should_escape": False,
    },
    {
        "command": "/ml-audit",
        "description": "What the bot did in this channel or for an incident (read-only)",
        "usage_hint": "[--incident ID] [--since 2h] [--format text|markdown]",
        "should_escape": False,
    },
    {
        "command": "/ml-scale",
        "description": "Scale an Elasticsearch ML deployment (preview, then confirm)",
        "usage_hint": "<deployment_id|pattern> --allocations N | --adaptive on [--min N] "
        "[--max M] | --adaptive off [--cluster NAME] [--reason TEXT] "
        "[--for DURATION|--until TIME]",
        "should_escape": False,
    },
    {
        "command": "/ml-status",
        "description": "How an ML deployment is doing, and what to do (read-only)",
        "usage_hint": "[deployment_id] [--cluster NAME]",
        "should_escape": False,
    },
]


def _param(kind: str, title: str, **more: str) -> dict[str, str]:
    return {"type": kind, "title": title, **more}


# What both Workflow Builder steps take and give alike (same names, same texts).
_CLUSTER = _param(
    "string", "Cluster", description="The Elasticsearch cluster (default the configured one)"
)
_WHY_WHO_WHERE: dict[str, Any] = {
    "reason": _param(
        "string", "Reason", description="Why, for the audit log (defaults to the incident id)"
    ),
    "revert_after": _param(
        "string",
        "Revert after",
        description="Optional: undo it by itself after 30m, 2h or 1d (from 10s)",
    ),
    "revert_at": _param(
        "string",
        "Revert at",
        description="Optional: undo it by itself at HH:MM or an ISO 8601 time",
    ),
    "requested_by": _param(
        "slack#/types/user_id",
        "Requested by",
        hint='Map "Person who used this workflow"; the role map is checked for this user',
    ),
    "channel": _param(
        "slack#/types/channel_id",
        "Channel",
        description="Where the preview and the result are posted",
    ),
}
_RESULT_URL = _param(
    "string", "Result message", description="A link to the result message in the channel"
)


_STEP: dict[str, Any] = {
    "title": "Stop ML deployment",
    "description": "Preview and stop an Elasticsearch ML deployment, "
    "with confirmation in the channel",
    "input_parameters": {
        "properties": {
            "deployment_id": _param(
                "string",
                "Deployment",
                description="A deployment id, a comma list, a wildcard (elser-*) or _all",
            ),
            "cluster": _CLUSTER,
            "force": _param("boolean", "Force", description="Stop even if ingest pipelines use it"),
            "finish_pending_work": _param(
                "boolean",
                "Finish pending work",
                description="Let queued inference requests finish first",
            ),
            **_WHY_WHO_WHERE,
        },
        "required": ["deployment_id", "requested_by", "channel"],
    },
    "output_parameters": {
        "properties": {
            "outcome": _param("string", "Outcome", description="succeeded or failed"),
            "stopped_deployments": _param(
                "string",
                "Stopped deployments",
                description="Comma-separated ids of the deployments stopped",
            ),
            "result_url": _RESULT_URL,
        },
        "required": ["outcome"],
    },
}

_SCALE_STEP: dict[str, Any] = {
    "title": "Scale ML deployment",
    "description": "Preview and scale an Elasticsearch ML deployment (allocations or adaptive "
    "allocations), with confirmation in the channel",
    "input_parameters": {
        "properties": {
            "deployment_id": _param(
                "string",
                "Deployment",
                description="A deployment id, a comma list or a wildcard (elser-*)",
            ),
            "cluster": _CLUSTER,
            "allocations": _param(
                "integer", "Allocations", description="A fixed number of allocations"
            ),
            "adaptive": _param(
                "string", "Adaptive allocations", description="on or off (empty: unchanged)"
            ),
            "min_allocations": _param(
                "integer", "Adaptive minimum", description="With adaptive on; 0 scales to zero"
            ),
            "max_allocations": _param(
                "integer", "Adaptive maximum", description="With adaptive on; at least 1"
            ),
            **_WHY_WHO_WHERE,
        },
        "required": ["deployment_id", "requested_by", "channel"],
    },
    "output_parameters": {
        "properties": {
            "outcome": _param("string", "Outcome", description="succeeded or failed"),
            "settings_after": _param(
                "string",
                "Settings after",
                description="Per deployment: the target and allocated count Elasticsearch reports",
            ),
            "result_url": _RESULT_URL,
        },
        "required": ["outcome"],
    },
}

_SOCKET_MODE: dict[str, Any] = {
    "_metadata": {"major_version": 2},  # the properties/required layout of `functions`
    "display_information": {
        "name": "ml-chatops",
        "description": "Stop and start Elasticsearch ML deployments safely from an incident "
        "channel",
        "background_color": "#1f2937",
    },
    "features": {
        "bot_user": {"display_name": "ml-chatops", "always_online": True},
        "slash_commands": _COMMANDS,
    },
    "oauth_config": {"scopes": {"bot": list(SCOPES)}},
    "settings": {
        "interactivity": {"is_enabled": True},  # the Stop / Cancel / Approve buttons
        # The Workflow Builder step arrives as the function_executed event.
        "event_subscriptions": {"bot_events": ["function_executed"]},
        "org_deploy_enabled": True,  # required for custom workflow steps
        "function_runtime": "remote",  # the bot itself runs the step
        "socket_mode_enabled": True,
        "token_rotation_enabled": False,
    },
    "functions": {"stop_ml_deployment": _STEP, "scale_ml_deployment": _SCALE_STEP},
}

_SOCKET_HEADER = """\
# Slack app manifest for ml-chatops, Socket Mode (no public URL needed).
# Generated by `ml-chatops manifest` (bot/manifest.py): change it there, then
#   ml-chatops manifest > manifest.yml
# HTTP mode instead: `ml-chatops manifest --http-url https://<your-host>` prints this app
# with Socket Mode off and every request URL set to https://<your-host>/slack/events.
#
# At api.slack.com/apps: Create New App -> From a manifest; paste this. Then make an
# app-level token with the `connections:write` scope (Basic Information -> App-Level Tokens)
# for SLACK_APP_TOKEN; install the app and set its Bot User OAuth Token as SLACK_BOT_TOKEN.
# channels:read and groups:read are used only with `incidents:` in the config file.
"""

_HTTP_HEADER = """\
# Slack app manifest for ml-chatops, HTTP mode: Slack sends commands, button clicks and
# workflow step events to {url}.
# Generated by `ml-chatops manifest --http-url {base}` (bot/manifest.py).
#
# At api.slack.com/apps: Create New App -> From a manifest; paste this. Then set
# SLACK_SIGNING_SECRET (Basic Information -> App Credentials) and, after installing the app,
# SLACK_BOT_TOKEN (Bot User OAuth Token); leave SLACK_APP_TOKEN unset.
# channels:read and groups:read are used only with `incidents:` in the config file.
"""

_NO_STEPS_HEADER = """\
#
# Without the Workflow Builder step (--no-workflow-steps): no `functions`, no
# `function_executed` event and no `org_deploy_enabled`; the slash commands and buttons
# work as before.
"""


def events_url(http_url: str) -> str:
    """`https://host[/prefix]` → `https://host[/prefix]/slack/events` (kept if already there)."""
    base = http_url.rstrip("/")
    return base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH


def build(http_url: str | None = None, *, workflow_steps: bool = True) -> dict[str, Any]:
    """The manifest: Socket Mode without a URL, HTTP mode with one.

    `workflow_steps=False`: without the Workflow Builder step, its `function_executed`
    event and `org_deploy_enabled`, for workspaces that cannot use them (then HTTP mode
    has no event subscription, so no URL for Slack to verify when the manifest is saved)."""
    manifest = copy.deepcopy(_SOCKET_MODE)
    settings = manifest["settings"]
    if not workflow_steps:
        del manifest["functions"]
        for key in ("org_deploy_enabled", "function_runtime", "event_subscriptions"):
            del settings[key]
    if http_url is None:
        return manifest
    url = events_url(http_url)
    for command in manifest["features"]["slash_commands"]:
        command["url"] = url
    settings["interactivity"]["request_url"] = url
    if "event_subscriptions" in settings:
        # Slack refuses bot_events without a request URL when Socket Mode is off.
        settings["event_subscriptions"] = {"request_url": url, **settings["event_subscriptions"]}
    settings["socket_mode_enabled"] = False
    return manifest


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key, as people write manifests by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        """Every value written out in full: a manifest has no `&id`/`*id` anchors."""
        return True


def render_yaml(http_url: str | None = None, *, workflow_steps: bool = True) -> str:
    """The manifest as commented YAML (manifest.yml is this, without a URL)."""
    manifest = build(http_url, workflow_steps=workflow_steps)
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=4096)
    lines = body.splitlines()
    scoped = [i for i, line in enumerate(lines) if line.strip().removeprefix("- ") in SCOPES]
    width = max(len(lines[i]) for i in scoped) + 1
    for i in scoped:
        lines[i] = f"{lines[i]:<{width}}# {SCOPES[lines[i].strip().removeprefix('- ')]}"
    if http_url is None:
        header = _SOCKET_HEADER
    else:
        header = _HTTP_HEADER.format(url=events_url(http_url), base=http_url)
    if not workflow_steps:
        header += _NO_STEPS_HEADER
    return header + "\n".join(lines) + "\n"


def render_json(http_url: str | None = None, *, workflow_steps: bool = True) -> str:
    """The manifest as JSON (Slack's app config accepts either)."""
    manifest = build(http_url, workflow_steps=workflow_steps)
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def http_url(value: str) -> str:
    """argparse type for `--http-url`: an https URL without query or fragment."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{value!r}: give the bot's public https URL, e.g. https://ml-chatops.example.com"
        )
    if parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{value!r}: no query or fragment, please")
    return value.rstrip("/")


def print_manifest(url: str | None, *, as_json: bool = False, workflow_steps: bool = True) -> int:
    """`ml-chatops manifest`: print it; exit code 0."""
    render = render_json if as_json else render_yaml
    print(render(url, workflow_steps=workflow_steps), end="")
    return 0
