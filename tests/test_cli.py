"""The `ml-chatops` CLI: help, settings errors at start, check-config and explain."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROLE_MAP
from support.botproc import clean_env, free_port, run_cli
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn

from bot.checks import REQUIRED_SCOPES, check_config
from bot.cli import main
from bot.emulator import Emulator, demo_state
from bot.settings import Settings

SUBCOMMANDS = ("serve", "shell", "check-config", "explain")
BOT_ROLE = ["manage_ml", "monitor", "read_pipeline", "monitor_inference"]  # README's role
BOT_INDICES = [{"names": ["*"], "privileges": ["view_index_metadata"]}]


def test_the_readme_role_is_the_one_these_tests_pass_with() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    role = readme.split("PUT _security/role/ml_chatops\n", 1)[1].split("\n", 1)[0]
    assert json.loads(role) == {"cluster": BOT_ROLE, "indices": BOT_INDICES}


# ---------------------------------------------------------------------------- --help


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([sub, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ml-chatops {sub}")
    expected = {
        "serve": ["SLACK_APP_TOKEN", "/healthz", "SIGTERM"],
        "shell": ["--demo", "--user", "--channel"],
        "check-config": ["PASS/WARN/FAIL", "Exit 0", "--config FILE"],
        "explain": ["--user", "--usergroup", "--channel", "--cluster", "Exit 0 if allowed"],
    }[sub]
    for needle in expected:
        assert needle in " ".join(out.split()), needle


def test_the_installed_command_lists_every_subcommand(tmp_path: Path) -> None:
    for argv in ([str(Path(sys.executable).parent / "ml-chatops")], [sys.executable, "-m", "bot"]):
        done = subprocess.run(
            [*argv, "--help"], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        for sub in SUBCOMMANDS:
            assert sub in done.stdout


# ------------------------------------------------------------- settings errors at start


def _serve_env(tmp: Path, **overrides: str | None) -> dict[str, str]:
    values: dict[str, str | None] = {
        "SLACK_BOT_TOKEN": "xoxb-1-not-used",
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "ELASTICSEARCH_URL": "http://127.0.0.1:9",
        "ML_CHATOPS_STATE": f"sqlite:///{tmp / 'state.db'}",
        **overrides,
    }
    return clean_env({k: v for k, v in values.items() if v is not None}, tmp)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SLACK_BOT_TOKEN": None}, "missing setting SLACK_BOT_TOKEN"),
        (
            {"SLACK_SIGNING_SECRET": None},
            "missing setting SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN",
        ),
        ({"PORT": "99999"}, "invalid setting PORT: Input should be less than or equal to 65535"),
        ({"PORT": "http"}, "invalid setting PORT: Input should be a valid integer"),
        ({"ML_CHATOPS_STATE": "postgres://db/ml"}, "invalid setting ML_CHATOPS_STATE: "),
        (
            {"ML_CHATOPS_STATE": "sqlite:////no/such/dir/state.db"},
            "invalid setting ML_CHATOPS_STATE: cannot open the store",
        ),
        ({"ELASTICSEARCH_URL": None}, "no Elasticsearch cluster: set ELASTICSEARCH_URL"),
    ],
)
def test_serve_refuses_bad_settings_with_one_line(
    overrides: dict[str, str | None], expected: str, tmp_path: Path
) -> None:
    done = run_cli(["serve"], _serve_env(tmp_path, **overrides), tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ml-chatops: ") and expected in lines[0], lines[0]


def test_serve_names_the_port_it_cannot_listen_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _serve_env(tmp_path, PORT=str(port))
        done = run_cli(["serve"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"ml-chatops: invalid setting PORT: cannot listen on port {port}: Address already in use"
    )


# ---------------------------------------------------------------------- check-config


@dataclass
class Cluster:
    """The emulator with security on, the README role's user and a monitor-only viewer."""

    url: str
    emulator: Emulator
    password: str = "bot-password-0xf00d"


@pytest.fixture
def cluster(bg_loop: BackgroundLoop) -> Iterator[Cluster]:
    state = demo_state()
    state.add_role("ml_chatops", cluster=BOT_ROLE, indices=BOT_INDICES)
    state.add_user("ml-chatops", Cluster.password, ["ml_chatops"])
    emulator = Emulator(state, auth=("elastic", "changeme"))
    url = bg_loop.run(emulator.start())
    yield Cluster(url, emulator)
    bg_loop.run(emulator.stop())


