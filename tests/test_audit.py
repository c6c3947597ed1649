"""Audit: ECS documents, the spool, the Elasticsearch sink against the emulator, the channel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from bot.adapters.audit import (
    AuditEvent,
    AuditLog,
    ChannelDeliverer,
    Delivery,
    ElasticsearchDeliverer,
    MemorySink,
    PermanentDeliveryError,
    Spool,
    SpooledSink,
    summary_line,
)
from bot.emulator import Emulator


def event(n: int, action: str = "stop", outcome: str = "success", **extra: Any) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome=outcome,
        user_id="U0ADMIN1",
        user_name="alice",
        team_id="T0TEAM",
        channel_id="C0INCIDENTS",
        cluster="prod",
        action_id=f"a{n}",
        deployments=("elser-prod",),
        extra=extra,
    )


class Flaky:
    """A deliverer that fails while `down` and records what it stored."""

    name = "flaky"

    def __init__(self) -> None:
        self.down = True
        self.stored: list[dict[str, Any]] = []
        self.reject_actions: set[str] = set()

    async def deliver(self, docs: Sequence[dict[str, Any]]) -> list[tuple[Delivery, str]]:
        if self.down:
            return [(Delivery.RETRY, "down")] * len(docs)
        out = []
        for doc in docs:
            if doc["ml_chatops"]["action_id"] in self.reject_actions:
                out.append((Delivery.REJECT, "400 mapper_parsing_exception: bad"))
            else:
                self.stored.append(doc)
                out.append((Delivery.OK, ""))
        return out


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def test_ecs_document_carries_every_field() -> None:
    ev = event(
        1,
        force=True,
        finish_pending_work=False,
        reason="INC-42",
        duration_s=1.25,
        status=409,
        message="used by pipelines",
        approvers=["U0ADMIN2"],
    )
    doc = AuditEvent(**{**ev.__dict__, "outcome": "failure"}).to_ecs(0.0, "e-1")
    assert doc["@timestamp"] == "1970-01-01T00:00:00.000+00:00"
    assert doc["event"] == {
        "id": "e-1",
        "kind": "event",
        "type": ["change"],
        "action": "stop",
        "outcome": "failure",
        "dataset": "ml_chatops.audit",
        "duration": 1_250_000_000,
        "reason": "INC-42",
    }
    assert doc["user"] == {"id": "U0ADMIN1", "name": "alice"}
    assert doc["slack"] == {"team": {"id": "T0TEAM"}, "channel": {"id": "C0INCIDENTS"}}
    fields = doc["ml_chatops"]
    assert fields["cluster"] == "prod" and fields["deployment_ids"] == ["elser-prod"]
    assert fields["action_id"] == "a1" and fields["flags"] == ["--force"]
    assert fields["status"] == 409 and fields["approvers"] == ["U0ADMIN2"]
    assert doc["error"] == {"message": "used by pipelines"}
    assert event(2, action="decision").to_ecs(0.0)["event"]["type"] == ["info"]


async def test_failing_sink_neither_raises_nor_starves_the_others() -> None:
    class Broken:
        async def write(self, doc: dict[str, Any]) -> None:
            raise OSError("disk full")

    memory = MemorySink()
    log = AuditLog([Broken(), memory], clock=time.time)
    await log.record(event(1))
    assert len(memory.docs) == 1


async def test_events_wait_in_the_spool_and_survive_a_restart(tmp_path: Path) -> None:
    flaky = Flaky()
    sink = SpooledSink(flaky, Spool(tmp_path, "es"), first_delay=0.05, max_delay=0.1)
    log = AuditLog([sink], clock=time.time)
    for n in range(3):
        await log.record(event(n))  # returns at once although the sink is down
    await wait_until(lambda: sink.failures >= 1)
    assert sink.pending == 3
    spooled = (tmp_path / "es.0.jsonl").read_text().splitlines()
    assert [json.loads(line)["ml_chatops"]["action_id"] for line in spooled] == ["a0", "a1", "a2"]
    await log.close()  # the process stops; the file stays

    again = Flaky()
    again.down = False
    restarted = SpooledSink(again, Spool(tmp_path, "es"), first_delay=0.05)
    await restarted.start()
    await wait_until(lambda: len(again.stored) == 3)
    assert [d["ml_chatops"]["action_id"] for d in again.stored] == ["a0", "a1", "a2"]
    await wait_until(lambda: (tmp_path / "es.0.jsonl").read_text() == "")
    await restarted.close()


async def test_rejected_events_are_kept_aside_not_lost(tmp_path: Path) -> None:
    flaky = Flaky()
    flaky.down = False
    flaky.reject_actions = {"a1"}
    sink = SpooledSink(flaky, Spool(tmp_path, "es"))
    for n in range(3):
        await sink.write(event(n).to_ecs(0.0))
    await wait_until(lambda: sink.pending == 0)
    assert [d["ml_chatops"]["action_id"] for d in flaky.stored] == ["a0", "a2"]
    rejected = (tmp_path / "es.0.rejected.jsonl").read_text().splitlines()
    assert json.loads(rejected[0])["doc"]["ml_chatops"]["action_id"] == "a1"
    assert "mapper_parsing_exception" in json.loads(rejected[0])["reason"]
    await sink.close()


def test_spool_slots_are_per_process_and_orphans_are_adopted(tmp_path: Path) -> None:
    first, second = Spool(tmp_path, "es"), Spool(tmp_path, "es")
    first.open()
    second.open()
    assert first.path is not None and second.path is not None
    assert (first.path.name, second.path.name) == ("es.0.jsonl", "es.1.jsonl")
    second.append({"n": 1})
    second.close()  # a replica died with an event in its spool
    first.close()
    third = Spool(tmp_path, "es")
    third.open()  # takes slot 0 and adopts slot 1's file
    assert third.pending == [{"n": 1}] and not (tmp_path / "es.1.jsonl").exists()
    third.close()


# ---- against the emulator -------------------------------------------------------------------


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[Emulator, str]]:
    emu = Emulator()
    url = await emu.start()
    yield emu, url
    await emu.stop()


async def test_index_sink_creates_the_index_and_stores_every_event(
    emulator: tuple[Emulator, str], tmp_path: Path
) -> None:
    emu, url = emulator
    client = AsyncElasticsearch(url)
    sink = SpooledSink(
        ElasticsearchDeliverer(client, "ml-chatops-audit", data_stream=False),
        Spool(tmp_path, "es"),
    )
    log = AuditLog([sink], clock=time.time)
    for n in range(5):
        await log.record(event(n))
    await wait_until(lambda: sink.pending == 0)
    index = emu.documents.indices["ml-chatops-audit"]
    assert index.mappings["properties"]["event"]["properties"]["action"] == {"type": "keyword"}
    assert sorted(d["ml_chatops"]["action_id"] for d in index.docs.values()) == [
        f"a{n}" for n in range(5)
    ]
    assert all(doc_id == d["event"]["id"] for doc_id, d in index.docs.items())
    await log.close()
    await client.close()


async def test_data_stream_sink_installs_its_template(
    emulator: tuple[Emulator, str], tmp_path: Path
) -> None:
    emu, url = emulator
    client = AsyncElasticsearch(url)
    deliverer = ElasticsearchDeliverer(client, "logs-ml_chatops.audit-default", data_stream=True)
    sink = SpooledSink(deliverer, Spool(tmp_path, "es"))
    await sink.write(event(1).to_ecs(time.time()))
    await wait_until(lambda: sink.pending == 0)
    stream = emu.documents.data_streams["logs-ml_chatops.audit-default"]
    assert stream.template == "logs-ml_chatops.audit-default-ml-chatops"
    assert len(emu.documents.indices[stream.indices[0]].docs) == 1
    await sink.close()
    await client.close()


async def test_spool_replays_after_the_cluster_was_down(
    emulator: tuple[Emulator, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, url = emulator
    port = int(url.rsplit(":", 1)[1])
    client = AsyncElasticsearch(url, max_retries=0)
    sink = SpooledSink(
        ElasticsearchDeliverer(client, "audit", data_stream=False),
        Spool(tmp_path, "es"),
        first_delay=0.05,
        max_delay=0.2,
    )
    log = AuditLog([sink], clock=time.time)
    await log.record(event(0))
    await wait_until(lambda: sink.pending == 0)
    await emu.stop()  # the cluster goes away
    # Recording never waits on the cluster: with every delivery held, the records return
    # (the wait_for only guards against a hang) and the events wait in the spool.
    released = asyncio.Event()
    deliver = sink.deliverer.deliver

    async def held_deliver(docs: list[dict[str, Any]]) -> Any:
        await released.wait()
        return await deliver(docs)

    monkeypatch.setattr(sink.deliverer, "deliver", held_deliver)
    for n in range(1, 4):
        await asyncio.wait_for(log.record(event(n)), timeout=30)
    assert sink.pending == 3 and not released.is_set()
    released.set()
    await wait_until(lambda: sink.failures >= 2)
    assert sink.pending == 3
    await emu.start(port=port)  # back, with its documents
    await wait_until(lambda: sink.pending == 0)
    docs = emu.documents.indices["audit"].docs.values()
    assert sorted(d["ml_chatops"]["action_id"] for d in docs) == ["a0", "a1", "a2", "a3"]
    await log.close()
    await client.close()


async def test_bulk_item_failures_are_retried_and_replays_do_not_duplicate(
    emulator: tuple[Emulator, str], tmp_path: Path
) -> None:
    emu, url = emulator
    client = AsyncElasticsearch(url)
    deliverer = ElasticsearchDeliverer(client, "audit", data_stream=False)
    spool = Spool(tmp_path, "es")
    sink = SpooledSink(deliverer, spool, first_delay=0.05)
    await sink.start()
    await sink.write(event(0).to_ecs(0.0))
    await wait_until(lambda: sink.pending == 0)
    emu.documents.item_faults.append([1, 429])  # the next item is rejected (429)
    docs = [event(n).to_ecs(0.0) for n in (1, 2)]
    results = await deliverer.deliver(docs)
    assert [r[0] for r in results] == [Delivery.RETRY, Delivery.OK]
    # The spool still holds both (as after a crash mid-delivery): replaying is harmless.
    for doc in docs:
        await sink.write(doc)
    await wait_until(lambda: sink.pending == 0)
    stored = emu.documents.indices["audit"].docs
    assert sorted(d["ml_chatops"]["action_id"] for d in stored.values()) == ["a0", "a1", "a2"]
    sent = [i for r in emu.requests if r.endpoint == "bulk" for i in _bulk_items(r.body)]
    # a2 was stored by the direct delivery, sent again from the spool, answered 409 and
    # counted as delivered: two sends, one document.
    assert sent.count(docs[1]["event"]["id"]) == 2
    await sink.close()
    await client.close()


def _bulk_items(body: Any) -> list[str]:
    lines = [json.loads(x) for x in str(body).splitlines() if x.strip()]
    return [line["create"]["_id"] for line in lines if "create" in line]


# ---- the audit channel ----------------------------------------------------------------------


async def test_channel_gets_one_line_per_mutating_event(tmp_path: Path) -> None:
    posted: list[tuple[str, str]] = []
    refuse = {"a3"}

    async def post(channel: str, text: str) -> None:
        if any(f"`{a}`" in text for a in refuse):
            raise PermanentDeliveryError("chat.postMessage: not_in_channel")
        posted.append((channel, text))

    sink = SpooledSink(ChannelDeliverer(post, "C0AUDIT"), Spool(tmp_path, "slack"))
    await sink.write(event(1, action="decision").to_ecs(0.0))
    await sink.write(event(2, force=True, reason="INC-7").to_ecs(0.0))
    await sink.write(event(3).to_ecs(0.0))
    await wait_until(lambda: sink.pending == 0)
    assert posted == [
        (
            "C0AUDIT",
            "✅ stop `elser-prod` on `prod` by <@U0ADMIN1> (--force) — reason: INC-7 · action `a2`",
        )
    ]
    assert (tmp_path / "slack.0.rejected.jsonl").exists()
    await sink.close()


def test_summary_line_of_a_failure_says_why() -> None:
    doc = event(5, outcome="failure", message="used by pipelines").to_ecs(0.0)
    assert summary_line(doc) == (
        "❌ stop `elser-prod` on `prod` by <@U0ADMIN1>: used by pipelines · action `a5`"
    )
