"""Who could help with a denial: derived from the role map's grants and bindings only."""

from __future__ import annotations

from bot.core.policy import Caller, Holder, authorize, parse_role_map

ROLES = """
roles:
  ml-operator:
    - {action: [stop], deployments: ["ner-*"]}
  ml-admin:
    - {action: [stop, start], deployments: ["*"], options: [force, wildcard]}
  prod-admin:
    - {action: [stop], deployments: ["ner-*"], clusters: [prod], options: [force]}
bindings:
  - {role: ml-operator, users: [U0OPS]}
  - {role: ml-admin, users: [U0A], usergroups: [S0SRE]}
  - {role: ml-admin, users: [U0OPS], channels: [C0WAR]}
  - {role: prod-admin, usergroups: [S0PROD]}
"""


def test_the_roles_that_would_allow_it_and_their_holders_minus_the_caller() -> None:
    role_map = parse_role_map(ROLES)
    decision = authorize(role_map, Caller("U0OPS", "C0X"), "stop", "default", ["ner-a"], ["force"])
    assert not decision.allowed
    assert decision.helpers == (
        Holder("ml-admin", ("U0A",), ("S0SRE",), ()),
        # The caller holds it in another channel: going there is the way.
        Holder("ml-admin", ("U0OPS",), (), ("C0WAR",)),
    )  # prod-admin's grant is for another cluster


def test_every_deployment_must_be_covered_by_one_role() -> None:
    role_map = parse_role_map(ROLES)
    decision = authorize(role_map, Caller("U0Z", "C0X"), "stop", "prod", ["ner-a", "elser"])
    assert {h.role for h in decision.helpers} == {"ml-admin"}
    decision = authorize(role_map, Caller("U0Z", "C0X"), "start", "prod", ["x"], ["all"])
    assert decision.helpers == ()  # nobody may: the message says so


def test_an_allowed_decision_carries_no_helpers() -> None:
    role_map = parse_role_map(ROLES)
    assert authorize(role_map, Caller("U0OPS", "C0X"), "stop", "d", ["ner-a"]).helpers == ()


def test_a_scale_denial_names_only_roles_whose_bounds_allow_the_numbers() -> None:
    role_map = parse_role_map(
        """
roles:
  small:
    - {action: scale, deployments: ["*"], allocations: {min: 1, max: 4}}
  big:
    - {action: scale, deployments: ["*"], allocations: {min: 1, max: 16}}
bindings:
  - {role: small, users: [U0SMALL, U0ASK]}
  - {role: big, users: [U0BIG]}
"""
    )
    asker = Caller("U0ASK", "C0X")
    eight = authorize(role_map, asker, "scale", "d", ["elser"], allocations=[8])
    assert not eight.allowed
    assert [h.role for h in eight.helpers] == ["big"]  # `small` would refuse 8 as well
    twenty = authorize(role_map, asker, "scale", "d", ["elser"], allocations=[20])
    assert twenty.helpers == ()  # no role allows 20: the message says so
