"""The config file: every unknown key anywhere is an error with FILE:LINE and a suggestion,
so are range errors; the role map's loader and the rest of the file's agree."""

from __future__ import annotations

import logging
import urllib.request
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
    # The `[` opened on line 16 is never closed; PyYAML notices on line 17.
    assert _settings_error(tmp_path, GOOD + "audit: [\n").startswith("FILE:16: YAML syntax")


# --------------------------------------------------------------------------- hot reload


def _touch_config(bench: Bench, text: str) -> None:
    bench.rewrite_config(text)  # and wait until the serving bot's watcher has read it


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


# --------------------------------------------------------------------------- bounded files


def _alias_bomb(levels: int = 7, fan: int = 9) -> str:
    """The classic billion-laughs document: each level lists the previous one `fan` times."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * fan) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_unexpanded(tmp_path: Path) -> None:
    bomb = _alias_bomb()
    assert len(bomb) < 450
    message = _settings_error(tmp_path, bomb)
    assert message.startswith("FILE:1:") and "alias" in message and "refused" in message
    with pytest.raises(PolicyError, match="alias"):
        parse_role_map(bomb)


def test_a_deeply_nested_file_is_refused_at_its_line(tmp_path: Path) -> None:
    deep = GOOD + "extra: " + "[" * 3000 + "]" * 3000 + "\n"
    message = _settings_error(tmp_path, deep)
    assert message.startswith("FILE:16:") and "nested deeper than" in message


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    message = _settings_error(tmp_path, GOOD + "# " + "x" * 300_000 + "\n")
    assert message.startswith("FILE:1:") and "at most" in message


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    assert "contains it" in _settings_error(tmp_path, GOOD + "extra: &x [*x]\n")


def test_a_few_aliases_still_work(tmp_path: Path) -> None:
    text = GOOD.replace("  - {approvers: [ops]}", "  - &rule {approvers: [ops]}\n  - *rule")
    assert len(parse_role_map(text).approvals) == 2


def test_a_duplicate_key_reached_through_aliases_is_reported_once(tmp_path: Path) -> None:
    text = GOOD + "extra: &m {a: 1, a: 2}\nmore: [*m, *m, *m]\n"
    message = _settings_error(tmp_path, text)
    assert message.count("duplicate key") == 1, message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("a:\n  b: 1\nroles: {x: 1, y: 2\nfreeze: true\n", 3, "`{`"),
        ("roles: [1, 2\nfreeze: true\n", 1, "`[`"),
        ("roles: 'abc\nfreeze: true\n", 1, "quote"),
        ("freeze:\n\t- 1\n", 2, "tab"),
        ("roles:\n  a: 1\n b: 2\n", 3, "indentation"),
    ],
)
def test_yaml_syntax_errors_are_plain_at_the_line_the_construct_began(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    message = _settings_error(tmp_path, text)
    assert message.startswith(f"FILE:{line}: YAML syntax error:") and words in message, message
    assert "expected ','" not in message  # PyYAML's own wording is translated


def _healthz(bench: Bench) -> int:
    with urllib.request.urlopen(bench.bot_url + "/healthz", timeout=10) as resp:
        return int(resp.status)


@pytest.mark.parametrize(
    ("hostile", "why"),
    [
        (_alias_bomb(), "alias"),
        (ROLE_MAP + "extra: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper"),
    ],
)
def test_a_hostile_file_written_while_serving_is_refused_and_the_bot_keeps_serving(
    bench: Bench, hostile: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        _touch_config(bench, hostile)
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert refused and why in refused[0], (refused, bench.runtime.role_maps.refused)
    assert bench.runtime.role_maps is not None and why in (bench.runtime.role_maps.refused or "")
    assert _healthz(bench) == 200
    # The previous role map is still in force: the admin still gets a preview.
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod"))
