"""Decisions on a role map: ``authorize()``, ``explain()``, ``approvals_required()``,
``can_approve()`` and ``roles_of()`` (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from bot.core.policy.patterns import approvals_line
from bot.core.policy.remedy import Holder, holders, who_can
from bot.core.policy.schema import (
    OPTIONS,
    Action,
    ApprovalRule,
    Binding,
    Grant,
    RoleMap,
    option_label,
)


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
    # A denial: who holds a role that would allow it (see `remedy`); empty when none does.
    helpers: tuple[Holder, ...] = ()

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


def _in_channel(caller: Caller, label: str = "") -> str:
    """`` in C0X`` when the caller is in a channel; nothing when none was given (explain)."""
    return f" in {label}{caller.channel_id}" if caller.channel_id else ""


def _match_binding(index: int, binding: Binding, role_map: RoleMap, caller: Caller) -> _Match:
    if binding.role not in role_map.roles:
        return _Match(index, binding, "no", why=f"role {binding.role} is not defined")
    if binding.channels and caller.channel_id not in binding.channels:
        channels = ", ".join(binding.channels)
        why = (
            f"channel {caller.channel_id} is not one of {channels}"
            if caller.channel_id
            else f"no channel given (it applies only in {channels})"
        )
        return _Match(index, binding, "no", why=why)
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


def _out_of_bounds(candidates: Sequence[tuple[_Match, Grant]], numbers: Sequence[int]) -> str:
    """`role ml-operator allows scale only between 1 and 4 allocations (asked: 6)`."""
    asked = ", ".join(str(n) for n in numbers)
    bounds = _unique(
        f"role {m.role} allows scale only {g.allocations.text()}"
        for m, g in candidates
        if g.allocations is not None
    )
    return f"{'; '.join(bounds)} (asked: {asked})"


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
    numbers: Sequence[int] = (),
) -> Decision:
    if not matched:
        return _deny(
            f"no role grants {action} on {cluster} "
            f"(user {caller.user_id} holds no role{_in_channel(caller)})"
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
    in_bounds = [(m, g) for m, g in with_opts if g.fits(action, numbers)]
    if not in_bounds:
        return _deny(_out_of_bounds(with_opts, numbers))
    with_opts = in_bounds
    if not deployments:
        first = with_opts[0][0]
        return Decision(True, f"allowed: {first.as_allowed()}", first.role, first.via)

    for deployment in deployments:
        if any(g.covers(deployment) for _, g in with_opts):
            continue
        candidates = [(m, g) for m, g in applicable if g.covers(deployment)]
        optioned = [(m, g) for m, g in candidates if opts <= g.granted_options()]
        if optioned:
            return _deny(f"{_out_of_bounds(optioned, numbers)} for `{deployment}`")
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
    *,
    allocations: Sequence[int] = (),
) -> Decision:
    """May ``caller`` do ``action`` on ``cluster`` to ``deployments`` with ``options``?

    ``deployments=None``: a pre-check before resolution (is there any grant for the
    action, cluster and options?). Otherwise every id must be covered by a grant that
    also grants every option. ``allocations``: the numbers a scale asks for; a grant
    with ``allocations`` bounds applies only when every one is within them."""
    opts = frozenset(options)
    numbers = tuple(allocations)
    checks = _matches(role_map, caller)
    matched = [m for m in checks if m.status == "match"]
    decision = _decide(role_map, caller, matched, action, cluster, deployments, opts, numbers)
    if decision.allowed:
        return decision
    for m in checks:
        if m.status != "unknown":
            continue
        assumed = _Match(m.index, m.binding, "match", via=f"usergroup {m.unknown_group}")
        trial = _decide(
            role_map, caller, [*matched, assumed], action, cluster, deployments, opts, numbers
        )
        if trial.allowed:
            decision = _deny(
                f"could not check membership of usergroup {m.unknown_group} (Slack error); "
                "failing closed"
            )
            break
    helpers = who_can(
        role_map, action, cluster, deployments, opts, exclude=caller.user_id, allocations=numbers
    )
    return replace(decision, helpers=helpers)


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
    denied = _deny(
        f"approving {what} needs role {' or '.join(rule.approvers)} "
        f"(user {caller.user_id} holds {holds}{_in_channel(caller)})"
    )
    return replace(denied, helpers=holders(role_map, rule.approvers, exclude=caller.user_id))


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
    bounds = f"; scale {grant.allocations.text()}" if grant.allocations is not None else ""
    return (
        f"{'/'.join(grant.action)} on {clusters}; deployments {', '.join(grant.deployments)}; "
        f"options {options or 'none'}{bounds}"
    )


def explain(
    role_map: RoleMap,
    caller: Caller,
    action: Action,
    cluster: str,
    deployments: Sequence[str] | None,
    options: Iterable[str] = (),
    patterns: Sequence[str] = (),
    *,
    allocations: Sequence[int] = (),
) -> str:
    """Every binding considered, why it matched or not, each grant, and the decision.

    `patterns`: what the request names when it is not resolved yet (`ner-*`), so the
    approvals shown are the ones that apply to it."""
    opts = frozenset(options)
    numbers = tuple(allocations)
    targets = ", ".join(deployments) if deployments else "(not resolved yet)"
    opt_text = ", ".join(option_label(o) for o in _option_order(opts)) or "none"
    groups = ", ".join(sorted(caller.usergroups)) or "none"
    lines = [
        f"request: {action} on {cluster}; deployments: {targets}; options: {opt_text}"
        + (f"; allocations: {', '.join(map(str, numbers))}" if numbers else ""),
        f"caller: user {caller.user_id}{_in_channel(caller, 'channel ')}; usergroups: {groups}"
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
                    if not grant.fits(action, numbers) and grant.allocations is not None:
                        verdict.append(f"outside its bounds ({grant.allocations.text()})")
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
    if deployments is None and patterns:
        line = approvals_line(role_map, action, cluster, patterns)
        lines += [line] if line else []
    else:
        rule = approvals_required(role_map, action, cluster, list(deployments or []))
        if rule is not None:
            lines.append(
                f"approvals: {rule.required} approval(s) needed from {' or '.join(rule.approvers)}"
            )
    decision = authorize(role_map, caller, action, cluster, deployments, opts, allocations=numbers)
    lines.append(f"decision: {decision.explanation}")
    return "\n".join(lines)
