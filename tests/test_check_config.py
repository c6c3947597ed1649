"""`check-config` a newcomer can trust: every problem a row naming its setting, no traceback,
warnings for a role map that denies everyone, security-off clusters recognised, audit sinks
that cannot be written refused (by `serve` too), `--config FILE` and `--version`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROLE_MAP, Bench, text_of
from support.botproc import clean_env, free_port, run_cli
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn
from test_readme_commands import yaml_examples

from bot.emulator import Emulator, demo_state

Rows = list[tuple[str, str, str]]


@pytest.fixture
def open_cluster(bg_loop: BackgroundLoop) -> Iterator[str]:
    """The emulator with security off, as `python -m bot.emulator` without --auth."""
    emulator = Emulator(demo_state(), auth=None)
    url = bg_loop.run(emulator.start())
    yield url
    bg_loop.run(emulator.stop())


def _env(slack: SlackStandIn, tmp: Path, es_url: str, **extra: str) -> dict[str, str]:
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": "0123456789abcdef",
        "SLACK_API_URL": slack.api_url,
        "ELASTICSEARCH_URL": es_url,
        "ML_CHATOPS_STATE": f"sqlite:///{tmp / 'state.db'}",
        **extra,
    }
    return clean_env({k: v for k, v in values.items() if v}, tmp)


def _config(tmp: Path, text: str = ROLE_MAP) -> Path:
    path = tmp / "config.yml"
    path.write_text(text)
    return path


def _rows(out: str) -> Rows:
    rows = []
    for line in out.strip().splitlines():
        status, rest = line.split("  ", 1)
        name, _, detail = rest.strip().partition("  ")
        rows.append((status, name.strip(), detail.strip()))
    return rows


def _run(args: list[str], env: dict[str, str], tmp: Path) -> tuple[int, Rows, str]:
    done = run_cli(args, env, tmp)
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done.returncode, _rows(done.stdout), done.stderr


def _row(rows: Rows, name: str) -> tuple[str, str]:
    found = [(status, detail) for status, n, detail in rows if n == name]
    assert found, rows
    return found[0]


def test_security_off_is_recognised_and_privileges_are_skipped(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(_config(tmp_path)))
    code, rows, stderr = _run(["check-config"], env, tmp_path)
    assert code == 0, rows
    assert _row(rows, "cluster default")[0] == "PASS"
    status, detail = _row(rows, "privileges on default")
    assert status == "WARN" and "security is off" in detail and "try again" not in detail
    # elastic_transport's "putting on timeout" and retry warnings are not printed.
    assert "timeout" not in stderr and "Retrying" not in stderr, stderr


def test_a_missing_ca_file_is_a_row_naming_the_setting_and_the_file(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    https = open_cluster.replace("http://", "https://")
    config = _config(
        tmp_path,
        ROLE_MAP
        + "clusters:\n  prod:\n    url: https://es-prod.internal:9200\n"
        + "    ca_certs: /etc/ssl/no-such-ca.pem\n",
    )
    env = _env(
        slack,
        tmp_path,
        https,
        ML_CHATOPS_CONFIG=str(config),
        ELASTICSEARCH_CA_CERTS=str(tmp_path / "missing.pem"),
    )
    code, rows, _ = _run(["check-config"], env, tmp_path)
    assert code == 1
    details = [detail for status, name, detail in rows if status == "FAIL" and name == "clusters"]
    assert any(
        "ELASTICSEARCH_CA_CERTS" in d and str(tmp_path / "missing.pem") in d for d in details
    ), details
    assert any(
        "clusters.prod.ca_certs" in d and str(config) in d and "no-such-ca.pem" in d
        for d in details
    ), details
    # The rows after the failure are still there.
    assert _row(rows, "slack auth.test")[0] == "PASS"
    assert _row(rows, "state (sqlite)")[0] == "PASS"


def test_a_ca_file_with_an_http_url_is_a_row_not_a_traceback(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = _env(slack, tmp_path, open_cluster, ELASTICSEARCH_CA_CERTS=str(ca))
    code, rows, _ = _run(["check-config"], env, tmp_path)
    assert code == 1
    status, detail = _row(rows, "clusters")
    assert status == "FAIL" and "ELASTICSEARCH_CA_CERTS" in detail and "https" in detail
    assert _row(rows, "slack auth.test")[0] == "PASS"


def test_serve_refuses_a_ca_file_with_an_http_url_in_one_line(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = _env(slack, tmp_path, "http://127.0.0.1:9", ELASTICSEARCH_CA_CERTS=str(ca))
    done = run_cli(["serve"], env, tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "ELASTICSEARCH_CA_CERTS" in done.stderr and "https" in done.stderr


def test_every_row_is_reported_after_a_config_error_and_bad_settings(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = _config(tmp_path, ROLE_MAP + "freez: true\n")
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(config), PORT="99999")
    code, rows, _ = _run(["check-config"], env, tmp_path)
    assert code == 1
    assert _row(rows, "settings")[0] == "FAIL" and "PORT" in _row(rows, "settings")[1]
    assert _row(rows, "config") == ("FAIL", _row(rows, "config")[1])
    assert 'unknown key "freez"' in _row(rows, "config")[1]
    for later in ("cluster default", "state (sqlite)", "slack auth.test", "slack scopes"):
        assert _row(rows, later)[0] in ("PASS", "WARN"), (later, rows)


def test_an_unreachable_cluster_is_one_line_without_retry_warnings(
    slack: SlackStandIn, tmp_path: Path
) -> None:
    env = _env(slack, tmp_path, f"http://127.0.0.1:{free_port()}")
    code, rows, stderr = _run(["check-config"], env, tmp_path)
    assert code == 1
    status, detail = _row(rows, "cluster default")
    assert status == "FAIL" and "cannot reach cluster `default`" in detail
    assert "Retrying" not in stderr and "Traceback" not in stderr, stderr
    assert stderr.strip() == "", stderr


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        (None, "ML_CHATOPS_CONFIG is not set"),
        ("", "no `roles`"),
        ("roles:\n  ml-admin:\n    - {action: stop, deployments: ['*']}\n", "no `bindings`"),
        (
            "roles:\n  ml-admin:\n    - {action: stop, deployments: ['*']}\n"
            "  ml-viewer:\n    - {action: status, deployments: ['*']}\n"
            "bindings:\n  - {role: ml-admin, users: [U0ADMIN1]}\n",
            "ml-viewer",
        ),
    ],
)
def test_a_role_map_that_denies_everyone_is_a_warning_naming_what_is_missing(
    text: str | None, missing: str, open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    extra = {} if text is None else {"ML_CHATOPS_CONFIG": str(_config(tmp_path, text))}
    code, rows, _ = _run(["check-config"], _env(slack, tmp_path, open_cluster, **extra), tmp_path)
    status, detail = _row(rows, "role map")
    assert status == "WARN" and missing in detail, rows
    assert code == 0  # a warning does not fail the check


def test_a_role_typo_in_a_binding_gets_a_suggestion(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = _config(tmp_path, ROLE_MAP.replace("{role: ml-operator,", "{role: ml-operater,"))
    code, rows, _ = _run(
        ["check-config"],
        _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(config)),
        tmp_path,
    )
    assert code == 1
    assert 'did you mean "ml-operator"?' in _row(rows, "config")[1]


def test_check_config_takes_the_config_file_as_an_option(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    other = tmp_path / "other.yml"
    other.write_text(ROLE_MAP + "freez: true\n")
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(_config(tmp_path)))
    code, rows, _ = _run(["check-config", "--config", str(other)], env, tmp_path)
    assert code == 1 and str(other) in _row(rows, "config")[1]


def test_the_version_is_printed(tmp_path: Path) -> None:
    done = run_cli(["--version"], clean_env({}, tmp_path), tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("ml-chatops ")
    assert done.stdout.split()[1][0].isdigit(), done.stdout


# ------------------------------------------------------------------------ the audit sink


def test_an_audit_file_in_a_missing_directory_fails_check_config_and_serve(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    audit = tmp_path / "no-such-dir" / "audit.jsonl"
    config = _config(tmp_path, ROLE_MAP + f"audit:\n  file: {audit}\n")
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(config))
    code, rows, _ = _run(["check-config"], env, tmp_path)
    status, detail = _row(rows, "audit")
    assert code == 1 and status == "FAIL" and "audit.file" in detail
    assert "does not exist" in detail and str(audit.parent) in detail
    done = run_cli(["serve"], env, tmp_path)
    assert done.returncode == 2 and "audit.file" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_at_run_time_security_off_does_not_put_the_node_on_timeout(bench: Bench) -> None:
    """The bench's emulator has security off: `_xpack` says so, `_has_privileges` (a 500
    there) is never asked, and no node is put on timeout."""
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod"))
    assert not [r for r in bench.emulator.requests if "_has_privileges" in r.path]
    gateway = bench.runtime.clusters.get(None)
    pool = gateway.client.transport.node_pool
    assert all(n.config in pool._alive_nodes for n in pool.all())  # no node on timeout
    # Once told, the bot does not ask again, even when its privileges cache has expired.
    gateway._views.ttl = 0  # expire the 5-minute cache now
    assert "ml_stop.confirm" in text_of(bench.command("search-e5"))
    assert len([r for r in bench.emulator.requests if r.path.startswith("/_xpack")]) == 1


def test_security_off_told_only_by_the_500_still_revives_the_node(bench: Bench) -> None:
    """`_xpack` unreadable (403 without `monitor`): `_has_privileges` answers the 500 that
    says security is off; the node goes back to the live pool and is not asked again."""
    from test_flow_es_answers import respond

    respond(
        bench,
        "xpack.info",
        {
            "error": {
                "type": "security_exception",
                "reason": "action [cluster:monitor/xpack/info] is unauthorized",
            },
            "status": 403,
        },
        status=403,
    )
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod"))
    calls = [r for r in bench.emulator.requests if "_has_privileges" in r.path]
    assert calls and calls[0].status == 500  # the answer a cluster without security gives
    gateway = bench.runtime.clusters.get(None)
    pool = gateway.client.transport.node_pool
    assert all(n.config in pool._alive_nodes for n in pool.all())  # back in the live pool
    gateway._views.ttl = 0
    assert "ml_stop.confirm" in text_of(bench.command("search-e5"))
    assert len([r for r in bench.emulator.requests if "_has_privileges" in r.path]) == 1


def test_an_audit_spool_that_cannot_be_created_fails_check_config_and_serve(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    spool = tmp_path / "missing" / "deeper" / "spool"
    config = _config(tmp_path, ROLE_MAP + f"audit:\n  index: ml-audit\n  spool: {spool}\n")
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(config))
    code, rows, _ = _run(["check-config"], env, tmp_path)
    status, detail = _row(rows, "audit")
    assert code == 1 and status == "FAIL" and "audit.spool" in detail and str(spool) in detail
    done = run_cli(["serve"], env, tmp_path)
    assert done.returncode == 2 and "audit.spool" in done.stderr, done.stderr


def test_the_readme_example_config_gives_rows_not_a_traceback(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    """The issue's own repro: the README's config names a CA file this machine lacks."""
    text = next(t for _, t in yaml_examples() if "bindings:" in t)
    config = _config(tmp_path, text)
    env = _env(slack, tmp_path, open_cluster, ML_CHATOPS_CONFIG=str(config), ES_PROD_API_KEY="k")
    code, rows, _ = _run(["check-config"], env, tmp_path)
    assert code == 1
    details = [d for status, name, d in rows if status == "FAIL" and name == "clusters"]
    assert any("clusters.prod.ca_certs" in d and "/etc/ssl/es-prod.pem" in d for d in details)
    assert _row(rows, "config")[0] == "PASS" and _row(rows, "slack auth.test")[0] == "PASS"


def test_a_config_file_that_does_not_exist_is_one_row(
    open_cluster: str, slack: SlackStandIn, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.yml"
    env = _env(slack, tmp_path, open_cluster)
    code, rows, _ = _run(["check-config", "--config", str(missing)], env, tmp_path)
    configs = [(status, d) for status, name, d in rows if name == "config"]
    assert code == 1 and len(configs) == 1 and configs[0][0] == "FAIL"
    assert str(missing) in configs[0][1] and "does not exist" in configs[0][1]
