"""The audit index on the (emulated) cluster receives every event of a real /ml-stop flow."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROLE_MAP, Bench


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
