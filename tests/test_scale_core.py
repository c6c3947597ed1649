"""The pure parts of issue 21: the /ml-scale and /ml-status parsers, the role map's scale
bounds, Elasticsearch's update rules (merge, refusals, no-op, API route, body), health."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.botproc import clean_env, run_cli
from support.slack_standin import SlackStandIn
from test_cli import Cluster, _rows, cluster

from bot.cli import main
from bot.core.commands import (
    ScaleRequest,
    StatusRequest,
    UsageError,
    parse,
    parse_scale,
    parse_status,
)
from bot.core.health import Level, assess, health_of, parse_memory
from bot.core.impact import EndpointUse, Impact
from bot.core.model import Deployment, PendingAction, ScaleChange, ScaleSpec
from bot.core.policy import Caller, PolicyError, authorize, explain, parse_role_map
from bot.core.scale import Api, Refusal, ScalePlan, Settings, plan_scale, reflected

__all__ = ["cluster"]  # the check-config cluster fixture of test_cli

# --------------------------------------------------------------------------- parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("elser-prod --allocations 4", ScaleRequest(("elser-prod",), allocations=4)),
        (
            "elser-* --adaptive on --min 0 --max 3",
            ScaleRequest(("elser-*",), adaptive=True, min_allocations=0, max_allocations=3),
        ),
        ("a,b --adaptive on --max 2", ScaleRequest(("a", "b"), adaptive=True, max_allocations=2)),
        (
            "x --adaptive off --allocations 2 --cluster prod --reason 'INC 7'",
            ScaleRequest(("x",), allocations=2, adaptive=False, cluster="prod", reason="INC 7"),
        ),
        ("x --adaptive off", ScaleRequest(("x",), adaptive=False)),
    ],
)
def test_scale_parses(text: str, expected: ScaleRequest) -> None:
    assert parse("/ml-scale", text) == expected
    assert parse_scale(expected.as_text()) == expected  # the canonical text round-trips


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("x", "say what to change"),
        ("x --allocations 0", "--adaptive on --min 0"),
        ("x --allocations -1", "must be a positive integer"),
        ("x --allocations two", "[number_of_allocations] must be a positive integer"),
        ("x --max 0 --adaptive on", "[max_number_of_allocations] must be a positive integer"),
        ("x --max 2", "add `--adaptive on`"),
        ("x --adaptive off --min 1", "do not go with `--adaptive off`"),
        ("x --adaptive on --allocations 2", "cannot be set if adaptive allocations is enabled"),
        ("x --adaptive on --min 3 --max 2", "must not be larger than"),
        ("x --adaptive maybe", "`on` or `off`"),
        ("x y --allocations 2", "more than one deployment id"),
        ("x --allocations 2 --allocations 3", "more than once"),
        ("x --force", "unknown flag"),
        ("--allocations 2", "missing the deployment id"),
    ],
)
def test_scale_refuses_with_a_reason(text: str, fragment: str) -> None:
    result = parse("/ml-scale", text)
    assert isinstance(result, UsageError)
    assert fragment in result.message, result.message


def test_scale_options_are_what_the_role_map_must_grant() -> None:
    assert ScaleRequest(("x",), allocations=2).options() == frozenset()
    assert ScaleRequest(("x",), adaptive=False).options() == {"adaptive_off"}
    assert ScaleRequest(("x-*",), adaptive=True, min_allocations=0).options() == {
        "scale_to_zero",
        "wildcard",
    }
    assert ScaleRequest(("_all",), allocations=2).options() == {"all"}
    assert ScaleRequest(("a", "b"), allocations=2).options() == {"list"}


def test_status_parses() -> None:
    assert parse_status("") == StatusRequest()
    assert parse_status("elser-* --cluster prod") == StatusRequest("elser-*", "prod")
    assert isinstance(parse_status("a b"), UsageError)
    assert isinstance(parse_status("x --force"), UsageError)


@given(st.text(max_size=200))
def test_scale_and_status_never_raise(text: str) -> None:
    for command in ("/ml-scale", "/ml-status"):
        parse(command, text)


# --------------------------------------------------------------------------- policy

ROLES = """
roles:
  op:
    - {action: scale, deployments: ["elser-*"], allocations: {min: 1, max: 4}}
  admin:
    - {action: scale, deployments: ["*"], options: [adaptive_off, scale_to_zero, wildcard]}
