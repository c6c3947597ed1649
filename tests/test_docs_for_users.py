"""The README is for users, and says what they need where they need it; the image and its
docs agree with the Dockerfile. Checked by content, so wording stays free."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from test_readme_commands import yaml_examples

from bot.core.policy import load_role_map
from bot.core.policy.schema import ACTIONS
from bot.emulator import demo_state
from bot.slack.ids import COMMANDS

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
FLAT = " ".join(README.split())  # prose with its line breaks as spaces
CONTAINERS = (REPO / "docs" / "containers.md").read_text(encoding="utf-8")
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def _section(title: str, text: str = README) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def test_the_python_version_is_the_one_pyproject_requires() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    minimum = pyproject["project"]["requires-python"].removeprefix(">=")
    assert f"Python {minimum} or newer" in README


def test_benchmark_internals_live_in_bench_and_the_readme_keeps_headline_figures() -> None:
    assert "issue 15" not in README and "cProfile" not in README and "--profile" not in README
    performance = _section("## Performance")
    assert "bench/README.md" in performance and re.search(r"\d+ ms", performance)
    bench = (REPO / "bench" / "README.md").read_text(encoding="utf-8")
    assert "--profile" in bench and "issue 15" in bench


def test_every_role_map_action_is_listed_with_the_commands_that_need_it() -> None:
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(\w+)` \| (.+) \|$", _section("## Configuration"), re.M)
    }
    for action in ACTIONS:
        assert action in rows, f"the actions table lacks {action}"
    for command in COMMANDS:
        assert any(command in needs for needs in rows.values()), command
    assert "/ml-audit" in rows["status"] and "/ml-deployments" in rows["status"]
    assert "freeze" in rows["freeze"] and "Restart" in rows["start"]


def test_the_example_role_map_grants_freeze_to_admins(tmp_path: Path) -> None:
    text = next(t for _, t in yaml_examples() if "bindings:" in t)
    path = tmp_path / "config.yml"
    path.write_text(text)
    admin = load_role_map(path).roles["ml-admin"]
    assert any("freeze" in grant.action for grant in admin)


def test_it_says_how_to_find_slack_user_and_user_group_ids() -> None:
    config = _section("## Configuration")
    assert "member ID" in config and "usergroups.list" in config and "U…" in config


def test_the_emulator_users_are_named_with_their_passwords_at_first_mention() -> None:
    first = FLAT.index("emulator")
    nearby = FLAT[first : first + 1500]
    for name, user in demo_state().users.items():
        assert f"`{name}` / `{user.password}`" in nearby, name


def test_what_the_readme_says_of_ml_bot_is_what_the_emulator_gives_it() -> None:
    assert "all a bot needs" not in README
    roles = demo_state().roles
    ml_bot = demo_state().users["ml-bot"]
    granted = {p for r in ml_bot.roles for p in roles[r].cluster}
    indices = [i for r in ml_bot.roles for i in roles[r].indices]
    assert not indices  # so check-config reports view_index_metadata missing ...
    lacks = re.search(r"`ml-bot` / `ml-bot-password` \(([^)]*)\)", FLAT)
    assert lacks and "lacks `view_index_metadata`" in lacks.group(1)  # ... as the README says
    for privilege in granted:
        assert f"`{privilege}`" in lacks.group(1)


@pytest.mark.parametrize("path", ["pyproject.toml", *map(str, (REPO / "bot").rglob("*.py"))])
def test_nothing_cites_a_design_document_the_repository_lacks(path: str) -> None:
    text = (REPO / path).read_text(encoding="utf-8")
    if "DESIGN.md" in text:
        assert (REPO / "DESIGN.md").exists(), f"{path} cites DESIGN.md, which is not here"


def test_the_http_setup_starts_the_bot_before_saving_the_url() -> None:
    setup = _section("## Set up in Slack")
    assert "url_verification" in setup
    assert setup.index("ml-chatops serve") < setup.index("ml-chatops manifest --http-url")
    assert "--no-workflow-steps" in setup


def test_the_readme_says_what_happens_while_the_audit_sink_is_down() -> None:
    down = _section("#### While the audit sink is down")
    for fact in ("spool", "ml_chatops_audit_spool_events", "/readyz", "once", "order"):
        assert fact in down, fact


# ---------------------------------------------------------------------------- the image


def test_the_base_image_is_pinned_by_digest_and_the_docs_say_how_to_move_it() -> None:
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert default and re.fullmatch(r"python:3\.\d+-slim@sha256:[0-9a-f]{64}", default.group(1))
    update = _section("## Updating the base image", CONTAINERS)
    assert "imagetools inspect" in update and "pytest -m container" in update


def test_the_user_has_a_named_group_of_the_same_id_without_a_system_account() -> None:
    assert "USER 10001:10001" in DOCKERFILE
    assert re.search(r"groupadd --gid 10001 mlchatops", DOCKERFILE)
    assert re.search(r"useradd --uid 10001 --gid 10001", DOCKERFILE)
    commands = "\n".join(x for x in DOCKERFILE.splitlines() if not x.lstrip().startswith("#"))
    assert "--system" not in commands and "--user-group" not in commands


def test_the_podman_healthcheck_warning_is_explained() -> None:
    assert "unable to get systemd connection to add healthchecks" in CONTAINERS
    assert "--no-healthcheck" in CONTAINERS
