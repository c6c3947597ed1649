"""The scenarios, each measured on the bot and on the bare Bolt baseline in the same run.

Every measurement starts fresh processes (so peak RSS and CPU are that scenario's) and a
fresh emulator and stand-in, warms the servers up with a few flows, then runs the load.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import ADMIN, BENCH_MODEL, ROLE_MAP, SIGNING_SECRET, EmulatorProcess, Services
from bench.loadgen import Flow, Load, LoadGenerator
from bench.servers import (
    RedisServer,
    Server,
    StartError,
    base_env,
    baseline_command,
    bot_command,
    free_port,
    launch,
)
from bench.stats import flow_figures, injected_delays, one_flow_requests, ratio
from bot.emulator import RequestRecord

log = logging.getLogger("bench")

SCENARIOS = ("round-trips", "burst", "sustained", "slow-es", "pending", "replicas")
RATIO_KEYS = (
    ("ack_ms", "p50"),
    ("ack_ms", "p95"),
    ("ack_ms", "p99"),
    ("ack_ms", "max"),
    ("overhead_ms", "p50"),
    ("overhead_ms", "p99"),
    ("preview_ms", "p99"),
    ("result_ms", "p99"),
    ("flows_per_s", None),
    ("peak_rss_mb", None),
    ("startup_ms", None),
    ("cpu_ms_per_flow", None),
)


@dataclass(frozen=True)
class BenchConfig:
    """What to run; the defaults are the full run (a few minutes on 2 cores)."""

    round_trip_flows: int = 60
    burst: int = 200
    rate: float = 5.0
    duration: float = 30.0
    latency: float = 0.05
    slow_latency: float = 2.0
    pending: int = 1000
    timers: int | None = None  # pending timers (timed reverts) seeded too; None: as many
    replica_concurrency: int = 48
    replica_flows: int = 300
    warmup: int = 3
    pool: int = 16
    drain: float = 30.0
    scenarios: tuple[str, ...] = SCENARIOS

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run of about half a minute."""
        return cls(
            round_trip_flows=8,
            burst=20,
            rate=5.0,
            duration=2.0,
            slow_latency=0.5,
            pending=100,
            replica_concurrency=8,
            replica_flows=16,
            warmup=1,
            drain=10.0,
        )

    def to_json(self) -> dict[str, Any]:
        """The configuration as recorded in the results."""
        return asdict(self)


def latencies(base: float, slow: float = 0.0) -> dict[str, float]:
    """Injected latency: `base` on every Elasticsearch request, plus `slow` on _stats and _stop."""
    out = {"*": base}
    if slow:
        out |= {"ml.stats": slow, "ml.stop": slow}
    return {k: v for k, v in out.items() if v > 0}


@dataclass
class Measurement:
    """One server kind under one load: its figures, or why it could not run."""

    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _pick(figures: dict[str, Any], key: str, sub: str | None) -> float | None:
    value = figures.get(key)
    if sub is not None:
        value = value.get(sub) if isinstance(value, dict) else None
    return value if isinstance(value, int | float) else None


