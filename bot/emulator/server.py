"""The Emulator: aiohttp app, ES-style dispatch (routing, media types, auth, faults) and the log."""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from bot.emulator import (
    admin,
    admin_scaling,
    cluster,
    documents,
    inference,
    inference_update,
    ingest,
    mappings,
    ml_deployments,
    ml_memory,
    ml_models,
    ml_stats,
    scaling,
    security_api,
)
from bot.emulator.errors import EsError, RawError, java_trace
from bot.emulator.faults import Faults, RespondRule
from bot.emulator.filtering import filter_body
from bot.emulator.lifecycle import Lifecycle
from bot.emulator.placement import Placement
from bot.emulator.routing import Call, Route, find_route
from bot.emulator.security import RUN_AS_HEADER, Principal, Security
from bot.emulator.state import ClusterState, User
from bot.emulator.xcontent import load

LOGGED_HEADERS = (
    "x-opaque-id",
    RUN_AS_HEADER,
    "content-type",
    "accept",
    "user-agent",
    "traceparent",
)
_COMPAT = re.compile(r"compatible-with\s*=\s*(\d+)")
# A `handled` canned answer and the request's record, for `_serve` to answer with.
_CANNED = web.RequestKey("emulator.canned", tuple)
_JSON_TYPES = (
    "application/json",
    "application/vnd.elasticsearch+json",
    "application/x-ndjson",
    "application/yaml",
    "application/vnd.elasticsearch+x-ndjson",
)


@dataclass
class RequestRecord:
    """One request as received and answered (admin requests are not logged)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    principal: str | None
    headers: dict[str, str]
    status: int | None
    endpoint: str
    timestamp: float = field(default_factory=time.time)
    authenticated: str | None = None
    api_key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as GET /_emulator/requests shows it."""
        return asdict(self)


def build_routes() -> list[Route]:
    """Every REST route the emulator serves (real paths and methods)."""
    tm = "/_ml/trained_models"
    sec = "/_security"
    r = Route
    return [
        r("GET", "/", "root", cluster.root),
        r("HEAD", "/", "root", cluster.root),
        r("GET", tm, "ml.get", ml_models.get_models),
        r("GET", tm + "/{model_id}", "ml.get", ml_models.get_models),
        r("PUT", tm + "/{model_id}", "ml.put_model", ml_models.put_model, body=True),
        r("DELETE", tm + "/{model_id}", "ml.delete_model", ml_models.delete_model),
        r("GET", tm + "/_stats", "ml.stats", ml_stats.get_stats),
        r("GET", tm + "/{model_id}/_stats", "ml.stats", ml_stats.get_stats),
        r(
            "PUT",
            tm + "/{model_id}/vocabulary",
            "ml.put_vocabulary",
            ml_models.put_vocabulary,
            body=True,
        ),
        r(
            "PUT",
            tm + "/{model_id}/definition/{part}",
            "ml.put_definition_part",
            ml_models.put_definition_part,
            body=True,
        ),
        r(
            "PUT",
            tm + "/{model_id}/model_aliases/{model_alias}",
            "ml.put_alias",
            ml_models.put_alias,
        ),
        r(
            "DELETE",
            tm + "/{model_id}/model_aliases/{model_alias}",
            "ml.delete_alias",
            ml_models.delete_alias,
        ),
        r(
            "POST",
            tm + "/{model_id}/deployment/_start",
            "ml.start",
            ml_deployments.start,
            body=True,
        ),
        r("POST", tm + "/{model_id}/deployment/_stop", "ml.stop", ml_deployments.stop, body=True),
        r(
            "POST",
            tm + "/{model_id}/deployment/_update",
            "ml.update",
            scaling.update,
            body=True,
        ),
        r("GET", "/_ml/memory/_stats", "ml.memory_stats", ml_memory.memory_stats),
        r("GET", "/_ml/memory/{node_id}/_stats", "ml.memory_stats", ml_memory.memory_stats),
        r("GET", "/_ingest/pipeline", "ingest.get_pipeline", ingest.get_pipeline),
        r("GET", "/_ingest/pipeline/{id}", "ingest.get_pipeline", ingest.get_pipeline),
        r("PUT", "/_ingest/pipeline/{id}", "ingest.put_pipeline", ingest.put_pipeline, body=True),
        r("DELETE", "/_ingest/pipeline/{id}", "ingest.delete_pipeline", ingest.delete_pipeline),
        r("GET", sec + "/_authenticate", "security.authenticate", security_api.authenticate),
        *(
            r(m, sec + "/role/{name}", "security.put_role", security_api.put_role, body=True)
            for m in ("PUT", "POST")
        ),
        *(
            r(m, sec + "/user/{username}", "security.put_user", security_api.put_user, body=True)
            for m in ("PUT", "POST")
        ),
        r("GET", sec + "/user/{username}", "security.get_user", security_api.get_user),
        *(
            r(
                m,
                sec + "/api_key",
                "security.create_api_key",
                security_api.create_api_key,
                body=True,
            )
            for m in ("PUT", "POST")
        ),
        *(
            r(m, path, "security.has_privileges", security_api.has_privileges, body=True)
            for m in ("GET", "POST")
            for path in (sec + "/user/_has_privileges", sec + "/user/{user}/_has_privileges")
        ),
        *documents.build_routes(),
        *mappings.build_routes(),
        *inference.build_routes(),
        *inference_update.build_routes(),
    ]


