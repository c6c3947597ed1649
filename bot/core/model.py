"""Domain data shared by the core: deployments, pending actions, outcomes.

Plain frozen dataclasses with JSON round-trips, so the store can persist them
and the renderers can read them without knowing where they came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from bot.core.commands import StopRequest
from bot.core.impact import Impact


class ActionState(StrEnum):
    """Lifecycle of a pending action."""

    PROPOSED = "proposed"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"  # was executing when its owner died: the outcome was never seen
    SCHEDULED = "scheduled"  # a timed revert waiting for its time (`expires_at` is when)

    @property
    def is_final(self) -> bool:
        """True once nothing can happen to the action any more."""
        return self not in (ActionState.PROPOSED, ActionState.EXECUTING, ActionState.SCHEDULED)


@dataclass(frozen=True)
class Deployment:
    """One concrete trained-model deployment as `_stats` reports it."""

    deployment_id: str
    model_id: str
    state: str
    allocations: int | None = None
    target_allocations: int | None = None
    threads_per_allocation: int | None = None
    priority: str = "normal"
    queue_capacity: int | None = None
    cache_size: str | None = None
    adaptive_allocations: dict[str, Any] | None = None
    inference_count: int = 0
    pending_requests: int = 0
    pipelines: tuple[str, ...] = ()
    impact: Impact | None = None  # None: not read (stored before issue 12, or a start)
    required_memory: int | None = None  # model_size_stats.required_native_memory_bytes

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Deployment:
        """Inverse of to_json."""
        impact = data.get("impact")
        return cls(
            **{
                **data,
                "pipelines": tuple(data.get("pipelines", ())),
                "impact": Impact.from_json(impact) if impact else None,
            }
        )


@dataclass(frozen=True)
class Approval:
    """One approver's approval of a pending action."""

    user_id: str
    user_name: str
    at: float


@dataclass(frozen=True)
class Resolution:
    """What the user's id expression really matches on a cluster."""

    deployments: tuple[Deployment, ...]
    unmatched: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()  # e.g. "`x` is a model, not a deployment; its deployments: a, b"


@dataclass(frozen=True)
class StopOutcome:
    """The result of stopping one deployment."""

    deployment_id: str
    ok: bool
    message: str
    status: int | None = None
    seconds: float = 0.0
    verified: bool | None = None  # None: not checked; False: still there after the wait
    # The stop may or may not have happened: its answer or the check could not be read, or
    # the deployment was still stopping. Never reported as stopped, nor as failed.
    unknown: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StopOutcome:
        """Inverse of to_json."""
        return cls(**data)


@dataclass(frozen=True)
class StartOutcome:
    """The result of starting one deployment."""

    deployment_id: str
    ok: bool
    message: str
    status: int | None = None
    seconds: float = 0.0
    verified: bool | None = None  # True: the answer showed it started
    unknown: bool = False  # the start's answer could not be read: it may have started

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StartOutcome:
        """Inverse of to_json."""
        return cls(**data)


@dataclass(frozen=True)
class ScaleOutcome:
    """The result of scaling one deployment: what `_stats` said after the update."""

    deployment_id: str
    ok: bool
    message: str
    status: int | None = None
    seconds: float = 0.0
    verified: bool | None = None  # False: the request is not reflected yet (not done)
    target: int | None = None  # target_allocation_count after the update
    allocated: int | None = None  # allocation_count after the update (placement takes time)
    unknown: bool = False  # the update's answer could not be read: it may have been applied

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScaleOutcome:
        """Inverse of to_json."""
        return cls(**data)


Outcome = StopOutcome | StartOutcome | ScaleOutcome


@dataclass(frozen=True)
class MessageRef:
    """Where a Slack message lives, so it can be replaced later."""

    channel_id: str | None = None
    ts: str | None = None
    response_url: str | None = None
    ephemeral: bool = True


@dataclass(frozen=True)
class StopSpec:
    """The stop request as stored with a pending action."""

    expression: str
    force: bool = False
    finish_pending_work: bool = False
    allow_no_match: bool = True
    reason: str | None = None

    def request(self) -> StopRequest:
        """The parsed request this spec was saved from (options and flags come from it)."""
        return StopRequest(
            ids=tuple(self.expression.split(",")),
            force=self.force,
            finish_pending_work=self.finish_pending_work,
            allow_no_match=self.allow_no_match,
            reason=self.reason,
        )

    def flags_text(self) -> str:
        """Canonical flags, as a user would type them."""
        return self.request().flags_text()


