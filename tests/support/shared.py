"""Constants the end-to-end tests and the benchmark (`bench/`) share: one copy of each.

`tests/conftest.py` re-exports `ROLE_MAP` (tests import it from there); `bench/` imports
this module as `support.shared` (it puts `tests/` on `sys.path`, as the tests do).
"""

from __future__ import annotations

SIGNING_SECRET = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ADMIN = "U0ADMIN1"

_ROLES = """\
expire_after_seconds: 600
roles:
  ml-admin:
    - {action: [stop, start, status, freeze], deployments: ["*"],
       options: [force, finish_pending_work, wildcard, list, all]}
  ml-operator:
    - {action: [stop, status], deployments: ["ner-*", "search-*"], clusters: [default]}
  ml-viewer:
    - {action: status, deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
  - {role: ml-admin, usergroups: [S0SRE]}
  - {role: ml-operator, usergroups: [S0MLOPS], channels: [C0INCIDENTS]}
  - {role: ml-viewer, channels: [C0INCIDENTS]}
"""

# Who holds which role in the stand-in's user groups (the bindings above name them).
USERGROUPS = {"S0SRE": ["U0SRE1"], "S0MLOPS": ["U0OPS1"]}


def role_map(*, verify_timeout_seconds: float | None = 2) -> str:
    """The role map of the end-to-end tests and the bench.

    The tests verify a stop within 2 s (their emulator answers at once); the bench passes
    None to keep the product's default, since it slows Elasticsearch down on purpose.
    """
    if verify_timeout_seconds is None:
        return "\n" + _ROLES
    first, rest = _ROLES.split("\n", 1)
    return f"\n{first}\nverify_timeout_seconds: {verify_timeout_seconds:g}\n{rest}"


ROLE_MAP = role_map()
