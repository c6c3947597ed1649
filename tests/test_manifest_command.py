"""`ml-chatops manifest`: one source for manifest.yml and the HTTP-mode manifest, both valid
against Slack's published app-manifest JSON schema.

The schema is not a package: CI has it beside the clone, at
`../shared/reference/slack-manifest-schema/`. Without it the schema tests skip, unless `CI`
is set: then they fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.checks import INCIDENT_SCOPES, REQUIRED_SCOPES
from bot.cli import main
from bot.manifest import SCOPES
from bot.slack.ids import COMMANDS

REPO = Path(__file__).resolve().parent.parent
SCHEMAS = REPO.parent / "shared" / "reference" / "slack-manifest-schema"
URL = "https://ml-chatops.example.com"
EVENTS = URL + "/slack/events"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`ml-chatops manifest ARGS`: exit code, stdout, stderr."""
    try:
        code = main(["manifest", *args])
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def printed(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = run(capsys, *args)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out) if "--json" in args else yaml.safe_load(out)
    return data


def test_without_a_url_it_prints_the_checked_in_manifest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    checked_in = yaml.safe_load((REPO / "manifest.yml").read_text(encoding="utf-8"))
    assert printed(capsys) == checked_in
    assert printed(capsys, "--json") == checked_in
    assert checked_in["settings"]["socket_mode_enabled"] is True


@pytest.mark.parametrize("given", [URL, URL + "/", URL + "/slack/events"])
def test_with_a_url_every_request_url_is_the_events_endpoint(
    capsys: pytest.CaptureFixture[str], given: str
) -> None:
    socket = printed(capsys)
    http = printed(capsys, "--http-url", given)
    settings = http["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["interactivity"] == {"is_enabled": True, "request_url": EVENTS}
    # Slack requires a request URL for bot_events when Socket Mode is off.
    assert settings["event_subscriptions"] == {
        "request_url": EVENTS,
        "bot_events": ["function_executed"],
    }
    assert [c["url"] for c in http["features"]["slash_commands"]] == [EVENTS] * len(COMMANDS)
    # Nothing else differs from the Socket Mode manifest.
    for command in http["features"]["slash_commands"]:
        del command["url"]
    del settings["interactivity"]["request_url"], settings["event_subscriptions"]["request_url"]
    settings["socket_mode_enabled"] = True
    assert http == socket
    assert printed(capsys, "--http-url", given, "--json") == printed(capsys, "--http-url", given)


def test_a_url_under_a_path_prefix_keeps_it(capsys: pytest.CaptureFixture[str]) -> None:
    http = printed(capsys, "--http-url", URL + "/chatops")
    assert http["settings"]["interactivity"]["request_url"] == URL + "/chatops/slack/events"


@pytest.mark.parametrize(
    "bad", ["http://ml-chatops.example.com", "ml-chatops.example.com", "https://", URL + "?a=1"]
)
def test_a_url_slack_cannot_use_is_refused(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, err = run(capsys, "--http-url", bad)
    assert code == 2 and out == ""
    assert "--http-url" in err


def test_the_yaml_explains_each_scope_and_how_to_regenerate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (REPO / "manifest.yml").read_text(encoding="utf-8")
    assert "ml-chatops manifest > manifest.yml" in text
    for scope, why in SCOPES.items():
        assert any(
            line.strip().startswith(f"- {scope}") and why in line for line in text.split("\n")
        )
    assert set(SCOPES) == REQUIRED_SCOPES | INCIDENT_SCOPES
    _, http_text, _ = run(capsys, "--http-url", URL)
    assert f"--http-url {URL}" in http_text and "SLACK_SIGNING_SECRET" in http_text


# ---- Slack's app-manifest schema ------------------------------------------------------------


@pytest.fixture(scope="module")
def schema_dir() -> Path:
    if not SCHEMAS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but Slack's manifest schema is missing: {SCHEMAS}")
        pytest.skip(f"Slack's manifest schema is not beside the clone ({SCHEMAS})")
    return SCHEMAS


def validate(schema_dir: Path, manifest: dict[str, Any]) -> list[str]:
    """Every schema error, as `path: message`."""
    import jsonschema

    major = manifest.get("_metadata", {}).get("major_version", 1)
    schema = json.loads((schema_dir / f"manifest.schema.{major}.0.0.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--json",),
        ("--http-url", URL),
        ("--http-url", URL, "--json"),
        ("--no-workflow-steps",),
        ("--http-url", URL, "--no-workflow-steps", "--json"),
    ],
)
def test_both_modes_follow_slacks_manifest_schema(
    schema_dir: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    manifest = printed(capsys, *args)
    assert manifest["_metadata"]["major_version"] == 2  # functions need the v2 schema
    assert validate(schema_dir, manifest) == []


def test_the_schema_check_catches_a_broken_manifest(
    schema_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = printed(capsys, "--http-url", URL)
    manifest["settings"]["interactivity"]["request_urls"] = EVENTS  # a typo
    del manifest["functions"]["stop_ml_deployment"]["title"]
    errors = validate(schema_dir, manifest)
    assert any("request_urls" in e for e in errors), errors
    assert any("'title' is a required property" in e for e in errors), errors


# ---- without the Workflow Builder step ------------------------------------------------------


@pytest.mark.parametrize("args", [(), ("--http-url", URL)])
def test_without_workflow_steps_there_is_no_step_and_no_org_deploy(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    full = printed(capsys, *args)
    bare = printed(capsys, *args, "--no-workflow-steps")
    assert "functions" not in bare
    for key in ("org_deploy_enabled", "function_runtime", "event_subscriptions"):
        assert key not in bare["settings"], key
    # Everything else is the same app: commands, buttons, scopes, mode.
    assert bare["features"] == full["features"]
    assert bare["oauth_config"] == full["oauth_config"]
    assert bare["settings"]["interactivity"] == full["settings"]["interactivity"]
    assert bare["settings"]["socket_mode_enabled"] == full["settings"]["socket_mode_enabled"]
    _, text, _ = run(capsys, *args, "--no-workflow-steps")
    assert "--no-workflow-steps" in text
