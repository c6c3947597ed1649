"""The audit index on the (emulated) cluster receives every event of a real /ml-stop flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import ROLE_MAP, Bench, text_of


@pytest.fixture
def role_map_text(tmp_path: Path) -> str:
    spool = tmp_path / "spool"
    return ROLE_MAP + f"audit: {{index: ml-chatops-audit, spool: '{spool}'}}\n"


def test_every_event_reaches_the_audit_index(bench: Bench) -> None:
    bench.command("ner-prod --reason INC-9")
    bench.confirm()
    bench.command("nothing-like-this")  # a failure is audited too

    def indexed() -> dict[str, dict[str, object]]:
        index = bench.emulator.documents.indices.get("ml-chatops-audit")
        return dict(index.docs) if index else {}

    expected = {d["event"]["id"]: d for d in bench.audit.docs}
    bench.slack.wait_for(lambda: set(indexed()) >= set(expected) or None, timeout=10)
    stored = indexed()
    assert set(stored) == set(expected)  # nothing lost, nothing twice
    assert all(stored[i] == expected[i] for i in expected)
    actions = {d["event"]["action"] for d in expected.values()}
    assert {"decision", "confirm", "stop"} <= actions
    stop = next(d for d in stored.values() if d["event"]["action"] == "stop")
    assert stop["event"]["reason"] == "INC-9" and stop["user"]["id"] == "U0ADMIN1"
    assert stop["ml_chatops"]["deployment_ids"] == ["ner-prod"]


def _audit(bench: Bench, text: str) -> dict[str, Any]:
    return bench.command(text, command="/ml-audit")


def test_an_incident_is_found_by_the_reasons_that_name_it(bench: Bench) -> None:
    # Issue 20: no `incidents:` config here, so only the reasons carry the id.
    bench.command('ner-prod --reason "INC-4711: NER OOM"')
    bench.confirm()
    bench.command("search-e5 --reason inc-4711", channel="C0OTHER", user="U0ADMIN2")
    bench.command("elser-search --reason INC-47110")  # another incident
    text = text_of(_audit(bench, "--incident INC-4711"))
    assert "ner-prod" in text and "search-e5" in text
    assert "elser-search" not in text
    assert "incidents:" in text and "reason" in text  # where ids come from
    nothing = text_of(_audit(bench, "--incident INC-1"))
    assert "No ML actions for incident INC-1" in nothing and "incidents:" in nothing


def test_the_text_view_names_every_deployment_and_no_reason_reads_cleanly(bench: Bench) -> None:
    bench.command("ner-prod,search-e5")
    bench.confirm()
    reply = _audit(bench, "")
    rows = "\n".join(b["text"]["text"] for b in reply["blocks"] if b["type"] == "section")
    assert "`ner-prod`" in rows and "`search-e5`" in rows
    assert "no reason given" in rows and "__" not in rows
