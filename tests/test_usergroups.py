"""User group membership over the real HTTP path: answers that cannot be read fail closed."""

from __future__ import annotations

import asyncio

import pytest
from conftest import ROLE_MAP, Bench, text_of

from bot.adapters.usergroups import UnreadableAnswer, UsergroupResolver, members_in
from bot.core.policy import Caller, groups_that_matter, parse_role_map

OPS = "U0OPS1"


def test_ok_without_users_fails_closed_and_is_not_cached(bench: Bench) -> None:
    bench.slack.usergroups["S0MLOPS"] = None  # `{"ok": true}` and no `users`
    text = text_of(bench.command("ner-prod", user=OPS))
    assert "denied" in text and "ml_stop.confirm" not in text
    assert "could not check membership of usergroup S0MLOPS" in text and "failing closed" in text
    bench.slack.usergroups["S0MLOPS"] = [OPS]
    # Asked again at once: the unreadable answer was not cached as an empty group.
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod", user=OPS))
    asked = [
        c
        for c in bench.slack.calls("usergroups.users.list")
        if c.params == {"usergroup": "S0MLOPS"}
    ]
    assert len(asked) == 2


@pytest.mark.parametrize("answer", [{"ok": True}, {"ok": True, "users": None}, {"users": [1]}])
def test_an_answer_without_a_list_of_user_ids_is_unreadable(answer: dict[str, object]) -> None:
    with pytest.raises(UnreadableAnswer):
        members_in(answer)


def test_an_empty_list_is_an_empty_group() -> None:
    assert members_in({"ok": True, "users": []}) == frozenset()


# --------------------------------------------------------------------------- deadlines (18.6)

ADMIN = "U0ADMIN1"


def group_calls(bench: Bench, group: str | None = None) -> list[object]:
    return [
        c
        for c in bench.slack.calls("usergroups.users.list")
        if group is None or c.params == {"usergroup": group}
    ]


def test_an_admin_granted_by_id_never_waits_for_a_rate_limited_group(bench: Bench) -> None:
    bench.slack.rate_limit_next("usergroups.users.list", retry_after=8, count=20)
    preview = bench.command("ner-prod", user=ADMIN)
    assert "ml_stop.confirm" in text_of(preview)
    result = bench.confirm(user=ADMIN)
    assert "stopped (verified)" in text_of(result)
    assert group_calls(bench) == []  # neither at the preview nor at the click


def test_a_rate_limited_group_fails_closed_at_once_and_waits_out_retry_after(
    bench: Bench,
) -> None:
    bench.slack.rate_limit_next("usergroups.users.list", retry_after=8, count=2)
    text = text_of(bench.command("ner-prod", user=OPS))
    assert "ml_stop.confirm" not in text
    # Both groups could grant it (S0SRE: ml-admin first in the file); the denial names one.
    assert "could not check membership of usergroup S0SRE" in text and "failing closed" in text
    # Asked once each (no retries sleeping on Retry-After), and not again while it lasts.
    asked = len(group_calls(bench))
    assert asked == len({c.params["usergroup"] for c in group_calls(bench)})  # type: ignore[attr-defined]
    again = text_of(bench.command("ner-prod", user=OPS))
    assert "could not check membership of usergroup S0SRE" in again
    assert len(group_calls(bench)) == asked
    bench.clock.advance(9)  # past Retry-After: asked again, and the member is let in
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod", user=OPS))
    assert len(group_calls(bench, "S0MLOPS")) == 2


def test_a_lookup_past_its_deadline_fails_closed_and_is_remembered_briefly() -> None:
    asked: list[str] = []
    now = [0.0]

    async def never(group: str) -> frozenset[str]:
        asked.append(group)
        await asyncio.Event().wait()  # Slack never answers
        return frozenset()

    resolver = UsergroupResolver(never, clock=lambda: now[0], deadline=0.01, failure_ttl=15)

    async def check() -> tuple[Caller, Caller, Caller]:
        first = await resolver.caller(OPS, "C0", ["S0MLOPS"])
        second = await resolver.caller(OPS, "C0", ["S0MLOPS"])
        now[0] = 16.0
        third = await resolver.caller(OPS, "C0", ["S0MLOPS"])
        return first, second, third

    first, second, third = asyncio.run(check())
    for caller in (first, second, third):
        assert caller.unknown_usergroups == {"S0MLOPS"} and caller.usergroups == frozenset()
    assert asked == ["S0MLOPS", "S0MLOPS"]  # not asked again within the failure TTL


def test_concurrent_lookups_of_one_group_ask_slack_once() -> None:
    asked: list[str] = []
    release = asyncio.Event()

    async def slow(group: str) -> frozenset[str]:
        asked.append(group)
        await release.wait()
        return frozenset({OPS})

    resolver = UsergroupResolver(slow, clock=lambda: 0.0)

    async def many() -> list[Caller]:
        waiting = [asyncio.ensure_future(resolver.caller(OPS, "C0", ["S0MLOPS"])) for _ in range(5)]
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(*waiting))

    callers = asyncio.run(many())
    assert all(c.usergroups == {"S0MLOPS"} for c in callers)
    assert asked == ["S0MLOPS"]


def test_only_groups_that_could_change_the_decision_are_looked_up() -> None:
    role_map = parse_role_map(ROLE_MAP)
    assert groups_that_matter(role_map, ADMIN, "C0INCIDENTS") == frozenset()
    assert groups_that_matter(role_map, OPS, "C0INCIDENTS") == {"S0SRE", "S0MLOPS"}
    assert groups_that_matter(role_map, OPS, "C0ELSEWHERE") == {"S0SRE"}
    # Approving counts roles by name: only the approver roles the person lacks.
    assert groups_that_matter(role_map, OPS, "C0INCIDENTS", approvers=["ml-admin"]) == {"S0SRE"}
    assert groups_that_matter(role_map, ADMIN, "C0INCIDENTS", approvers=["ml-admin"]) == set()


def test_a_narrower_direct_grant_still_looks_up_a_wider_group() -> None:
    role_map = parse_role_map(
        """
roles:
  ner-only:
    - {action: stop, deployments: ["ner-*"]}
  everything:
    - {action: stop, deployments: ["*"], options: [force]}
  ner-prod-only:
    - {action: stop, deployments: ["ner-prod*"], clusters: [default]}
bindings:
  - {role: ner-only, users: [U1]}
  - {role: everything, usergroups: [SWIDE]}
  - {role: ner-prod-only, usergroups: [SNARROW]}
"""
    )
    assert groups_that_matter(role_map, "U1", "C0") == {"SWIDE"}


NARROW_DIRECT = ROLE_MAP.replace(
    "  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}",
    "  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}\n  - {role: ml-operator, users: [U0OPS2]}",
)


@pytest.mark.parametrize("role_map_text", [NARROW_DIRECT])
def test_a_direct_grant_that_allows_the_request_asks_for_no_group(bench: Bench) -> None:
    # U0OPS2 holds ml-operator by id; ml-admin (via S0SRE) would add more, so the group
    # matters for other requests, but not for this one: it is not looked up.
    bench.slack.rate_limit_next("usergroups.users.list", retry_after=8, count=20)
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod", user="U0OPS2"))
    assert "stopped (verified)" in text_of(bench.confirm(user="U0OPS2"))
    assert group_calls(bench) == []
    # A request only the group could allow asks for it, and fails closed naming it.
    text = text_of(bench.command("elser-prod", user="U0OPS2"))
    assert "could not check membership of usergroup S0SRE" in text
    assert {c.params["usergroup"] for c in group_calls(bench)} == {"S0SRE"}  # type: ignore[attr-defined]
