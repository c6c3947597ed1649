"""Redis store against a real redis-server; races and owner leases on both backends."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from support.redis_server import redis_server, redis_url
from test_store import make_action

from bot.adapters.store_redis import RedisStore
from bot.adapters.store_sqlite import (
    ActionStore,
    SQLiteStore,
    open_store,
    owner_alive,
    process_owner,
)
from bot.core.model import ActionState, MessageRef, PendingAction, StopOutcome

__all__ = ["redis_server", "redis_url"]

pytestmark = pytest.mark.redis

FOREIGN = "elsewhere|pid:[1]|4242|dead0000"  # an owner on another host


@pytest.fixture
async def rstore(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url)
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "redis"])
async def any_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[ActionStore]:
    store: ActionStore = (
        SQLiteStore(tmp_path / "s.db") if request.param == "sqlite" else open_store(redis_url)
    )
    yield store
    await store.close()


def other_store(kind: ActionStore, tmp_path: Path, redis_url: str, **kw: object) -> ActionStore:
    """A second store on the same backend, as another replica would open it."""
    if isinstance(kind, SQLiteStore):
        return SQLiteStore(tmp_path / "s.db", **kw)  # type: ignore[arg-type]
    return RedisStore.from_url(redis_url, **kw)


async def test_open_store_picks_redis_for_redis_urls(redis_url: str) -> None:
    store = open_store(redis_url)
    assert isinstance(store, RedisStore)
    assert await store.ping()
    await store.close()


async def test_round_trip_keeps_every_field(rstore: RedisStore) -> None:
    action = make_action()
    await rstore.put(action)
    assert await rstore.get("a1") == action
    assert await rstore.get("missing") is None
    with pytest.raises(ValueError, match="exists"):
        await rstore.put(action)


async def test_transition_is_compare_and_set(rstore: RedisStore) -> None:
    await rstore.put(make_action())
    moved = await rstore.transition(
        "a1", ActionState.PROPOSED, ActionState.EXECUTING, actor_id="U1"
    )
    assert moved is not None and moved.actor_id == "U1"
    assert await rstore.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING) is None
    outcome = StopOutcome("elser-prod", ok=True, message="stopped", seconds=0.5)
    done = await rstore.transition(
        "a1", ActionState.EXECUTING, ActionState.SUCCEEDED, outcomes=(outcome,), finished_at=5.0
    )
    assert done is not None and await rstore.get("a1") == done


async def test_update_changes_fields_not_state(rstore: RedisStore) -> None:
    await rstore.put(make_action())
    ref = MessageRef(channel_id="C1", response_url="http://x/r/1")
    updated = await rstore.update("a1", message=ref)
    assert updated is not None and (await rstore.get("a1")) == updated
    with pytest.raises(ValueError):
        await rstore.update("a1", state=ActionState.CANCELLED)


async def test_final_actions_expire_from_redis_after_retention(redis_url: str) -> None:
    store = RedisStore.from_url(redis_url, retain_seconds=60)
    await store.put(make_action())
    assert await store.client.ttl("ml-chatops:a:a1") == -1  # pending: kept
    await store.transition("a1", ActionState.PROPOSED, ActionState.CANCELLED)
    assert 0 < await store.client.ttl("ml-chatops:a:a1") <= 60
    await store.close()


async def test_many_tasks_race_one_action_exactly_one_wins(any_store: ActionStore) -> None:
    await any_store.put(make_action())
    results = await asyncio.gather(
        *(
            any_store.transition(
                "a1", ActionState.PROPOSED, ActionState.EXECUTING, actor_id=f"U{i}"
            )
            for i in range(50)
        )
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await any_store.get("a1")
    assert stored is not None and stored.actor_id == winners[0].actor_id


async def test_updates_racing_a_transition_lose_nothing(any_store: ActionStore) -> None:
    """Message-ref updates and the claim interleave; the final record has both."""
    await any_store.put(make_action())
    ref = MessageRef(channel_id="C1", ts="1.2")
    results = await asyncio.gather(
        *(any_store.update("a1", message=ref) for _ in range(20)),
        any_store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING, actor_id="U9"),
    )
    assert all(r is not None for r in results)
    final = await any_store.get("a1")
    assert final is not None and final.message == ref and final.actor_id == "U9"
    assert final.state is ActionState.EXECUTING


async def test_fifty_clients_race_one_action_exactly_one_wins(redis_url: str) -> None:
    """Fifty connections, as fifty replicas would hold, racing in one event loop."""
    stores = [RedisStore.from_url(redis_url) for _ in range(50)]
    await stores[0].put(make_action())
    await asyncio.gather(*(s.ping() for s in stores))  # connect first, then race
    results = await asyncio.gather(
        *(s.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING) for s in stores)
    )
    assert sum(r is not None for r in results) == 1
    await asyncio.gather(*(s.close() for s in stores))


def test_threads_with_their_own_connections_race_exactly_one_wins(redis_url: str) -> None:
    """Four clients on four event loops stand in for four replicas."""
    asyncio.run(_put(redis_url, make_action()))
    wins: list[bool] = []

    def replica() -> None:
        async def clicks() -> None:
            store = RedisStore.from_url(redis_url)
            for _ in range(10):
                moved = await store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
                wins.append(moved is not None)
            await store.close()

        asyncio.run(clicks())

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 40 and wins.count(True) == 1


async def _put(url: str, action: PendingAction) -> None:
    store = RedisStore.from_url(url)
    await store.put(action)
    await store.close()


async def test_due_lists_only_expired_proposed(rstore: RedisStore) -> None:
    await rstore.put(make_action("old", expires_at=100.0))
    await rstore.put(make_action("new", expires_at=10_000.0))
    await rstore.put(make_action("done", expires_at=100.0))
    await rstore.transition("done", ActionState.PROPOSED, ActionState.CANCELLED)
    assert [a.id for a in await rstore.due(500.0)] == ["old"]
    await rstore.update("new", expires_at=200.0)  # the index follows the record
    assert sorted(a.id for a in await rstore.due(500.0)) == ["new", "old"]


async def test_put_exclusive_refuses_while_a_live_action_holds_a_key(rstore: RedisStore) -> None:
    first = make_action("first", expires_at=2000.0)
    assert await rstore.put_exclusive(first, ["default/elser-prod"], now=1000.0) is None
    second = make_action("second", expires_at=2000.0)
    holder = await rstore.put_exclusive(second, ["default/x", "default/elser-prod"], now=1500.0)
    assert holder is not None and holder.id == "first"
    assert await rstore.get("second") is None
    # Past the holder's expiry the key is free again.
    assert await rstore.put_exclusive(second, ["default/elser-prod"], now=2500.0) is None


async def test_many_tasks_racing_for_one_lock_one_wins(rstore: RedisStore) -> None:
    results = await asyncio.gather(
        *(
            rstore.put_exclusive(make_action(f"a{i}"), ["default/elser-prod"], now=1000.0)
            for i in range(30)
        )
    )
    assert sum(r is None for r in results) == 1


async def test_history_lists_actions_created_since(rstore: RedisStore) -> None:
    await rstore.put(replace(make_action("old"), created_at=100.0))
    await rstore.put(replace(make_action("new"), created_at=900.0))
    exclusive = replace(make_action("locked"), created_at=950.0)
    assert await rstore.put_exclusive(exclusive, ["default/x"], now=950.0) is None
    await rstore.transition("new", ActionState.PROPOSED, ActionState.CANCELLED)
    assert [a.id for a in await rstore.history(500.0)] == ["new", "locked"]
    assert [a.id for a in await rstore.history(0.0)] == ["old", "new", "locked"]


async def test_flags_round_trip(rstore: RedisStore) -> None:
    assert await rstore.get_flag("freeze") is None
    await rstore.set_flag("freeze", {"by": "U1", "reason": "INC-9"})
    assert await rstore.get_flag("freeze") == {"by": "U1", "reason": "INC-9"}
    await rstore.set_flag("freeze", None)
    assert await rstore.get_flag("freeze") is None


# ---- owners and leases: what recovery relies on -------------------------------------------


async def test_a_live_owner_is_no_orphan_on_any_replica(
    any_store: ActionStore, tmp_path: Path, redis_url: str
) -> None:
    await any_store.put(make_action())
    await any_store.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert await any_store.orphans() == []
    peer = other_store(any_store, tmp_path, redis_url, owner=FOREIGN)
    assert await peer.orphans() == []  # the owner's lease is live
    await peer.close()


async def test_an_owner_whose_lease_ran_out_leaves_an_orphan(
    any_store: ActionStore, tmp_path: Path, redis_url: str
) -> None:
    dead = other_store(any_store, tmp_path, redis_url, owner=FOREIGN, lease_seconds=0.2)
    await dead.put(make_action())
    await dead.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert await any_store.orphans() == []
    await asyncio.sleep(0.4)  # the lease runs out while its task is alive but not renewing...
    # ...because a renewal every lease/3 would keep it: stop the keeper as a crash would.
    await dead._keeper.stop()  # type: ignore[attr-defined]
    await asyncio.sleep(0.3)
    assert [a.id for a in await any_store.orphans()] == ["a1"]
    await any_store.transition("a1", ActionState.EXECUTING, ActionState.UNKNOWN)
    assert await any_store.orphans() == []


async def test_a_dead_process_on_this_host_is_an_orphan_at_once(
    any_store: ActionStore, tmp_path: Path, redis_url: str
) -> None:
    """Same host and pid namespace: a pid that no longer runs is dead, lease or not."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    host, ns, _, _ = process_owner().split("|")
    owner = f"{host}|{ns}|{gone.stdout.strip()}|cafe0000"
    dead = other_store(any_store, tmp_path, redis_url, owner=owner)
    await dead.put(make_action())
    await dead.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert [a.id for a in await any_store.orphans()] == ["a1"]
    await dead.close()


