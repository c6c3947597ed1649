"""`python -m bench --profile`: where the bot's CPU goes, per flow.

The bot runs under cProfile (bench/profile_bot.py), the emulator and the Slack stand-in in
processes of their own as in every scenario. After a warm-up the profiler is switched on,
a fixed number of flows run (a few at a time, every Elasticsearch request delayed by the
configured latency), and it is switched off. The report lists the top functions by self
time and by cumulative time; the raw stats (`.prof`, for `python -m pstats` or snakeviz)
are kept beside it. Times are the event-loop thread's CPU time (not wall time).

cProfile's own overhead inflates functions that are called very often; the CPU per flow
measured without the profiler is in the benchmark's table.
"""

from __future__ import annotations

import asyncio
import io
import os
import pstats
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench import REPO
from bench.harness import Services
from bench.loadgen import Load, LoadGenerator
from bench.scenarios import bench_env, latencies
from bench.servers import launch

TOP = 40


async def profile(
    out_dir: Path,
    *,
    flows: int = 100,
    concurrency: int = 4,
    latency: float = 0.05,
    warmup: int = 3,
) -> Path:
    """Profile `flows` flows; return the path of the text report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = out_dir / f"profile-{stamp}.txt"
    raw = out_dir / f"profile-{stamp}.prof"
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        with tempfile.TemporaryDirectory(prefix="ml-chatops-profile-") as tmp:
            workdir = Path(tmp)
            services = await Services(workdir, pool=max(16, 2 * concurrency)).start(session)
            server = None
            try:
                await services.emulator.set_latency(latencies(latency))
                env = bench_env("bot", services, workdir, f"sqlite:///{workdir / 'state.db'}")
                command = [sys.executable, str(REPO / "bench" / "profile_bot.py"), str(raw)]
                server = await launch("bot", command, env, workdir, session, name="bot")
                generator = LoadGenerator(services, [server.events_url], session)
                await generator.run(Load("concurrency", count=warmup, concurrency=1))
                cpu_before = server.cpu_now()
                os.kill(server.proc.pid, signal.SIGUSR1)
                started = time.perf_counter()
                done = await generator.run(
                    Load("concurrency", count=flows, concurrency=concurrency), first=1_000_000
                )
                wall = time.perf_counter() - started
                os.kill(server.proc.pid, signal.SIGUSR2)
                cpu = server.cpu_now() - cpu_before
                try:
                    await _wait_for(raw)
                except TimeoutError as exc:
                    raise TimeoutError(f"{exc}; its stderr: {server.stderr_tail(20)}") from None
            finally:
                if server is not None:
                    server.stop()
                await services.stop()
    completed = sum(1 for f in done if f.completed)
    header = [
        f"ml-chatops serve under cProfile: {completed} of {len(done)} flows completed "
        f"({concurrency} at a time, every Elasticsearch request delayed {latency:g} s), "
        f"{wall:.1f} s",
        f"bot process CPU while profiled: {1000 * cpu / max(completed, 1):.1f} ms per flow "
        "(cProfile's overhead included); the times below are the event-loop thread's CPU",
        f"raw stats: {raw.name} (python -m pstats {raw.name})",
    ]
    report.write_text(_render(raw, header, completed), encoding="utf-8")
    return report


async def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the profiled bot wrote no {path.name}")
        await asyncio.sleep(0.1)


def _render(raw: Path, header: list[str], flows: int) -> str:
    out = io.StringIO()
    out.write("\n".join(header) + "\n")
    for key, title in (("tottime", "self time"), ("cumulative", "cumulative time")):
        stats = pstats.Stats(str(raw), stream=out)
        stats.strip_dirs()
        total = stats.total_tt  # type: ignore[attr-defined]
        out.write(f"\n=== top {TOP} by {title} (profiled total {total:.3f} s")
        out.write(f", {1000 * total / max(flows, 1):.2f} ms per flow) ===\n")
        stats.sort_stats(key).print_stats(TOP)
    return out.getvalue()
