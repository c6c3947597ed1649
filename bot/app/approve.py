"""Four eyes: an approver approves or rejects a pending action on its card."""

from __future__ import annotations

from dataclasses import replace

from bot.app import context
from bot.app.context import Deps
from bot.core.model import (
    ActionState,
    Approval,
    PendingAction,
)
from bot.core.outcomes import (
    Already,
    Approved,
    ApproveResult,
    Denied,
    Ended,
    SelfApproval,
    Unknown,
    Who,
)
from bot.core.policy import (
    ApprovalRule,
    Decision,
    can_approve,
)


@context.store_down_fails
async def approve(deps: Deps, action_id: str, who: Who) -> ApproveResult:
    """An approver clicked Approve on the in-channel card."""
    action = await deps.store.get(action_id)
    if action is None:
        return Unknown(action_id)
    if expired := await context.expire_if_due(deps, action):
        return Ended(expired)
    if action.state is not ActionState.PROPOSED or action.approved:
        return Already(action)
    if who.user_id == action.requester_id:
        await context.record(deps, who, "approve", "failure", action_id=action_id, error="self")
        return SelfApproval(action)
    decision = await may_approve(deps, action, who)
    if not decision.allowed:
        await context.record(
            deps, who, "approve", "failure", action_id=action_id, explanation=decision.explanation
        )
        return Denied(decision)
    approval = Approval(who.user_id, who.user_name, deps.clock())

    def add(current: PendingAction) -> PendingAction | None:
        if current.state is not ActionState.PROPOSED or current.approved:
            return None
        if any(a.user_id == who.user_id for a in current.approvals):
            return None
        return replace(current, approvals=(*current.approvals, approval))

    updated = await context.settled(deps, action_id, await deps.store.mutate(action_id, add))
    if not isinstance(updated, PendingAction):
        return updated
    await context.record(
        deps,
        who,
        "approve",
        "success",
        action_id=action_id,
        cluster=updated.cluster,
        deployments=updated.deployment_ids,
        approvers=[a.user_id for a in updated.approvals],
    )
    return Approved(updated, who.user_id)


async def may_approve(deps: Deps, action: PendingAction, who: Who) -> Decision:
    """May `who` approve this action under the rule it carries?"""
    rule = ApprovalRule(
        approvers=list(action.approver_roles),
        actions=[context.action_of(action)],
        required=max(1, action.required_approvals),
    )
    caller = await context.caller(deps, who, approvers=rule.approvers)
    return can_approve(deps.role_map(), caller, rule, action.cluster)


@context.store_down_fails
async def reject(deps: Deps, action_id: str, who: Who) -> ApproveResult:
    """An approver (or the requester) clicked Reject: the action ends."""
    action = await deps.store.get(action_id)
    if action is None:
        return Unknown(action_id)
    if expired := await context.expire_if_due(deps, action):
        return Ended(expired)
    if action.state is not ActionState.PROPOSED:
        return Already(action)
    if who.user_id != action.requester_id:
        decision = await may_approve(deps, action, who)
        if not decision.allowed:
            return Denied(decision)
    return await context.end(deps, action_id, who, ActionState.REJECTED, "reject")
