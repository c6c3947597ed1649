"""The results: the machine they came from, the targets, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import REPO

SHARED_CORES_NOTE = (
    "The load generator (bench process), the Slack stand-in and the Elasticsearch emulator run "
    "in processes of their own, on the same cores as the server under test; their CPU is not "
    "charged to the server's (bench/emulator/stand-in CPU % show their share). Latencies are "
    "taken by the bench's clock and include its scheduling delays, which grow when the cores "
    "are saturated (bursts, replicas)."
)
RESULTS_SCHEMA = 2

Check = Callable[[float], bool]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 0)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """Where the figures came from."""
    status = _git("status", "--porcelain", "--", "bot")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "mem_total_mb": _mem_total_mb(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loadavg": list(os.getloadavg()),
        "packages": {
            name: _version(name)
            for name in ("slack-bolt", "slack-sdk", "aiohttp", "elasticsearch", "redis")
        },
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "bot_tree_modified": bool(status) if status is not None else None,
    }


def _get(entry: dict[str, Any], path: str) -> float | None:
    value: Any = entry
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Target:
    """One target of issue 15, checked in one scenario (measured, never asserted)."""

    title: str
    scenario: str
    path: str  # in the scenario entry
    limit: str
    check: Check
    unit: str  # how the value reads: "x", "RT" (Elasticsearch round trips), "ms", "rounds"


TARGETS: tuple[Target, ...] = (
    Target(
        "click -> result p99, in ES round trips",
        "round-trips",
        "bot/round_trips/result_p99",
        "<= 4",
        lambda v: v <= 4,
        "RT",
    ),
    Target(
        "command -> preview p99, in ES round trips",
        "round-trips",
        "bot/round_trips/preview_p99",
        "<= 2",
        lambda v: v <= 2,
        "RT",
    ),
    Target(
        "preview reads: sequential rounds (parallel reads)",
        "round-trips",
        "bot/es_requests_one_flow/preview/sequential_rounds",
        "<= 1",
        lambda v: v <= 1,
        "rounds",
    ),
    Target(
        "CPU per flow vs bare Bolt",
        "sustained",
        "ratio/cpu_ms_per_flow",
        "<= 5x",
        lambda v: v <= 5,
        "x",
    ),
    Target(
        "CPU per flow vs bare Bolt",
        "burst",
        "ratio/cpu_ms_per_flow",
        "<= 5x",
        lambda v: v <= 5,
        "x",
    ),
    Target(
        "burst: slowest ack (failed acks count as missed)",
        "burst",
        "bot/ack_worst_ms",
        "< 3000 ms",
        lambda v: v < 3000,
        "ms",
    ),
    Target(
        "burst: click -> result p99",
        "burst",
        "bot/result_ms/p99",
        "< 2000 ms",
        lambda v: v < 2000,
        "ms",
    ),
    Target(
        "sustained: ack p99 vs bare Bolt",
        "sustained",
        "ratio/ack_ms.p99",
        "<= 1.2x",
        lambda v: v <= 1.2,
        "x",
    ),
    Target(
        "peak RSS vs bare Bolt (same libraries)",
        "sustained",
        "ratio/peak_rss_mb",
        "<= 1.15x",
        lambda v: v <= 1.15,
        "x",
    ),
    Target(
        "peak RSS vs bare Bolt (same libraries)",
        "burst",
        "ratio/peak_rss_mb",
        "<= 1.15x",
        lambda v: v <= 1.15,
        "x",
    ),
)


def targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target whose scenario ran, with its measured value and verdict."""
    out = []
    for t in TARGETS:
        entry = scenarios.get(t.scenario)
        if not entry or entry.get("skipped") or not entry.get("bot"):
            continue
        value = _get(entry, t.path)
        out.append(
            {
                "target": t.title,
                "limit": t.limit,
                "scenario": t.scenario,
                "value": value,
                "unit": t.unit,
                "met": None if value is None else t.check(value),
            }
        )
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


ROWS: tuple[tuple[str, str, str | None], ...] = (
    # label, path in bot/baseline figures, ratio key
    ("ack p50 (ms)", "ack_ms/p50", "ack_ms.p50"),
    ("ack p95 (ms)", "ack_ms/p95", "ack_ms.p95"),
    ("ack p99 (ms)", "ack_ms/p99", "ack_ms.p99"),
    ("ack max (ms)", "ack_ms/max", "ack_ms.max"),
    ("acks over 3 s (%)", "acks_over_3s_pct", None),
    ("overhead p50 (ms)", "overhead_ms/p50", "overhead_ms.p50"),
    ("overhead p99 (ms)", "overhead_ms/p99", "overhead_ms.p99"),
    ("command to preview p99 (ms)", "preview_ms/p99", "preview_ms.p99"),
    ("click to result p99 (ms)", "result_ms/p99", "result_ms.p99"),
    ("flows/s", "flows_per_s", "flows_per_s"),
    ("peak RSS (MB)", "peak_rss_mb", "peak_rss_mb"),
    ("start-up to /healthz (ms)", "startup_ms", "startup_ms"),
    ("server CPU per flow (ms)", "cpu_ms_per_flow", "cpu_ms_per_flow"),
    ("bench process CPU (%)", "bench_cpu_pct", None),
    ("emulator process CPU (%)", "emulator_cpu_pct", None),
    ("stand-in process CPU (%)", "standin_cpu_pct", None),
    ("deployments in the cluster", "cluster_deployments", None),
    ("failed flows", "flows/failed", None),
)


