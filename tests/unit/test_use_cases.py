"""Each use-case decision on in-memory fakes: no HTTP, no cluster, milliseconds."""

from __future__ import annotations

from typing import get_args

import pytest
from fakes import APPROVAL, ROLE_MAP, World, who

from bot.app.dispatch import ROUTES, gate_of
from bot.core.commands import FreezeRequest, Request, StopRequest, parse
from bot.core.model import ActionState
from bot.core.outcomes import (
    Already,
    Approved,
    Changed,
    Denied,
    Ended,
    Failed,
    Frozen,
    Locked,
    NeedsApproval,
    NothingMatched,
    NotRequester,
    Proposed,
    SelfApproval,
    Started,
)

ADMIN, ADMIN2, OPS = who("U0ADMIN1"), who("U0ADMIN2"), who("U0OPS1")


def stop(text: str) -> StopRequest:
    request = parse("/ml-stop", text)
    assert isinstance(request, StopRequest)
    return request


@pytest.fixture
def world() -> World:
    w = World()
    w.gateway.deploy("ner-prod", "elser-prod")
    w.groups.members["S0OPS"] = {"U0OPS1"}
    return w


async def proposed(world: World, text: str, by: object = ADMIN) -> Proposed:
    outcome = await world.service.propose(stop(text), by)  # type: ignore[arg-type]
    assert isinstance(outcome, Proposed), outcome
    return outcome


# ----------------------------------------------------------------------------- propose


async def test_propose_allowed_saves_a_pending_action(world: World) -> None:
    outcome = await proposed(world, "ner-prod")
    assert outcome.action.deployment_ids == ("ner-prod",)
    assert (await world.store.get(outcome.action.id)) == outcome.action
    assert ("propose", "success") in world.audit.actions()


async def test_propose_denied_outside_the_grant(world: World) -> None:
    outcome = await world.service.propose(stop("elser-prod"), OPS)
    assert isinstance(outcome, Denied)
    assert world.store.actions == {}


async def test_propose_nothing_matched(world: World) -> None:
    outcome = await world.service.propose(stop("nope-*"), ADMIN)
    assert isinstance(outcome, NothingMatched) and outcome.unmatched == ("nope-*",)


async def test_propose_locked_by_another_pending_stop(world: World) -> None:
    first = await proposed(world, "ner-prod")
    outcome = await world.service.propose(stop("ner-prod"), ADMIN2)
    assert isinstance(outcome, Locked) and outcome.holder.id == first.action.id


async def test_propose_frozen(world: World) -> None:
    await world.service.freeze(FreezeRequest(freeze=True, reason="drill"), ADMIN)
    outcome = await world.service.propose(stop("ner-prod"), ADMIN)
    assert isinstance(outcome, Frozen) and outcome.reason == "drill"


