"""Which user groups could change a decision about one person in one channel (pure).

Looking a group up costs a Slack call that can be slow or rate-limited. A group matters only
through a binding that applies in the channel, to a role the person does not already hold
without groups, whose grants are not all covered by a grant they hold without groups
(roles only add permissions: there is no deny). So a person granted directly by id never
waits for a group lookup, and a failed lookup only ever denies what depended on it.
"""

from __future__ import annotations

from collections.abc import Collection

from bot.core.policy.schema import Binding, Grant, RoleMap, matches


def groups_that_matter(
    role_map: RoleMap,
    user_id: str,
    channel_id: str,
    *,
    approvers: Collection[str] | None = None,
) -> frozenset[str]:
    """The user groups worth looking up for `user_id` in `channel_id`.

    `approvers`: the person is approving a request that needs one of these roles; roles then
    count by name, not by grants, so only the approver roles they lack matter.
    """
    here = [
        b
        for b in role_map.bindings
        if b.role in role_map.roles and (not b.channels or channel_id in b.channels)
    ]
    direct = {b.role for b in here if _direct(b, user_id)}
    if approvers is not None:
        needed = [b for b in here if b.role in approvers and b.role not in direct]
    else:
        held = [g for role in direct for g in role_map.roles[role]]
        needed = [
            b
            for b in here
            if b.role not in direct
            and not all(any(_covers(h, g) for h in held) for g in role_map.roles[b.role])
        ]
    return frozenset(g for b in needed for g in b.usergroups)


def _direct(binding: Binding, user_id: str) -> bool:
    """The binding holds for this person whatever their groups are."""
    return user_id in binding.users or not (binding.users or binding.usergroups)


def _covers(wide: Grant, narrow: Grant) -> bool:
    """Everything `narrow` grants, `wide` grants too."""
    return (
        set(narrow.action) <= set(wide.action)
        and narrow.granted_options() <= wide.granted_options()
        and _patterns_cover(wide.clusters, narrow.clusters)
        and _patterns_cover(wide.deployments, narrow.deployments)
    )


def _patterns_cover(wide: list[str] | None, narrow: list[str] | None) -> bool:
    """Every value a `narrow` pattern matches, a `wide` one matches (None: everything).

    Patterns know only `*`: when a wide pattern matches a narrow one read literally, each of
    the narrow one's stars lies inside one of the wide one's, so it matches its every value.
    """
    if wide is None:
        return True
    if narrow is None:
        return "*" in wide
    return all(any(matches(w, n) for w in wide) for n in narrow)
