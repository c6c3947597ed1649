"""The role map's schema: actions, options, patterns and the pydantic models of roles,
bindings and approvals (rules: see the package docstring)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.core.commands import validate_id
from bot.core.yamlfile import Loc, loc_text, suggest

# `freeze` is the kill switch (`/ml-stop freeze`); grant it to admins only.
# `scale` changes allocations (`/ml-scale`); a grant may bound it with `allocations`.
Action = Literal["stop", "start", "status", "freeze", "scale"]
Option = Literal[
    "force", "finish_pending_work", "wildcard", "list", "all", "adaptive_off", "scale_to_zero"
]

ACTIONS: tuple[str, ...] = get_args(Action)
OPTIONS: tuple[str, ...] = get_args(Option)

_OPTION_LABELS = {
    "force": "--force",
    "finish_pending_work": "--finish-pending-work",
    "wildcard": "wildcards",
    "list": "comma lists",
    "all": "_all",
    "adaptive_off": "`--adaptive off`",
    "scale_to_zero": "scaling to zero (`--min 0`)",
}

SECTIONS = ("roles", "bindings", "approvals")
DEFER_CROSS_REFS = "defer_cross_refs"

# --------------------------------------------------------------------------- patterns


@lru_cache(maxsize=4096)
def _pattern_re(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches(pattern: str, value: str) -> bool:
    """fnmatch-style match where only ``*`` is special (case-sensitive)."""
    return _pattern_re(pattern).fullmatch(value) is not None


def option_label(option: str) -> str:
    """How an option reads in messages: ``--force``, ``wildcards``, ``_all``..."""
    return _OPTION_LABELS.get(option, option)


# --------------------------------------------------------------------------- models


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _check_deployment_pattern(pattern: str) -> str:
    if pattern == "*":
        return pattern
    if pattern == "_all":
        raise ValueError('use "*" to cover every deployment, not "_all"')
    if "," in pattern:
        raise ValueError(f'"{pattern}": one pattern per list entry, not a comma list')
    problem = validate_id(pattern)
    if problem is not None:
        raise ValueError(f"deployment pattern {problem}")
    return pattern


_CLUSTER_PATTERN_RE = re.compile(r"[a-z0-9*][a-z0-9_*-]{0,63}")


def _check_cluster_pattern(pattern: str) -> str:
    if not _CLUSTER_PATTERN_RE.fullmatch(pattern):
        raise ValueError(
            f'cluster "{pattern}" is not a valid cluster name or pattern '
            "(lowercase letters, digits, -, _ and *)"
        )
    return pattern


def _check_slack_id(value: str) -> str:
    if not value.strip():
        raise ValueError("empty Slack id")
    if value[0] in "#@":
        raise ValueError(f'"{value}" looks like a name; use the Slack id (e.g. U0123ABCD)')
    return value


_ROLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")


def _check_role_name(name: str) -> str:
    if not _ROLE_NAME_RE.fullmatch(name):
        raise ValueError(
            f'role name "{name}" is not valid (letters, digits, -, _, ., :; '
            "starting with a letter or digit)"
        )
    return name


DeploymentPattern = Annotated[str, AfterValidator(_check_deployment_pattern)]
ClusterPattern = Annotated[str, AfterValidator(_check_cluster_pattern)]
SlackId = Annotated[str, AfterValidator(_check_slack_id)]
RoleName = Annotated[str, AfterValidator(_check_role_name)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllocationBounds(_Model):
    """The allocation numbers a `scale` grant allows: every number asked (allocations,
    adaptive min and max, as merged with the deployment's) must lie within them."""

    min: Annotated[int, Field(strict=True, ge=0)] = 0
    max: Annotated[int, Field(strict=True, ge=1)] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AllocationBounds:
        if self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max})")
        return self

    def fits(self, numbers: Sequence[int]) -> bool:
        """Every number within the bounds."""
        return all(self.min <= n and (self.max is None or n <= self.max) for n in numbers)

    def text(self) -> str:
        """`between 1 and 4 allocations`, `at least 1 allocation`."""
        if self.max is None:
            return f"at least {self.min} allocation{'s' if self.min != 1 else ''}"
        return f"between {self.min} and {self.max} allocations"