class Emulator:
    """An Elasticsearch ML emulator answering the real client over HTTP."""

    def __init__(
        self,
        state: ClusterState | None = None,
        *,
        auth: tuple[str, str] | None = None,
        version: str = "9.1.0",
    ) -> None:
        self.version = version
        self.faults = Faults()
        self.documents = documents.Documents()
        self.requests: list[RequestRecord] = []
        self.routes = build_routes()
        self._auth = auth
        self._runner: web.AppRunner | None = None
        self.state = state if state is not None else ClusterState()

    @property
    def state(self) -> ClusterState:
        """The live cluster state (replacing it rebinds security and the lifecycle)."""
        return self._state

    @state.setter
    def state(self, value: ClusterState) -> None:
        self._state = value
        if self._auth is not None:
            username, password = self._auth
            value.users[username] = User(username, password, roles=["superuser"])
        self.security = Security(value, enabled=self._auth is not None)
        self.lifecycle = Lifecycle(value)
        self.placement = Placement(value)
        for name, spec in value.indices.items():
            if name not in self.documents.indices:
                self.documents.create_index(name, spec.get("mappings"), spec.get("settings"))

    # ---- in-process API -----------------------------------------------------------------

    def app(self) -> web.Application:
        """A fresh aiohttp application serving this emulator."""
        application = web.Application(client_max_size=64 * 1024 * 1024)
        application.add_routes(admin.routes(self))
        application.add_routes(documents.admin_routes(self))
        application.add_routes(admin_scaling.routes(self))
        application.router.add_route("*", "/{tail:.*}", self._serve)
        return application

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port); returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_port = self._runner.addresses[0][1]
        return f"http://{host}:{bound_port}"

    async def stop(self) -> None:
        """Stop serving and cancel background work."""
        await self.lifecycle.close()
        await self.placement.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop_calls(self, deployment_id: str | None = None) -> list[RequestRecord]:
        """Logged `_stop` requests, optionally for one deployment id."""
        calls = [r for r in self.requests if r.endpoint == "ml.stop"]
        if deployment_id is not None:
            suffix = f"/{deployment_id}/deployment/_stop"
            calls = [r for r in calls if r.path.endswith(suffix)]
        return calls

    # ---- dispatch -----------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        """Handle one request; a canned answer armed with `handled` replaces the real one."""
        response = await self._dispatch(request)
        canned = request.get(_CANNED)
        if canned is None:
            return response
        rule: RespondRule = canned[0]
        canned[1].status = rule.status
        return rule.response()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = (await request.read()).decode("utf-8", "replace")
        uri = request.raw_path
        path = request.path
        record = RequestRecord(
            method=request.method,
            path=path,
            query=dict(request.query),
            body=_maybe_json(raw),
            principal=None,
            headers={h: request.headers[h] for h in LOGGED_HEADERS if h in request.headers},
            status=None,
            endpoint="unknown",
        )
        auth_header = request.headers.get("Authorization")
        if auth_header:
            record.headers["authorization"] = auth_header.split(" ", 1)[0] + " <redacted>"
        self.requests.append(record)
        compat = _compat_version(request)
        try:
            match = find_route(self.routes, request.method, uri)
            record.endpoint = match.route.endpoint
        except (EsError, RawError) as exc:
            match = None
            routing_error: EsError | RawError = exc
        if self.faults.take_drop(record.endpoint):
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError
        delay = self.faults.delay_for(record.endpoint)
        if delay > 0:
            await asyncio.sleep(delay)
        canned = self.faults.take_respond(record.endpoint)
        if canned is not None and not canned.handled:
            record.status = canned.status
            return canned.response()
        if canned is not None:
            request[_CANNED] = (canned, record)
        try:
            failure = self.faults.take_fail(record.endpoint)
            if failure is not None:
                raise failure
            _check_media_types(request, raw, self.version)
            if match is None:
                raise routing_error
            principal = self.security.authenticate(request.headers, uri)
            _note_principal(record, principal)
            call = Call(
                emulator=self,
                route=match.route,
                method=request.method,
                uri=uri,
                path=path,
                path_params=match.path_params,
                query=dict(request.query),
                body=load(raw)
                if raw.strip() and match.route.endpoint not in documents.NDJSON_ENDPOINTS
                else None,
                raw_body=raw,
                principal=principal,
            )
            if raw.strip() and not match.route.body:
                call.check_params()
                raise EsError(
                    400,
                    "illegal_argument_exception",
                    f"request [{request.method} {path}] does not support having a body",
                )
            status, body = await match.route.handler(call)
        except EsError as exc:
            status, body = exc.status, exc.body()
            if request.query.get("error_trace") in ("", "true"):
                body["error"]["stack_trace"] = java_trace(body["error"])
            response = self._respond(request, status, body, compat)
            for name, values in exc.headers.items():
                for value in values:
                    response.headers.add(name, value)
            record.status = status
            return response
        except RawError as exc:
            record.status = exc.status
            response = self._respond(request, exc.status, exc.body, compat)
            response.headers.update(exc.headers)
            return response
        record.status = status
        # Only here: ES writes error bodies unfiltered (AbstractRestChannel.newErrorBuilder).
        body = filter_body(body, request.query.get("filter_path"))
        return self._respond(request, status, body, compat)

    def _respond(
        self, request: web.Request, status: int, body: Any, compat: int | None
    ) -> web.Response:
        pretty = "pretty" in request.query and request.query["pretty"] != "false"
        text = json.dumps(
            body, indent=2 if pretty else None, separators=None if pretty else (",", ":")
        )
        content_type = (
            f"application/vnd.elasticsearch+json;compatible-with={compat}"
            if compat is not None
            else "application/json"
        )
        response = web.Response(status=status, text=text + ("\n" if pretty else ""))
        response.headers["Content-Type"] = content_type
        response.headers["X-Elastic-Product"] = "Elasticsearch"
        opaque = request.headers.get("X-Opaque-Id")
        if opaque:
            response.headers["X-Opaque-Id"] = opaque
        return response