def ratios(bot: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """bot / baseline for each compared figure."""
    return {
        f"{key}.{sub}" if sub else key: ratio(_pick(bot, key, sub), _pick(baseline, key, sub))
        for key, sub in RATIO_KEYS
    }


async def seed_pending(state_url: str, count: int, timers: int | None = None) -> None:
    """Put `count` proposed stops (other channels, other deployments) in the bot's store,
    and `timers` (default `count`) pending timers (timed changes' reverts, state `scheduled`).

    Through the bot's own store API, as `propose` and a timed change save them: each stop
    holds its deployment lock; a revert holds none.
    """
    from bot.adapters.store_sqlite import open_store
    from bot.app.context import lock_keys
    from bot.core.model import Deployment, PendingAction, StopSpec

    store = open_store(state_url)
    now = time.time()
    try:
        for i in range(count):
            target = f"seed-{i:04d}"
            await store.put_exclusive(
                PendingAction(
                    id=f"aseed{i:011x}",
                    requester_id=ADMIN,
                    requester_name="admin",
                    team_id="T0TEAM",
                    channel_id=f"CP{i:08d}",
                    cluster="default",
                    spec=StopSpec(expression=target, reason="bench seed"),
                    targets=(Deployment(target, BENCH_MODEL, "started"),),
                    created_at=now,
                    expires_at=now + 3600,
                    decision="allowed: bench seed",
                ),
                lock_keys("default", [target]),
                now,
            )
        for i in range(count if timers is None else timers):
            await store.put(_seed_timer(i, now))
    finally:
        await store.close()


def _seed_timer(i: int, now: float) -> Any:
    """A timed change's pending revert (issue 22), due in two hours: every sweep of the run
    looks past it (no heads-up, no run), as a store with that many timers would."""
    from bot.core.model import ActionState, Deployment, PendingAction, StartSpec

    target = f"timer-{i:04d}"
    return PendingAction(
        id=f"atimer{i:010x}",
        requester_id=ADMIN,
        requester_name="admin",
        team_id="T0TEAM",
        channel_id=f"CT{i:08d}",
        cluster="default",
        spec=StartSpec(expression=target, reason="bench timer"),
        targets=(Deployment(target, BENCH_MODEL, "stopped"),),
        created_at=now,
        expires_at=now + 7200,
        decision="allowed: bench timer",
        state=ActionState.SCHEDULED,
        revert_of=f"aseedchange{i:06x}",
    )


def bench_env(kind: str, services: Services, workdir: Path, state_url: str) -> dict[str, str]:
    """The environment of a server under test: the bot, or the bare Bolt baseline."""
    env = {
        "SLACK_BOT_TOKEN": services.slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": services.slack.api_url,
        "PORT": str(free_port()),
    }
    if kind == "bot":
        config = workdir / "config.yml"
        config.write_text(ROLE_MAP, encoding="utf-8")
        env |= {
            "ELASTICSEARCH_URL": services.es_url,
            "ELASTICSEARCH_REQUEST_TIMEOUT": "30",
            "ML_CHATOPS_CONFIG": str(config),
            "ML_CHATOPS_STATE": state_url,
        }
    return base_env(env)


class Runner:
    """Runs measurements with one shared HTTP client session."""

    def __init__(self, config: BenchConfig, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session
        self.startups: dict[str, list[float]] = {"bot": [], "baseline": []}

    def _env(self, kind: str, services: Services, workdir: Path, state_url: str) -> dict[str, str]:
        return bench_env(kind, services, workdir, state_url)

    async def measure(
        self,
        kind: str,
        load: Load,
        *,
        latency: dict[str, float],
        replicas: int = 1,
        redis: bool = False,
        pending: int = 0,
        per_flow: bool = False,
        timers: int | None = None,
    ) -> Measurement:
        """Start `replicas` servers of `kind`, warm them up, run `load`, collect figures.

        `latency` is injected on the bot's Elasticsearch requests (the baseline makes none).
        With `per_flow` (flows one at a time), the Elasticsearch requests of one flow are
        broken down by phase and endpoint.
        """
        with tempfile.TemporaryDirectory(prefix=f"ml-chatops-bench-{kind}-") as tmp:
            workdir = Path(tmp)
            services = Services(workdir, pool=max(self.config.pool, load.count))
            redis_server: RedisServer | None = None
            servers: list[Server] = []
            try:
                await services.start(self.session)
                await services.emulator.set_latency(latency if kind == "bot" else {})
                state_url = f"sqlite:///{workdir / 'state.db'}"
                if redis:
                    redis_server = await RedisServer(workdir).start()
                    state_url = redis_server.url
                if pending:
                    await seed_pending(state_url, pending, timers)
                for i in range(replicas):
                    command = bot_command() if kind == "bot" else baseline_command()
                    env = self._env(kind, services, workdir, state_url)
                    server = await launch(
                        kind, command, env, workdir, self.session, name=f"{kind}-{i}"
                    )
                    servers.append(server)
                    self.startups[kind].append(server.startup_s)
                return await self._drive(kind, load, services, servers, pending, per_flow)
            except StartError as exc:
                return Measurement(error=str(exc))
            finally:
                for server in servers:
                    server.stop()
                await services.stop()
                if redis_server is not None:
                    redis_server.stop()

    async def _drive(
        self,
        kind: str,
        load: Load,
        services: Services,
        servers: list[Server],
        pending: int,
        per_flow: bool,
    ) -> Measurement:
        urls = [s.events_url for s in servers]
        generator = LoadGenerator(services, urls, self.session)
        warm = await generator.run(
            Load("concurrency", count=self.config.warmup * len(servers), concurrency=1)
        )
        if warm and not any(f.completed for f in warm):
            return Measurement(error=f"warm-up flows failed: {warm[0].error}")
        await services.emulator.clear_requests()
        helpers = services.processes
        cpu_before = [s.cpu_now() for s in servers]
        helpers_before = [s.cpu_now() for s in helpers]
        bench_before = time.process_time()
        started = time.perf_counter()
        flows = await generator.run(load, first=1_000_000)
        wall = time.perf_counter() - started
        bench_cpu = time.process_time() - bench_before
        for server in (*servers, *helpers):
            server.sample()
        server_cpu = sum(s.cpu_s - c for s, c in zip(servers, cpu_before, strict=True))
        helper_cpu = {s.kind: s.cpu_s - c for s, c in zip(helpers, helpers_before, strict=True)}
        records = await services.emulator.requests()
        figures = self._figures(kind, flows, records, services.emulator)
        if per_flow and kind == "bot":
            base = services.emulator.delay_for("*")
            figures["es_requests_one_flow"] = one_flow_requests(flows, records, base)
            if base > 0:
                figures["round_trips"] = {
                    "latency_ms": round(base * 1000, 1),
                    "preview_p99": _per(figures["preview_ms"]["p99"], base),
                    "result_p99": _per(figures["result_ms"]["p99"], base),
                    "preview_p50": _per(figures["preview_ms"]["p50"], base),
                    "result_p50": _per(figures["result_ms"]["p50"], base),
                }
        completed = figures["flows"]["completed"] or 1
        figures |= {
            "servers": len(servers),
            "peak_rss_mb": round(max(s.peak_rss_kb for s in servers) / 1024, 1),
            "startup_ms": round(servers[0].startup_s * 1000, 1),
            "startup_ms_all": [round(s.startup_s * 1000, 1) for s in servers],
            "cpu_ms_per_flow": round(1000 * server_cpu / completed, 2),
            "server_cpu_pct": round(100 * server_cpu / wall, 1),
            "bench_cpu_pct": round(100 * bench_cpu / wall, 1),
            "emulator_cpu_pct": round(100 * helper_cpu.get("emulator", 0.0) / wall, 1),
            "standin_cpu_pct": round(100 * helper_cpu.get("standin", 0.0) / wall, 1),
            "wall_s": round(wall, 2),
            "warmup_flows": len(warm),
            "pending_seeded": pending,
            "cluster_deployments": services.pool.cluster_size,
            "es_latency_s": dict(services.emulator.latency),
        }
        return Measurement(figures=figures)

    def _figures(
        self,
        kind: str,
        flows: list[Flow],
        records: list[RequestRecord],
        emulator: EmulatorProcess,
    ) -> dict[str, Any]:
        if kind != "bot":
            delays: dict[str, list[tuple[float, float]]] = {}
            fallback = 0.0
        else:
            delays = injected_delays(
                records, emulator.delay_for, (f.action_id for f in flows if f.action_id)
            )
            fallback = emulator.delay_for("ml.stats")
        figures = flow_figures(
            flows, delays=delays, fallback_click=fallback, fallback_command=fallback
        )
        counts = Counter(r.endpoint for r in records)
        started = len(flows) or 1
        figures["es_requests_per_flow"] = {k: round(v / started, 2) for k, v in counts.items()}
        if kind == "bot":
            figures["results_before_stop"] = _results_before_stop(flows, records)
        return figures


def _per(ms: float | None, seconds: float) -> float | None:
    return None if ms is None else round(ms / (1000 * seconds), 2)


def _results_before_stop(flows: list[Flow], records: list[RequestRecord]) -> int:
    """Completed flows whose result came before their `_stop` reached the emulator.

    Always 0 when the result is detected right; anything else means the bench took a
    progress message for the result, and the overhead figures are wrong.
    """
    first_stop: dict[str, float] = {}
    for record in records:
        if record.endpoint == "ml.stop":
            action = record.headers.get("x-opaque-id", "").rsplit("/", 1)[-1]
            first_stop.setdefault(action, record.timestamp)
    return sum(
        1
        for f in flows
        if f.completed and (f.result_at or 0.0) < first_stop.get(f.action_id or "", float("inf"))
    )


def _entry(
    description: str,
    load: Load,
    bot: Measurement,
    baseline: Measurement,
    *,
    baseline_from: str | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "description": description,
        "load": {**asdict(load), "text": load.describe()},
        "bot": bot.figures,
        "baseline": baseline.figures,
        "ratio": ratios(bot.figures, baseline.figures),
        "baseline_from": baseline_from,
        "notes": list(notes or []),
        "skipped": None,
    }
    for who, m in (("bot", bot), ("baseline", baseline)):
        if m.error:
            entry["notes"].append(f"{who} failed: {m.error}")
    return entry


def _skipped(description: str, load: Load, reason: str) -> dict[str, Any]:
    entry = _entry(description, load, Measurement(), Measurement())
    entry["skipped"] = reason
    return entry


async def run_scenarios(config: BenchConfig, session: aiohttp.ClientSession) -> dict[str, Any]:
    """Run the configured scenarios; returns the `scenarios` section of the results."""
    runner = Runner(config, session)
    out: dict[str, Any] = {}
    c = config
    sustained_baseline: Measurement | None = None

    async def baseline_at_rate(load: Load) -> tuple[Measurement, str | None]:
        nonlocal sustained_baseline
        if sustained_baseline is not None and not sustained_baseline.error:
            return sustained_baseline, "sustained"
        sustained_baseline = await runner.measure("baseline", load, latency={})
        return sustained_baseline, None

    rate_load = Load("rate", rate=c.rate, duration=c.duration, limit=c.drain)
    base_latency = latencies(c.latency)
    for name in c.scenarios:
        log.info("scenario %s", name)
        if name == "round-trips":
            load = Load("concurrency", count=c.round_trip_flows, concurrency=1, limit=c.drain)
            bot = await runner.measure("bot", load, latency=base_latency, per_flow=True)
            out[name] = _entry(
                f"one flow at a time; every Elasticsearch request delayed {c.latency:g} s: "
                "latencies in Elasticsearch round trips, requests per flow from the emulator log",
                load,
                bot,
                Measurement(),
                notes=["bot only: the baseline makes no Elasticsearch requests"],
            )
        elif name == "burst":
            load = Load("burst", count=c.burst, limit=3 * c.drain)
            base = await runner.measure("baseline", load, latency={})
            bot = await runner.measure("bot", load, latency=base_latency)
            out[name] = _entry(
                f"{c.burst} slash commands at the same instant, each followed by its click; "
                f"Elasticsearch latency {c.latency:g} s on every request",
                load,
                bot,
                base,
            )
        elif name == "sustained":
            base, source = await baseline_at_rate(rate_load)
            bot = await runner.measure("bot", rate_load, latency=base_latency)
            out[name] = _entry(
                f"steady arrivals; Elasticsearch latency {c.latency:g} s on every request",
                rate_load,
                bot,
                base,
                baseline_from=source,
            )
        elif name == "slow-es":
            base, source = await baseline_at_rate(rate_load)
            bot = await runner.measure(
                "bot", rate_load, latency=latencies(c.latency, c.slow_latency)
            )
            out[name] = _entry(
                f"steady arrivals; Elasticsearch {c.slow_latency:g} s slower on _stats and _stop",
                rate_load,
                bot,
                base,
                baseline_from=source,
                notes=["the baseline calls no Elasticsearch: its load is that of `sustained`"],
            )
        elif name == "pending":
            base, source = await baseline_at_rate(rate_load)
            bot = await runner.measure(
                "bot", rate_load, latency=base_latency, pending=c.pending, timers=c.timers
            )
            timers = c.pending if c.timers is None else c.timers
            out[name] = _entry(
                f"steady arrivals with {c.pending} pending actions and {timers} pending timers"
                " (timed reverts) already in the store",
                rate_load,
                bot,
                base,
                baseline_from=source,
                notes=["the baseline keeps no store: its load is that of `sustained`"],
            )
        elif name == "replicas":
            out.update(await _replicas(runner, c))
        else:
            raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})")
    return out


