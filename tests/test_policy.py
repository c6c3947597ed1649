"""bot.core.policy: the role map, authorize(), explain(), the loader's error lines."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.core.policy import (
    ApprovalRule,
    Binding,
    Caller,
    Grant,
    PolicyError,
    RoleMap,
    approvals_required,
    authorize,
    can_approve,
    explain,
    load_role_map,
    matches,
    parse_role_map,
    roles_of,
)

CONFIG = textwrap.dedent(
    """\
    clusters:
      prod:
        url: https://es-prod.internal:9200
        api_key_env: ES_PROD_API_KEY
      staging:
        url: https://es-staging.internal:9200
    default_cluster: prod
    audit: {jsonl: /var/log/ml-chatops.jsonl}

    roles:
      ml-viewer:
        - {action: status, deployments: ["*"]}
      ml-operator:
        - {action: stop, deployments: ["search-*", "ner-*"], clusters: [staging, prod]}
      ml-admin:
        - {action: [stop, start, status], deployments: ["*"], clusters: ["*"],
           options: [force, finish_pending_work, wildcard, all]}

    bindings:
      - {role: ml-admin, users: [U0ADMIN1], usergroups: [S0SRE]}
      - {role: ml-operator, usergroups: [S0MLOPS], channels: [C0INCIDENTS]}

    approvals:
      - {clusters: [prod], actions: [stop], deployments: ["*"], required: 1, approvers: [ml-admin]}
    """
)

ADMIN = Caller("U0ADMIN1", "C0ANY")
SRE = Caller("U0SRE", "C0ANY", frozenset({"S0SRE"}))
OPERATOR = Caller("U0OPS", "C0INCIDENTS", frozenset({"S0MLOPS"}))
OPERATOR_ELSEWHERE = Caller("U0OPS", "C0RANDOM", frozenset({"S0MLOPS"}))
NOBODY = Caller("U0NOBODY", "C0INCIDENTS")


@pytest.fixture(scope="module")
def role_map() -> RoleMap:
    return parse_role_map(CONFIG, "config.yml")


# --------------------------------------------------------------------------- loading


def test_loads_the_design_example_and_ignores_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG)
    rm = load_role_map(path)
    assert set(rm.roles) == {"ml-viewer", "ml-operator", "ml-admin"}
    assert rm.roles["ml-viewer"][0].action == ["status"]
    assert rm.roles["ml-viewer"][0].clusters is None
    assert rm.roles["ml-viewer"][0].options == []
    assert rm.bindings[1].channels == ["C0INCIDENTS"]
    assert rm.approvals[0].approvers == ["ml-admin"]
    assert rm.usergroups() == frozenset({"S0SRE", "S0MLOPS"})


def test_empty_file_is_an_empty_role_map(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("default_cluster: prod\n")
    assert load_role_map(path) == RoleMap()
    assert parse_role_map("") == RoleMap()


def test_approval_defaults() -> None:
    rule = parse_role_map("roles: {a: []}\napprovals:\n  - {approvers: a}\n").approvals[0]
    assert rule.actions == ["stop"] and rule.deployments == ["*"] and rule.required == 1
    assert rule.clusters is None and rule.approvers == ["a"]


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(PolicyError) as info:
        load_role_map(path)
    return str(info.value)


def test_error_unknown_role_names_file_and_line(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        default_cluster: prod
        roles:
          ml-viewer:
            - {action: status, deployments: ["*"]}
          ml-operator:
            - {action: stop, deployments: ["search-*"]}
          ml-admin:
            - {action: stop, deployments: ["*"]}
        bindings:
          - {role: ml-admin, users: [U0ADMIN1]}
          - {role: ml-operatr, usergroups: [S0MLOPS]}
        """,
    )
    assert message == (
        f"{tmp_path / 'config.yml'}:11: bindings[1].role: "
        'unknown role "ml-operatr" (known: ml-admin, ml-operator, ml-viewer); '
        'did you mean "ml-operator"?'
    )


def test_error_unknown_action(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          ops:
            - action: [stop,
                       stpo]
              deployments: ["*"]
        """,
    )
    assert message.endswith(
        ':4: roles.ops[0].action[1]: unknown action "stpo" '
        '(known: freeze, scale, start, status, stop); did you mean "stop"?'
    )


def test_error_unknown_single_action(tmp_path: Path) -> None:
    message = _load_error(tmp_path, 'roles:\n  ops:\n    - {action: halt, deployments: ["*"]}\n')
    assert ':3: roles.ops[0].action[0]: unknown action "halt"' in message


def test_error_unknown_option(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          ops:
            - action: stop
              deployments: ["*"]
              options:
                - force
                - forse
        """,
    )
    assert ':7: roles.ops[0].options[1]: unknown option "forse"' in message
    assert 'did you mean "force"?' in message


