"""Which approval rules a deployment *pattern* (`ner-*`) meets, before it is resolved (pure).

`explain` has no cluster to resolve a wildcard against, so it compares patterns: a rule
whose deployments cover the whole pattern is needed; one that only overlaps it may be.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache, lru_cache

from bot.core.policy.schema import ApprovalRule, RoleMap, matches


@lru_cache(maxsize=1024)
def overlap(a: str, b: str) -> bool:
    """Whether some deployment id matches both patterns (`*` is the only wildcard)."""

    @cache
    def step(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            return step(i + 1, j) or (j < len(b) and step(i, j + 1))
        if j < len(b) and b[j] == "*":
            return step(i, j + 1) or (i < len(a) and step(i + 1, j))
        return i < len(a) and j < len(b) and a[i] == b[j] and step(i + 1, j + 1)

    return step(0, 0)


def covers(rule_pattern: str, pattern: str) -> bool:
    """Whether every id `pattern` matches is matched by `rule_pattern` (`*`-only globs)."""
    return matches(rule_pattern, pattern)  # the pattern's own `*` read as a literal character


def rules_for_patterns(
    role_map: RoleMap, action: str, cluster: str, patterns: Sequence[str]
) -> tuple[list[ApprovalRule], list[ApprovalRule]]:
    """(rules that apply to every id the patterns match, rules that apply to some)."""
    needed: list[ApprovalRule] = []
    maybe: list[ApprovalRule] = []
    for rule in role_map.approvals:
        if not rule.applies(action, cluster, ()):  # action and cluster only
            continue
        if all(any(covers(r, p) for r in rule.deployments) for p in patterns):
            needed.append(rule)
        elif any(overlap(r, p) for r in rule.deployments for p in patterns):
            maybe.append(rule)
    return needed, maybe


def approvals_line(
    role_map: RoleMap, action: str, cluster: str, patterns: Sequence[str]
) -> str | None:
    """`approvals: …` for a request given by patterns, or None when no rule can apply."""
    needed, maybe = rules_for_patterns(role_map, action, cluster, patterns)
    if needed:
        rule = max(needed, key=lambda r: r.required)
        return f"approvals: {rule.required} approval(s) needed from {' or '.join(rule.approvers)}"
    if maybe:
        rule = max(maybe, key=lambda r: r.required)
        ids = ", ".join(sorted({d for r in maybe for d in r.deployments}))
        return (
            f"approvals: may need {rule.required} approval(s) from "
            f"{' or '.join(rule.approvers)} (if it matches {ids})"
        )
    return None