def _throughput(m: Measurement) -> float | None:
    return _pick(m.figures, "flows_per_s", None)


async def _replicas(runner: Runner, c: BenchConfig) -> dict[str, Any]:
    load = Load(
        "concurrency", count=c.replica_flows, concurrency=c.replica_concurrency, limit=3 * c.drain
    )
    one_text = "one replica, state in Redis; fixed concurrency"
    two_text = "two replicas sharing one Redis; each command and its click go to different ones"
    if not RedisServer.available():
        reason = "redis-server is not installed (apt-get install redis-server)"
        return {
            "replicas-1": _skipped(one_text, load, reason),
            "replicas-2": _skipped(two_text, load, reason),
        }
    bot_one = await runner.measure("bot", load, latency=latencies(c.latency), redis=True)
    if bot_one.error:
        reason = f"the bot does not run with ML_CHATOPS_STATE=redis://...: {bot_one.error}"
        return {
            "replicas-1": _skipped(one_text, load, reason),
            "replicas-2": _skipped(two_text, load, reason),
        }
    base_one = await runner.measure("baseline", load, latency={})
    base_two = await runner.measure("baseline", load, latency={}, replicas=2)
    bot_two = await runner.measure(
        "bot", load, latency=latencies(c.latency), replicas=2, redis=True
    )
    one = _entry(one_text, load, bot_one, base_one)
    two = _entry(two_text, load, bot_two, base_two)
    bot_scale = ratio(_throughput(bot_two), _throughput(bot_one))
    base_scale = ratio(_throughput(base_two), _throughput(base_one))
    two["scaling"] = {
        "bot": bot_scale,
        "baseline": base_scale,
        "ratio": ratio(bot_scale, base_scale),
    }
    two["notes"].append(
        "two replicas and the bench share 2 cores: the baseline's scaling is this machine's ceiling"
    )
    return {"replicas-1": one, "replicas-2": two}
