"""The pure impact of a stop (bot/core/impact.py) and its rendering (bot/slack/impact_blocks.py)."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.core.impact import (
    ClusterFacts,
    Impact,
    Reach,
    StartSettings,
    follow_endpoint,
    impact_changes,
    impact_of,
    parse_endpoints,
    parse_semantic_fields,
    plan_start,
)
from bot.core.model import Deployment
from bot.slack.impact_blocks import (
    LINES_PER_KIND,
    SECTION_TEXT_MAX,
    endpoint_marker,
    impact_lines,
    refusal_md,
    refusal_section,
)

ENDPOINTS = {
    "endpoints": [
        {
            "inference_id": "elser-endpoint",
            "task_type": "sparse_embedding",
            "service": "elasticsearch",
            "service_settings": {"num_allocations": 1, "num_threads": 1, "model_id": ".elser"},
        },
        {
            "inference_id": "on-prod",
            "task_type": "sparse_embedding",
            "service": "elser",
            "service_settings": {"num_threads": 1, "model_id": ".elser", "deployment_id": "prod"},
        },
        {"inference_id": "gpt", "task_type": "completion", "service": "openai"},
    ]
}
MAPPINGS = {
    "docs": {
        "mappings": {
            "properties": {
                "content": {"type": "semantic_text", "inference_id": "elser-endpoint"},
                "meta": {
                    "properties": {
                        "summary": {
                            "type": "semantic_text",
                            "inference_id": "x",
                            "search_inference_id": "on-prod",
                        }
                    }
                },
                "plain": {"type": "semantic_text"},
            }
        }
    },
    "logs": {"mappings": {}},
}


def _facts(**changes: object) -> ClusterFacts:
    values: dict[str, object] = {
        "refs": {
            "prod": frozenset({"p-direct"}),
            ".elser": frozenset({"p-model"}),
            "elser-current": frozenset({"p-alias"}),
            "on-prod": frozenset({"p-endpoint"}),
        },
        "aliases": {".elser": ("elser-current",)},
        "endpoints": parse_endpoints(ENDPOINTS),
        "fields": parse_semantic_fields(MAPPINGS),
    }
    return ClusterFacts(**{**values, **changes})  # type: ignore[arg-type]


def test_endpoints_keep_ml_services_and_name_their_deployment() -> None:
    eps = parse_endpoints(ENDPOINTS)
    assert [(e.inference_id, e.deployment_id, e.created) for e in eps] == [
        ("elser-endpoint", "elser-endpoint", True),
        ("on-prod", "prod", False),
    ]


def test_semantic_fields_at_any_depth_with_the_default_endpoint() -> None:
    fields = parse_semantic_fields(MAPPINGS)
    assert [(f.index, f.path, f.inference_id) for f in fields] == [
        ("docs", "content", "elser-endpoint"),
        ("docs", "meta.summary", "x"),
        ("docs", "plain", ".elser-2-elasticsearch"),
    ]


def test_an_endpoint_created_deployment_refuses_and_names_its_semantic_index() -> None:
    impact = impact_of("elser-endpoint", ".elser", _facts())
    assert [(e.endpoint_id, e.created) for e in impact.endpoints] == [("elser-endpoint", True)]
    assert [(s.index, s.path) for s in impact.semantic] == [("docs", "content")]
    assert impact.refuses
    assert impact.refusal_reasons("elser-endpoint") == [
        "deployment `elser-endpoint` was created by inference endpoint `elser-endpoint` "
        "(semantic_text index `docs.content`)"
    ]


def test_every_pipeline_is_listed_and_only_direct_ones_refuse() -> None:
    impact = impact_of("prod", ".elser", _facts())
    reaches = {p.name: (p.reach, p.refuses) for p in impact.pipelines}
    assert reaches == {
        "p-direct": (Reach.DIRECT, True),
        "p-model": (Reach.MODEL_ID, False),
        "p-alias": (Reach.ALIAS, False),  # the alias's model id is not the deployment id
        "p-endpoint": (Reach.ENDPOINT, False),
    }
    assert [(e.endpoint_id, e.created) for e in impact.endpoints] == [("on-prod", False)]
    assert [s.path for s in impact.semantic] == ["meta.summary"]  # its search_inference_id


def test_an_alias_refuses_when_the_deployment_id_is_the_model_id() -> None:
    impact = impact_of(".elser", ".elser", _facts())
    alias = next(p for p in impact.pipelines if p.name == "p-alias")
    assert alias.refuses and alias.reach is Reach.ALIAS
    reasons = impact.refusal_reasons(".elser")
    assert "deployment `.elser` is used by ingest pipeline `p-model`" in reasons  # now direct
    assert any("`p-alias` (through model alias `elser-current`)" in r for r in reasons)


def test_nothing_reaches_an_unused_deployment() -> None:
    impact = impact_of("quiet", "other-model", _facts())
    assert impact.empty and not impact.refuses


def test_unreadable_endpoints_are_unknown_not_nothing() -> None:
    facts = _facts(endpoints=None, unknown=("could not read inference endpoints: x",))
    impact = impact_of("elser-endpoint", ".elser", facts)
    assert impact.unknown and not impact.empty
    # An endpoint that started the deployment has its id: its semantic fields still show.
    assert [s.path for s in impact.semantic] == ["content"]
    assert "unknown: could not read inference endpoints" in impact_lines(impact, force=False)[-1]


def test_impact_round_trips_through_json_and_old_records_lack_it() -> None:
    impact = impact_of("prod", ".elser", _facts())
    dep = Deployment("prod", ".elser", "started", impact=impact)
    back = Deployment.from_json(json.loads(json.dumps(dep.to_json())))
    assert back == dep
    old = {k: v for k, v in dep.to_json().items() if k != "impact"}
    assert Deployment.from_json(old).impact is None
    assert Impact.from_json({}) == Impact()


def test_lines_say_what_refuses_and_that_force_overrides() -> None:
    impact = impact_of("prod", ".elser", _facts())
    plain = "\n".join(impact_lines(impact, force=False))
    forced = "\n".join(impact_lines(impact, force=True))
    assert "inference endpoint `on-prod` (sparse_embedding) uses this deployment" in plain
    assert "semantic_text `docs.meta.summary`" in plain
    assert "refuses without `--force`" in plain and "refuses" not in forced
    assert "`--force` overrides" in forced
    assert "through model alias `elser-current`" in plain


def test_refusal_offers_force_only_to_who_may_use_it() -> None:
    impact = impact_of("elser-endpoint", ".elser", _facts())
    assert refusal_md("elser-endpoint", impact, may_force=True) == (
        "deployment `elser-endpoint` was created by inference endpoint `elser-endpoint` "
        "(semantic_text index `docs.content`); add `--force` to stop it anyway"
    )
    assert "your role does not grant" in refusal_md("elser-endpoint", impact, may_force=False)
    quiet = Deployment("q", "m", "started", impact=Impact())
    assert refusal_section([quiet], may_force=True) is None


def test_hundreds_of_pipelines_stay_within_slack_limits() -> None:
    names = frozenset(f"pipeline-{i:04d}-" + "x" * 50 for i in range(500))
    impact = impact_of("prod", ".elser", _facts(refs={"prod": names}))
    lines = impact_lines(impact, force=False)
    assert lines[-1] == f"    … +{500 - LINES_PER_KIND:,} more ingest pipelines"
    deps = [Deployment(f"d{i}", "m", "started", impact=impact) for i in range(100)]
    section = refusal_section(deps, may_force=True)
    assert section is not None and len(section["text"]["text"]) <= SECTION_TEXT_MAX


def test_escapes_elasticsearch_text() -> None:
    impact = impact_of("prod", ".elser", _facts(refs={"prod": frozenset({"<!channel>"})}))
    assert "<!channel>" not in "\n".join(impact_lines(impact, force=False))
    dep = Deployment(
        "elser-endpoint",
        ".elser",
        "started",
        impact=impact_of("elser-endpoint", ".elser", _facts()),
    )
    assert endpoint_marker(dep) == "🔗 inference endpoint `elser-endpoint`"
    assert endpoint_marker(Deployment("x", "m", "started")) == ""


def test_a_new_endpoint_or_mapping_since_the_preview_is_a_change() -> None:
    before = impact_of("prod", ".elser", _facts(endpoints=(), fields=()))
    after = impact_of("prod", ".elser", _facts())
    assert impact_changes("prod", before, after) == [
        "`prod` now breaks inference endpoint `on-prod`",
        "`prod` now breaks semantic_text `docs.meta.summary`",
        "`prod` now breaks ingest pipeline `p-endpoint`",  # it names the new endpoint
    ]
    assert impact_changes("prod", after, after) == []
    assert impact_changes("prod", None, after) == []  # a record from before impacts


def test_a_pipeline_that_starts_refusing_is_a_change() -> None:
    old = impact_of("prod", ".elser", _facts(refs={".elser": frozenset({"p"})}))
    new = impact_of("prod", ".elser", _facts(refs={"prod": frozenset({"p"})}))
    assert impact_changes("prod", old, new) == [
        "`prod` now breaks ingest pipeline `p (refuses a plain stop)`",
        "`prod` no longer breaks ingest pipeline `p`",
    ]


def test_a_start_under_the_endpoint_id_restores_it() -> None:
    eps = parse_endpoints(ENDPOINTS)
    plan = plan_start("elser-endpoint", ".elser", models={".elser"}, running=(), endpoints=eps)
    assert plan.model_known and [e.inference_id for e in plan.restores] == ["elser-endpoint"]
    other = plan_start(".elser", ".elser", models={".elser"}, running={"prod"}, endpoints=eps)
    assert [e.inference_id for e in other.elsewhere] == ["elser-endpoint"]
    assert not plan_start("nope", "nope", models={".elser"}, running=(), endpoints=eps).model_known


def test_a_start_takes_the_endpoint_settings_unless_typed() -> None:
    endpoint = parse_endpoints(ENDPOINTS)[0]
    default = StartSettings(1, 1)
    assert follow_endpoint(default, endpoint, given=False) == StartSettings(1, 1)
    wide = replace(endpoint, num_allocations=4, num_threads=2)
    assert follow_endpoint(default, wide, given=False) == StartSettings(4, 2)
    assert follow_endpoint(StartSettings(2, 1), wide, given=True) == StartSettings(2, 1)
    adaptive = replace(wide, adaptive_allocations={"enabled": True})
    assert follow_endpoint(default, adaptive, given=False) == StartSettings(
        None, 2, {"enabled": True}
    )
