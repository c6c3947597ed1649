"""Smoke test of `bench/`: a handful of flows against the real subprocesses, every field there.

No timing is asserted: the figures depend on the machine. What must hold is that the load
generator completes its flows against both servers (the emulator and the Slack stand-in in
processes of their own), that the Elasticsearch requests of one flow are counted from the
emulator's log, and that the results document (the JSON written to disk) has every field the
tables and the README rely on.
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
    "ack_worst_ms",
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
    "emulator_cpu_pct",
    "standin_cpu_pct",
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
        round_trip_flows=2,
        burst=3,
        rate=3.0,
        duration=1.0,
        pending=5,
        warmup=1,
        drain=30.0,
        scenarios=("round-trips", "burst", "pending"),
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
    assert set(results["scenarios"]) == {"round-trips", "burst", "pending"}


@pytest.mark.parametrize("scenario", ["burst", "pending"])  # round-trips has no baseline
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


def test_one_flow_requests_come_from_the_emulator_log(results: dict[str, Any]) -> None:
    bot = results["scenarios"]["round-trips"]["bot"]
    assert bot["flows"]["failed"] == 0, bot["errors"]
    one = bot["es_requests_one_flow"]
    for phase in ("preview", "click"):
        assert one[phase]["requests"] == sum(one[phase]["by_endpoint"].values()) > 0
        assert one[phase]["sequential_rounds"] >= 1
    assert one["click"]["by_endpoint"].get("ml.stop") == 1  # the stop itself, exactly once
    assert one["total"] == one["preview"]["requests"] + one["click"]["requests"]
    assert {"preview_p99", "result_p99"} <= bot["round_trips"].keys()
    # The bench's own requests (deploying its deployments again) are not the bot's.
    assert "ml.start" not in bot["es_requests_per_flow"]


def test_targets_and_table_render(results: dict[str, Any]) -> None:
    targets = {(t["target"], t["scenario"]): t for t in results["targets"]}
    assert ("click -> result p99, in ES round trips", "round-trips") in targets
    assert ("burst: slowest ack (failed acks count as missed)", "burst") in targets
    # Measured from the emulator log and the flows, so present even in a tiny run (a CPU ratio
    # may be None here: a few flows of the bare app use less than one clock tick of CPU).
    for (_, scenario), t in targets.items():
        if scenario == "round-trips":
            assert t["value"] is not None and t["met"] in (True, False), t
    text = _bench("bench.report").table(results)
    assert "ack p99 (ms)" in text and "burst" in text and "pending" in text
    assert "target (issue 15)" in text and ("MET" in text or "MISSED" in text)
    assert "one flow, click" in text
