"""Every config example and `ml-chatops` command in README.md and docs/ works as written.

The YAML examples load with the bot's own loaders. Each documented command line is run
offline (placeholders such as `U…` or `https://<host>` filled in) and exits as documented;
a command that cannot run offline says why. A new command in the docs fails the test until
it is listed here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.botproc import clean_env, run_cli
from support.slack_standin import SlackStandIn
from test_cli import Cluster, cluster

from bot.core.policy import load_role_map
from bot.settings import load_app_config

__all__ = ["cluster"]

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *REPO.glob("docs/*.md")])
YAML_BLOCK = re.compile(r"^[ \t]*```ya?ml[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)
CODE_SPAN = re.compile(r"`(ml-chatops [^`]*)`")
SHELL_LINE = re.compile(r"(?:^|&& )(ml-chatops [^\n&#]*)", re.M)
FENCE = re.compile(r"^[ \t]*```(?:sh|bash)?[ \t]*\n(.*?)^[ \t]*```", re.M | re.S)


def yaml_examples() -> list[tuple[str, str]]:
    """(page:line, text) of every ```yaml block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in YAML_BLOCK.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.name}:{line}", match.group(1)))
    return found


def documented_commands() -> set[str]:
    """Every `ml-chatops …` command line in code spans and shell blocks, whitespace-normalized."""
    found: set[str] = set()
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        spans = CODE_SPAN.findall(text)
        lines = [m for block in FENCE.findall(text) for m in SHELL_LINE.findall(block)]
        found |= {" ".join(c.split()) for c in [*spans, *lines]}
    return found


@pytest.mark.parametrize(("where", "text"), yaml_examples(), ids=lambda v: str(v)[:20])
def test_every_yaml_example_loads_with_the_real_loaders(
    where: str, text: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(text)
    load_app_config(path)  # raises SettingsError naming FILE:LINE
    load_role_map(path)  # raises PolicyError naming FILE:LINE


def test_there_are_yaml_examples_to_check() -> None:
    assert len(yaml_examples()) >= 2
    assert any("bindings:" in text for _, text in yaml_examples())


# The README's full config example, for `explain`: placeholders filled in, nothing else.
def _readme_config(tmp: Path) -> Path:
    text = next(t for _, t in yaml_examples() if "bindings:" in t)
    path = tmp / "config.yml"
    path.write_text(text)
    return path


SHELL_INPUT = "/ml-deployments\nquit\n"
EXPLAIN_SYNOPSIS = (
    'ml-chatops explain --user U… [--usergroup S…] [--channel C…] [--cluster NAME] -- "/ml-stop …"'
)
HOST = "https://bot.example.com"

# Documented command -> (argv, exit code) runs, or the reason it is not run here.
RUNS: dict[str, list[tuple[list[str], int]] | str] = {
    "ml-chatops shell --demo": [(["shell", "--demo"], 0)],
    "ml-chatops shell [--demo] [--user U…] [--channel C…]": [
        (["shell", "--demo", "--user", "U0OPER1", "--channel", "C0DEMO"], 0)
    ],
    "ml-chatops shell": [(["shell", "--demo"], 0)],  # named in docs/architecture.md
    "ml-chatops manifest": [(["manifest"], 0)],
    "ml-chatops manifest --http-url https://<host>": [(["manifest", "--http-url", HOST], 0)],
    "ml-chatops manifest [--http-url https://<host>] [--json] [--no-workflow-steps]": [
        (["manifest", "--http-url", HOST, "--json"], 0),
        (["manifest", "--json"], 0),
        (["manifest", "--http-url", HOST, "--no-workflow-steps"], 0),
    ],
    "ml-chatops manifest --no-workflow-steps": [(["manifest", "--no-workflow-steps"], 0)],
    "ml-chatops --version": [(["--version"], 0)],
    EXPLAIN_SYNOPSIS: [
        (["explain", "--user", "U0ADMIN1", "--", "/ml-stop ner-prod"], 0),
        (
            [
                "explain",
                "--user",
                "U0OPS1",
                "--usergroup",
                "S0MLOPS",
                "--channel",
                "C0INCIDENTS",
                "--cluster",
                "prod",
                "--",
                "/ml-stop ner-prod",
            ],
            0,
        ),
        (["explain", "--user", "U0NOBODY", "--", "/ml-stop ner-prod"], 1),
    ],
    "ml-chatops explain": [(["explain", "--user", "U0ADMIN1", "--", "/ml-stop ner-prod"], 0)],
    "ml-chatops check-config": "needs a cluster and Slack: "
    "test_check_config_exits_as_documented runs it against the emulator and stand-in",
    "ml-chatops check-config [--config FILE]": "needs a cluster and Slack: "
    "test_check_config_exits_as_documented runs it against the emulator and stand-in",
    "ml-chatops serve": "runs until stopped: tests/test_serve.py starts and stops it",
}


def test_every_documented_command_is_known_here() -> None:
    assert documented_commands() == set(RUNS)


@pytest.mark.parametrize("documented", sorted(k for k, v in RUNS.items() if isinstance(v, list)))
def test_every_documented_command_runs_offline_as_documented(
    documented: str, tmp_path: Path
) -> None:
    runs = RUNS[documented]
    assert isinstance(runs, list)
    env = clean_env({"ML_CHATOPS_CONFIG": str(_readme_config(tmp_path))}, tmp_path)
    for argv, code in runs:
        if argv[0] == "shell":  # interactive: type a command, then quit
            done = subprocess.run(
                [sys.executable, "-m", "bot", *argv],
                input=SHELL_INPUT,
                env=clean_env({}, tmp_path),
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert "ner-prod" in done.stdout, done.stdout + done.stderr
        else:
            done = run_cli(argv, env, tmp_path)
        assert done.returncode == code, (argv, done.stdout, done.stderr)
        if argv[0] == "manifest" and "--json" in argv:
            assert json.loads(done.stdout)["display_information"]["name"]
        if argv == ["--version"]:
            assert done.stdout.startswith("ml-chatops "), done.stdout
        if argv == ["manifest"]:
            assert done.stdout == (REPO / "manifest.yml").read_text(encoding="utf-8")


def test_check_config_exits_as_documented(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    # "Exit 0 if nothing fails, 1 otherwise": a bad setting is a FAIL row like any other.
    config = tmp_path / "config.yml"
    config.write_text("roles: {}\nbindings: []\n")
    good = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "SLACK_API_URL": slack.api_url,
        "ELASTICSEARCH_URL": cluster.url,
        "ELASTICSEARCH_USERNAME": "ml-chatops",
        "ELASTICSEARCH_PASSWORD": cluster.password,
        "ML_CHATOPS_CONFIG": str(config),
    }
    cases = (({}, 0), ({"ELASTICSEARCH_PASSWORD": "wrong"}, 1), ({"PORT": "x"}, 1))
    for overrides, code in cases:
        done = run_cli(["check-config"], clean_env({**good, **overrides}, tmp_path), tmp_path)
        assert done.returncode == code, (overrides, done.stdout, done.stderr)
