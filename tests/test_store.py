"""SQLite store: round trips and atomic transitions under concurrency."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from bot.adapters.store_sqlite import SQLiteStore, open_store
from bot.core.model import ActionState, Deployment, MessageRef, PendingAction, StopOutcome, StopSpec


def make_action(action_id: str = "a1", expires_at: float = 2000.0) -> PendingAction:
    return PendingAction(
        id=action_id,
        requester_id="U1",
        requester_name="alice",
        team_id="T1",
        channel_id="C1",
        cluster="prod",
        spec=StopSpec(expression="elser-*", force=True, reason="INC-1"),
        targets=(Deployment("elser-prod", ".elser_model_2", "started", pipelines=("p1",)),),
        created_at=1000.0,
        expires_at=expires_at,
        decision="allowed: role ml-admin via user U1",
        unmatched=("typo",),
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "state.db")


async def test_round_trip_keeps_every_field(store: SQLiteStore) -> None:
    action = make_action()
    await store.put(action)
    assert await store.get("a1") == action
    assert await store.get("missing") is None


async def test_transition_is_compare_and_set(store: SQLiteStore) -> None:
    await store.put(make_action())
    moved = await store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING, actor_id="U1")
    assert moved is not None and moved.state is ActionState.EXECUTING and moved.actor_id == "U1"
    again = await store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert again is None
    outcome = StopOutcome("elser-prod", ok=True, message="stopped", seconds=0.5)
    done = await store.transition(
        "a1", ActionState.EXECUTING, ActionState.SUCCEEDED, outcomes=(outcome,), finished_at=5.0
    )
    assert done is not None
    assert (await store.get("a1")) == done
    assert done.outcomes == (outcome,)


async def test_update_changes_fields_not_state(store: SQLiteStore) -> None:
    await store.put(make_action())
    ref = MessageRef(channel_id="C1", response_url="http://x/r/1")
    updated = await store.update("a1", message=ref)
    assert updated is not None and updated.message == ref
    with pytest.raises(ValueError):
        await store.update("a1", state=ActionState.CANCELLED)


async def test_many_tasks_race_one_action_exactly_one_wins(store: SQLiteStore) -> None:
    await store.put(make_action())
    results = await asyncio.gather(
        *(
            store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING, actor_id=f"U{i}")
            for i in range(50)
        )
    )
    assert sum(r is not None for r in results) == 1


def test_two_connections_race_exactly_one_wins(tmp_path: Path) -> None:
    """Two store objects on one file stand in for two processes sharing the database."""
    path = tmp_path / "shared.db"
    first, second = SQLiteStore(path), SQLiteStore(path)
    asyncio.run(first.put(make_action()))
    wins: list[bool] = []

    def click(store: SQLiteStore) -> None:
        for _ in range(20):
            moved = asyncio.run(store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING))
            wins.append(moved is not None)

    threads = [threading.Thread(target=click, args=(s,)) for s in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


async def test_due_lists_only_expired_proposed(store: SQLiteStore) -> None:
    await store.put(make_action("old", expires_at=100.0))
    await store.put(make_action("new", expires_at=10_000.0))
    await store.put(make_action("done", expires_at=100.0))
    await store.transition("done", ActionState.PROPOSED, ActionState.CANCELLED)
    assert [a.id for a in await store.due(500.0)] == ["old"]


def test_open_store_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unsupported store"):
        open_store("postgres://x")
    assert isinstance(open_store("sqlite:///:memory:"), SQLiteStore)


async def test_put_exclusive_refuses_while_a_live_action_holds_a_key(store: SQLiteStore) -> None:
    first = make_action("first", expires_at=2000.0)
    assert await store.put_exclusive(first, ["default/elser-prod"], now=1500.0) is None
    second = make_action("second", expires_at=2000.0)
    holder = await store.put_exclusive(second, ["default/x", "default/elser-prod"], now=1500.0)
    assert holder is not None and holder.id == "first"
    assert await store.get("second") is None
    # An expired holder no longer holds its lock...
    assert await store.put_exclusive(second, ["default/elser-prod"], now=2500.0) is None
    # ...and neither does a finished one.
    await store.transition("second", ActionState.PROPOSED, ActionState.CANCELLED)
    third = make_action("third", expires_at=9000.0)
    assert await store.put_exclusive(third, ["default/elser-prod"], now=2500.0) is None


async def test_executing_action_keeps_its_lock_past_expiry(store: SQLiteStore) -> None:
    await store.put_exclusive(make_action("run", expires_at=2000.0), ["k"], now=1000.0)
    await store.transition("run", ActionState.PROPOSED, ActionState.EXECUTING)
    holder = await store.put_exclusive(make_action("late", expires_at=9000.0), ["k"], now=5000.0)
    assert holder is not None and holder.id == "run"


async def test_many_tasks_racing_for_one_lock_one_wins(store: SQLiteStore) -> None:
    results = await asyncio.gather(
        *(store.put_exclusive(make_action(f"a{i}"), ["k"], now=1500.0) for i in range(30))
    )
    assert sum(r is None for r in results) == 1


async def test_flags_round_trip(store: SQLiteStore) -> None:
    assert await store.get_flag("freeze") is None
    await store.set_flag("freeze", {"by": "U1", "since": 1.0})
    assert await store.get_flag("freeze") == {"by": "U1", "since": 1.0}
    await store.set_flag("freeze", None)
    assert await store.get_flag("freeze") is None


async def test_lock_more_extends_or_names_the_holder(store: SQLiteStore) -> None:
    await store.put_exclusive(make_action("mine", expires_at=2000.0), ["a"], now=1000.0)
    await store.put_exclusive(make_action("theirs", expires_at=2000.0), ["b"], now=1000.0)
    holder = await store.lock_more("mine", ["a", "b"], now=1500.0)
    assert holder is not None and holder.id == "theirs"
    assert await store.lock_more("mine", ["a", "c"], now=1500.0) is None
    late = await store.put_exclusive(make_action("late", expires_at=9000.0), ["c"], now=1500.0)
    assert late is not None and late.id == "mine"
