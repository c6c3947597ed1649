"""Who could help with a denied request: the roles that would allow it, and who holds them.

Pure, and only what the role map shows: a binding's users, user groups and channels. Who
is in a user group is Slack's to know, so groups are named, never expanded here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.policy.schema import RoleMap


@dataclass(frozen=True)
class Holder:
    """One binding of a role that would allow the request: who holds it, and where."""

    role: str
    users: tuple[str, ...] = ()
    usergroups: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # the binding applies only there (empty: anywhere)

    @property
    def anyone(self) -> bool:
        """A channel binding: anyone in those channels holds the role."""
        return not self.users and not self.usergroups


def roles_allowing(
    role_map: RoleMap,
    action: str,
    cluster: str,
    deployments: Sequence[str] | None,
    options: Iterable[str] = (),
    allocations: Sequence[int] = (),
) -> list[str]:
    """The roles whose grants alone allow the request, in file order (as `authorize` judges);
    `allocations`: a scale's numbers, which a grant's bounds must hold."""
    opts = frozenset(options)
    found = []
    for name, grants in role_map.roles.items():
        usable = [
            g
            for g in grants
            if g.applies(action, cluster)
            and opts <= g.granted_options()
            and g.fits(action, allocations)
        ]
        if not usable:
            continue
        if deployments and not all(any(g.covers(d) for g in usable) for d in deployments):
            continue
        found.append(name)
    return found


def holders(
    role_map: RoleMap, roles: Iterable[str], *, exclude: str | None = None
) -> tuple[Holder, ...]:
    """The bindings of `roles`, without `exclude` (the caller) where it holds a role anywhere."""
    wanted = set(roles)
    out: list[Holder] = []
    for binding in role_map.bindings:
        if binding.role not in wanted:
            continue
        users = tuple(
            u for u in binding.users if binding.channels or u != exclude
        )  # in a channel-bound binding the caller may simply be in the wrong channel
        if (binding.users or binding.usergroups) and not (users or binding.usergroups):
            continue
        out.append(Holder(binding.role, users, tuple(binding.usergroups), tuple(binding.channels)))
    return tuple(out)


def who_can(
    role_map: RoleMap,
    action: str,
    cluster: str,
    deployments: Sequence[str] | None,
    options: Iterable[str] = (),
    *,
    exclude: str | None = None,
    allocations: Sequence[int] = (),
) -> tuple[Holder, ...]:
    """Who holds a role that would allow this request (none: no role in the map allows it)."""
    roles = roles_allowing(role_map, action, cluster, deployments, options, allocations)
    return holders(role_map, roles, exclude=exclude)
