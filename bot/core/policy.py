"""The role map: who may do what, where — loading, validation, ``authorize()``, ``explain()``.

Pure except for :func:`load_role_map`, which reads one file. Reads only the ``roles``,
``bindings`` and ``approvals`` sections of the config file; every other section belongs to
``settings``.

Rules (see DESIGN.md "The config file"), and decisions where it is silent:

* Deny by default. Actions are ``stop``, ``start``, ``status``.
* A grant without ``clusters`` covers every cluster; without ``options``, none of them.
  Options: ``force``, ``finish_pending_work``, ``wildcard``, ``list`` (a comma list) and
  ``all`` (``_all``). ``list`` is implied by ``wildcard`` (a comma list can never reach
  more than a wildcard could).
* A deployment is covered by a grant when the grant names the action, covers the cluster,
  grants *every* requested option and one of its deployment patterns matches the id.
  Patterns (deployments and clusters) know only ``*``; every other character, ``?`` and
  ``[`` included, is literal; matching is case-sensitive.
* ``deployments=None`` (or an empty list) asks: does any grant allow this action, on this
  cluster, with these options, for *some* deployment? A list is allowed only if every
  id in it is.
* A binding matches a caller when (its ``users`` contain the user, or its ``usergroups``
  meet the caller's groups, or it names neither) and (it lists no ``channels`` or the
  caller's channel is listed). Usergroups whose membership could not be checked never
  match (fail closed); if one of them would have allowed the request, the denial says so.
* Every list field also accepts a single string (``action: stop``).
* Slack ids are not checked for shape, but values starting with ``#`` or ``@`` (names,
  not ids) are rejected.
* Approval rules: ``approvals_required`` returns the matching rule with the highest
  ``required`` (the first one on a tie); a rule matches when its actions name the action,
  its clusters cover the cluster, and one of its patterns matches *any* of the
  deployments (with no deployments given, any rule for the action and cluster matches).
  Whether the approver may be the requester is for the caller (``actions``) to decide.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.core.commands import validate_id

__all__ = [
    "OPTIONS",
    "Action",
    "ApprovalRule",
    "Binding",
    "Caller",
    "Decision",
    "Grant",
    "Option",
    "PolicyError",
    "RoleMap",
    "approvals_required",
    "authorize",
    "can_approve",
    "explain",
    "load_role_map",
    "matches",
    "option_label",
    "parse_role_map",
    "roles_of",
]

# `freeze` is the kill switch (`/ml-stop freeze`); grant it to admins only.
Action = Literal["stop", "start", "status", "freeze"]
Option = Literal["force", "finish_pending_work", "wildcard", "list", "all"]

ACTIONS: tuple[str, ...] = get_args(Action)
OPTIONS: tuple[str, ...] = get_args(Option)

_OPTION_LABELS = {
    "force": "--force",
    "finish_pending_work": "--finish-pending-work",
    "wildcard": "wildcards",
    "list": "comma lists",
    "all": "_all",
}

_SECTIONS = ("roles", "bindings", "approvals")
_DEFER_CROSS_REFS = "defer_cross_refs"


class PolicyError(Exception):
    """An invalid role map; ``str()`` is ``FILE:LINE: where: what`` (one line per error)."""


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


class Grant(_Model):
    """One permission of a role."""

    action: list[Action] = Field(min_length=1)
    deployments: list[DeploymentPattern] = Field(min_length=1)
    clusters: list[ClusterPattern] | None = None
    options: list[Option] = Field(default_factory=list)

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
        if isinstance(info.context, Mapping) and info.context.get(_DEFER_CROSS_REFS):
            return self  # the loader checks them itself, to report file lines
        problems = _cross_refs(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{_loc_text(loc)}: {msg}" for loc, msg in problems))
        return self

    def usergroups(self) -> frozenset[str]:
        """Every usergroup any binding names (the ones the adapter must resolve)."""
        return frozenset(g for b in self.bindings for g in b.usergroups)


Loc = tuple[str | int, ...]


def _cross_refs(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
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
                    problems.append((loc, f'unknown role "{role}" {known_text}'))
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
                        (("approvals", i, "approvers", j), f'unknown role "{role}" {known_text}')
                    )
    return problems


# --------------------------------------------------------------------------- loading


def _loc_text(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    if root is None:
        return 1
    node: yaml.Node = root
    line: int = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found: tuple[yaml.Node, yaml.Node] | None = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = (key, value)  # the last one wins, as in PyYAML
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(node: yaml.Node, loc: Loc) -> list[tuple[Loc, int, str]]:
    problems: list[tuple[Loc, int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = key.value
                if name in seen and name != "<<":
                    problems.append(
                        (
                            (*loc, name),
                            key.start_mark.line + 1,
                            f'duplicate key "{name}" (first on line {seen[name]})',
                        )
                    )
                seen.setdefault(name, key.start_mark.line + 1)
                problems.extend(_duplicate_keys(value, (*loc, name)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, (*loc, i)))
    return problems


_MODELS_BY_SECTION: dict[str, type[BaseModel]] = {
    "roles": Grant,
    "bindings": Binding,
    "approvals": ApprovalRule,
}


def _suggest(value: object, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _error_message(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    loc: tuple[str | int, ...] = tuple(error.get("loc", ()))
    value = error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    if kind == "literal_error":
        if field in ("action", "actions"):
            return f'unknown action "{value}" (known: {", ".join(sorted(ACTIONS))})' + _suggest(
                value, ACTIONS
            )
        if field == "options":
            return f'unknown option "{value}" (known: {", ".join(sorted(OPTIONS))})' + _suggest(
                value, OPTIONS
            )
    if kind == "extra_forbidden":
        section = str(loc[0]) if loc else ""
        model = _MODELS_BY_SECTION.get(section)
        allowed = sorted(model.model_fields) if model else list(_SECTIONS)
        return f'unknown key "{loc[-1]}" (allowed: {", ".join(allowed)})' + _suggest(
            loc[-1], allowed
        )
    if kind == "missing":
        return f'missing required key "{field}"'
    if kind == "greater_than_equal":
        return f"must be at least {error.get('ctx', {}).get('ge')} (got {value!r})"
    if kind in ("int_type", "int_parsing"):
        return f"must be a whole number (got {value!r})"
    if kind == "too_short":
        return "must list at least one entry"
    if kind == "value_error":
        message = str(error.get("msg", ""))
        return message.removeprefix("Value error, ")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"{error.get('msg', 'invalid')} (got {shown})"


def parse_role_map(text: str, source: str = "<config>") -> RoleMap:
    """Validate the role map in a config file's text; raise :class:`PolicyError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise PolicyError(f"{source}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}:1: YAML error: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}:1: the config file must be a mapping of sections, "
            f"not a {type(data).__name__}"
        )
    section = {k: data[k] for k in _SECTIONS if k in data and data[k] is not None}

    problems: list[tuple[int, Loc, str]] = []
    if root is not None:
        for key, value in getattr(root, "value", []):
            if isinstance(key, yaml.ScalarNode) and key.value in _SECTIONS:
                for loc, line, msg in _duplicate_keys(value, (key.value,)):
                    problems.append((line, loc, msg))
        for loc, line, msg in _duplicate_keys(root, ()):
            if len(loc) == 1 and loc[0] in _SECTIONS:
                problems.append((line, loc, msg))

    role_map: RoleMap | None = None
    try:
        role_map = RoleMap.model_validate(section, context={_DEFER_CROSS_REFS: True})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append((_line_of(root, loc), loc, _error_message(error)))
    for loc, msg in _cross_refs(section):
        problems.append((_line_of(root, loc), loc, msg))

    if problems or role_map is None:
        problems.sort(key=lambda p: p[0])
        lines = [f"{source}:{line}: {_loc_text(loc)}: {msg}" for line, loc, msg in problems]
        raise PolicyError("\n".join(lines))
    return role_map


