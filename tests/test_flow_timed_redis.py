"""Timed changes (issue 22) on the Redis store: the same flows end to end, and replicas
(separate store connections, as separate processes open them) racing for one due revert."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from conftest import Bench
from support.redis_server import redis_server, redis_url
from test_flow_timed import (
    _get,
    _starts,
    _sweep,
    _timed_stop,
)
from test_flow_timed import (
    test_a_bot_down_across_the_due_time_runs_it_late_and_says_so as test_late_on_redis,
)
from test_flow_timed import (
    test_a_revert_due_while_frozen_waits_for_a_click as test_frozen_on_redis,
)
from test_flow_timed import (
    test_a_timed_freeze_unfreezes_itself_once as test_timed_freeze_on_redis,
)
from test_flow_timed import (
    test_a_timed_stop_restarts_itself_once_at_its_time as test_timed_stop_on_redis,
)
from test_flow_timed import (
    test_extend_and_revert_now_at_the_same_moment_one_wins as test_race_on_redis,
)

from bot.adapters.store_redis import RedisStore
from bot.app import timed
from bot.app.context import Deps
from bot.core.model import ActionState

__all__ = [
    "redis_server",
    "redis_url",
    "test_frozen_on_redis",
    "test_late_on_redis",
    "test_race_on_redis",
    "test_timed_freeze_on_redis",
    "test_timed_stop_on_redis",
]

pytestmark = pytest.mark.redis


@pytest.fixture
def bench_state_url(redis_url: str) -> str:
    return redis_url


def test_replicas_with_their_own_connections_claim_a_due_revert_once(
    bench: Bench, redis_url: str
) -> None:
    _, revert = _timed_stop(bench)
    bench.clock.advance(1801)

    async def race() -> list[object]:
        replicas = [RedisStore.from_url(redis_url) for _ in range(4)]
        try:
            deps = [replace(bench.runtime.service.deps, store=s) for s in replicas]
            due = [await d.store.due(bench.clock()) for d in deps]
            assert all(any(a.id == revert.id for a in found) for found in due)
            return list(
                await asyncio.gather(
                    *(timed.claim(d, revert, revert.expires_at, actor="timer") for d in deps)
                )
            )
        finally:
            for s in replicas:
                await s.close()

    claims = bench.run(race())
    assert len([c for c in claims if c is not None]) == 1
    assert _get(bench, revert.id).state is ActionState.EXECUTING
    assert isinstance(bench.runtime.service.deps, Deps)


def test_a_replica_killed_while_reverting_on_redis_is_unknown_never_rerun(
    bench: Bench, redis_url: str
) -> None:
    _, revert = _timed_stop(bench)

    async def die_mid_revert() -> None:
        dead = RedisStore.from_url(
            redis_url, owner="elsewhere|pid:[1]|4242|dead0000", lease_seconds=0.05
        )
        claimed = await dead.mutate(
            revert.id, lambda a: replace(a, state=ActionState.EXECUTING, started_at=a.expires_at)
        )
        assert claimed is not None
        await dead._keeper.stop()  # type: ignore[attr-defined]  # kill -9: no clean close
        await asyncio.sleep(0.1)  # past its lease

    bench.run(die_mid_revert())
    bench.clock.advance(1801)
    _sweep(bench)
    _sweep(bench)
    assert _get(bench, revert.id).state is ActionState.UNKNOWN
    assert not _starts(bench)
