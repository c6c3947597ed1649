"""Metrics: one registry per runtime, Elasticsearch latency labels, audit-derived counters."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import Bench, text_of
from elasticsearch import AsyncElasticsearch
from prometheus_client import REGISTRY
from support.botproc import free_port, http_get

from bot.adapters.audit import Delivery, Spool, SpooledSink
from bot.adapters.elasticsearch import ClusterGateway, ElasticError
from bot.adapters.metrics import Metrics, MetricsSink
from bot.bootstrap import InFlight, Runtime, build_runtime
from bot.emulator import Emulator, demo_state
from bot.emulator.faults import FailRule
from bot.settings import Settings


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    """One sample's value from this runtime's registry."""
    return metrics.registry.get_sample_value(name, labels)


def test_each_runtime_has_its_own_registry(tmp_path: Path) -> None:
    def runtime(n: int) -> Runtime:
        return build_runtime(
            Settings(
                _env_file=None,  # type: ignore[call-arg]
                elasticsearch_url="http://127.0.0.1:9",
                ml_chatops_state=f"sqlite:///{tmp_path / f'{n}.db'}",
            )
        )

    first, second = runtime(1), runtime(2)  # no duplicate-registration error
    first.metrics.command("/ml-stop", "proposed")
    labels = {"command": "/ml-stop", "outcome": "proposed"}
    assert sample(first.metrics, "ml_chatops_commands_total", **labels) == 1.0
    assert sample(second.metrics, "ml_chatops_commands_total", **labels) is None
    assert REGISTRY.get_sample_value("ml_chatops_pending_actions") is None  # not global
    asyncio.run(first.close())
    asyncio.run(second.close())


async def test_elasticsearch_calls_are_timed_by_endpoint_and_status() -> None:
    emulator = Emulator(demo_state())
    url = await emulator.start()
    metrics = Metrics()

    def gateway(address: str, timeout: float = 5.0) -> ClusterGateway:
        client = AsyncElasticsearch(address, max_retries=0, request_timeout=timeout)
        return ClusterGateway("prod", client, timeout, metrics=metrics)

    def count(status: str) -> float | None:
        return sample(
            metrics,
            "ml_chatops_elasticsearch_request_duration_seconds_count",
            cluster="prod",
            endpoint="info",
            status=status,
        )

    up = gateway(url)
    assert await up.ping() == "9.1.0"
    assert count("200") == 1.0

    emulator.faults.fails.append(FailRule(count=1, status=503, endpoint="root"))
    with pytest.raises(ElasticError):
        await up.ping()
    assert count("503") == 1.0

    emulator.faults.latency["root"] = 1.0
    slow = gateway(url, timeout=0.2)
    with pytest.raises(ElasticError, match="did not answer"):
        await slow.ping()
    assert count("timeout") == 1.0
    emulator.faults.reset()

    down = gateway(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ElasticError, match="cannot reach"):
        await down.ping()
    assert count("unreachable") == 1.0

    for g in (up, slow, down):
        await g.close()
    await emulator.stop()


async def test_audit_events_drive_the_decision_approval_and_stop_counters() -> None:
    metrics = Metrics()
    sink = MetricsSink(metrics)

    def doc(action: str, outcome: str, **fields: object) -> dict[str, object]:
        return {"event": {"action": action, "outcome": outcome}, "ml_chatops": fields}

    await sink.write(doc("decision", "success"))
    await sink.write(doc("decision", "failure", explanation="denied: no role"))
    await sink.write(doc("confirm", "failure", explanation="denied: role removed"))
    await sink.write(doc("confirm", "failure", error="not requester"))  # not a decision
    await sink.write(doc("approve", "success"))
    await sink.write(doc("approve", "failure", error="self"))
    await sink.write(doc("reject", "success"))
    await sink.write(doc("elasticsearch.stop", "success", cluster="prod"))
    await sink.write(doc("elasticsearch.stop", "failure", cluster="prod"))
    await sink.write(doc("propose", "success"))  # not counted anywhere

    assert sample(metrics, "ml_chatops_policy_decisions_total", result="allowed") == 1.0
    assert sample(metrics, "ml_chatops_policy_decisions_total", result="denied") == 2.0
    for result in ("approved", "refused", "rejected"):
        assert sample(metrics, "ml_chatops_approvals_total", result=result) == 1.0
    assert sample(metrics, "ml_chatops_stops_total", cluster="prod", outcome="success") == 1.0
    assert sample(metrics, "ml_chatops_stops_total", cluster="prod", outcome="failure") == 1.0


async def test_inflight_waits_for_work_started_while_waiting() -> None:
    inflight = InFlight()
    finished: list[str] = []

    async def work(name: str, seconds: float, then: str | None = None) -> None:
        await asyncio.sleep(seconds)
        if then:
            inflight.spawn(work(then, 0.05))
        finished.append(name)

    inflight.spawn(work("first", 0.05, then="second"))
    assert len(inflight) == 1
    assert await inflight.wait(5.0) is True
    assert finished == ["first", "second"] and len(inflight) == 0

    inflight.spawn(work("slow", 10))
    assert await inflight.wait(0.05) is False
    assert len(inflight) == 1


def test_metrics_after_a_denied_and_an_allowed_stop(bench: Bench) -> None:
    denied = bench.command("ner-prod", user="U0NOBODY")
    assert "ml_stop.confirm" not in text_of(denied)
    bench.command("ner-prod")
    bench.confirm()

    metrics = bench.runtime.metrics
    assert sample(metrics, "ml_chatops_policy_decisions_total", result="denied") == 1.0
    assert sample(metrics, "ml_chatops_policy_decisions_total", result="allowed") == 1.0
    assert sample(metrics, "ml_chatops_stops_total", cluster="default", outcome="success") == 1.0
    for kind in ("command", "block_actions"):
        acks = sample(
            metrics, "ml_chatops_slack_ack_duration_seconds_count", kind=kind, transport="http"
        )
        assert acks is not None and acks >= 1
    # The listener that ran the stop is done, so nothing is in flight any more.
    bench.slack.wait_for(lambda: len(bench.runtime.inflight) == 0)
    assert sample(metrics, "ml_chatops_inflight_listeners") == 0.0


class _Unreachable:
    """A remote audit destination that is down: every document must be retried."""

    name = "down"

    async def deliver(self, docs: Sequence[dict[str, Any]]) -> list[tuple[Delivery, str]]:
        return [(Delivery.RETRY, "connection refused")] * len(docs)


def test_the_audit_spool_gauge_counts_undelivered_events(bench: Bench, tmp_path: Path) -> None:
    sink = SpooledSink(_Unreachable(), Spool(tmp_path / "spool", "down"), first_delay=60)
    bench.runtime.audit.sinks.append(sink)
    bench.command("ner-prod")  # the command, a decision and a proposal: three audit events

    text = http_get(bench.bot_url + "/metrics").body
    assert "ml_chatops_audit_spool_events 3.0" in text.splitlines()
    bench.run(sink.close())


def test_every_exported_metric_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(ml_chatops_\w+)`", readme))
    exported = {
        m.name + ("_total" if m.type == "counter" else "") for m in Metrics().registry.collect()
    }
    assert exported == documented
