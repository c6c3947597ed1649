"""A scale across two real replicas sharing one redis-server: twenty clicks, one `_update`."""

from __future__ import annotations

import asyncio

import pytest
from conftest import text_of
from support.redis_server import redis_server, redis_url
from test_replicas import ROLE_MAP, Replicas, replicas

__all__ = ["redis_server", "redis_url", "replicas"]

pytestmark = pytest.mark.redis


@pytest.fixture
def replica_role_map() -> str:
    """The replicas start with `scale` granted to the admins (the file is watched, not
    re-read at each call, so it is written before they start)."""
    return ROLE_MAP.replace("[stop, start, status]", "[stop, start, status, scale]")


def test_twenty_clicks_split_across_replicas_scale_once(replicas: Replicas) -> None:
    r = replicas
    reply = r.drivers[0].command(
        "/ml-scale", "ner-prod --allocations 2", user_id="U0ADMIN1", channel_id="C0INCIDENTS"
    )
    assert reply.status == 200
    url = r.drivers[0].last_response_url
    body = r.slack.wait_for(lambda: r.slack.response_posts(url) or None, timeout=10)[0].body
    assert body is not None
    action_id = next(
        str(e["value"])
        for b in body["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == "ml_scale.confirm"
    )

    async def clicks() -> list[int]:
        sends = [
            r.drivers[i % 2].aclick("ml_scale.confirm", action_id, user_id="U0ADMIN1")
            for i in range(20)
        ]
        return [reply.status for reply in await asyncio.gather(*sends)]

    assert asyncio.run(clicks()) == [200] * 20
    r.slack.wait_for(
        lambda: [m for m in r.slack.messages("C0INCIDENTS") if "scaled to" in text_of(m)] or None,
        timeout=15,
    )
    r.slack.wait_for(
        lambda: len({p.url for p in r.slack.response_posts()}) >= 21 or None, timeout=15
    )
    assert len([q for q in r.emulator.requests if q.endpoint == "ml.update"]) == 1