@dataclass(frozen=True)
class StartSpec:
    """A start (or a restart) as stored with a pending action; its targets carry the settings."""

    expression: str
    reason: str | None = None
    # A start takes none of the stop flags; they read as unset so renderers need not branch.
    force: bool = field(default=False, init=False)
    finish_pending_work: bool = field(default=False, init=False)
    allow_no_match: bool = field(default=True, init=False)

    def flags_text(self) -> str:
        """A start has no flags."""
        return ""


@dataclass(frozen=True)
class ScaleChange:
    """What a scale asks of a deployment; None leaves a setting as it is."""

    allocations: int | None = None
    adaptive: bool | None = None
    min_allocations: int | None = None
    max_allocations: int | None = None

    def text(self) -> str:
        """`--allocations 4`, `--adaptive on --max 2`: as the person would type it."""
        flags: list[str] = []
        if self.adaptive is not None:
            flags.append(f"--adaptive {'on' if self.adaptive else 'off'}")
        if self.allocations is not None:
            flags.append(f"--allocations {self.allocations}")
        if self.min_allocations is not None:
            flags.append(f"--min {self.min_allocations}")
        if self.max_allocations is not None:
            flags.append(f"--max {self.max_allocations}")
        return " ".join(flags)

    def options(self) -> frozenset[str]:
        """The role map options this change needs."""
        opts = set()
        if self.adaptive is False:
            opts.add("adaptive_off")
        if self.min_allocations == 0:
            opts.add("scale_to_zero")
        return frozenset(opts)


@dataclass(frozen=True)
class ScaleSpec:
    """A scale as stored with a pending action; a revert carries each target's own change."""

    expression: str
    change: ScaleChange
    reason: str | None = None
    per_target: tuple[tuple[str, ScaleChange], ...] = ()  # a revert: previous settings by id
    skipped: tuple[tuple[str, str], ...] = ()  # (deployment id, why it is left alone)
    memory: str | None = None  # the ML memory line of the preview (read with it)
    # A scale takes none of the stop flags; they read as unset so renderers need not branch.
    force: bool = field(default=False, init=False)
    finish_pending_work: bool = field(default=False, init=False)
    allow_no_match: bool = field(default=True, init=False)

    def change_for(self, deployment_id: str) -> ScaleChange:
        """The change this deployment gets."""
        return dict(self.per_target).get(deployment_id, self.change)

    def options(self) -> frozenset[str]:
        """The role map options the whole action needs (ids and every change)."""
        ids = self.expression.split(",")
        opts: set[str] = set(self.change.options())
        for _, change in self.per_target:
            opts |= change.options()
        if ids in (["_all"], ["*"]):
            opts.add("all")
        else:
            if any("*" in i for i in ids):
                opts.add("wildcard")
            if len(ids) > 1:
                opts.add("list")
        return frozenset(opts)

    def flags_text(self) -> str:
        """The change as typed (a revert: `revert`)."""
        return "revert" if self.per_target else self.change.text()

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "expression": self.expression,
            "change": dataclasses.asdict(self.change),
            "reason": self.reason,
            "per_target": [[i, dataclasses.asdict(c)] for i, c in self.per_target],
            "skipped": [list(s) for s in self.skipped],
            "memory": self.memory,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScaleSpec:
        """Inverse of to_json."""
        return cls(
            expression=data["expression"],
            change=ScaleChange(**data["change"]),
            reason=data.get("reason"),
            per_target=tuple((i, ScaleChange(**c)) for i, c in data.get("per_target", ())),
            skipped=tuple((i, why) for i, why in data.get("skipped", ())),
            memory=data.get("memory"),
        )


ActionSpec = StopSpec | StartSpec | ScaleSpec
Kind = Literal["stop", "start", "scale"]


def _spec_from_json(kind: str, data: dict[str, Any]) -> ActionSpec:
    # Starts stored before StartSpec existed carry the stop flags (all unset): drop them.
    if kind == "start":
        return StartSpec(expression=data["expression"], reason=data.get("reason"))
    if kind == "scale":
        return ScaleSpec.from_json(data)
    return StopSpec(**data)


_OUTCOMES: dict[str, type[StopOutcome] | type[StartOutcome] | type[ScaleOutcome]] = {
    "stop": StopOutcome,
    "start": StartOutcome,
    "scale": ScaleOutcome,
}


