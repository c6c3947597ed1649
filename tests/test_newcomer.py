"""The newcomer's path: a fast `--help`, an `explain` that needs no secrets and reads well."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.botproc import clean_env, free_port, run_cli
from support.redis_server import redis_server, redis_url
from support.shared import ROLE_MAP
from support.slack_standin import SlackStandIn
from test_cli import Cluster, _rows, cluster
from test_serve import Live, live

from bot.adapters.store_sqlite import SQLiteStore

# Fixtures: bots as subprocesses (live), the emulator with the README role (cluster), redis.
__all__ = ["cluster", "live", "redis_server", "redis_url"]

# Packages that make a CLI slow to answer; `--help` and usage errors need none of them.
HEAVY = ("elasticsearch", "aiohttp", "slack_bolt", "slack_sdk", "redis", "pydantic", "yaml")

# Runs main(ARGV) as the console script would and prints which heavy packages it imported.
_PROBE = """
import json, sys
from bot.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print("IMPORTED " + json.dumps(heavy))
"""


def _imported_for(argv: list[str], cwd: Path) -> tuple[list[str], str]:
    code = _PROBE.replace("set(HEAVY)", repr(set(HEAVY)))
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        env=clean_env({}, cwd),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    marker = [line for line in done.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, done.stdout + done.stderr
    return json.loads(marker[-1].removeprefix("IMPORTED ")), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], "usage: ml-chatops"),
        (["explain", "--help"], "usage: ml-chatops explain"),
        (["manifest", "--help"], "usage: ml-chatops manifest"),
        (["frobnicate"], "invalid choice"),  # a usage error
        (["explain", "--", "/ml-stop x"], "required: --user"),  # a usage error
    ],
)
def test_help_and_usage_errors_import_nothing_heavy(
    argv: list[str], expected: str, tmp_path: Path
) -> None:
    imported, output = _imported_for(argv, tmp_path)
    assert expected in output
    assert imported == [], f"`ml-chatops {' '.join(argv)}` imported {imported}"


def test_the_probe_sees_heavy_imports_when_there_are_some(tmp_path: Path) -> None:
    # The probe itself works: a command that does real work does import pydantic.
    imported, _ = _imported_for(["explain", "--user", "U1", "--", "/ml-stop help"], tmp_path)
    assert "pydantic" in imported


# --------------------------------------------------------------------------- explain

CLUSTERS = """clusters:
  prod:
    url: https://es-prod.invalid:9200
    api_key_env: ES_PROD_API_KEY
  staging:
    url: https://es-staging.invalid:9200
    username: bot
    password_env: ES_STAGING_PASSWORD
