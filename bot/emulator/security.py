"""Authentication (Basic, ApiKey, run-as) and cluster-privilege authorization with ES's texts.

Verified against ES source/tests: the 403 action-denied and run-as-denied texts
(AuthorizationDenialMessages), the 401 texts for missing credentials and a bad password.
Unverified: the 401 text for a bad API key (no `additional_unsuccessful_credentials` is sent),
and that run-as is always refused for API keys.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from bot.emulator import privileges
from bot.emulator.errors import EsError, security_exception
from bot.emulator.privileges import ClusterPrivilege, glob_match
from bot.emulator.state import ApiKey, ClusterState, Role, now_ms

RUN_AS_HEADER = "es-security-runas-user"
# With TLS off on HTTP the token service is disabled, so no Bearer challenge.
WWW_AUTHENTICATE = ['Basic realm="security", charset="UTF-8"', "ApiKey"]
SECURITY_DISABLED = (
    "Security must be explicitly enabled when using a [trial] license. Enable security by "
    "setting [xpack.security.enabled] to [true] in the elasticsearch.yml file and restart "
    "the node."
)


@dataclass
class Principal:
    """Who a request runs as: the authenticating subject and the effective (run-as) one."""

    authenticated: str
    username: str
    roles: list[str]
    authenticated_roles: list[str]
    api_key: ApiKey | None = None
    run_as_requested: str | None = None
    run_as_target_exists: bool = True

    @property
    def is_run_as(self) -> bool:
        """Whether a run-as header was honoured (or at least asked for)."""
        return self.run_as_requested is not None


def _unauthenticated(reason: str) -> EsError:
    header = {"WWW-Authenticate": list(WWW_AUTHENTICATE)}
    return security_exception(
        401, reason, extra={"header": header}, headers={"WWW-Authenticate": list(WWW_AUTHENTICATE)}
    )


class Security:
    """Authenticates requests and authorizes cluster actions against the cluster state."""

    def __init__(self, state: ClusterState, enabled: bool) -> None:
        self.state = state
        self.enabled = enabled

    # ---- authentication -------------------------------------------------------------------

    def authenticate(self, headers: Mapping[str, str], uri: str) -> Principal | None:
        """The principal for a request, or the real 401; None when security is off."""
        if not self.enabled:
            return None
        value = headers.get("Authorization", "")
        scheme, _, credentials = value.partition(" ")
        if not value:
            raise _unauthenticated(f"missing authentication credentials for REST request [{uri}]")
        if scheme.lower() == "basic":
            principal = self._basic(credentials.strip(), uri)
        elif scheme.lower() == "apikey":
            principal = self._api_key(credentials.strip())
        else:
            raise _unauthenticated(
                "unable to authenticate with provided credentials and anonymous access is not "
                "allowed for this request"
            )
        target = headers.get(RUN_AS_HEADER)
        if target:
            user = self.state.users.get(target)
            principal.run_as_requested = target
            principal.run_as_target_exists = user is not None and user.enabled
            principal.username = target
            principal.roles = list(user.roles) if user else []
        return principal

    def _basic(self, credentials: str, uri: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _unauthenticated(
                f"missing authentication credentials for REST request [{uri}]"
            ) from None
        username, _, password = decoded.partition(":")
        user = self.state.users.get(username)
        if user is None or not user.enabled or not hmac.compare_digest(user.password, password):
            raise _unauthenticated(
                f"unable to authenticate user [{username}] for REST request [{uri}]"
            )
        return Principal(username, username, list(user.roles), list(user.roles))

    def _api_key(self, credentials: str) -> Principal:
        failure = _unauthenticated(
            "unable to authenticate with provided credentials and anonymous access is not "
            "allowed for this request"
        )
        try:
            key_id, _, secret = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise failure from None
        key = self.state.api_keys.get(key_id)
        if key is None or key.invalidated or not hmac.compare_digest(key.api_key, secret):
            raise failure
        if key.expiration is not None and key.expiration <= now_ms():
            raise failure
        owner = self.state.users.get(key.owner)
        roles = list(owner.roles) if owner else []
        return Principal(key.owner, key.owner, roles, roles, api_key=key)

    # ---- authorization ----------------------------------------------------------------------

    def authorize(self, principal: Principal | None, action: str) -> None:
        """Raise the real 403 unless the principal may run the cluster action."""
        if principal is None:
            return
        if principal.is_run_as and not self._may_run_as(principal):
            raise security_exception(403, self._run_as_denied(principal, action))
        if not self.grants(principal, privileges.ClusterPrivilege(action, (action,))):
            raise security_exception(403, self._action_denied(principal, action))

    def grants(self, principal: Principal, wanted: ClusterPrivilege) -> bool:
        """Whether the principal's effective privileges include everything `wanted` allows."""
        own = self._effective_privileges(principal.roles)
        if not _union_implies(own, wanted):
            return False
        if principal.api_key and principal.api_key.role_descriptors:
            limited = [
                privileges.named().get(p) or privileges.resolve(p)
                for r in principal.api_key.role_descriptors.values()
                for p in r.cluster
            ]
            return _union_implies(limited, wanted)
        return True

    def _effective_privileges(self, role_names: list[str]) -> list[ClusterPrivilege]:
        result = []
        for name in role_names:
            role = self.state.role(name)
            if role is None:
                continue
            for priv in role.cluster:
                try:
                    result.append(privileges.resolve(priv))
                except EsError:
                    continue
        return result

    def effective_roles(self, role_names: list[str]) -> list[str]:
        """Assigned roles that exist, sorted (what ES prints as effective roles)."""
        return sorted(n for n in set(role_names) if self.state.role(n) is not None)

    def index_privilege(self, principal: Principal, index: str, privilege: str) -> bool:
        """Coarse index privilege check over role `indices` entries (names are globs)."""
        roles: list[Role] = [r for n in principal.roles if (r := self.state.role(n))]
        for role in roles:
            for entry in role.indices:
                names = entry.get("names") or []
                privs = entry.get("privileges") or []
                if any(glob_match(n, index) for n in names) and (
                    privilege in privs or "all" in privs
                ):
                    return True
        return False

    def _may_run_as(self, principal: Principal) -> bool:
        if principal.api_key is not None or not principal.run_as_target_exists:
            return False
        target = principal.run_as_requested or ""
        for name in principal.authenticated_roles:
            role = self.state.role(name)
            if role and any(glob_match(p, target) for p in role.run_as):
                return True
        return False

    def _roles_text(self, assigned: list[str]) -> str:
        effective = self.effective_roles(assigned)
        text = f" with effective roles [{','.join(effective)}]"
        missing = sorted(set(assigned) - set(effective))
        if missing:
            text += f" (assigned roles [{','.join(missing)}] were not found)"
        return text

    def _authenticated_text(self, principal: Principal) -> str:
        text = f"user [{principal.authenticated}]"
        if principal.api_key is not None:
            text = f"API key id [{principal.api_key.id}] of {text}"
        return text

    def _run_as_denied(self, principal: Principal, action: str) -> str:
        """AuthorizationDenialMessages.runAsDenied (as asserted by ES's own security tests)."""
        user_text = self._authenticated_text(principal)
        roles = "" if principal.api_key else self._roles_text(principal.authenticated_roles)
        return (
            f"action [{action}] is unauthorized for {user_text}{roles}, because {user_text} is "
            f"unauthorized to run as [{principal.run_as_requested}]"
        )

    def _action_denied(self, principal: Principal, action: str) -> str:
        """AuthorizationDenialMessages.actionDenied for a cluster action."""
        user_text = self._authenticated_text(principal)
        if principal.is_run_as:
            user_text += f" run as [{principal.username}]"
        if principal.api_key is None:
            user_text += self._roles_text(principal.roles)
        message = f"action [{action}] is unauthorized for {user_text}"
        granting = privileges.privileges_that_grant(action)
        if granting:
            message += f", this action is granted by the cluster privileges [{','.join(granting)}]"
        return message


def _union_implies(own: list[ClusterPrivilege], wanted: ClusterPrivilege) -> bool:
    """ClusterPermission.implies over a role set, pattern by pattern."""
    return all(any(p.covers_pattern(pattern) for p in own) for pattern in wanted.allow)
