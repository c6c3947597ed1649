"""The role map: who may do what, where — loading, validation, ``authorize()``, ``explain()``.

Pure except for :func:`load_role_map`, which reads one file. Reads only the ``roles``,
``bindings`` and ``approvals`` sections of the config file; every other section belongs to
``settings``.

Rules (README, "Configuration"), and decisions where it is silent:

* Deny by default. Actions are ``stop``, ``start``, ``status``, ``freeze``, ``scale``.
* A ``scale`` grant may set ``allocations: {min: N, max: M}``: every allocation number a
  scale asks for (the allocations, and the adaptive min and max as merged with the
  deployment's own) must lie within them, or the grant does not apply; a denial names the
  bound. ``adaptive_off`` (``--adaptive off``) and ``scale_to_zero`` (``--min 0``) are
  options like ``force``.
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

Modules: ``schema`` (the models), ``load`` (file to RoleMap, FILE:LINE errors), ``decide``,
``lookups`` (which user groups are worth a Slack lookup for one person).
"""

from bot.core.policy.decide import (
    Caller,
    Decision,
    approvals_required,
    authorize,
    can_approve,
    explain,
    roles_of,
)
from bot.core.policy.load import PolicyError, load_role_map, parse_role_map
from bot.core.policy.lookups import groups_that_matter
from bot.core.policy.remedy import Holder, who_can
from bot.core.policy.schema import (
    OPTIONS,
    Action,
    AllocationBounds,
    ApprovalRule,
    Binding,
    Grant,
    Option,
    RoleMap,
    matches,
    option_label,
)

__all__ = [
    "OPTIONS",
    "Action",
    "AllocationBounds",
    "ApprovalRule",
    "Binding",
    "Caller",
    "Decision",
    "Grant",
    "Holder",
    "Option",
    "PolicyError",
    "RoleMap",
    "approvals_required",
    "authorize",
    "can_approve",
    "explain",
    "groups_that_matter",
    "load_role_map",
    "matches",
    "option_label",
    "parse_role_map",
    "roles_of",
    "who_can",
]
