"""One table from a parsed request to its use case, with one gate and one audit point.

Every command goes the same way (Slack, the local shell): audit the command, parse it,
authorize the request's coarse gate (action, cluster, options), then run its handler. A
new request type gets a row in `ROUTES`, so it cannot skip the gate or the audit. The use
cases still check the concrete targets they resolve. `explain` (the CLI) reads the same
gates. The state store being down ends any command here with one plain message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.app import audit_query, context, freeze, listing, propose, scale, start
from bot.app.context import Deps
from bot.core.commands import (
    AuditRequest,
    FreezeRequest,
    HelpRequest,
    ListRequest,
    Request,
    ScaleRequest,
    StartRequest,
    StatusRequest,
    StopRequest,
    UsageError,
    parse,
)
from bot.core.errors import ClusterError, StoreUnavailable
from bot.core.outcomes import Denied, Failed, Who
from bot.core.policy import Action


@dataclass(frozen=True)
class Gate:
    """What a request asks of the role map: an action on a cluster, to what, with which options.

    `cluster` None is the default cluster; `deployments` None is "not known before resolution".
    """

    action: Action
    cluster: str | None = None
    deployments: tuple[str, ...] | None = None
    options: frozenset[str] = frozenset()
    allocations: tuple[int, ...] = ()  # a scale's numbers, checked against the grants' bounds


# (deps, request, who, **extra); only the stop and the scale accept `execution_id` in `extra`.
Handler = Callable[..., Awaitable[object]]


@dataclass(frozen=True)
class Route:
    """A request type's gate (None: nothing to authorize) and its use case."""

    gate: Callable[[Any], Gate | None]
    handler: Handler


async def _shown(deps: Deps, request: HelpRequest | UsageError, who: Who) -> object:
    """Help and usage errors are answers in themselves; the adapter renders them."""
    return request


def _stop_gate(request: StopRequest) -> Gate:
    """A stop's gate: explicit ids are known, a wildcard or `_all` only after resolution."""
    ids = None if request.is_wildcard or request.is_all else request.ids
    return Gate("stop", request.cluster, ids, request.options())


def _scale_gate(request: ScaleRequest) -> Gate:
    """A scale's gate: like a stop's, plus the allocation numbers typed."""
    ids = None if request.is_wildcard or request.is_all else request.ids
    return Gate("scale", request.cluster, ids, request.options(), request.numbers())


ROUTES: dict[type, Route] = {
    HelpRequest: Route(lambda _: None, _shown),
    UsageError: Route(lambda _: None, _shown),
    AuditRequest: Route(lambda _: Gate("status"), audit_query.timeline),
    ListRequest: Route(lambda r: Gate("status", r.cluster), listing.list_deployments),
    FreezeRequest: Route(lambda _: Gate("freeze"), freeze.freeze),
    StartRequest: Route(lambda r: Gate("start", r.cluster, (r.target_id,)), start.propose_start),
    StopRequest: Route(_stop_gate, propose.propose),
    ScaleRequest: Route(_scale_gate, scale.propose_scale),
    StatusRequest: Route(lambda r: Gate("status", r.cluster), scale.status),
}


def gate_of(request: Request) -> Gate | None:
    """The request's gate (what `explain` explains), or None for help and usage errors."""
    return ROUTES[type(request)].gate(request)


async def dispatch(deps: Deps, command: str, text: str, who: Who) -> object:
    """Audit, parse, gate and run one slash command; returns the outcome to render."""
    try:
        await context.record_command(deps, who, command, text)
        return await _route(deps, parse(command, text), who, {})
    except StoreUnavailable as exc:
        return Failed(exc.message)


async def dispatch_request(
    deps: Deps,
    request: Request,
    who: Who,
    *,
    command: str,
    text: str,
    execution_id: str | None = None,
) -> object:
    """An already-parsed request (the Workflow Builder step) through the same audit and gate.

    `command` and `text` are what the audit records; `execution_id` (stops only) ties the
    action to the step that asked.
    """
    # Only a stop or a scale can belong to a step; help and usage errors are answered as
    # they are.
    owned = execution_id is not None and isinstance(request, StopRequest | ScaleRequest)
    extra = {"execution_id": execution_id} if owned else {}
    try:
        await context.record_command(deps, who, command, text)
        return await _route(deps, request, who, extra)
    except StoreUnavailable as exc:
        return Failed(exc.message)


async def _route(deps: Deps, request: Request, who: Who, extra: dict[str, Any]) -> object:
    """The table's row for the request: its gate, then its use case."""
    route = ROUTES[type(request)]
    gate = route.gate(request)
    if gate is not None:
        denied = await _check(deps, gate, who)
        if denied is not None:
            return denied
    return await route.handler(deps, request, who, **extra)


async def _check(deps: Deps, gate: Gate, who: Who) -> Denied | Failed | None:
    """The coarse check before any I/O on the cluster: is there a grant at all?"""
    try:
        cluster = deps.clusters.get(gate.cluster).name
    except ClusterError as exc:
        return Failed(exc.message)
    # Targets are checked by the use case once resolved; the gate knows only the options.
    decision = await context.authorizer(deps, who).authorize(
        gate.action, cluster, None, gate.options, allocations=gate.allocations
    )
    if decision.allowed:
        return None
    await context.record(
        deps,
        who,
        "decision",
        "failure",
        explanation=decision.explanation,
        cluster=cluster,
        kind=gate.action,
    )
    return Denied(decision)