def test_error_bad_required(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles: {ml-admin: []}
        approvals:
          - clusters: [prod]
            required: 0
            approvers: [ml-admin]
          - approvers: [ml-admin]
            required: two
          - {approvers: [ml-admin], required: true}
        """,
    )
    lines = message.splitlines()
    assert lines[0].endswith(":4: approvals[0].required: must be at least 1 (got 0)")
    assert lines[1].endswith(":7: approvals[1].required: must be a whole number (got 'two')")
    assert lines[2].endswith(":8: approvals[2].required: must be a whole number (got True)")


def test_error_extra_key(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          ops:
            - {action: stop, deployments: ["*"]}
        bindings:
          - role: ops
            user: [U1]
        """,
    )
    assert message.endswith(
        ':6: bindings[0].user: unknown key "user" '
        '(allowed: channels, role, usergroups, users); did you mean "users"?'
    )


def test_error_yaml_syntax(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          ops:
            - {action: stop, deployments: ["*"}
        """,
    )
    assert message.startswith(f"{tmp_path / 'config.yml'}:3: YAML syntax error")


def test_error_yaml_bad_indentation(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "roles:\n  ops: []\n bindings: []\n")
    assert ":3: YAML syntax error" in message


def test_error_unknown_approver_role(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path, "roles: {ml-admin: []}\napprovals:\n  - {approvers: [ml-admin, ml-boss]}\n"
    )
    assert message.endswith(
        ':3: approvals[0].approvers[1]: unknown role "ml-boss" (known: ml-admin)'
    )


def test_error_binding_names_nobody(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "roles: {r: []}\nbindings:\n  - {role: r}\n")
    assert ":3: bindings[0]: " in message and "names no users, usergroups or channels" in message


def test_error_missing_key(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "roles:\n  r:\n    - {action: stop}\n")
    assert message.endswith(':3: roles.r[0].deployments: missing required key "deployments"')


def test_error_duplicate_role(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          r:
            - {action: stop, deployments: ["*"]}
          r:
            - {action: status, deployments: ["*"]}
        """,
    )
    assert ':4: roles.r: duplicate key "r" (first on line 2)' in message


def test_error_bad_patterns_and_names(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          r:
            - {action: stop, deployments: ["Search-*", "a,b"], clusters: [Prod]}
        bindings:
          - {role: r, channels: ["#incidents"]}
        """,
    )
    lines = message.splitlines()
    assert len(lines) == 4
    assert ":3: roles.r[0].deployments[0]: deployment pattern `Search-*` has uppercase" in lines[0]
    assert "roles.r[0].deployments[1]" in message and "one pattern per list entry" in message
    assert 'roles.r[0].clusters[0]: cluster "Prod" is not a valid' in message
    assert ':5: bindings[0].channels[0]: "#incidents" looks like a name' in lines[3]


def test_several_errors_one_per_line_sorted(tmp_path: Path) -> None:
    message = _load_error(
        tmp_path,
        """\
        roles:
          r:
            - {action: stp, deployments: ["*"]}
        bindings:
          - {role: q, users: [U1]}
        """,
    )
    lines = message.splitlines()
    assert [line.split(":")[1] for line in lines] == ["3", "5"]


def test_error_not_a_mapping(tmp_path: Path) -> None:
    assert ":1: the config file must be a mapping" in _load_error(tmp_path, "- a\n- b\n")


def test_error_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_role_map(tmp_path / "nope.yml")


def test_single_strings_are_lists() -> None:
    rm = parse_role_map(
        "roles:\n  r:\n    - {action: stop, deployments: a-*, clusters: prod, options: force}\n"
        "bindings:\n  - {role: r, users: U1, usergroups: S1, channels: C1}\n"
    )
    grant = rm.roles["r"][0]
    assert grant.deployments == ["a-*"] and grant.clusters == ["prod"]
    assert grant.options == ["force"]
    assert rm.bindings[0].users == ["U1"]


def test_python_construction_checks_references() -> None:
    with pytest.raises(ValidationError, match="unknown role"):
        RoleMap(bindings=[Binding(role="ghost", users=["U1"])])
    with pytest.raises(ValidationError, match="unknown role"):
        RoleMap(approvals=[ApprovalRule(approvers=["ghost"])])
    with pytest.raises(ValidationError):
        Grant.model_validate({"action": "stop", "deployments": ["*"], "extra": 1})


# --------------------------------------------------------------------------- patterns


def test_patterns_know_only_star() -> None:
    assert matches("*", "anything")
    assert matches("search-*", "search-a")
    assert not matches("search-*", "elser-a")
    assert matches("*-prod", "x-prod")
    assert not matches("a?", "ab")
    assert matches("a?", "a?")
    assert not matches("[ab]", "a")
    assert not matches("Search-*", "search-a")  # case-sensitive
    assert matches("a*b*c", "a-b-c")


# --------------------------------------------------------------------------- authorize


def test_allowed_via_usergroup_in_channel(role_map: RoleMap) -> None:
    decision = authorize(role_map, OPERATOR, "stop", "prod", ["search-a"])
    assert decision.allowed
    assert decision.explanation == "allowed: role ml-operator via usergroup S0MLOPS in C0INCIDENTS"
    assert decision.role == "ml-operator" and decision.via == "usergroup S0MLOPS"


def test_allowed_via_user(role_map: RoleMap) -> None:
    decision = authorize(role_map, ADMIN, "stop", "prod", ["elser-prod"], ["force"])
    assert decision.allowed
    assert decision.explanation == "allowed: role ml-admin via user U0ADMIN1"
    assert decision.via == "user U0ADMIN1"


def test_allowed_via_channel_only_binding() -> None:
    rm = RoleMap(
        roles={"viewer": [Grant(action=["status"], deployments=["*"])]},
        bindings=[Binding(role="viewer", channels=["C1"])],
    )
    decision = authorize(rm, Caller("U9", "C1"), "status", "prod", ["x"])
    assert decision.allowed and decision.explanation == "allowed: role viewer via channel C1"
    assert decision.via == "channel C1"
    assert not authorize(rm, Caller("U9", "C2"), "status", "prod", ["x"]).allowed


def test_denied_no_role_grants_action_on_cluster(role_map: RoleMap) -> None:
    decision = authorize(role_map, OPERATOR, "start", "prod", ["search-a"])
    assert not decision.allowed
    assert decision.explanation == "denied: no role grants start on prod"
    assert decision.role is None
    assert (
        authorize(role_map, OPERATOR, "stop", "dev", None).explanation
        == "denied: no role grants stop on dev"
    )


def test_denied_caller_without_roles(role_map: RoleMap) -> None:
    decision = authorize(role_map, NOBODY, "stop", "prod", ["search-a"])
    assert decision.explanation == (
        "denied: no role grants stop on prod (user U0NOBODY holds no role in C0INCIDENTS)"
    )


def test_channel_restriction(role_map: RoleMap) -> None:
    assert not authorize(role_map, OPERATOR_ELSEWHERE, "stop", "prod", ["search-a"]).allowed


def test_denied_missing_option(role_map: RoleMap) -> None:
    decision = authorize(role_map, OPERATOR, "stop", "prod", ["search-a"], ["force"])
    assert decision.explanation == "denied: role ml-operator does not grant --force"
    decision = authorize(role_map, OPERATOR, "stop", "prod", None, ["finish_pending_work"])
    assert decision.explanation == "denied: role ml-operator does not grant --finish-pending-work"
    decision = authorize(role_map, OPERATOR, "stop", "prod", None, ["wildcard", "force"])
    assert decision.explanation == "denied: role ml-operator does not grant --force"


def test_denied_uncovered_deployment(role_map: RoleMap) -> None:
    decision = authorize(role_map, OPERATOR, "stop", "prod", ["search-a", "elser-prod", "x"])
    assert decision.explanation == (
        "denied: deployment `elser-prod` is not covered by any role that grants stop on prod "
        "(ml-operator covers search-*, ner-*)"
    )


def test_the_same_grant_must_grant_the_option_and_cover_the_deployment() -> None:
    rm = RoleMap(
        roles={
            "r": [
                Grant(action=["stop"], deployments=["a-*"]),
                Grant(action=["stop"], deployments=["b-*"], options=["force"]),
            ]
        },
        bindings=[Binding(role="r", users=["U1"])],
    )
    caller = Caller("U1", "C1")
    assert authorize(rm, caller, "stop", "prod", ["b-1"], ["force"]).allowed
    assert authorize(rm, caller, "stop", "prod", None, ["force"]).allowed
    decision = authorize(rm, caller, "stop", "prod", ["a-1"], ["force"])
    assert decision.explanation == "denied: role r does not grant --force for `a-1`"


def test_wildcard_implies_list() -> None:
    rm = RoleMap(
        roles={
            "w": [Grant(action=["stop"], deployments=["*"], options=["wildcard"])],
            "l": [Grant(action=["stop"], deployments=["*"], options=["list"])],
        },
        bindings=[Binding(role="w", users=["UW"]), Binding(role="l", users=["UL"])],
    )
    assert authorize(rm, Caller("UW", "C"), "stop", "p", ["a", "b"], ["list"]).allowed
    assert authorize(rm, Caller("UL", "C"), "stop", "p", ["a", "b"], ["list"]).allowed
    decision = authorize(rm, Caller("UL", "C"), "stop", "p", None, ["wildcard"])
    assert decision.explanation == "denied: role l does not grant wildcards"
    decision = authorize(rm, Caller("UW", "C"), "stop", "p", None, ["all"])
    assert decision.explanation == "denied: role w does not grant _all"


def test_design_admin_options(role_map: RoleMap) -> None:
    for opts in (["wildcard"], ["list"], ["all"], ["force", "finish_pending_work"]):
        assert authorize(role_map, SRE, "stop", "prod", ["a", "b"], opts).allowed


def test_unknown_usergroup_fails_closed(role_map: RoleMap) -> None:
    caller = Caller("U0OPS", "C0INCIDENTS", unknown_usergroups=frozenset({"S0MLOPS"}))
    decision = authorize(role_map, caller, "stop", "prod", ["search-a"])
    assert not decision.allowed
    assert decision.explanation == (
        "denied: could not check membership of usergroup S0MLOPS (Slack error); failing closed"
    )
    # an unchecked group that would not have helped anyway gives the ordinary reason
    decision = authorize(role_map, caller, "stop", "prod", ["elser-a"])
    assert decision.explanation.startswith("denied: no role grants stop on prod")


def test_unknown_usergroup_does_not_hide_other_roles(role_map: RoleMap) -> None:
    caller = Caller("U0ADMIN1", "C0INCIDENTS", unknown_usergroups=frozenset({"S0MLOPS"}))
    assert authorize(role_map, caller, "stop", "prod", ["search-a"]).allowed


def test_allowed_by_two_roles_together() -> None:
    rm = RoleMap(
        roles={
            "a": [Grant(action=["stop"], deployments=["a-*"])],
            "b": [Grant(action=["stop"], deployments=["b-*"])],
        },
        bindings=[Binding(role="a", users=["U1"]), Binding(role="b", usergroups=["S1"])],
    )
    caller = Caller("U1", "C1", frozenset({"S1"}))
    decision = authorize(rm, caller, "stop", "p", ["a-1", "b-1"])
    assert decision.allowed
    assert decision.explanation == "allowed: role a via user U1; role b via usergroup S1"
    assert decision.role == "a"


def test_clusters_patterns() -> None:
    rm = RoleMap(
        roles={"r": [Grant(action=["stop"], deployments=["*"], clusters=["eu-*"])]},
        bindings=[Binding(role="r", users=["U1"])],
    )
    caller = Caller("U1", "C1")
    assert authorize(rm, caller, "stop", "eu-west", ["x"]).allowed
    assert not authorize(rm, caller, "stop", "us-east", ["x"]).allowed


def test_empty_deployment_list_is_the_pre_check(role_map: RoleMap) -> None:
    assert authorize(role_map, OPERATOR, "stop", "prod", []).allowed
    assert not authorize(RoleMap(), OPERATOR, "stop", "prod", []).allowed


# --------------------------------------------------------------------------- roles, approvals


def test_roles_of(role_map: RoleMap) -> None:
    caller = Caller("U0ADMIN1", "C0INCIDENTS", frozenset({"S0MLOPS"}))
    assert roles_of(role_map, caller) == [
        ("ml-admin", "user U0ADMIN1"),
        ("ml-operator", "usergroup S0MLOPS"),
    ]
    assert roles_of(role_map, NOBODY) == []


def test_approvals_required(role_map: RoleMap) -> None:
    rule = approvals_required(role_map, "stop", "prod", ["search-a"])
    assert rule is not None and rule.approvers == ["ml-admin"]
    assert approvals_required(role_map, "stop", "staging", ["search-a"]) is None
    assert approvals_required(role_map, "start", "prod", ["search-a"]) is None


def test_approvals_strictest_rule_wins() -> None:
    rm = RoleMap(
        roles={"a": [], "b": []},
        approvals=[
            ApprovalRule(approvers=["a"], required=1),
            ApprovalRule(approvers=["b"], required=2, deployments=["elser-*"]),
            ApprovalRule(approvers=["a"], required=3, clusters=["dev"]),
        ],
    )
    rule = approvals_required(rm, "stop", "prod", ["x", "elser-1"])
    assert rule is not None and rule.required == 2
    rule = approvals_required(rm, "stop", "prod", ["x"])
    assert rule is not None and rule.required == 1


def test_can_approve(role_map: RoleMap) -> None:
    rule = role_map.approvals[0]
    decision = can_approve(role_map, SRE, rule, "prod")
    assert decision.allowed and decision.role == "ml-admin" and decision.via == "usergroup S0SRE"
    assert (
        decision.explanation
        == "allowed: role ml-admin via usergroup S0SRE may approve stop on prod"
    )
    decision = can_approve(role_map, OPERATOR, rule, "prod")
    assert not decision.allowed
    assert decision.explanation == (
        "denied: approving stop on prod needs role ml-admin "
        "(user U0OPS holds ml-operator in C0INCIDENTS)"
    )
    unknown = Caller("U0X", "C1", unknown_usergroups=frozenset({"S0SRE"}))
    assert (
        "could not check membership of usergroup S0SRE"
        in can_approve(role_map, unknown, rule, "prod").explanation
    )


# --------------------------------------------------------------------------- explain


def test_explain_lists_every_binding(role_map: RoleMap) -> None:
    text = explain(role_map, OPERATOR, "stop", "prod", ["search-a", "elser-x"], ["force"])
    lines = text.splitlines()
    assert lines[0] == "request: stop on prod; deployments: search-a, elser-x; options: --force"
    assert "[0] role ml-admin" in text and "no match: user U0OPS is not listed" in text
    assert "[1] role ml-operator" in text and "matches via usergroup S0MLOPS in C0INCIDENTS" in text
    assert "lacks --force" in text and "covers search-a" in text
    assert "approvals: 1 approval(s) needed from ml-admin" in text
    assert lines[-1] == "decision: denied: role ml-operator does not grant --force"


def test_explain_empty_map_and_unknown_group() -> None:
    text = explain(RoleMap(), NOBODY, "stop", "prod", None)
    assert "bindings: none" in text and text.endswith(
        "decision: " + authorize(RoleMap(), NOBODY, "stop", "prod", None).explanation
    )
    rm = parse_role_map(CONFIG)
    caller = Caller("U1", "C0INCIDENTS", unknown_usergroups=frozenset({"S0MLOPS"}))
    text = explain(rm, caller, "stop", "prod", ["search-a"])
    assert "unchecked usergroups: S0MLOPS" in text
    assert "unknown: membership of usergroup S0MLOPS could not be checked" in text
    assert text.splitlines()[-1].startswith("decision: denied: could not check membership")


# --------------------------------------------------------------------------- properties

ROLES = ["r1", "r2", "r3"]
USERS = ["U1", "U2", "U3"]
GROUPS = ["S1", "S2", "S3"]
CHANNELS = ["C1", "C2", "C3"]
CLUSTERS = ["prod", "staging"]
DEPLOYMENTS = ["a-1", "a-2", "b-1", "c"]
OPTIONS = ["force", "finish_pending_work", "wildcard", "list", "all"]
ACTIONS: list[Any] = ["stop", "start", "status"]

grants = st.builds(
    Grant,
    action=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True),
    deployments=st.lists(
        st.sampled_from(["*", "a-*", "b-*", "a-1", "*-1", "c"]), min_size=1, max_size=3
    ),
    clusters=st.none() | st.lists(st.sampled_from([*CLUSTERS, "*"]), max_size=2),
    options=st.lists(st.sampled_from(OPTIONS), max_size=3, unique=True),
)


@st.composite
def _binding(draw: st.DrawFn) -> Binding:
    users = draw(st.lists(st.sampled_from(USERS), max_size=2))
    groups = draw(st.lists(st.sampled_from(GROUPS), max_size=2))
    channels = draw(st.lists(st.sampled_from(CHANNELS), max_size=2))
    if not (users or groups or channels):
        channels = [draw(st.sampled_from(CHANNELS))]
    role = draw(st.sampled_from(ROLES))
    return Binding(role=role, users=users, usergroups=groups, channels=channels)


bindings = _binding()

role_maps = st.builds(
    RoleMap,
    roles=st.fixed_dictionaries({r: st.lists(grants, max_size=3) for r in ROLES}),
    bindings=st.lists(bindings, max_size=4),
)

callers = st.builds(
    Caller,
    user_id=st.sampled_from(USERS),
    channel_id=st.sampled_from(CHANNELS),
    usergroups=st.frozensets(st.sampled_from(GROUPS), max_size=3),
    unknown_usergroups=st.frozensets(st.sampled_from(GROUPS), max_size=2),
)

requests = st.tuples(
    st.sampled_from(ACTIONS),
    st.sampled_from(CLUSTERS),
    st.none() | st.lists(st.sampled_from(DEPLOYMENTS), min_size=1, max_size=4),
    st.frozensets(st.sampled_from(OPTIONS), max_size=3),
)

FAST = settings(max_examples=150, deadline=None)


@FAST
@given(callers, requests)
def test_empty_role_map_denies_everything(caller: Caller, request: tuple[Any, ...]) -> None:
    action, cluster, deployments, options = request
    decision = authorize(RoleMap(), caller, action, cluster, deployments, options)
    assert not decision.allowed and decision.explanation.startswith("denied: ")


@FAST
@given(role_maps, callers, requests)
def test_roles_without_bindings_deny_everything(
    rm: RoleMap, caller: Caller, request: tuple[Any, ...]
) -> None:
    action, cluster, deployments, options = request
    rm = RoleMap(roles=rm.roles)
    assert not authorize(rm, caller, action, cluster, deployments, options).allowed


@FAST
@given(role_maps, bindings, callers, requests)
def test_adding_a_binding_never_denies(
    rm: RoleMap, extra: Binding, caller: Caller, request: tuple[Any, ...]
) -> None:
    action, cluster, deployments, options = request
    before = authorize(rm, caller, action, cluster, deployments, options)
    bigger = RoleMap(roles=rm.roles, bindings=[*rm.bindings, extra], approvals=rm.approvals)
    after = authorize(bigger, caller, action, cluster, deployments, options)
    assert not before.allowed or after.allowed


@FAST
@given(role_maps, callers, requests)
def test_list_allowed_iff_each_is(rm: RoleMap, caller: Caller, request: tuple[Any, ...]) -> None:
    action, cluster, deployments, options = request
    if deployments is None:
        deployments = DEPLOYMENTS
    together = authorize(rm, caller, action, cluster, deployments, options).allowed
    each = [authorize(rm, caller, action, cluster, [d], options).allowed for d in deployments]
    assert together == all(each)


@FAST
@given(role_maps, callers, requests)
def test_resolved_allowed_implies_pre_check_allowed(
    rm: RoleMap, caller: Caller, request: tuple[Any, ...]
) -> None:
    action, cluster, deployments, options = request
    if deployments and authorize(rm, caller, action, cluster, deployments, options).allowed:
        assert authorize(rm, caller, action, cluster, None, options).allowed


@FAST
@given(role_maps, callers, requests, st.sampled_from(GROUPS))
def test_unchecked_group_never_grants(
    rm: RoleMap, caller: Caller, request: tuple[Any, ...], group: str
) -> None:
    action, cluster, deployments, options = request
    known = Caller(caller.user_id, caller.channel_id, caller.usergroups | {group})
    unknown = Caller(
        caller.user_id,
        caller.channel_id,
        caller.usergroups - {group},
        caller.unknown_usergroups | {group},
    )
    if authorize(rm, unknown, action, cluster, deployments, options).allowed:
        assert authorize(rm, known, action, cluster, deployments, options).allowed


@FAST
@given(role_maps, callers, requests)
def test_explain_ends_with_the_decision(
    rm: RoleMap, caller: Caller, request: tuple[Any, ...]
) -> None:
    action, cluster, deployments, options = request
    decision = authorize(rm, caller, action, cluster, deployments, options)
    text = explain(rm, caller, action, cluster, deployments, options)
    assert text.splitlines()[-1] == f"decision: {decision.explanation}"
    assert "\n" not in decision.explanation
    assert decision.explanation.startswith("allowed: " if decision.allowed else "denied: ")
