"""The results: the machine they came from, the targets, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import REPO

SHARED_CORES_NOTE = (
    "The load generator, the Slack stand-in and the Elasticsearch emulator run in the bench "
    "process (the last two on their own thread) on the same cores as the server under test; "
    "bench_cpu_pct shows their share. Latencies are taken by the bench's clock and include "
    "its own scheduling delays, which grow when the cores are saturated (bursts, replicas)."
)
RESULTS_SCHEMA = 1

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


TARGETS: tuple[tuple[str, str, str, Check, bool], ...] = (
    # name, limit text, path in the scenario entry, check, also for saturated (replica) loads
    ("ack p99 vs bare Bolt", "<= 1.2x", "ratio/ack_ms.p99", lambda v: v <= 1.2, False),
    ("acks over 3 s", "0 %", "bot/acks_over_3s_pct", lambda v: v == 0, True),
    ("overhead p99", "< 25 ms", "bot/overhead_ms/p99", lambda v: v < 25, False),
    ("peak RSS vs bare Bolt", "< 1.3x", "ratio/peak_rss_mb", lambda v: v < 1.3, True),
    ("two replicas vs one", ">= 1.7x", "scaling/bot", lambda v: v >= 1.7, True),
)


def targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target checked in each scenario where it applies (measured, never asserted)."""
    out = []
    for name, entry in scenarios.items():
        if entry.get("skipped") or not entry.get("bot"):
            continue
        saturated = name.startswith("replicas")
        for title, limit, path, check, on_saturated in TARGETS:
            if saturated and not on_saturated:
                continue
            if path.startswith("scaling") and "scaling" not in entry:
                continue
            value = _get(entry, path)
            out.append(
                {
                    "target": title,
                    "limit": limit,
                    "scenario": name,
                    "value": value,
                    "met": None if value is None else check(value),
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
    ("deployments in the cluster", "cluster_deployments", None),
    ("failed flows", "flows/failed", None),
)
TARGET_ROWS = {
    "ack p99 (ms)": "ack p99 vs bare Bolt",
    "acks over 3 s (%)": "acks over 3 s",
    "overhead p99 (ms)": "overhead p99",
    "peak RSS (MB)": "peak RSS vs bare Bolt",
}


def table(results: dict[str, Any]) -> str:
    """The results as a plain-text table, with each target's verdict where it applies."""
    verdicts = {(t["scenario"], t["target"]): t for t in results["targets"]}
    header = ("scenario", "metric", "bot", "baseline", "bot/base", "target")
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
            verdict = _verdict(verdicts.get((name, TARGET_ROWS.get(title, ""))))
            rows.append(("", title, _fmt(bot), _fmt(base), _fmt(r), verdict))
        if "scaling" in entry:
            s = entry["scaling"]
            verdict = _verdict(verdicts.get((name, "two replicas vs one")))
            cells = (_fmt(s["bot"]), _fmt(s["baseline"]), _fmt(s["ratio"]))
            rows.append(("", "flows/s vs one replica", *cells, verdict))
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
    return "\n".join(lines)


def _verdict(target: dict[str, Any] | None) -> str:
    if target is None:
        return ""
    mark = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
    return f"{target['limit']} {mark}"


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