def _check_settings(
    cluster: Cluster, slack: SlackStandIn, tmp: Path, **overrides: object
) -> Settings:
    config = tmp / "config.yml"
    if not config.exists():
        config.write_text(ROLE_MAP)
    values: dict[str, object] = {
        "slack_bot_token": slack.bot_token,
        "slack_signing_secret": "0123456789abcdef",
        "slack_api_url": slack.api_url,
        "elasticsearch_url": cluster.url,
        "elasticsearch_username": "ml-chatops",
        "elasticsearch_password": cluster.password,
        "ml_chatops_config": config,
        "ml_chatops_state": f"sqlite:///{tmp / 'state.db'}",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


Rows = dict[str, tuple[str, str]]


def _rows(out: str) -> Rows:
    """The table as {check name: (PASS|FAIL, detail)}."""
    rows = {}
    for line in out.strip().splitlines():
        status, rest = line.split("  ", 1)
        name, _, detail = rest.strip().partition("  ")
        rows[name.strip()] = (status, detail.strip())
    return rows


def test_check_config_passes_everything_as_a_command(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(ROLE_MAP)
    env = clean_env(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": "0123456789abcdef",
            "SLACK_API_URL": slack.api_url,
            "ELASTICSEARCH_URL": cluster.url,
            "ELASTICSEARCH_USERNAME": "ml-chatops",
            "ELASTICSEARCH_PASSWORD": cluster.password,
            "ML_CHATOPS_CONFIG": str(config),
            "ML_CHATOPS_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        },
        tmp_path,
    )
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert rows == {
        "settings": ("PASS", "environment valid"),
        "config": ("PASS", str(config)),
        "state (sqlite)": ("PASS", f"{tmp_path / 'state.db'} will be created when the bot starts"),
        "cluster default": ("PASS", "Elasticsearch 9.1.0"),
        "privileges on default": ("PASS", "all granted"),
        "audit": ("PASS", "events to stdout"),
        "slack auth.test": ("PASS", "team ML ChatOps Stand-in as mlops-bot"),
        "slack scopes": ("PASS", "ok"),
        "slack http mode": ("PASS", "SLACK_SIGNING_SECRET is set"),
    }
    assert cluster.password not in done.stdout + done.stderr


def test_check_config_fails_with_exit_1_on_missing_privileges(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    env = clean_env(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "ELASTICSEARCH_URL": cluster.url,
            "ELASTICSEARCH_USERNAME": "viewer",
            "ELASTICSEARCH_PASSWORD": "viewer-password",
            "ML_CHATOPS_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        },
        tmp_path,
    )
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert rows["privileges on default"] == (
        "FAIL",
        "missing: cluster:admin/xpack/ml/trained_models/deployment/stop, "
        "cluster:admin/xpack/ml/trained_models/deployment/start, read_pipeline, "
        "cluster:monitor/main, monitor_inference, view_index_metadata on indices *",
    )
    # `GET /` needs `monitor`, which the viewer lacks; the row says how to fix it.
    assert rows["cluster default"] == (
        "FAIL",
        "the bot's Elasticsearch user may not read cluster info on `default`; "
        "give its role one of the cluster privileges monitor,manage,all",
    )
    assert rows["slack socket mode"] == ("PASS", "app token accepted")


def _check(settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, Rows]:
    code = asyncio.run(check_config(settings))
    return code, _rows(capsys.readouterr().out)


def test_check_config_names_an_unreachable_cluster(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, rows = _check(_check_settings(cluster, slack, tmp_path, elasticsearch_url=url), capsys)
    assert code == 1
    status, detail = rows["cluster default"]
    assert status == "FAIL" and detail.startswith("cannot reach cluster `default`")
    assert "privileges on default" not in rows
    assert rows["slack auth.test"][0] == "PASS"


def test_check_config_reports_slack_invalid_auth_and_missing_scopes(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _check_settings(cluster, slack, tmp_path, slack_bot_token="xoxb-9-revoked")
    code, rows = _check(bad, capsys)
    assert code == 1
    assert rows["slack auth.test"] == ("FAIL", "invalid_auth")
    assert rows["privileges on default"] == ("PASS", "all granted")

    slack.scopes = [s for s in slack.scopes if s != "usergroups:read"]
    code, rows = _check(_check_settings(cluster, slack, tmp_path), capsys)
    assert code == 1
    assert rows["slack scopes"] == ("FAIL", "missing: usergroups:read")

    slack.scopes = sorted(REQUIRED_SCOPES)  # exactly the manifest's scopes are enough
    code, rows = _check(_check_settings(cluster, slack, tmp_path), capsys)
    assert code == 0, rows


def test_check_config_rejects_a_bad_app_token(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _check_settings(cluster, slack, tmp_path, slack_app_token="xapp-1-revoked-000")
    code, rows = _check(settings, capsys)
    assert code == 1
    assert rows["slack socket mode"] == ("FAIL", "SLACK_APP_TOKEN: invalid_auth")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("roles:\n  ml-admin:\n    - {action: stop, deployments: [\n", ":3:"),  # YAML syntax
        ("roles:\n  ml-admin:\n    - {action: launch, deployments: ['*']}\n", ":3:"),
    ],
)
def test_check_config_points_at_the_config_line(
    text: str,
    where: str,
    cluster: Cluster,
    slack: SlackStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(text)
    code, rows = _check(_check_settings(cluster, slack, tmp_path), capsys)
    assert code == 1
    status, detail = rows["config"]
    assert status == "FAIL" and f"{config}{where}" in detail, detail


# --------------------------------------------------------------------------- explain


@pytest.fixture
def explain_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yml"
    config.write_text(ROLE_MAP)
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ELASTICSEARCH_CLOUD_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ML_CHATOPS_CONFIG", str(config))
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9")  # never contacted


OPERATOR = ["--user", "U0OPS1", "--usergroup", "S0MLOPS"]


@pytest.mark.usefixtures("explain_env")
@pytest.mark.parametrize(
    ("argv", "code", "decision"),
    [
        (["--user", "U0ADMIN1", "--", "/ml-stop elser-* --force"], 0, "allowed: role ml-admin"),
        ([*OPERATOR, "--channel", "C0INCIDENTS", "--", "/ml-stop ner-prod"], 0, "allowed: role"),
        ([*OPERATOR, "--channel", "C0RANDOM", "--", "/ml-stop ner-prod"], 1, "denied"),
        ([*OPERATOR, "--channel", "C0INCIDENTS", "--", "/ml-stop ner-prod --force"], 1, "denied"),
        (["--user", "U0NOBODY", "--", "/ml-deployments"], 1, "denied"),
        (["--user", "U0ADMIN1", "--cluster", "staging", "--", "/ml-stop x"], 0, "allowed"),
    ],
)
def test_explain_prints_the_decision_and_exits_by_it(
    argv: list[str], code: int, decision: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", *argv]) == code
    out = capsys.readouterr().out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"decision: {decision}"), out
    assert "bindings:" in out


@pytest.mark.usefixtures("explain_env")
def test_explain_shows_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "--user", "U0ADMIN1", "--", "/ml-stop --frobnicate x"]) == 2
    out = capsys.readouterr().out
    assert "unknown flag `--frobnicate`; did you mean `--force`?" in out
    assert "decision:" not in out
    assert main(["explain", "--user", "U0ADMIN1", "--", "/ml-stop help"]) == 0
    assert "/ml-stop" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (ROLE_MAP + "freez: true\n", 'freez: unknown key "freez"'),
        (ROLE_MAP.replace("bindings:", "bindingz:"), 'did you mean "bindings"?'),
        (ROLE_MAP.replace("expire_after_seconds: 600", "expire_after_seconds: 5"), "at least 10"),
    ],
)
def test_check_config_fails_on_unknown_keys_and_ranges_with_their_line(
    text: str,
    fragment: str,
    cluster: Cluster,
    slack: SlackStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(text)
    code, rows = _check(_check_settings(cluster, slack, tmp_path), capsys)
    status, detail = rows["config"]
    assert code == 1 and status == "FAIL" and f"{config}:" in detail and fragment in detail


def test_serve_refuses_an_unknown_key_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(ROLE_MAP + "freez: true\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ML_CHATOPS_CONFIG", str(config))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "0123456789abcdef")
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9")  # never contacted
    monkeypatch.setenv("ML_CHATOPS_STATE", f"sqlite:///{tmp_path / 'state.db'}")
    assert main(["serve"]) == 2
    line = len(ROLE_MAP.splitlines()) + 1
    assert f'{config}:{line}: freez: unknown key "freez"' in capsys.readouterr().err