async def test_propose_under_an_approval_rule_needs_approval(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    outcome = await proposed(world, "ner-guarded")
    assert outcome.action.required_approvals == 1 and not outcome.action.approved


# ----------------------------------------------------------------------------- approve


async def test_self_approval_is_refused(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    assert isinstance(await world.service.approve(action.id, ADMIN), SelfApproval)
    assert isinstance(await world.service.confirm(action.id, ADMIN), NeedsApproval)
    assert world.gateway.stops == []


async def test_approval_by_a_non_approver_is_denied(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    assert isinstance(await world.service.approve(action.id, OPS), Denied)


async def test_approved_then_confirmed_runs(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    approved = await world.service.approve(action.id, ADMIN2)
    assert isinstance(approved, Approved) and approved.action.approved
    started = await world.service.confirm(action.id, ADMIN)
    assert isinstance(started, Started)
    final = await world.service.execute(started.action, ADMIN)
    assert final.state is ActionState.SUCCEEDED and world.gateway.stops == ["ner-guarded"]


async def test_reject_ends_it(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    assert isinstance(await world.service.reject(action.id, ADMIN2), Ended)
    assert isinstance(await world.service.confirm(action.id, ADMIN), Already)


# ----------------------------------------------------------------------------- confirm


async def test_confirm_by_someone_else_is_refused(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    assert isinstance(await world.service.confirm(action.id, ADMIN2), NotRequester)
    assert world.gateway.stops == []


async def test_double_confirm_runs_once(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    first = await world.service.confirm(action.id, ADMIN)
    second = await world.service.confirm(action.id, ADMIN)
    assert isinstance(first, Started) and isinstance(second, Already)
    await world.service.execute(first.action, ADMIN)
    assert world.gateway.stops == ["ner-prod"]


async def test_changed_targets_give_a_new_preview(world: World) -> None:
    action = (await proposed(world, "ner-*")).action
    world.gateway.deploy("ner-canary")
    changed = await world.service.confirm(action.id, ADMIN)
    assert isinstance(changed, Changed) and "ner-canary" in changed.note
    assert changed.action.deployment_ids == ("ner-canary", "ner-prod")
    assert world.gateway.stops == []
    assert isinstance(await world.service.confirm(action.id, ADMIN), Started)


async def test_role_removed_before_the_click_is_denied(world: World) -> None:
    action = (await proposed(world, "ner-prod", OPS)).action
    world.groups.members["S0OPS"] = set()
    assert isinstance(await world.service.confirm(action.id, OPS), Denied)


# --------------------------------------------------------------- four eyes at every click


async def test_a_growing_wildcard_needs_the_approval_its_new_target_requires(
    world: World,
) -> None:
    world.rules = ROLE_MAP + APPROVAL
    action = (await proposed(world, "ner-*")).action
    assert action.required_approvals == 0
    world.gateway.deploy("ner-guarded")
    changed = await world.service.confirm(action.id, ADMIN)
    assert isinstance(changed, Changed) and changed.action.required_approvals == 1
    assert isinstance(await world.service.confirm(action.id, ADMIN), NeedsApproval)
    assert world.gateway.stops == []
    assert isinstance(await world.service.approve(action.id, ADMIN2), Approved)
    assert isinstance(await world.service.confirm(action.id, ADMIN), Started)


async def test_an_approval_rule_added_after_the_preview_applies(world: World) -> None:
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    world.rules = ROLE_MAP + APPROVAL
    refused = await world.service.confirm(action.id, ADMIN)
    assert isinstance(refused, NeedsApproval) and refused.action.required_approvals == 1
    assert world.gateway.stops == []


async def test_an_approvers_role_removed_voids_their_approval(world: World) -> None:
    world.rules = ROLE_MAP + APPROVAL
    world.gateway.deploy("ner-guarded")
    action = (await proposed(world, "ner-guarded")).action
    assert isinstance(await world.service.approve(action.id, ADMIN2), Approved)
    world.rules = (ROLE_MAP + APPROVAL).replace("[U0ADMIN1, U0ADMIN2]", "[U0ADMIN1]")
    refused = await world.service.confirm(action.id, ADMIN)
    assert isinstance(refused, NeedsApproval) and refused.action.approvals == ()
    assert world.gateway.stops == []


# ----------------------------------------------------------------------------- cancel, expire


async def test_cancel_ends_it(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    assert isinstance(await world.service.cancel(action.id, ADMIN), Ended)
    assert isinstance(await world.service.confirm(action.id, ADMIN), Already)
    assert world.gateway.stops == []


async def test_expire_due_ends_old_previews_once(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    world.clock.now += 601
    assert [a.id for a in await world.service.expire_due()] == [action.id]
    assert await world.service.expire_due() == []
    assert isinstance(await world.service.confirm(action.id, ADMIN), Already)


# ----------------------------------------------------------------------------- start, restart


async def test_restart_starts_what_the_stop_stopped(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    started = await world.service.confirm(action.id, ADMIN)
    assert isinstance(started, Started)
    await world.service.execute(started.action, ADMIN)
    restart = await world.service.propose_restart(action.id, ADMIN)
    assert isinstance(restart, Proposed) and restart.action.kind == "start"
    go = await world.service.confirm(restart.action.id, ADMIN)
    assert isinstance(go, Started)
    await world.service.execute(go.action, ADMIN)
    assert world.gateway.starts == ["ner-prod"]


async def test_start_of_a_running_deployment_is_refused(world: World) -> None:
    outcome = await world.service.dispatch("/ml-start", "ner-prod", ADMIN)
    assert isinstance(outcome, Failed) and "already deployed" in outcome.message


# ----------------------------------------------------------------------------- dispatch


def test_every_request_type_has_a_route() -> None:
    assert set(ROUTES) == set(get_args(Request))


async def test_dispatch_audits_every_command_and_gates_before_the_use_case(world: World) -> None:
    outcome = await world.service.dispatch("/ml-stop", "freeze", OPS)
    assert isinstance(outcome, Denied)
    assert world.audit.actions()[:2] == [("command", "success"), ("decision", "failure")]
    assert world.store.flags == {}


def test_explain_reads_the_same_gate() -> None:
    gate = gate_of(parse("/ml-stop", "ner-prod --force"))
    assert gate is not None and gate.action == "stop" and gate.options == {"force"}
    assert gate.deployments == ("ner-prod",)


# ----------------------------------------------------------------------------- store down


async def test_store_down_at_the_click_runs_nothing_and_says_so(world: World) -> None:
    action = (await proposed(world, "ner-prod")).action
    world.store.down = True
    for answer in (
        await world.service.confirm(action.id, ADMIN),
        await world.service.cancel(action.id, ADMIN),
        await world.service.approve(action.id, ADMIN2),
        await world.service.dispatch("/ml-stop", "elser-prod", ADMIN),
    ):
        assert isinstance(answer, Failed)
        assert answer.message == "cannot reach the state store; nothing was done"
    world.store.down = False
    assert isinstance(await world.service.confirm(action.id, ADMIN), Started)
    assert world.gateway.stops == []  # the claim only; execute runs it once