default_cluster: prod
"""


def _explain_env(tmp_path: Path, text: str) -> dict[str, str]:
    config = tmp_path / "config.yml"
    config.write_text(text)
    return clean_env({"ML_CHATOPS_CONFIG": str(config)}, tmp_path)


def test_explain_needs_no_cluster_secrets(tmp_path: Path) -> None:
    # Neither ES_PROD_API_KEY nor ES_STAGING_PASSWORD is set (clean_env), as in CI.
    env = _explain_env(tmp_path, CLUSTERS + ROLE_MAP.replace("[default]", "[prod]"))
    argv = ["explain", "--user", "U0ADMIN1", "--", "/ml-stop elser-*"]
    done = run_cli(argv, env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("request: stop on prod;"), done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("decision: allowed: role ml-admin")
    staging = run_cli([*argv[:-1], "/ml-stop x --cluster staging"], env, tmp_path)
    assert staging.returncode == 0 and "request: stop on staging;" in staging.stdout
    assert not list(tmp_path.glob("*.db")), "explain wrote state"


def test_explain_still_names_a_bad_default_cluster(tmp_path: Path) -> None:
    env = _explain_env(tmp_path, CLUSTERS.replace("default_cluster: prod", "default_cluster: qa"))
    done = run_cli(["explain", "--user", "U0ADMIN1", "--", "/ml-stop x"], env, tmp_path)
    assert done.returncode == 2
    assert "default_cluster: unknown cluster 'qa' (known: prod, staging)" in done.stderr


OPERATOR = ["explain", "--user", "U0OPS1", "--usergroup", "S0MLOPS"]


def test_explain_without_a_channel_reads_naturally(tmp_path: Path) -> None:
    env = {**_explain_env(tmp_path, ROLE_MAP), "ELASTICSEARCH_URL": "http://127.0.0.1:9"}
    done = run_cli([*OPERATOR, "--", "/ml-stop ner-prod"], env, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "caller: user U0OPS1; usergroups: S0MLOPS" in out
    assert "no channel given (it applies only in C0INCIDENTS)" in out
    assert "(user U0OPS1 holds no role)" in out
    for clumsy in ("in channel ;", "in channel  ", "in )", "is not one of"):
        assert clumsy not in out, clumsy


def test_explain_with_a_channel_names_it(tmp_path: Path) -> None:
    env = {**_explain_env(tmp_path, ROLE_MAP), "ELASTICSEARCH_URL": "http://127.0.0.1:9"}
    inside = run_cli(
        [*OPERATOR, "--channel", "C0INCIDENTS", "--", "/ml-stop ner-prod"], env, tmp_path
    )
    assert inside.returncode == 0
    assert "caller: user U0OPS1 in channel C0INCIDENTS; usergroups: S0MLOPS" in inside.stdout
    outside = run_cli(
        [*OPERATOR, "--channel", "C0RANDOM", "--", "/ml-stop ner-prod"], env, tmp_path
    )
    assert outside.returncode == 1
    assert "channel C0RANDOM is not one of C0INCIDENTS" in outside.stdout
    assert "(user U0OPS1 holds no role in C0RANDOM)" in outside.stdout


# --------------------------------------------------------------------------- serve

BOLT_CLIENT_WARNING = "As you gave `client` as well"


def test_serve_in_http_mode_starts_without_bolt_warnings(live: Live) -> None:
    # SLACK_BOT_TOKEN is in the environment, as the README has it.
    assert "SLACK_BOT_TOKEN" in live.env()
    bot = live.start()
    assert bot.get("/healthz").status == 200
    assert bot.terminate() == 0
    output = bot.stdout() + bot.stderr()
    assert bot.log_records(), "serve logged nothing: the check below would be empty"
    assert not [line for line in output.splitlines() if BOLT_CLIENT_WARNING in line], output


# ---------------------------------------------------------------------- check-config


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


def _check_env(cluster: Cluster, slack: SlackStandIn, tmp: Path, **extra: str) -> dict[str, str]:
    config = tmp / "config.yml"
    config.write_text(ROLE_MAP)
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "SLACK_API_URL": slack.api_url,
        "ELASTICSEARCH_URL": cluster.url,
        "ELASTICSEARCH_USERNAME": "ml-chatops",
        "ELASTICSEARCH_PASSWORD": cluster.password,
        "ML_CHATOPS_CONFIG": str(config),
        **extra,
    }
    return clean_env(values, tmp)


def test_check_config_creates_no_state_in_the_working_directory(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    env = _check_env(cluster, slack, tmp_path)  # ML_CHATOPS_STATE unset: sqlite:///ml-chatops.db
    before = _files(tmp_path)
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(done.stdout)
    assert rows["state (sqlite)"] == ("PASS", "ml-chatops.db will be created when the bot starts")
    assert _files(tmp_path) == before


def test_check_config_reads_an_existing_store_without_writing_it(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"
    asyncio.run(SQLiteStore(db).close())  # a store the bot made earlier
    env = _check_env(cluster, slack, tmp_path, ML_CHATOPS_STATE=f"sqlite:///{db}")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rows(done.stdout)["state (sqlite)"] == ("PASS", f"{db} exists")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


@pytest.mark.parametrize(
    ("make", "detail"),
    [
        (lambda tmp: tmp / "missing" / "state.db", "directory {tmp}/missing does not exist"),
        (lambda tmp: _write(tmp / "notes.txt", "hello"), "exists but is not an SQLite database"),
    ],
)
def test_check_config_fails_on_a_store_the_bot_could_not_open(
    make: Callable[[Path], Path],
    detail: str,
    cluster: Cluster,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    path = make(tmp_path)
    env = _check_env(cluster, slack, tmp_path, ML_CHATOPS_STATE=f"sqlite:///{path}")
    before = _files(tmp_path)
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    status, text = _rows(done.stdout)["state (sqlite)"]
    assert status == "FAIL" and detail.format(tmp=tmp_path) in text
    assert _files(tmp_path) == before


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_check_config_pings_redis_and_names_an_unreachable_one(
    cluster: Cluster, slack: SlackStandIn, redis_url: str, tmp_path: Path
) -> None:
    env = _check_env(cluster, slack, tmp_path, ML_CHATOPS_STATE=redis_url)
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _rows(done.stdout)["state (redis)"] == ("PASS", "PING answered")
    keys = asyncio.run(_redis_keys(redis_url))
    assert keys == [], "check-config wrote to redis"
    closed = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    down = run_cli(["check-config"], {**env, "ML_CHATOPS_STATE": closed}, tmp_path)
    assert down.returncode == 1
    status, text = _rows(down.stdout)["state (redis)"]
    assert status == "FAIL" and text.startswith("PING failed")
    assert "hunter2-secret" not in down.stdout + down.stderr


async def _redis_keys(url: str) -> list[bytes]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(url)
    try:
        return list(await client.keys("*"))
    finally:
        await client.aclose()
