"""Kinds of action are types; the store's JSON stays readable for actions stored before."""

from __future__ import annotations

from bot.core.model import (
    Deployment,
    PendingAction,
    StartOutcome,
    StartSpec,
    StopOutcome,
    StopSpec,
)

# A start as the bot stored it before StartSpec: a StopSpec-shaped spec and a "kind" field.
OLD_START = {
    "id": "a1",
    "requester_id": "U1",
    "requester_name": "u1",
    "team_id": "T1",
    "channel_id": "C1",
    "cluster": "default",
    "spec": {
        "expression": "ner-prod",
        "force": False,
        "finish_pending_work": False,
        "allow_no_match": True,
        "reason": "restart after action a0",
    },
    "targets": [{"deployment_id": "ner-prod", "model_id": "ner", "state": "stopped"}],
    "created_at": 1.0,
    "expires_at": 2.0,
    "decision": "allowed",
    "state": "succeeded",
    "outcomes": [{"deployment_id": "ner-prod", "ok": True, "message": "started"}],
    "kind": "start",
    "source_action_id": "a0",
}


def test_a_start_stored_before_typed_kinds_still_loads() -> None:
    action = PendingAction.from_json(OLD_START)
    assert action.spec == StartSpec("ner-prod", reason="restart after action a0")
    assert action.kind == "start"
    assert action.outcomes == (StartOutcome("ner-prod", True, "started"),)


def test_a_stored_action_without_kind_is_a_stop() -> None:
    old = {**OLD_START, "kind": None, "outcomes": []}
    del old["kind"]
    action = PendingAction.from_json(old)
    assert isinstance(action.spec, StopSpec) and action.kind == "stop"


def test_both_kinds_round_trip() -> None:
    target = (Deployment("ner-prod", "ner", "started"),)
    base = PendingAction.from_json(OLD_START)
    start = PendingAction.from_json(base.to_json())
    assert start == base and start.to_json()["kind"] == "start"
    stop = PendingAction(
        "a2",
        "U1",
        "u1",
        "T1",
        "C1",
        "default",
        StopSpec("ner-*", force=True),
        target,
        1,
        2,
        "ok",
        outcomes=(StopOutcome("ner-prod", True, "stopped (verified)", verified=True),),
    )
    assert PendingAction.from_json(stop.to_json()) == stop