def test_owner_alive_rules() -> None:
    me = process_owner()
    host, ns, pid, _ = me.split("|")
    assert owner_alive(me, me, lease_live=False)
    assert not owner_alive(None, me, lease_live=True)
    assert owner_alive(FOREIGN, me, lease_live=True)
    assert not owner_alive(FOREIGN, me, lease_live=False)
    # A previous incarnation with this very pid (a restart reusing it) is not us.
    assert not owner_alive(f"{host}|{ns}|{pid}|0ld0", me, lease_live=True)


async def test_sqlite_clean_close_drops_the_lease(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "s.db", owner=FOREIGN)
    await first.put(make_action())
    await first.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    await first.close()
    second = SQLiteStore(tmp_path / "s.db")
    assert [a.id for a in await second.orphans()] == ["a1"]
    await second.close()


async def test_redis_final_state_clears_the_owner(rstore: RedisStore) -> None:
    await rstore.put(replace(make_action(), expires_at=5000.0))
    await rstore.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert await rstore.client.hgetall("ml-chatops:executing") == {"a1": rstore.owner}
    await rstore.transition("a1", ActionState.EXECUTING, ActionState.SUCCEEDED)
    assert await rstore.client.hgetall("ml-chatops:executing") == {}


async def test_lock_more_extends_or_names_the_holder_on_both(any_store: ActionStore) -> None:
    await any_store.put_exclusive(make_action("mine", expires_at=2000.0), ["a"], now=1000.0)
    await any_store.put_exclusive(make_action("theirs", expires_at=2000.0), ["b"], now=1000.0)
    holder = await any_store.lock_more("mine", ["a", "b"], now=1500.0)
    assert holder is not None and holder.id == "theirs"
    assert await any_store.lock_more("mine", ["a", "c"], now=1500.0) is None
    late = await any_store.put_exclusive(make_action("late", expires_at=9000.0), ["c"], now=1500.0)
    assert late is not None and late.id == "mine"
    # Once "theirs" has expired its key is free to take.
    assert await any_store.lock_more("mine", ["b"], now=2500.0) is None


async def test_both_stores_name_the_owner_of_an_executing_action_until_it_leaves(
    any_store: ActionStore, tmp_path: Path, redis_url: str
) -> None:
    # Recovery reads it to say which replica stopped answering (bot/app/recovery.py).
    replica = other_store(any_store, tmp_path, redis_url, owner=FOREIGN)
    await replica.put(make_action())
    assert await any_store.owner_of("a1") is None  # proposed: nobody runs it
    await replica.transition("a1", ActionState.PROPOSED, ActionState.EXECUTING)
    assert await any_store.owner_of("a1") == FOREIGN
    await replica.transition("a1", ActionState.EXECUTING, ActionState.SUCCEEDED)
    assert await any_store.owner_of("a1") is None
    await replica.close()