def table(results: dict[str, Any]) -> str:
    """The results as a plain-text table, with each target's verdict where it applies."""
    header = ("scenario", "metric", "bot", "baseline", "bot/base", "")
    rows: list[tuple[str, ...]] = []
    for name, entry in results["scenarios"].items():
        load = entry["load"]["text"]
        if entry.get("skipped"):
            rows.append((name, f"skipped: {entry['skipped']}"[:90], "", "", "", ""))
            continue
        label = f"{name}" + (" *" if entry.get("baseline_from") else "")
        rows.append((label, f"[{load}]", "", "", "", ""))
        for title, path, ratio_key in ROWS:
            bot = _get(entry["bot"], path) if entry["bot"] else None
            base = _get(entry["baseline"], path) if entry["baseline"] else None
            r = entry["ratio"].get(ratio_key) if ratio_key else None
            rows.append(("", title, _fmt(bot), _fmt(base), _fmt(r), ""))
        if "scaling" in entry:
            s = entry["scaling"]
            cells = (_fmt(s["bot"]), _fmt(s["baseline"]), _fmt(s["ratio"]))
            rows.append(("", "flows/s vs one replica", *cells, ""))
        for note in entry.get("notes", []):
            rows.append(("", f"note: {note}"[:110], "", "", "", ""))
    widths = [max(len(r[i]) for r in [header, *rows] if len(r[i]) <= 40) for i in range(6)]
    lines = [_line(header, widths), _line(tuple("-" * w for w in widths), widths)]
    lines += [_line(r, widths) for r in rows]
    m = results["machine"]
    lines.append("")
    lines.append(
        f"machine: {m['nproc']} cores, {m['cpu_model']}, Python {m['python']}; "
        f"load average at start {m['loadavg'][0]:.2f}"
    )
    if any(e.get("baseline_from") for e in results["scenarios"].values()):
        lines.append("* baseline figures from the `sustained` run (the same load for the baseline)")
    lines.append("note: " + SHARED_CORES_NOTE)
    lines += ["", *es_requests_lines(results), "", *targets_table(results)]
    return "\n".join(lines)


def es_requests_lines(results: dict[str, Any]) -> list[str]:
    """Elasticsearch requests per flow: one flow by phase and endpoint, and each scenario's mean."""
    lines = ["Elasticsearch requests per flow (emulator request log, the bench's own excluded)"]
    one = _get_any(results, "scenarios/round-trips/bot/es_requests_one_flow")
    if isinstance(one, dict) and one:
        for phase in ("preview", "click"):
            p = one[phase]
            parts = ", ".join(f"{k} {v}" for k, v in p["by_endpoint"].items())
            lines.append(
                f"  one flow, {phase}: {p['requests']} requests in "
                f"{p['sequential_rounds']} sequential round(s): {parts}"
            )
        counts = sorted(set(one["per_flow"]))
        lines.append(f"  one flow, total: {one['total']} (totals seen across flows: {counts})")
    for name, entry in results["scenarios"].items():
        per = (entry.get("bot") or {}).get("es_requests_per_flow")
        if per:
            total = round(sum(per.values()), 2)
            parts = ", ".join(f"{k} {v:g}" for k, v in sorted(per.items()))
            lines.append(f"  {name}: {total:g} per flow ({parts})")
    return lines


def _get_any(document: dict[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "RT":
        return f"{value:.2f} RT"
    return f"{value:g} {unit}"


def targets_table(results: dict[str, Any]) -> list[str]:
    """The closing table: each target, its measured value, the limit, MET or MISSED."""
    header = ("target (issue 15)", "scenario", "measured", "limit", "verdict")
    rows = [
        (
            t["target"],
            t["scenario"],
            _value(t["value"], t["unit"]),
            t["limit"],
            {True: "MET", False: "MISSED", None: "n/a"}[t["met"]],
        )
        for t in results["targets"]
    ]
    if not rows:
        return ["(no target's scenario ran)"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [_line(header, widths), _line(tuple("-" * w for w in widths), widths)]
    lines += [_line(r, widths) for r in rows]
    lines.append("RT: Elasticsearch round trips (latency / injected per-request latency)")
    return lines


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    out = []
    for cell, width in zip(cells, widths, strict=True):
        out.append(cell if len(cell) > width else cell.ljust(width))
    return "  ".join(out).rstrip()


def write_json(results: dict[str, Any], out_dir: Path) -> Path:
    """Write `<out_dir>/<UTC timestamp>.json` (atomically) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"{stamp}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def assemble(
    config: dict[str, Any], scenarios: dict[str, Any], started: float, host: dict[str, Any]
) -> dict[str, Any]:
    """The whole results document."""
    return {
        "schema": RESULTS_SCHEMA,
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "machine": host,
        "loadavg_end": list(os.getloadavg()),
        "note": SHARED_CORES_NOTE,
        "config": config,
        "scenarios": scenarios,
        "targets": targets(scenarios),
    }