bindings:
  - {role: op, users: [U1]}
  - {role: admin, users: [U2]}
"""


def test_a_bound_allows_within_and_denies_beyond_naming_it() -> None:
    role_map = parse_role_map(ROLES)
    op = Caller("U1", "C1")
    assert authorize(role_map, op, "scale", "prod", ["elser-a"], allocations=[1, 4]).allowed
    denied = authorize(role_map, op, "scale", "prod", ["elser-a"], allocations=[6])
    assert not denied.allowed
    assert "role op allows scale only between 1 and 4 allocations (asked: 6)" in (
        denied.explanation
    )
    zero = authorize(role_map, op, "scale", "prod", ["elser-a"], allocations=[0, 2])
    assert not zero.allowed and "between 1 and 4" in zero.explanation
    off = authorize(role_map, op, "scale", "prod", ["elser-a"], ["adaptive_off"], allocations=[2])
    assert not off.allowed and "`--adaptive off`" in off.explanation
    assert authorize(
        role_map, Caller("U2", "C"), "scale", "prod", ["x"], ["adaptive_off"], allocations=[9]
    ).allowed


def test_bounds_do_not_touch_other_actions_and_explain_shows_them() -> None:
    role_map = parse_role_map(ROLES)
    text = explain(role_map, Caller("U1", "C1"), "scale", "prod", ["elser-a"], allocations=[6])
    assert "scale between 1 and 4 allocations" in text
    assert "outside its bounds" in text
    assert text.endswith("(asked: 6)")


@pytest.mark.parametrize(
    ("grant", "fragment"),
    [
        ('{action: stop, deployments: ["*"], allocations: {max: 2}}', "scale action only"),
        ('{action: scale, deployments: ["*"], allocations: {min: 3, max: 2}}', "larger than"),
        ('{action: scale, deployments: ["*"], allocations: {maxx: 2}}', "maxx"),
        ('{action: scale, deployments: ["*"], options: [scale_to_zeroo]}', "scale_to_zero"),
    ],
)
def test_bad_bounds_fail_with_file_and_line(grant: str, fragment: str) -> None:
    text = f"roles:\n  r:\n    - {grant}\n"
    with pytest.raises(PolicyError) as caught:
        parse_role_map(text, source="c.yml")
    assert "c.yml:3" in str(caught.value) and fragment in str(caught.value), str(caught.value)


# --------------------------------------------------------------------------- rules

ADAPTIVE = {"enabled": True, "min_number_of_allocations": 1, "max_number_of_allocations": 4}


def _dep(**kw: object) -> Deployment:
    base: dict[str, object] = {
        "deployment_id": "d",
        "model_id": "m",
        "state": "started",
        "allocations": 2,
        "target_allocations": 2,
        "threads_per_allocation": 1,
    }
    base.update(kw)
    return Deployment(**base)  # type: ignore[arg-type]


def test_a_fixed_count_on_an_adaptive_deployment_is_refused_with_es_text() -> None:
    plan = plan_scale(_dep(adaptive_allocations=ADAPTIVE), ScaleChange(allocations=3))
    assert isinstance(plan, Refusal) and not plan.noop
    assert "cannot be set if adaptive allocations is enabled" in plan.reason
    assert "--adaptive off" in plan.reason


def test_adaptive_bounds_merge_into_the_existing_ones() -> None:
    plan = plan_scale(
        _dep(adaptive_allocations=ADAPTIVE), ScaleChange(adaptive=True, max_allocations=2)
    )
    assert isinstance(plan, ScalePlan)
    assert plan.after.text() == "adaptive (min 1, max 2)"
    assert plan.body == {"adaptive_allocations": {"enabled": True, "max_number_of_allocations": 2}}
    merged_over = plan_scale(
        _dep(adaptive_allocations=ADAPTIVE), ScaleChange(adaptive=True, min_allocations=5)
    )
    assert isinstance(merged_over, Refusal) and "must not be larger than" in merged_over.reason


def test_nothing_to_change_comes_before_the_state() -> None:
    same = plan_scale(_dep(state="starting"), ScaleChange(allocations=2))
    assert isinstance(same, Refusal) and same.noop
    moving = plan_scale(_dep(state="starting"), ScaleChange(allocations=3))
    assert isinstance(moving, Refusal) and "not in [started] state" in moving.reason
    off_already = plan_scale(_dep(), ScaleChange(adaptive=False))
    assert isinstance(off_already, Refusal) and off_already.noop


def test_an_endpoint_deployment_takes_the_inference_api() -> None:
    impact = Impact(endpoints=(EndpointUse("my-ep", True, "sparse_embedding"),))
    plan = plan_scale(_dep(impact=impact), ScaleChange(allocations=3))
    assert isinstance(plan, ScalePlan)
    assert plan.route.api is Api.INFERENCE and plan.route.privilege == "manage_inference"
    assert plan.body == {"service_settings": {"num_allocations": 3}}
    used_only = Impact(endpoints=(EndpointUse("other", False, "sparse_embedding"),))
    plan = plan_scale(_dep(impact=used_only), ScaleChange(allocations=3))
    assert isinstance(plan, ScalePlan) and plan.route.api is Api.TRAINED_MODEL
    default = Impact(endpoints=(EndpointUse(".elser-2-elasticsearch", True, "sparse_embedding"),))
    refused = plan_scale(_dep(impact=default), ScaleChange(allocations=3))
    assert isinstance(refused, Refusal) and "cannot be updated" in refused.reason


def test_revert_brings_back_each_kind_of_setting() -> None:
    fixed = Settings.of(_dep())
    assert fixed.revert() == ScaleChange(allocations=2)
    adaptive = Settings.of(_dep(adaptive_allocations=ADAPTIVE))
    assert adaptive.revert() == ScaleChange(adaptive=True, min_allocations=1, max_allocations=4)
    was_off = Settings.of(_dep(adaptive_allocations={"enabled": False}))
    assert was_off.revert() == ScaleChange(allocations=2, adaptive=False)


def test_reflected_needs_the_target_or_the_adaptive_settings() -> None:
    plan = plan_scale(_dep(), ScaleChange(allocations=4))
    assert isinstance(plan, ScalePlan)
    assert not reflected(plan.after, _dep())
    assert reflected(plan.after, _dep(target_allocations=4, allocations=2))


def test_a_scale_action_survives_the_store_round_trip() -> None:
    spec = ScaleSpec(
        "a,b",
        ScaleChange(allocations=2),
        reason="r",
        per_target=(("a", ScaleChange(adaptive=False, allocations=1)),),
        skipped=(("c", "why"),),
        memory="ML memory: …",
    )
    action = PendingAction("x", "U", "n", "T", "C", "prod", spec, (_dep(),), 0.0, 1.0, "ok")
    back = PendingAction.from_json(action.to_json())
    assert back == action and back.kind == "scale"
    assert spec.options() == {"list", "adaptive_off"}


# --------------------------------------------------------------------------- health


def _entry(**deployment: object) -> dict[str, object]:
    node = {
        "node": {"n1": {"name": "ml-1"}},
        "routing_state": {"routing_state": "started"},
        "inference_count": 10,
        "average_inference_time_ms": 20.0,
        "number_of_pending_requests": 0,
        "throughput_last_minute": 5,
        "last_access": 1_700_000_000_000,
    }
    stats: dict[str, object] = {
        "deployment_id": "d",
        "model_id": "m",
        "state": "started",
        "queue_capacity": 100,
        "allocation_status": {"allocation_count": 1, "target_allocation_count": 1},
        "nodes": [node],
    }
    stats.update(deployment)
    return {"model_id": "m", "deployment_stats": stats}


def test_a_healthy_deployment_is_healthy() -> None:
    health = health_of(_entry())
    assert assess(health).level is Level.HEALTHY
    assert health.average_ms() == 20.0 and health.throughput_last_minute == 5


def test_a_full_queue_or_rejections_suggest_scaling_up() -> None:
    node = dict(_entry()["deployment_stats"]["nodes"][0])  # type: ignore[index]
    node["number_of_pending_requests"] = 95
    verdict = assess(health_of(_entry(nodes=[node], rejected_execution_count=7)))
    assert verdict.level is Level.OVERLOADED
    assert verdict.scale_up == ScaleChange(allocations=2)
    assert "/ml-scale d --allocations 2" in (verdict.advice or "")
    adaptive = assess(health_of(_entry(adaptive_allocations=ADAPTIVE, timeout_count=3)))
    assert adaptive.scale_up == ScaleChange(adaptive=True, max_allocations=8)


def test_a_failed_route_is_failing_with_its_reason_and_a_stop() -> None:
    node = dict(_entry()["deployment_stats"]["nodes"][0])  # type: ignore[index]
    node["routing_state"] = {"routing_state": "failed", "reason": "process crashed"}
    verdict = assess(health_of(_entry(nodes=[node])))
    assert verdict.level is Level.FAILING and verdict.stop
    assert "process crashed" in verdict.findings[0]


def test_memory_counts_every_ml_use() -> None:
    body = {
        "nodes": {
            "a": {
                "name": "ml-1",
                "mem": {
                    "ml": {
                        "max_in_bytes": 1000,
                        "native_inference_in_bytes": 300,
                        "anomaly_detectors_in_bytes": 100,
                    }
                },
            },
            "b": {"name": "data-1", "mem": {"ml": {"max_in_bytes": 0}}},
        }
    }
    memory = parse_memory(body)
    assert [n.name for n in memory.nodes] == ["ml-1"]
    assert memory.free == 600 and memory.largest_free == 600


def test_explain_cli_knows_scale_and_names_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(ROLES)
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ELASTICSEARCH_CLOUD_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ML_CHATOPS_CONFIG", str(config))
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://127.0.0.1:9")  # never contacted
    assert main(["explain", "--user", "U1", "--", "/ml-scale elser-a --allocations 6"]) == 1
    out = capsys.readouterr().out
    assert "allows scale only between 1 and 4 allocations (asked: 6)" in out
    assert main(["explain", "--user", "U1", "--", "/ml-scale elser-a --allocations 3"]) == 0


# --------------------------------------------------------------------------- message budgets


def _block_text(value: object) -> int:
    """Characters of every `text` string in a message's blocks."""
    if isinstance(value, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _block_text(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return sum(_block_text(v) for v in value)
    return 0


def _within_budget(message: dict[str, object]) -> None:
    blocks = message["blocks"]
    assert isinstance(blocks, list)
    assert len(blocks) <= 50
    assert _block_text(blocks) <= 12_000, _block_text(blocks)
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    assert len(ids) == len(set(ids))
    actions = [e["action_id"] for b in blocks for e in b.get("elements", []) if "action_id" in e]
    assert len(actions) == len(
        set(
            (b.get("block_id"), a)
            for b in blocks
            for a in [e["action_id"] for e in b.get("elements", []) if "action_id" in e]
        )
    )


def test_status_of_many_failing_deployments_stays_within_slacks_limits() -> None:
    from bot.core.outcomes import StatusReport
    from bot.slack.blocks import status_message

    node = {
        "node": {"n": {"name": "ml-node-" + "x" * 50}},
        "routing_state": {"routing_state": "failed", "reason": "r" * 900},
        "number_of_pending_requests": 5,
    }
    items = []
    for i in range(80):
        entry = _entry(
            deployment_id=f"dep-{i:02d}-" + "y" * 50,
            state="failed",
            reason="z" * 900,
            nodes=[node] * 3,
        )
        health = health_of(entry)
        items.append((health, assess(health), _dep(deployment_id=health.deployment_id)))
    report = StatusReport(
        "prod", None, tuple(items), "could not read ML memory: missing monitor_ml"
    )
    message = status_message(report, now=0.0)
    _within_budget(dict(message))
    assert "dep-79" in message["text"] or "more" in str(message["blocks"])


def test_a_scale_preview_of_many_deployments_stays_within_slacks_limits() -> None:
    from bot.slack.blocks import proposal

    impact = Impact(endpoints=tuple(EndpointUse(f"ep-{i}-" + "e" * 50, False) for i in range(30)))
    targets = tuple(
        _dep(deployment_id=f"dep-{i:02d}-" + "y" * 50, impact=impact) for i in range(50)
    )
    spec = ScaleSpec(
        "dep-*",
        ScaleChange(allocations=4),
        skipped=tuple((f"s{i}", "w" * 200) for i in range(40)),
        memory="ML memory: " + "m" * 2000,
    )
    action = PendingAction("x", "U", "n", "T", "C", "prod", spec, targets, 0.0, 600.0, "ok")
    _within_budget(dict(proposal(action, now=0.0)))


def test_the_inference_api_gets_exactly_one_whole_setting() -> None:
    impact = Impact(endpoints=(EndpointUse("ep", True, "sparse_embedding"),))
    adaptive = plan_scale(
        _dep(impact=impact, adaptive_allocations=ADAPTIVE),
        ScaleChange(adaptive=True, max_allocations=2),
    )
    assert isinstance(adaptive, ScalePlan)
    assert adaptive.body == {
        "service_settings": {
            "adaptive_allocations": {
                "enabled": True,
                "min_number_of_allocations": 1,
                "max_number_of_allocations": 2,
            }
        }
    }
    off = plan_scale(
        _dep(impact=impact, adaptive_allocations=ADAPTIVE, target_allocations=3),
        ScaleChange(adaptive=False),
    )
    assert isinstance(off, ScalePlan)
    assert off.body == {"service_settings": {"num_allocations": 3}}


def test_rejections_rise_only_against_an_earlier_look() -> None:
    health = health_of(_entry(rejected_execution_count=12))
    assert "rising" not in assess(health).findings[0]
    assert "rising (+2 since the last look)" in assess(health, 10).findings[0]
    assert "rising" not in assess(health, 12).findings[0]


def test_check_config_asks_for_the_update_privilege_when_a_role_grants_scale(
    cluster: Cluster, slack: SlackStandIn, tmp_path: Path
) -> None:
    config = tmp_path / "config.yml"
    config.write_text(ROLES)
    env = clean_env(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_APP_TOKEN": slack.app_token,
            "SLACK_API_URL": slack.api_url,
            "ELASTICSEARCH_URL": cluster.url,
            "ELASTICSEARCH_USERNAME": "viewer",
            "ELASTICSEARCH_PASSWORD": "viewer-password",
            "ML_CHATOPS_CONFIG": str(config),
            "ML_CHATOPS_STATE": f"sqlite:///{tmp_path / 'state.db'}",
        },
        tmp_path,
    )
    done = run_cli(["check-config"], env, tmp_path)
    assert done.returncode == 1
    assert (
        "cluster:admin/xpack/ml/trained_models/deployment/update"
        in _rows(done.stdout)["privileges on default"][1]
    )
