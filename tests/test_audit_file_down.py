"""Audit is never silently lost: while the audit file cannot be written, a real stop still
runs, its events wait in the spool (counted in /metrics, /readyz fails), the channel is told
once that the audit trail is delayed, and the events reach the file, in order, once it can be
written again."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from conftest import Bench, text_of

from bot.adapters.audit import FallbackFileSink, Spool
from bot.slack.notices import channel_poster


def _get(bench: Bench, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(bench.bot_url + path, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _backlog(bench: Bench) -> float:
    _, text = _get(bench, "/metrics")
    line = next(x for x in text.splitlines() if x.startswith("ml_chatops_audit_spool_events "))
    return float(line.split()[1])


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_stop_while_the_audit_file_cannot_be_written_is_spooled_then_written(
    bench: Bench, tmp_path: Path
) -> None:
    folder = tmp_path / "audit"
    folder.mkdir()
    path = folder / "audit.jsonl"
    sink = FallbackFileSink(
        path,
        Spool(tmp_path / "spool", "file"),
        notify=channel_poster(bench.runtime.slack),
        first_delay=0.05,
        max_delay=0.2,
    )
    bench.runtime.audit.sinks.insert(0, sink)
    bench.command("--help")  # one event reaches the file while it can be written
    assert _lines(path) and bench.run(_sink_health(sink)) == "ok"

    shutil.rmtree(folder)  # the directory is gone: every append fails
    preview = bench.command("ner-prod --reason audit-down")
    assert "ml_stop.confirm" in text_of(preview)
    result = bench.confirm()
    assert "stopped" in text_of(result)  # the action's truth first: it ran

    assert sink.pending > 0 and _backlog(bench) >= sink.pending
    status, body = _get(bench, "/readyz")
    assert status == 503 and "audit" in body and "cannot write" in body, body
    # Told once, in the channel the action belongs to, however many events were spooled.
    notices = bench.slack.wait_for(
        lambda: [m for m in bench.slack.messages("C0INCIDENTS") if "audit trail" in m["text"]]
    )
    assert len(notices) == 1 and "delayed" in notices[0]["text"]
    spooled = [d["event"]["action"] for d in sink.spool.pending]  # type: ignore[index]
    assert "elasticsearch.stop" in spooled, spooled

    folder.mkdir()  # writable again: the backlog drains, in order
    bench.slack.wait_for(lambda: sink.pending == 0 or None, timeout=10)
    written = [d["event"]["action"] for d in _lines(path)]  # type: ignore[index]
    assert written[-len(spooled) :] == spooled
    assert _backlog(bench) == 0
    status, body = _get(bench, "/readyz")
    assert status == 200, body
    assert len([m for m in bench.slack.messages("C0INCIDENTS") if "audit trail" in m["text"]]) == 1


async def _sink_health(sink: FallbackFileSink) -> str:
    return sink.health()