@dataclass(frozen=True)
class PendingAction:
    """A proposed stop waiting for its confirmation, or its final record."""

    id: str
    requester_id: str
    requester_name: str
    team_id: str
    channel_id: str
    cluster: str
    spec: ActionSpec  # its type is the kind of action
    targets: tuple[Deployment, ...]
    created_at: float
    expires_at: float
    decision: str
    state: ActionState = ActionState.PROPOSED
    unmatched: tuple[str, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    message: MessageRef = field(default_factory=MessageRef)
    finished_at: float | None = None
    actor_id: str | None = None  # who confirmed, cancelled or rejected
    required_approvals: int = 0
    approver_roles: tuple[str, ...] = ()
    approvals: tuple[Approval, ...] = ()
    approval_card: MessageRef | None = None
    auto_run: bool = False  # run as soon as enough approvals arrived
    source_action_id: str | None = None  # the stop a restart undoes
    started_at: float | None = None  # when execution began
    incident_id: str | None = None  # from the incident channel it was asked in
    function_execution_id: str | None = None  # set when a Workflow Builder step asked
    result_ref: MessageRef | None = None  # the channel message that reports the outcome
    # A timed change (`--for` / `--until`, issue 22): its revert is part of what is approved.
    revert_seconds: int | None = None  # `--for`: the revert is due this long after it ran
    revert_at: float | None = None  # `--until`: the revert is due then (UTC epoch)
    revert_id: str | None = None  # the scheduled revert, once the change ran
    # A timed revert (state `scheduled` until due; `expires_at` is its due time).
    revert_of: str | None = None  # the change it undoes (its X-Opaque-Id and audit name it)
    heads_up_at: float | None = None  # when the heads-up was posted (once per due time)
    held: str | None = None  # why the sweep leaves it for a click (frozen, refused, unreachable)
    revert_log: tuple[str, ...] = ()  # "extended +30 min by U1", "kept by U2": for /ml-audit

    @property
    def approved(self) -> bool:
        """Enough approvals (or none needed)."""
        return len(self.approvals) >= self.required_approvals

    @property
    def missing_approvals(self) -> int:
        """How many approvals are still needed."""
        return max(0, self.required_approvals - len(self.approvals))

    @property
    def kind(self) -> Kind:
        """ "stop", "start" (or a restart) or "scale", from the spec's type."""
        if isinstance(self.spec, ScaleSpec):
            return "scale"
        return "start" if isinstance(self.spec, StartSpec) else "stop"

    @property
    def is_timed(self) -> bool:
        """A change that reverts itself (`--for` / `--until`)."""
        return self.revert_seconds is not None or self.revert_at is not None

    def revert_due(self, ran_at: float) -> float | None:
        """When this timed change's revert falls due, had it run at `ran_at`."""
        if self.revert_at is not None:
            return self.revert_at
        return None if self.revert_seconds is None else ran_at + self.revert_seconds

    @property
    def deployment_ids(self) -> tuple[str, ...]:
        """The concrete deployment ids this action stops."""
        return tuple(d.deployment_id for d in self.targets)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for the store."""
        data = dataclasses.asdict(self)
        if isinstance(self.spec, ScaleSpec):
            data["spec"] = self.spec.to_json()
        data["state"] = self.state.value
        data["kind"] = self.kind  # the spec's type, for from_json (and older readers)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingAction:
        """Inverse of to_json."""
        kind = data.get("kind", "stop")
        outcome = _OUTCOMES.get(kind, StopOutcome)
        return cls(
            **{
                **{k: v for k, v in data.items() if k != "kind"},
                "spec": _spec_from_json(kind, data["spec"]),
                "targets": tuple(Deployment.from_json(d) for d in data["targets"]),
                "state": ActionState(data["state"]),
                "unmatched": tuple(data.get("unmatched", ())),
                "outcomes": tuple(outcome.from_json(o) for o in data.get("outcomes", ())),
                "message": MessageRef(**data.get("message", {})),
                "approver_roles": tuple(data.get("approver_roles", ())),
                "revert_log": tuple(data.get("revert_log", ())),
                "approvals": tuple(Approval(**a) for a in data.get("approvals", ())),
                "approval_card": MessageRef(**data["approval_card"])
                if data.get("approval_card")
                else None,
                "result_ref": MessageRef(**data["result_ref"]) if data.get("result_ref") else None,
            }
        )
