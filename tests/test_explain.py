"""`ml-chatops explain` reads only the config file, shows the approvals that apply to what
the command names (patterns too), and prints plain text in a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.botproc import clean_env, run_cli

DEMO_CONFIG = Path(__file__).parent.parent / "bot" / "demo_config.yml"


def _explain(tmp_path: Path, command: str, *extra: str) -> tuple[int, str]:
    # No ELASTICSEARCH_*, SLACK_* or state settings: the config file alone.
    env = clean_env({"ML_CHATOPS_CONFIG": str(DEMO_CONFIG)}, tmp_path)
    done = run_cli(["explain", "--user", "U0ADMIN1", *extra, "--", command], env, tmp_path)
    assert "Traceback" not in done.stderr and done.stderr == "", done.stderr
    return done.returncode, done.stdout


def test_explain_needs_only_the_config_file(tmp_path: Path) -> None:
    code, out = _explain(tmp_path, "/ml-stop ner-prod")
    assert code == 0 and out.strip().splitlines()[-1].startswith("decision: allowed")


def test_explain_takes_the_config_file_as_an_option(tmp_path: Path) -> None:
    done = run_cli(
        ["explain", "--config", str(DEMO_CONFIG), "--user", "U0NOBODY", "--", "/ml-stop x"],
        clean_env({}, tmp_path),
        tmp_path,
    )
    assert done.returncode == 1 and "decision: denied" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/ml-stop ner-*", None),  # the only rule is for elser-prod
        ("/ml-stop ner-prod", None),
        ("/ml-stop elser-prod", "approvals: 1 approval(s) needed from ml-admin"),
        ("/ml-stop elser-*", "may need 1 approval(s) from ml-admin (if it matches elser-prod)"),
        ("/ml-stop *-prod", "may need"),
    ],
)
def test_explain_shows_only_the_approvals_that_apply(
    tmp_path: Path, command: str, expected: str | None
) -> None:
    _, out = _explain(tmp_path, command)
    approvals = [line for line in out.splitlines() if line.startswith("approvals:")]
    if expected is None:
        assert approvals == [], out
    else:
        assert len(approvals) == 1 and expected in approvals[0], out


def test_explain_prints_plain_text_not_slack_markup(tmp_path: Path) -> None:
    code, out = _explain(tmp_path, "/ml-stop --frobnicate x")
    assert code == 2 and "unknown flag `--frobnicate`" in out
    assert "*" not in out and "&lt;" not in out, out