class Grant(_Model):
    """One permission of a role."""

    action: list[Action] = Field(min_length=1)
    deployments: list[DeploymentPattern] = Field(min_length=1)
    clusters: list[ClusterPattern] | None = None
    options: list[Option] = Field(default_factory=list)
    allocations: AllocationBounds | None = None  # bounds of `scale` only

    @model_validator(mode="after")
    def _bounds_for_scale(self) -> Grant:
        if self.allocations is not None and "scale" not in self.action:
            raise ValueError("`allocations` bounds apply to the scale action only")
        return self

    def fits(self, action: str, numbers: Sequence[int]) -> bool:
        """The allocation numbers are within this grant's bounds (only `scale` has any)."""
        return action != "scale" or self.allocations is None or self.allocations.fits(numbers)

    @field_validator("action", "deployments", "clusters", "options", mode="before")
    @classmethod
    def _accept_one(cls, value: Any) -> Any:
        return _one_or_many(value)

    def granted_options(self) -> frozenset[str]:
        """The options this grant allows; ``wildcard`` implies ``list``."""
        opts = set(self.options)
        if "wildcard" in opts:
            opts.add("list")
        return frozenset(opts)

    def applies(self, action: str, cluster: str) -> bool:
        return action in self.action and (
            self.clusters is None or any(matches(c, cluster) for c in self.clusters)
        )

    def covers(self, deployment: str) -> bool:
        return any(matches(p, deployment) for p in self.deployments)


class Binding(_Model):
    """Who holds a role, and where."""

    role: RoleName
    users: list[SlackId] = Field(default_factory=list)
    usergroups: list[SlackId] = Field(default_factory=list)
    channels: list[SlackId] = Field(default_factory=list)

    @field_validator("users", "usergroups", "channels", mode="before")
    @classmethod
    def _accept_one(cls, value: Any) -> Any:
        return _one_or_many(value)

    @model_validator(mode="after")
    def _names_someone(self) -> Binding:
        if not (self.users or self.usergroups or self.channels):
            raise ValueError(
                f'binding of role "{self.role}" names no users, usergroups or channels'
            )
        return self


def _default_actions() -> list[Action]:
    return ["stop"]


class ApprovalRule(_Model):
    """A four-eyes rule: matching requests need ``required`` approvals by ``approvers``."""

    clusters: list[ClusterPattern] | None = None
    actions: list[Action] = Field(default_factory=lambda: _default_actions(), min_length=1)
    deployments: list[DeploymentPattern] = Field(default_factory=lambda: ["*"], min_length=1)
    required: Annotated[int, Field(strict=True, ge=1)] = 1
    approvers: list[RoleName] = Field(min_length=1)
    auto_run: bool = False  # run as soon as approved, without the requester's second click

    @field_validator("clusters", "actions", "deployments", "approvers", mode="before")
    @classmethod
    def _accept_one(cls, value: Any) -> Any:
        return _one_or_many(value)

    def applies(self, action: str, cluster: str, deployments: Sequence[str]) -> bool:
        if action not in self.actions:
            return False
        if self.clusters is not None and not any(matches(c, cluster) for c in self.clusters):
            return False
        if not deployments:
            return True
        return any(matches(p, d) for p in self.deployments for d in deployments)


class RoleMap(_Model):
    """The ``roles``, ``bindings`` and ``approvals`` sections of the config file."""

    roles: dict[RoleName, list[Grant]] = Field(default_factory=dict)
    bindings: list[Binding] = Field(default_factory=list)
    approvals: list[ApprovalRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_exist(self, info: ValidationInfo) -> RoleMap:
        if isinstance(info.context, Mapping) and info.context.get(DEFER_CROSS_REFS):
            return self  # the loader checks them itself, to report file lines
        problems = cross_refs(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{loc_text(loc)}: {msg}" for loc, msg in problems))
        return self

    def usergroups(self) -> frozenset[str]:
        """Every usergroup any binding names (the ones the adapter must resolve)."""
        return frozenset(g for b in self.bindings for g in b.usergroups)


def cross_refs(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """Role names used by bindings and approvals must be defined (works on raw data)."""
    roles = data.get("roles")
    known = sorted(str(k) for k in roles) if isinstance(roles, Mapping) else []
    known_text = f"(known: {', '.join(known)})" if known else "(no roles are defined)"
    problems: list[tuple[Loc, str]] = []
    bindings = data.get("bindings")
    if isinstance(bindings, list):
        for i, binding in enumerate(bindings):
            if isinstance(binding, Mapping):
                role = binding.get("role")
                if isinstance(role, str) and role not in known:
                    loc: Loc = ("bindings", i, "role")
                    hint = suggest(role, known)
                    problems.append((loc, f'unknown role "{role}" {known_text}{hint}'))
    approvals = data.get("approvals")
    if isinstance(approvals, list):
        for i, rule in enumerate(approvals):
            if not isinstance(rule, Mapping):
                continue
            approvers = rule.get("approvers")
            if isinstance(approvers, str):
                approvers = [approvers]
            if not isinstance(approvers, list):
                continue
            for j, role in enumerate(approvers):
                if isinstance(role, str) and role not in known:
                    problems.append(
                        (
                            ("approvals", i, "approvers", j),
                            f'unknown role "{role}" {known_text}{suggest(role, known)}',
                        )
                    )
    return problems
