"""The config file: every unknown key anywhere is an error with FILE:LINE and a suggestion,
so are range errors; the role map's loader and the rest of the file's agree."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from conftest import ROLE_MAP, Bench, text_of

from bot.core.policy import PolicyError, parse_role_map
from bot.settings import SettingsError, load_app_config

GOOD = """\
clusters:
  prod:
    url: http://es:9200
audit:
  file: audit.jsonl
incidents:
  channel_pattern: "inc-*"
freeze: false
roles:
  ops:
    - {action: stop, deployments: ["*"]}
bindings:
  - {role: ops, users: [U1]}
approvals:
  - {approvers: [ops]}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def _settings_error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_app_config(path)
    return str(info.value).replace(str(path), "FILE")


def test_the_good_file_loads_in_both_loaders(tmp_path: Path) -> None:
    config = load_app_config(_write(tmp_path, GOOD))
    assert config.clusters["prod"].url == "http://es:9200" and config.freeze is False
    assert parse_role_map(GOOD).bindings[0].role == "ops"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "freeze: false",
            "freez: true",
            'FILE:8: freez: unknown key "freez" (allowed: approvals, audit, bindings, clusters, '
            "default_cluster, expire_after_seconds, freeze, heads_up_seconds, incidents, "
            'revert_max_seconds, roles, timezone, verify_timeout_seconds); did you mean "freeze"?',
        ),
        ("bindings:", "bindingz:", 'FILE:12: bindingz: unknown key "bindingz"'),
        ("    url:", "    urll:", 'FILE:3: clusters.prod.urll: unknown key "urll"'),
        ("  file:", "  fiel:", 'FILE:5: audit.fiel: unknown key "fiel"'),
        ("  channel_pattern:", "  channel_patern:", "FILE:7: incidents.channel_patern: unknown"),
    ],
)
def test_an_unknown_key_outside_the_role_map_names_its_line_and_the_close_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    text = GOOD.replace(old, new)
    assert text != GOOD
    message = _settings_error(tmp_path, text)
    assert any(line.startswith(expected) for line in message.splitlines()), message
    assert "did you mean" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("freeze: false", "freez: true", 'FILE:8: freez: unknown key "freez"'),
        ("bindings:", "bindingz:", 'FILE:12: bindingz: unknown key "bindingz"'),
        ("{action: stop,", "{actoin: stop,", 'FILE:11: roles.ops[0].actoin: unknown key "actoin"'),
        ("{role: ops, users:", "{role: ops, user:", "FILE:13: bindings[0].user: unknown key"),
        ("{approvers: [ops]}", "{approvers: [ops], requird: 2}", "FILE:15: approvals[0].requird"),
    ],
)
def test_the_role_map_loader_refuses_every_unknown_key_too(
    old: str, new: str, expected: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_role_map(GOOD.replace(old, new), source="FILE")
    assert any(line.startswith(expected) for line in str(info.value).splitlines()), info.value
    assert "did you mean" in str(info.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("expire_after_seconds: 5", "FILE:16: expire_after_seconds: must be at least 10 (got 5)"),
        ("expire_after_seconds: 86401", "FILE:16: expire_after_seconds: must be at most 86400"),
        ("verify_timeout_seconds: -1", "FILE:16: verify_timeout_seconds: must be at least 0"),
        ("expire_after_seconds: soon", "FILE:16: expire_after_seconds: must be a whole number"),
    ],
)
def test_range_errors_name_their_line(tmp_path: Path, line: str, expected: str) -> None:
    assert _settings_error(tmp_path, GOOD + line + "\n").startswith(expected)


def test_a_cluster_error_names_the_cluster_line(tmp_path: Path) -> None:
    text = GOOD.replace("    url: http://es:9200", "    url: x\n    request_timeout: 0")
    message = _settings_error(tmp_path, text)
    assert message == "FILE:4: clusters.prod.request_timeout: must be more than 0.0 (got 0)"
    text = GOOD.replace("    url: http://es:9200", "    username: x")
    message = _settings_error(tmp_path, text)
    assert message == "FILE:2: clusters.prod: give exactly one of `url` or `cloud_id`"


def test_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    message = _settings_error(tmp_path, GOOD + "freeze: true\n")
    assert message == 'FILE:16: freeze: duplicate key "freeze" (first on line 8)'


def test_yaml_syntax_errors_have_a_line(tmp_path: Path) -> None:
    assert _settings_error(tmp_path, GOOD + "audit: [\n").startswith("FILE:17: YAML syntax")


# --------------------------------------------------------------------------- hot reload


def _touch_config(bench: Bench, text: str) -> None:
    bench.config_path.write_text(text)
    later = time.time() + 5
    os.utime(bench.config_path, (later, later))


@pytest.mark.parametrize(
    "broken",
    [
        # Accepted before, this left no bindings: everyone denied.
        ROLE_MAP.replace("bindings:", "bindingz:"),
        # Before, the role map was swapped in and only the rest refused: admins lost.
        ROLE_MAP.replace("U0ADMIN1, ", "").replace("600", "5"),
    ],
)
def test_a_reload_with_a_bad_key_or_range_keeps_the_previous_role_map(
    bench: Bench, broken: str, caplog: pytest.LogCaptureFixture
) -> None:
    _touch_config(bench, broken)
    with caplog.at_level(logging.ERROR):
        reply = bench.command("ner-prod")
    assert "ml_stop.confirm" in text_of(reply), text_of(reply)
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused and f"{bench.config_path}:" in refused[0], refused


def test_a_good_reload_still_takes_effect(bench: Bench) -> None:
    _touch_config(bench, ROLE_MAP.replace("U0ADMIN1, ", ""))
    assert "denied" in text_of(bench.command("ner-prod"))
