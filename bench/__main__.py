"""`python -m bench [--quick]`: run the scenarios, print the table, write the JSON results."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench import RESULTS
from bench.report import assemble, machine, table, targets, write_json
from bench.scenarios import SCENARIOS, BenchConfig, run_scenarios


def _parser() -> argparse.ArgumentParser:
    d = BenchConfig()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark `ml-chatops serve` against a bare Bolt app on this machine.",
    )
    p.add_argument("--quick", action="store_true", help="a ~30 s smoke run (small loads)")
    p.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIOS,
        dest="scenarios",
        help="run only this scenario (repeat for several)",
    )
    options: tuple[tuple[str, type, str], ...] = (
        ("--burst", int, f"commands in the burst (default {d.burst})"),
        ("--rate", float, f"flows per second when steady (default {d.rate:g})"),
        ("--duration", float, f"seconds of steady load (default {d.duration:g})"),
        ("--latency", float, f"latency on every ES request, s (default {d.latency:g})"),
        ("--slow-latency", float, f"slow-es: extra on _stats, _stop, s ({d.slow_latency:g})"),
        ("--round-trip-flows", int, f"sequential flows (default {d.round_trip_flows})"),
        ("--pending", int, f"actions seeded in the store (default {d.pending})"),
        ("--timers", int, "pending timers (timed reverts) seeded too (default: as many)"),
        ("--replica-concurrency", int, f"flows in flight (default {d.replica_concurrency})"),
        ("--replica-flows", int, f"flows per replica run (default {d.replica_flows})"),
    )
    for flag, kind, text in options:
        p.add_argument(flag, type=kind, help=text)
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    p.add_argument(
        "--profile",
        action="store_true",
        help="run the bot under cProfile for a fixed number of flows instead; write the top "
        "functions by self and cumulative time to the results folder",
    )
    p.add_argument(
        "--table",
        type=Path,
        metavar="RESULTS_JSON",
        help="print the tables of an earlier results file, its targets checked again",
    )
    p.add_argument("--profile-flows", type=int, default=100, help="flows profiled (default 100)")
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    """The configuration the command line asks for."""
    config = BenchConfig.quick() if args.quick else BenchConfig()
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(BenchConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            changes[f.name] = tuple(value) if f.name == "scenarios" else value
    return dataclasses.replace(config, **changes)


async def run(config: BenchConfig, out_dir: Path) -> tuple[dict[str, Any], Path]:
    """Run everything; return the results document and where it was written."""
    started = time.time()
    host = machine()
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        scenarios = await run_scenarios(config, session)
    results = assemble(config.to_json(), scenarios, started, host)
    return results, write_json(results, out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    if args.table:
        document = json.loads(args.table.read_text(encoding="utf-8"))
        document["targets"] = targets(document["scenarios"])
        print(table(document))
        return 0
    if args.profile:
        from bench.profiling import profile

        report = asyncio.run(profile(args.out, flows=args.profile_flows))
        print(report.read_text(encoding="utf-8"))
        print(f"profile: {report}")
        return 0
    config = config_from(args)
    results, path = asyncio.run(run(config, args.out))
    print(table(results))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
