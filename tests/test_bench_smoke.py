"""Smoke test of `bench/`: a handful of flows against the real subprocesses, every field there.

No timing is asserted: the figures depend on the machine. What must hold is that the load
generator completes its flows against both servers and that the results document (the JSON
written to disk) has every field the table and the README rely on.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

TOP_LEVEL = {
    "schema",
    "started_at",
    "duration_s",
    "machine",
    "loadavg_end",
    "note",
    "config",
    "scenarios",
    "targets",
}
MACHINE = {"nproc", "cpu_model", "mem_total_mb", "python", "platform", "loadavg", "packages"}
SCENARIO = {"description", "load", "bot", "baseline", "ratio", "baseline_from", "notes", "skipped"}
FIGURES = {
    "flows",
    "ack_ms",
    "acks_over_3s_pct",
    "acks_failed",
    "command_ack_ms",
    "click_ack_ms",
    "overhead_ms",
    "command_overhead_ms",
    "preview_ms",
    "result_ms",
    "flows_per_s",
    "errors",
    "es_requests_per_flow",
    "servers",
    "peak_rss_mb",
    "startup_ms",
    "startup_ms_all",
    "cpu_ms_per_flow",
    "server_cpu_pct",
    "bench_cpu_pct",
    "wall_s",
    "warmup_flows",
    "pending_seeded",
    "cluster_deployments",
    "es_latency_s",
}
RATIOS = {
    "ack_ms.p50",
    "ack_ms.p95",
    "ack_ms.p99",
    "ack_ms.max",
    "overhead_ms.p50",
    "overhead_ms.p99",
    "preview_ms.p99",
    "result_ms.p99",
    "flows_per_s",
    "peak_rss_mb",
    "startup_ms",
    "cpu_ms_per_flow",
}


def _bench(name: str) -> ModuleType:
    # bench/ is not an installed package: import it from the repository root.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny run of two scenarios, read back from the JSON file it wrote."""
    main = _bench("bench.__main__")
    scenarios = _bench("bench.scenarios")
    config = scenarios.BenchConfig(
        burst=3,
        rate=3.0,
        duration=1.0,
        pending=5,
        warmup=1,
        drain=30.0,
        scenarios=("burst", "pending"),
    )
    out = tmp_path_factory.mktemp("bench-results")
    document, path = asyncio.run(main.run(config, out))
    assert path.parent == out and path.suffix == ".json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == json.loads(json.dumps(document))
    return loaded


def test_results_have_every_top_level_field(results: dict[str, Any]) -> None:
    assert results.keys() >= TOP_LEVEL
    assert results["machine"].keys() >= MACHINE
    assert results["machine"]["nproc"] >= 1
    assert set(results["scenarios"]) == {"burst", "pending"}


@pytest.mark.parametrize("scenario", ["burst", "pending"])
def test_each_scenario_has_bot_baseline_and_ratio_figures(
    results: dict[str, Any], scenario: str
) -> None:
    entry = results["scenarios"][scenario]
    assert entry.keys() >= SCENARIO
    assert entry["skipped"] is None, entry["notes"]
    for who in ("bot", "baseline"):
        figures = entry[who]
        assert figures.keys() >= FIGURES, (who, FIGURES - figures.keys())
        assert {"p50", "p95", "p99", "max", "count"} <= figures["ack_ms"].keys()
        assert {"p50", "p99"} <= figures["overhead_ms"].keys()
        assert figures["flows"]["started"] > 0
        assert figures["flows"]["failed"] == 0, figures["errors"]
        assert figures["peak_rss_mb"] > 0
        assert figures["startup_ms"] > 0
    assert entry["ratio"].keys() >= RATIOS


def test_the_pending_scenario_seeds_the_store_and_reuses_no_other_baseline(
    results: dict[str, Any],
) -> None:
    entry = results["scenarios"]["pending"]
    assert entry["bot"]["pending_seeded"] == 5
    assert entry["baseline_from"] is None  # no `sustained` run to borrow from here


def test_targets_and_table_render(results: dict[str, Any]) -> None:
    names = {t["target"] for t in results["targets"]}
    assert {"ack p99 vs bare Bolt", "acks over 3 s", "overhead p99"} <= names
    text = _bench("bench.report").table(results)
    assert "ack p99 (ms)" in text and "burst" in text and "pending" in text
