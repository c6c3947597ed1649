"""manifest.yml follows Slack's manifest rules and cannot drift from what the code registers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Bench, text_of

from bot.checks import INCIDENT_SCOPES, REQUIRED_SCOPES
from bot.core.commands import USAGE_LINES
from bot.slack import blocks
from bot.slack.app import ACTION_IDS, COMMANDS, FUNCTIONS
from bot.slack.workflow import (
    SCALE_STEP_CALLBACK_ID,
    SCALE_STEP_INPUTS,
    SCALE_STEP_OUTPUTS,
    STEP_CALLBACK_ID,
    STEP_INPUTS,
    STEP_OUTPUTS,
    STEP_REQUIRED_INPUTS,
)

MANIFEST = Path(__file__).resolve().parent.parent / "manifest.yml"
FLAG = re.compile(r"--[a-z][a-z-]*")
# slack.md §5: 2-32 characters, starting with "/"; Slack takes lowercase names without spaces.
COMMAND_NAME = re.compile(r"^/[a-z0-9][a-z0-9_.-]{0,30}$")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return data


def test_display_information_and_bot_user_follow_the_rules(manifest: dict[str, Any]) -> None:
    info = manifest["display_information"]
    assert 1 <= len(info["name"]) <= 35
    assert len(info.get("description", "")) <= 140
    if "long_description" in info:
        assert 175 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", info.get("background_color", "#fff"))
    bot_user = manifest["features"]["bot_user"]
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", bot_user["display_name"])
    assert isinstance(bot_user.get("always_online", False), bool)


def test_slash_commands_follow_the_rules(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert 1 <= len(commands) <= 50
    for entry in commands:
        assert COMMAND_NAME.fullmatch(entry["command"]), entry["command"]
        assert 1 <= len(entry["description"]) <= 2000
        assert len(entry.get("usage_hint", "")) <= 1000
        assert isinstance(entry.get("should_escape", False), bool)
        # Socket Mode delivers commands over the socket: a URL would be ignored at best.
        assert "url" not in entry
    assert len({e["command"] for e in commands}) == len(commands)


def test_settings_and_scopes_follow_the_rules(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True  # the buttons need it
    assert "request_url" not in settings["interactivity"]  # none in Socket Mode
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) <= 255 and len(set(scopes)) == len(scopes)
    assert "user" not in manifest["oauth_config"]["scopes"]  # the bot acts as itself only


def test_the_manifest_asks_for_exactly_the_scopes_the_code_uses(manifest: dict[str, Any]) -> None:
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == REQUIRED_SCOPES | INCIDENT_SCOPES
    assert {"chat:write", "commands", "usergroups:read"} == REQUIRED_SCOPES


def test_the_manifest_declares_the_commands_the_code_registers(manifest: dict[str, Any]) -> None:
    declared = [e["command"] for e in manifest["features"]["slash_commands"]]
    assert sorted(declared) == sorted(COMMANDS)
    assert sorted(USAGE_LINES) == sorted(COMMANDS)  # the parser knows each one too


def test_usage_hints_name_the_flags_the_parser_accepts(manifest: dict[str, Any]) -> None:
    for entry in manifest["features"]["slash_commands"]:
        hint_flags = set(FLAG.findall(entry["usage_hint"]))
        parser_flags = set(FLAG.findall(USAGE_LINES[entry["command"]]))
        assert hint_flags == parser_flags, entry["command"]


def test_every_button_the_bot_renders_has_a_registered_action_id() -> None:
    rendered = {v for k, v in vars(blocks).items() if k.endswith("_ACTION_ID")}
    assert rendered == set(ACTION_IDS)


def test_the_bolt_app_answers_every_declared_command_and_action(
    bench: Bench, manifest: dict[str, Any]
) -> None:
    for entry in manifest["features"]["slash_commands"]:
        reply = bench.driver.command(entry["command"], "help")
        assert reply.status == 200, (entry["command"], reply.body_text)
    for action_id in ACTION_IDS:
        reply = bench.driver.click(action_id, "a0000000000000000", text="x")
        assert reply.status == 200, (action_id, reply.body_text)
    # Bolt answers 404 when no listener matches: the checks above can fail.
    assert bench.driver.command("/ml-restart", "help").status == 404
    assert bench.driver.click("ml_stop.unknown", "a0000000000000000").status == 404


def test_a_flow_needs_no_scope_beyond_the_manifest(bench: Bench, manifest: dict[str, Any]) -> None:
    scopes = list(manifest["oauth_config"]["scopes"]["bot"])
    # Without usergroups:read the operator's group cannot be read: the stand-in refuses it.
    bench.slack.scopes = [s for s in scopes if s != "usergroups:read"]
    assert "ml_stop.confirm" not in text_of(bench.command("ner-prod", user="U0OPS1"))

    # With exactly the manifest's scopes: the group is read, the stop runs, the result lands.
    bench.slack.scopes = scopes  # (a failed lookup is not cached: it is asked again)
    preview = bench.command("ner-prod", user="U0OPS1")
    assert "ml_stop.confirm" in text_of(preview), text_of(preview)
    result = bench.confirm(user="U0OPS1")
    assert "stopped" in text_of(result)
    assert {"usergroups.users.list", "chat.postMessage"} <= {c.method for c in bench.slack.calls()}


def test_the_workflow_step_declares_exactly_what_the_code_reads_and_writes(
    manifest: dict[str, Any],
) -> None:
    assert manifest["_metadata"]["major_version"] == 2  # properties/required layout
    assert (
        set(manifest["functions"])
        == set(FUNCTIONS)
        == {
            STEP_CALLBACK_ID,
            SCALE_STEP_CALLBACK_ID,
        }
    )
    for callback, declared_inputs, declared_outputs in (
        (STEP_CALLBACK_ID, STEP_INPUTS, STEP_OUTPUTS),
        (SCALE_STEP_CALLBACK_ID, SCALE_STEP_INPUTS, SCALE_STEP_OUTPUTS),
    ):
        step = manifest["functions"][callback]
        assert len(step["title"]) <= 255 and step["description"]
        inputs = step["input_parameters"]
        assert {k: v["type"] for k, v in inputs["properties"].items()} == declared_inputs
        assert inputs["required"] == list(STEP_REQUIRED_INPUTS)
        outputs = step["output_parameters"]["properties"]
        assert {k: v["type"] for k, v in outputs.items()} == declared_outputs
    settings = manifest["settings"]
    assert settings["function_runtime"] == "remote"
    assert settings["org_deploy_enabled"] is True
    assert "function_executed" in settings["event_subscriptions"]["bot_events"]
