"""Security REST APIs: authenticate, roles, users, API keys and has_privileges."""

from __future__ import annotations

from typing import Any

from bot.emulator import privileges as p
from bot.emulator.errors import EsError, RawError, validation_failed
from bot.emulator.routing import Call, Reply
from bot.emulator.security import Principal
from bot.emulator.state import Role, User, now_ms

JSON = dict[str, Any]
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def _principal(call: Call) -> Principal:
    call.require_security()
    assert call.principal is not None  # security on means every request is authenticated
    return call.principal


def _role_from(name: str, body: Any) -> Role:
    """A role descriptor; unknown cluster privileges fail like ES's role validation."""
    body = body if isinstance(body, dict) else {}
    cluster = [str(c) for c in body.get("cluster") or []]
    errors = []
    for priv in cluster:
        try:
            p.resolve(priv)
        except EsError as exc:
            errors.append(str(exc.reason))
    if errors:
        raise validation_failed(*errors)
    return Role(
        name,
        cluster=cluster,
        indices=list(body.get("indices") or []),
        run_as=[str(r) for r in body.get("run_as") or []],
        metadata=dict(body.get("metadata") or {}),
    )


async def authenticate(call: Call) -> Reply:
    """GET _security/_authenticate."""
    principal = _principal(call)
    call.check_params()
    state = call.emulator.state
    user = state.users.get(principal.username) or User(principal.username, "", [])
    realm = {"name": "default_native", "type": "native"}
    body: JSON = {
        "username": user.username,
        "roles": list(principal.roles),
        "full_name": user.full_name,
        "email": user.email,
        "metadata": user.metadata,
        "enabled": user.enabled,
        "authentication_realm": (
            {"name": "_es_api_key", "type": "_es_api_key"} if principal.api_key else realm
        ),
        "lookup_realm": realm,
        "authentication_type": "api_key" if principal.api_key else "realm",
    }
    if principal.api_key is not None:
        body["api_key"] = {"id": principal.api_key.id, "name": principal.api_key.name}
    return 200, body


async def put_role(call: Call) -> Reply:
    """PUT|POST _security/role/<name>."""
    _principal(call)
    call.param("refresh")
    call.check_params()
    name = call.path_params["name"]
    role = _role_from(name, call.body)
    call.authorize(p.ACTION_ROLE_PUT)
    created = name not in call.emulator.state.roles
    call.emulator.state.roles[name] = role
    return 200, {"role": {"created": created}}


async def put_user(call: Call) -> Reply:
    """PUT|POST _security/user/<username>."""
    _principal(call)
    call.param("refresh")
    call.check_params()
    name = call.path_params["username"]
    body = call.body if isinstance(call.body, dict) else {}
    state = call.emulator.state
    existing = state.users.get(name)
    password = body.get("password")
    if password is None and existing is None:
        raise validation_failed(
            "password must be specified unless you are updating an existing user"
        )
    if password is not None and len(str(password)) < 6:
        raise validation_failed("passwords must be at least [6] characters long")
    call.authorize(p.ACTION_USER_PUT)
    user = User(
        name,
        str(password) if password is not None else existing.password if existing else "",
        roles=[str(r) for r in body.get("roles") or []],
        full_name=body.get("full_name"),
        email=body.get("email"),
        enabled=bool(body.get("enabled", True)),
        metadata=dict(body.get("metadata") or {}),
    )
    state.users[name] = user
    return 200, {"created": existing is None}


async def get_user(call: Call) -> Reply:
    """GET _security/user/<username> (404 with `{}` when unknown)."""
    _principal(call)
    call.authorize("cluster:admin/xpack/security/user/get")
    names = call.path_params["username"].split(",")
    users = call.emulator.state.users
    found = {
        n: {
            "username": n,
            "roles": users[n].roles,
            "full_name": users[n].full_name,
            "email": users[n].email,
            "metadata": users[n].metadata,
            "enabled": users[n].enabled,
        }
        for n in names
        if n in users
    }
    if not found:
        raise RawError(404, {})
    return 200, found


def _expiration(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value)
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return now_ms() + int(text[: -len(unit)]) * _UNITS[unit]
    raise EsError(
        400,
        "illegal_argument_exception",
        f"failed to parse setting [expiration] with value [{text}] as a time value: "
        "unit is missing or unrecognized",
    )


async def create_api_key(call: Call) -> Reply:
    """PUT|POST _security/api_key: the key inherits the owner's or the given privileges."""
    principal = _principal(call)
    call.param("refresh")
    call.check_params()
    body = call.body if isinstance(call.body, dict) else {}
    name = body.get("name")
    if not name:
        raise validation_failed("api key name is required")
    descriptors = {n: _role_from(n, d) for n, d in (body.get("role_descriptors") or {}).items()}
    expiration = _expiration(body.get("expiration"))
    call.authorize(p.ACTION_API_KEY_CREATE)
    key = call.emulator.state.create_api_key(
        principal.username, str(name), descriptors, expiration=expiration
    )
    key.metadata = dict(body.get("metadata") or {})
    out: JSON = {"id": key.id, "name": key.name}
    if key.expiration is not None:
        out["expiration"] = key.expiration
    out.update({"api_key": key.api_key, "encoded": key.encoded})
    return 200, out


async def has_privileges(call: Call) -> Reply:
    """GET|POST _security/user[/<user>]/_has_privileges; names and cluster action names."""
    principal = _principal(call)
    call.check_params()
    body = call.body if isinstance(call.body, dict) else None
    if body is None:
        raise EsError(
            400,
            "action_request_validation_exception",
            "Validation Failed: 1: must specify at least one privilege;",
        )
    target = call.path_params.get("user")
    if target is not None and target != principal.username:
        raise EsError(
            400,
            "illegal_argument_exception",
            "users may only check the privileges of their own account",
        )
    security = call.emulator.security
    requested = [str(c) for c in body.get("cluster") or []]
    resolved = [p.resolve(name) for name in requested]  # unknown name: the real 400
    cluster = {
        name: security.grants(principal, priv)
        for name, priv in zip(requested, resolved, strict=True)
    }
    index: JSON = {}
    for entry in body.get("index") or []:
        for idx in entry.get("names") or []:
            index.setdefault(idx, {}).update(
                {
                    priv: security.index_privilege(principal, idx, priv)
                    for priv in entry.get("privileges") or []
                }
            )
    application: JSON = {}
    for entry in body.get("application") or []:
        app = application.setdefault(entry.get("application", ""), {})
        for resource in entry.get("resources") or []:
            app[resource] = dict.fromkeys(entry.get("privileges") or [], False)
    every = [
        *cluster.values(),
        *(v for privs in index.values() for v in privs.values()),
        *(v for res in application.values() for privs in res.values() for v in privs.values()),
    ]
    return 200, {
        "username": principal.username,
        "has_all_requested": all(every),
        "cluster": cluster,
        "index": index,
        "application": application,
    }
