"""Named cluster privileges and action patterns, after ES ClusterPrivilegeResolver.

Patterns use ES automaton syntax reduced to `*`. Subset and overlap tests between two
patterns are exact for `*`-only globs that stay within one pattern; a union of patterns
covering a pattern only jointly is not detected (no privilege here relies on that).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property

from bot.emulator.errors import illegal_argument

# Action names the emulator authorizes (the real transport action names).
ACTION_MAIN = "cluster:monitor/main"
ACTION_XPACK_INFO = "cluster:monitor/xpack/info"
ACTION_ML_GET = "cluster:monitor/xpack/ml/inference/get"
ACTION_ML_STATS = "cluster:monitor/xpack/ml/inference/stats/get"
ACTION_ML_PUT = "cluster:admin/xpack/ml/inference/put"
ACTION_ML_PUT_VOCABULARY = "cluster:admin/xpack/ml/trained_models/vocabulary/put"
ACTION_ML_PUT_PART = "cluster:admin/xpack/ml/trained_models/part/put"
ACTION_ML_PUT_ALIAS = "cluster:admin/xpack/ml/inference/model_aliases/put"
ACTION_ML_START = "cluster:admin/xpack/ml/trained_models/deployment/start"
ACTION_ML_STOP = "cluster:admin/xpack/ml/trained_models/deployment/stop"
ACTION_PIPELINE_GET = "cluster:admin/ingest/pipeline/get"
ACTION_PIPELINE_PUT = "cluster:admin/ingest/pipeline/put"
ACTION_PIPELINE_DELETE = "cluster:admin/ingest/pipeline/delete"
ACTION_ROLE_PUT = "cluster:admin/xpack/security/role/put"
ACTION_USER_PUT = "cluster:admin/xpack/security/user/put"
ACTION_API_KEY_CREATE = "cluster:admin/xpack/security/api_key/create"
ACTION_HAS_PRIVILEGES = "cluster:admin/xpack/security/user/has_privileges"
ACTION_AUTHENTICATE = "cluster:admin/xpack/security/user/authenticate"


@cache
def covers(outer: str, inner: str) -> bool:
    """True when every string matched by glob `inner` is matched by glob `outer`."""
    if not outer:
        return not inner
    if outer[0] == "*":
        return covers(outer[1:], inner) or (bool(inner) and covers(outer, inner[1:]))
    if not inner or inner[0] == "*":
        return False
    return outer[0] == inner[0] and covers(outer[1:], inner[1:])


@cache
def overlaps(a: str, b: str) -> bool:
    """True when some string is matched by both globs."""
    if not a and not b:
        return True
    if a and a[0] == "*":
        return overlaps(a[1:], b) or (bool(b) and overlaps(a, b[1:]))
    if b and b[0] == "*":
        return overlaps(a, b[1:]) or (bool(a) and overlaps(a[1:], b))
    return bool(a) and bool(b) and a[0] == b[0] and overlaps(a[1:], b[1:])


def glob_match(pattern: str, value: str) -> bool:
    """Simple `*` wildcard match (ES Regex.simpleMatch)."""
    return covers(pattern, value.replace("*", "\x00"))


@dataclass(frozen=True)
class ClusterPrivilege:
    """A privilege: the actions it allows minus the actions it excludes."""

    name: str
    allow: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    # Non action-based privileges (manage_own_api_key) imply no other privilege.
    action_based: bool = True

    def check(self, action: str) -> bool:
        """Whether this privilege grants the action."""
        return any(glob_match(p, action) for p in self.allow) and not any(
            glob_match(p, action) for p in self.exclude
        )

    def covers_pattern(self, pattern: str) -> bool:
        """Whether every action matched by `pattern` is granted."""
        return any(covers(p, pattern) for p in self.allow) and not any(
            overlaps(e, pattern) for e in self.exclude
        )

    def implies(self, other: ClusterPrivilege) -> bool:
        """Whether this privilege grants everything `other` grants."""
        if not self.action_based or not other.action_based:
            return False
        return all(self.covers_pattern(p) for p in other.allow if not other._excluded(p))

    def _excluded(self, pattern: str) -> bool:
        return any(covers(e, pattern) for e in self.exclude)


_SECURITY = "cluster:admin/xpack/security/*"
_ALL = ("cluster:*", "indices:admin/template/*", "indices:admin/index_template/*")
_MONITOR_INFERENCE = (
    "cluster:monitor/xpack/inference*",
    "cluster:monitor/xpack/ml/trained_models/deployment/infer",
)

# The subset of ES's named cluster privileges that matters around ML, ingest and security,
# plus the other common ones so that unknown-privilege errors and orderings look real.
_PRIVILEGES: tuple[ClusterPrivilege, ...] = (
    ClusterPrivilege("none", ()),
    ClusterPrivilege("all", _ALL),
    ClusterPrivilege(
        "monitor",
        (
            "cluster:monitor/*",
            "indices:admin/template/get",
            "cluster:admin/component_template/get",
            "indices:admin/index_template/get",
        ),
    ),
    ClusterPrivilege("monitor_inference", _MONITOR_INFERENCE),
    ClusterPrivilege("monitor_ml", ("cluster:monitor/xpack/ml/*",)),
    ClusterPrivilege("monitor_text_structure", ("cluster:monitor/text_structure/*",)),
    ClusterPrivilege(
        "monitor_transform", ("cluster:monitor/data_frame/*", "cluster:monitor/transform/*")
    ),
    ClusterPrivilege("monitor_watcher", ("cluster:monitor/xpack/watcher/*",)),
    ClusterPrivilege("monitor_rollup", ("cluster:monitor/xpack/rollup/*",)),
    ClusterPrivilege(
        "monitor_enrich", ("cluster:monitor/xpack/enrich/*", "cluster:admin/xpack/enrich/get")
    ),
    ClusterPrivilege("manage", _ALL, (_SECURITY,)),
    ClusterPrivilege(
        "manage_inference",
        (
            "cluster:admin/xpack/inference/*",
            "cluster:monitor/xpack/inference*",
            "cluster:admin/xpack/ml/trained_models/deployment/start",
            "cluster:admin/xpack/ml/trained_models/deployment/stop",
            "cluster:monitor/xpack/ml/trained_models/deployment/infer",
        ),
    ),
    ClusterPrivilege("manage_ml", ("cluster:admin/xpack/ml/*", "cluster:monitor/xpack/ml/*")),
    ClusterPrivilege(
        "manage_transform",
        (
            "cluster:admin/data_frame/*",
            "cluster:monitor/data_frame/*",
            "cluster:monitor/transform/*",
            "cluster:admin/transform/*",
        ),
    ),
    ClusterPrivilege("manage_token", ("cluster:admin/xpack/security/token/*",)),
    ClusterPrivilege(
        "manage_watcher", ("cluster:admin/xpack/watcher/*", "cluster:monitor/xpack/watcher/*")
    ),
    ClusterPrivilege(
        "manage_index_templates",
        (
            "indices:admin/template/*",
            "indices:admin/index_template/*",
            "cluster:admin/component_template/*",
        ),
    ),
    ClusterPrivilege("manage_ingest_pipelines", ("cluster:admin/ingest/pipeline/*",)),
    ClusterPrivilege(
        "read_pipeline",
        ("cluster:admin/ingest/pipeline/get", "cluster:admin/ingest/pipeline/simulate"),
    ),
    ClusterPrivilege(
        "transport_client", ("cluster:monitor/nodes/liveness", "cluster:monitor/state")
    ),
    ClusterPrivilege("manage_security", (_SECURITY, "cluster:admin/xpack/security/delegate_pki")),
    ClusterPrivilege(
        "read_security",
        (
            "cluster:admin/xpack/security/api_key/get",
            "cluster:admin/xpack/security/api_key/query",
            "cluster:admin/xpack/security/privilege/builtin/get",
            "cluster:admin/xpack/security/privilege/get",
            "cluster:admin/xpack/security/role/get",
            "cluster:admin/xpack/security/role_mapping/get",
            "cluster:admin/xpack/security/user/get",
            "cluster:admin/xpack/security/user/list_privileges",
            ACTION_HAS_PRIVILEGES,
        ),
    ),
    ClusterPrivilege("manage_api_key", ("cluster:admin/xpack/security/api_key/*",)),
    ClusterPrivilege("grant_api_key", ("cluster:admin/xpack/security/api_key/grant*",)),
    ClusterPrivilege(
        "manage_own_api_key", ("cluster:admin/xpack/security/api_key/*",), action_based=False
    ),
    ClusterPrivilege("manage_pipeline", ("cluster:admin/ingest/pipeline/*",)),
    ClusterPrivilege(
        "manage_rollup", ("cluster:admin/xpack/rollup/*", "cluster:monitor/xpack/rollup/*")
    ),
    ClusterPrivilege("manage_autoscaling", ("cluster:admin/autoscaling/*",)),
    ClusterPrivilege("manage_ilm", ("cluster:admin/ilm/*",)),
    ClusterPrivilege("read_ilm", ("cluster:admin/ilm/get", "cluster:admin/ilm/operation_mode/get")),
    ClusterPrivilege(
        "manage_slm",
        (
            "cluster:admin/slm/*",
            "cluster:admin/ilm/start",
            "cluster:admin/ilm/stop",
            "cluster:admin/ilm/operation_mode/get",
        ),
    ),
    ClusterPrivilege(
        "manage_enrich", ("cluster:admin/xpack/enrich/*", "cluster:monitor/xpack/enrich/*")
    ),
    ClusterPrivilege("manage_logstash_pipelines", ("cluster:admin/logstash/pipeline/*",)),
    ClusterPrivilege("cancel_task", ("cluster:admin/tasks/cancel*",)),
    ClusterPrivilege(
        "monitor_data_frame_transforms",
        ("cluster:monitor/data_frame/*", "cluster:monitor/transform/*"),
    ),
    ClusterPrivilege(
        "manage_data_frame_transforms",
        (
            "cluster:admin/data_frame/*",
            "cluster:monitor/data_frame/*",
            "cluster:monitor/transform/*",
            "cluster:admin/transform/*",
        ),
    ),
    ClusterPrivilege(
        "manage_ccr",
        ("cluster:admin/xpack/ccr/*", "cluster:monitor/state", ACTION_HAS_PRIVILEGES),
    ),
    ClusterPrivilege("read_ccr", ("cluster:monitor/state", ACTION_HAS_PRIVILEGES)),
    ClusterPrivilege(
        "create_snapshot",
        (
            "cluster:admin/snapshot/create",
            "cluster:admin/snapshot/status*",
            "cluster:admin/snapshot/get",
            "cluster:admin/repository/get",
        ),
    ),
    ClusterPrivilege(
        "monitor_snapshot",
        (
            "cluster:admin/snapshot/status*",
            "cluster:admin/snapshot/get",
            "cluster:admin/repository/get",
        ),
    ),
    ClusterPrivilege(
        "read_slm",
        (
            "cluster:admin/slm/status",
            "cluster:admin/slm/get",
            "cluster:admin/ilm/operation_mode/get",
        ),
    ),
    ClusterPrivilege(
        "delegate_pki",
        (
            "cluster:admin/xpack/security/delegate_pki",
            "cluster:admin/xpack/security/token/invalidate",
        ),
    ),
    ClusterPrivilege("manage_saml", ("cluster:admin/xpack/security/saml/*",)),
    ClusterPrivilege("manage_oidc", ("cluster:admin/xpack/security/oidc/*",)),
    ClusterPrivilege("manage_service_account", ("cluster:admin/xpack/security/service_account/*",)),
    ClusterPrivilege("manage_user_profile", ("cluster:admin/xpack/security/profile/*",)),
    ClusterPrivilege("read_fleet_secrets", ("cluster:admin/fleet/secrets/get",)),
    ClusterPrivilege(
        "write_fleet_secrets",
        ("cluster:admin/fleet/secrets/post", "cluster:admin/fleet/secrets/delete"),
    ),
    ClusterPrivilege(
        "manage_search_application", ("cluster:admin/xpack/application/search_application/*",)
    ),
    ClusterPrivilege(
        "manage_search_synonyms",
        (
            "cluster:admin/synonyms/*",
            "cluster:admin/synonyms_sets/*",
            "cluster:admin/synonym_rules/*",
        ),
    ),
    ClusterPrivilege(
        "manage_behavioral_analytics", ("cluster:admin/xpack/application/analytics/*",)
    ),
    ClusterPrivilege(
        "post_behavioral_analytics_event", ("cluster:admin/xpack/application/analytics/post_event",)
    ),
    ClusterPrivilege("manage_search_query_rules", ("cluster:admin/xpack/query_rules/*",)),
    ClusterPrivilege("manage_connector", ("cluster:admin/xpack/connector/*",)),
    ClusterPrivilege(
        "monitor_connector",
        ("cluster:admin/xpack/connector/get", "cluster:admin/xpack/connector/list"),
    ),
    ClusterPrivilege("read_connector_secrets", ("cluster:admin/xpack/connector/secret/get",)),
    ClusterPrivilege(
        "write_connector_secrets",
        (
            "cluster:admin/xpack/connector/secret/delete",
            "cluster:admin/xpack/connector/secret/post",
            "cluster:admin/xpack/connector/secret/put",
        ),
    ),
    ClusterPrivilege("monitor_data_stream_global_retention", ()),
    ClusterPrivilege("manage_data_stream_global_retention", ()),
)


def _sort_by_access_level(privs: tuple[ClusterPrivilege, ...]) -> dict[str, ClusterPrivilege]:
    """ES sortByAccessLevel: by how many other privileges each implies, then by name."""
    count = {p.name: sum(1 for q in privs if q is not p and p.implies(q)) for p in privs}
    return {p.name: p for p in sorted(privs, key=lambda p: (count[p.name], p.name))}


@dataclass
class _Registry:
    privileges: tuple[ClusterPrivilege, ...] = field(default=_PRIVILEGES)

    @cached_property
    def by_name(self) -> dict[str, ClusterPrivilege]:
        return _sort_by_access_level(self.privileges)


_REGISTRY = _Registry()


def named() -> dict[str, ClusterPrivilege]:
    """Named privileges ordered least to most privileged."""
    return _REGISTRY.by_name


def is_cluster_action(name: str) -> bool:
    """ClusterPrivilegeResolver.isClusterAction."""
    return any(glob_match(p, name) for p in _ALL)


def resolve(name: str) -> ClusterPrivilege:
    """A privilege name or a cluster action name (which becomes the pattern `name*`)."""
    lowered = name.lower()
    if is_cluster_action(lowered):
        return ClusterPrivilege(lowered, (lowered + "*",))
    found = named().get(lowered)
    if found is None:
        raise illegal_argument(unknown_privilege_message(lowered))
    return found


def unknown_privilege_message(name: str) -> str:
    """The exact IllegalArgumentException text of ClusterPrivilegeResolver.resolve."""
    return (
        f"unknown cluster privilege [{name}]. a privilege must be either one of the predefined "
        f"cluster privilege names [{','.join(named())}] or a pattern over one of the available "
        "cluster actions"
    )


def privileges_that_grant(action: str) -> list[str]:
    """ClusterPrivilegeResolver.findPrivilegesThatGrant, least privileged first."""
    return [name for name, p in named().items() if p.check(action)]