def load_role_map(path: str | Path) -> RoleMap:
    """Read the config file at ``path`` and validate its role map."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_role_map(text, source=str(path))


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Caller:
    user_id: str
    channel_id: str
    usergroups: frozenset[str] = frozenset()
    unknown_usergroups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explanation: str
    role: str | None = None
    via: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class _Match:
    """How one binding relates to a caller."""

    index: int
    binding: Binding
    status: Literal["match", "no", "unknown"]
    via: str | None = None
    why: str = ""
    unknown_group: str | None = None
    via_channel: str = ""

    @property
    def role(self) -> str:
        return self.binding.role

    @property
    def where(self) -> str:
        """`` in C0INCIDENTS`` when the binding is limited to channels (and matched a person)."""
        if self.binding.channels and self.via is not None and not self.via.startswith("channel"):
            return f" in {self.via_channel}"
        return ""

    def as_allowed(self) -> str:
        return f"role {self.role} via {self.via}{self.where}"


def _match_binding(index: int, binding: Binding, role_map: RoleMap, caller: Caller) -> _Match:
    if binding.role not in role_map.roles:
        return _Match(index, binding, "no", why=f"role {binding.role} is not defined")
    if binding.channels and caller.channel_id not in binding.channels:
        return _Match(
            index,
            binding,
            "no",
            why=f"channel {caller.channel_id} is not one of {', '.join(binding.channels)}",
        )
    channel = caller.channel_id
    if not binding.users and not binding.usergroups:
        return _Match(index, binding, "match", via=f"channel {channel}", via_channel=channel)
    if caller.user_id in binding.users:
        return _Match(index, binding, "match", via=f"user {caller.user_id}", via_channel=channel)
    for group in binding.usergroups:
        if group in caller.usergroups:
            return _Match(index, binding, "match", via=f"usergroup {group}", via_channel=channel)
    unknown = [g for g in binding.usergroups if g in caller.unknown_usergroups]
    if unknown:
        return _Match(
            index,
            binding,
            "unknown",
            why=f"membership of usergroup {unknown[0]} could not be checked (failing closed)",
            unknown_group=unknown[0],
        )
    parts: list[str] = []
    if binding.users:
        parts.append(f"user {caller.user_id} is not listed")
    if binding.usergroups:
        parts.append(f"not in usergroup {' or '.join(binding.usergroups)}")
    return _Match(index, binding, "no", why="; ".join(parts))


def _matches(role_map: RoleMap, caller: Caller) -> list[_Match]:
    return [_match_binding(i, b, role_map, caller) for i, b in enumerate(role_map.bindings)]


def _option_order(options: Iterable[str]) -> list[str]:
    opts = set(options)
    return [o for o in OPTIONS if o in opts] + sorted(opts - set(OPTIONS))


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _missing_option(candidates: Sequence[tuple[_Match, Grant]], opts: frozenset[str]) -> str:
    roles = _unique(m.role for m, _ in candidates)
    ordered = _option_order(opts)
    missing = next(
        (o for o in ordered if not any(o in g.granted_options() for _, g in candidates)),
        None,
    )
    if missing is None:  # each option is granted somewhere, but never all by one grant
        first = candidates[0][1].granted_options()
        missing = next(o for o in ordered if o not in first)
    if len(roles) == 1:
        return f"role {roles[0]} does not grant {option_label(missing)}"
    return f"roles {', '.join(roles)} do not grant {option_label(missing)}"


def _deny(text: str) -> Decision:
    return Decision(allowed=False, explanation=f"denied: {text}")


def _decide(
    role_map: RoleMap,
    caller: Caller,
    matched: Sequence[_Match],
    action: str,
    cluster: str,
    deployments: Sequence[str] | None,
    opts: frozenset[str],
) -> Decision:
    if not matched:
        return _deny(
            f"no role grants {action} on {cluster} "
            f"(user {caller.user_id} holds no role in {caller.channel_id})"
        )
    applicable = [
        (m, g)
        for m in matched
        for g in role_map.roles.get(m.role, [])
        if g.applies(action, cluster)
    ]
    if not applicable:
        return _deny(f"no role grants {action} on {cluster}")
    with_opts = [(m, g) for m, g in applicable if opts <= g.granted_options()]
    if not with_opts:
        return _deny(_missing_option(applicable, opts))
    if not deployments:
        first = with_opts[0][0]
        return Decision(True, f"allowed: {first.as_allowed()}", first.role, first.via)

    for deployment in deployments:
        if any(g.covers(deployment) for _, g in with_opts):
            continue
        candidates = [(m, g) for m, g in applicable if g.covers(deployment)]
        if candidates:
            return _deny(f"{_missing_option(candidates, opts)} for `{deployment}`")
        covers: dict[str, list[str]] = {}
        for m, g in with_opts:
            covers.setdefault(m.role, [])
            covers[m.role] = _unique([*covers[m.role], *g.deployments])
        listed = "; ".join(f"{role} covers {', '.join(pats)}" for role, pats in covers.items())
        with_text = (
            f" with {', '.join(option_label(o) for o in _option_order(opts))}" if opts else ""
        )
        return _deny(
            f"deployment `{deployment}` is not covered by any role that grants "
            f"{action} on {cluster}{with_text} ({listed})"
        )

    # Allowed. Prefer one binding that covers everything; else name each one used.
    for m in _unique_matches(m for m, _ in with_opts):
        grants = [g for mm, g in with_opts if mm is m]
        if all(any(g.covers(d) for g in grants) for d in deployments):
            return Decision(True, f"allowed: {m.as_allowed()}", m.role, m.via)
    used: list[_Match] = []
    for deployment in deployments:
        m = next(mm for mm, g in with_opts if g.covers(deployment))
        if m not in used:
            used.append(m)
    text = "; ".join(m.as_allowed() for m in used)
    return Decision(True, f"allowed: {text}", used[0].role, used[0].via)


def _unique_matches(items: Iterable[_Match]) -> list[_Match]:
    out: list[_Match] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def authorize(
    role_map: RoleMap,
    caller: Caller,
    action: Action,
    cluster: str,
    deployments: Sequence[str] | None,
    options: Iterable[str] = (),
) -> Decision:
    """May ``caller`` do ``action`` on ``cluster`` to ``deployments`` with ``options``?

    ``deployments=None``: a pre-check before resolution (is there any grant for the
    action, cluster and options?). Otherwise every id must be covered by a grant that
    also grants every option."""
    opts = frozenset(options)
    checks = _matches(role_map, caller)
    matched = [m for m in checks if m.status == "match"]
    decision = _decide(role_map, caller, matched, action, cluster, deployments, opts)
    if decision.allowed:
        return decision
    for m in checks:
        if m.status != "unknown":
            continue
        assumed = _Match(m.index, m.binding, "match", via=f"usergroup {m.unknown_group}")
        trial = _decide(role_map, caller, [*matched, assumed], action, cluster, deployments, opts)
        if trial.allowed:
            return _deny(
                f"could not check membership of usergroup {m.unknown_group} (Slack error); "
                "failing closed"
            )
    return decision


def approvals_required(
    role_map: RoleMap, action: Action, cluster: str, deployments: Sequence[str]
) -> ApprovalRule | None:
    """The strictest approval rule (highest ``required``) for this request, if any."""
    rules = [r for r in role_map.approvals if r.applies(action, cluster, deployments)]
    if not rules:
        return None
    return max(rules, key=lambda r: r.required)


def can_approve(role_map: RoleMap, caller: Caller, rule: ApprovalRule, cluster: str) -> Decision:
    """Does ``caller`` hold one of ``rule.approvers`` (via a binding that matches them)?"""
    checks = _matches(role_map, caller)
    what = f"{'/'.join(rule.actions)} on {cluster}"
    for m in checks:
        if m.status == "match" and m.role in rule.approvers:
            return Decision(True, f"allowed: {m.as_allowed()} may approve {what}", m.role, m.via)
    for m in checks:
        if m.status == "unknown" and m.role in rule.approvers:
            return _deny(
                f"could not check membership of usergroup {m.unknown_group} (Slack error); "
                "failing closed"
            )
    held = _unique(m.role for m in checks if m.status == "match")
    holds = ", ".join(held) if held else "no role"
    return _deny(
        f"approving {what} needs role {' or '.join(rule.approvers)} "
        f"(user {caller.user_id} holds {holds} in {caller.channel_id})"
    )


def roles_of(role_map: RoleMap, caller: Caller) -> list[tuple[str, str]]:
    """``(role, via)`` for every binding that matches ``caller``, in file order."""
    out: list[tuple[str, str]] = []
    for m in _matches(role_map, caller):
        if m.status == "match" and m.via is not None and (m.role, m.via) not in out:
            out.append((m.role, m.via))
    return out


def _describe_binding(binding: Binding) -> str:
    parts = [
        f"{name} {', '.join(values)}"
        for name, values in (
            ("users", binding.users),
            ("usergroups", binding.usergroups),
            ("channels", binding.channels),
        )
        if values
    ]
    return f"role {binding.role} ({'; '.join(parts)})"


def _describe_grant(grant: Grant) -> str:
    clusters = ", ".join(grant.clusters) if grant.clusters is not None else "any cluster"
    options = ", ".join(option_label(o) for o in _option_order(grant.granted_options()))
    return (
        f"{'/'.join(grant.action)} on {clusters}; deployments {', '.join(grant.deployments)}; "
        f"options {options or 'none'}"
    )


def explain(
    role_map: RoleMap,
    caller: Caller,
    action: Action,
    cluster: str,
    deployments: Sequence[str] | None,
    options: Iterable[str] = (),
) -> str:
    """Every binding considered, why it matched or not, each grant, and the decision."""
    opts = frozenset(options)
    targets = ", ".join(deployments) if deployments else "(not resolved yet)"
    opt_text = ", ".join(option_label(o) for o in _option_order(opts)) or "none"
    groups = ", ".join(sorted(caller.usergroups)) or "none"
    lines = [
        f"request: {action} on {cluster}; deployments: {targets}; options: {opt_text}",
        f"caller: user {caller.user_id} in channel {caller.channel_id}; usergroups: {groups}"
        + (
            f"; unchecked usergroups: {', '.join(sorted(caller.unknown_usergroups))}"
            if caller.unknown_usergroups
            else ""
        ),
    ]
    if not role_map.bindings:
        lines.append("bindings: none (everything is denied)")
    else:
        lines.append("bindings:")
    for m in _matches(role_map, caller):
        head = f"  [{m.index}] {_describe_binding(m.binding)}: "
        if m.status == "match":
            lines.append(head + f"matches via {m.via}{m.where}")
            for j, grant in enumerate(role_map.roles.get(m.role, [])):
                verdict: list[str] = []
                if action not in grant.action:
                    verdict.append(f"not {action}")
                elif not grant.applies(action, cluster):
                    verdict.append(f"not on {cluster}")
                else:
                    lacking = [o for o in _option_order(opts) if o not in grant.granted_options()]
                    if lacking:
                        verdict.append("lacks " + ", ".join(option_label(o) for o in lacking))
                    if deployments:
                        covered = [d for d in deployments if grant.covers(d)]
                        verdict.append(
                            f"covers {', '.join(covered)}" if covered else "covers none of them"
                        )
                    elif not lacking:
                        verdict.append("applies")
                lines.append(f"      grant {j}: {_describe_grant(grant)} -> {'; '.join(verdict)}")
        elif m.status == "unknown":
            lines.append(head + f"unknown: {m.why}")
        else:
            lines.append(head + f"no match: {m.why}")
    rule = approvals_required(role_map, action, cluster, list(deployments or []))
    if rule is not None:
        lines.append(
            f"approvals: {rule.required} approval(s) needed from {' or '.join(rule.approvers)}"
        )
    decision = authorize(role_map, caller, action, cluster, deployments, opts)
    lines.append(f"decision: {decision.explanation}")
    return "\n".join(lines)