def _maybe_json(raw: str) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _note_principal(record: RequestRecord, principal: Principal | None) -> None:
    if principal is None:
        return
    record.principal = principal.username
    record.authenticated = principal.authenticated
    record.api_key_id = principal.api_key.id if principal.api_key else None


def _compat_version(request: web.Request) -> int | None:
    """The compatible-with version asked for in Accept (else Content-Type)."""
    for header in ("Accept", "Content-Type"):
        found = _COMPAT.search(request.headers.get(header, ""))
        if found:
            return int(found.group(1))
    return None


def _check_media_types(request: web.Request, raw: str, version: str) -> None:
    """RestRequest media-type parsing: supported types and compatible-with versions."""
    content_type = request.headers.get("Content-Type", "")
    if (
        raw.strip()
        and content_type
        and not content_type.split(";")[0].strip().lower().startswith(_JSON_TYPES)
    ):
        raise RawError(
            406, {"error": f"Content-Type header [{content_type}] is not supported", "status": 406}
        )
    major = int(version.split(".")[0])
    bad = []
    for header in ("Accept", "Content-Type"):
        value = request.headers.get(header, "")
        found = _COMPAT.search(value)
        if found and int(found.group(1)) not in (major, major - 1):
            bad.append((header, value, int(found.group(1))))
    if bad:
        header, value, wanted = bad[0]
        raise EsError(
            400,
            "media_type_header_exception",
            f"Invalid media-type value on headers [{', '.join(h for h, _, _ in bad)}]",
            caused_by={
                "type": "status_exception",
                "reason": f"{header} version must be either version {major} or "
                f"{major - 1}, but found {wanted}. {header}={value}",
            },
        )
