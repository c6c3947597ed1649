"""Injected faults: latency, failing the next N requests with real error bodies, dropped
connections, matched by stable endpoint names.

Endpoint names: root, ml.get, ml.stats, ml.put_model, ml.delete_model, ml.put_vocabulary,
ml.put_definition_part, ml.put_alias, ml.delete_alias, ml.start, ml.stop, ml.update,
ml.memory_stats, inference.update,
ingest.get_pipeline, ingest.put_pipeline, ingest.delete_pipeline, security.authenticate,
security.put_role, security.put_user, security.get_user, security.create_api_key,
security.has_privileges, unknown (no handler / wrong method). Patterns may use `*` (`ml.*`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bot.emulator.errors import EsError
from bot.emulator.privileges import glob_match

DEFAULT_ERRORS: dict[int, tuple[str, str | None]] = {
    503: ("master_not_discovered_exception", None),
    429: (
        "es_rejected_execution_exception",
        "rejected execution of org.elasticsearch.common.util.concurrent.TimedRunnable@5f3a8e21 "
        "on EsThreadPoolExecutor[name = es-ml-node-1/management, queue capacity = 100, "
        "task execution EWMA = 1.2ms, total task execution time = 4.1s]",
    ),
    500: (
        "exception",
        "failed to delete model assignment after nodes unallocated the "
        "deployment. Attempt to stop again",
    ),
    502: ("exception", "Bad Gateway"),
    504: ("exception", "Gateway Timeout"),
}
CIRCUIT_BREAKING = (
    "[parent] Data too large, data for [<http_request>] would be [1031798784/984mb], which is "
    "larger than the limit of [1020054732/972.7mb], real usage: [1031798272/984mb], new bytes "
    "reserved: [512/512b], usages [model_inference=0/0b, inflight_requests=512/512b, "
    "request=0/0b, fielddata=0/0b, eql_sequence=0/0b]"
)


@dataclass
class FailRule:
    """Fail the next `count` matching requests with one error."""

    count: int
    status: int
    endpoint: str = "*"
    type: str | None = None
    reason: str | None = None

    def error(self) -> EsError:
        """The error to answer, in the real shape for that status."""
        default_type, default_reason = DEFAULT_ERRORS.get(self.status, ("exception", None))
        type_ = self.type or default_type
        if type_ == "circuit_breaking_exception":
            extra = {
                "bytes_wanted": 1031798784,
                "bytes_limit": 1020054732,
                "durability": "PERMANENT",
            }
            return EsError(self.status, type_, self.reason or CIRCUIT_BREAKING, extra=extra)
        return EsError(
            self.status, type_, self.reason if self.reason is not None else default_reason
        )


@dataclass
class DropRule:
    """Close the connection without answering for the next `count` matching requests."""

    count: int
    endpoint: str = "*"


@dataclass
class RespondRule:
    """Answer the next `count` matching requests with a status, body and content type.

    What a proxy or a broken node in front of Elasticsearch can answer: an HTML page with 200,
    a JSON list, truncated JSON, a wrong shape. `handled`: the request is handled first (a
    stop stops) and only its answer is replaced, as when a proxy mangles the reply on its way
    back. `following`: armed only once a request to that endpoint pattern has come (the reads
    after a stop, not the ones before it).
    """

    count: int
    endpoint: str = "*"
    status: int = 200
    body: str = ""
    content_type: str = "application/json"
    handled: bool = False
    following: str | None = None

    def response(self) -> web.Response:
        """The canned answer (with the product header, so the client reads the body)."""
        response = web.Response(status=self.status, text=self.body)
        response.headers["Content-Type"] = self.content_type
        response.headers["X-Elastic-Product"] = "Elasticsearch"
        return response


@dataclass
class Faults:
    """All active faults; `reset()` clears them."""

    latency: dict[str, float] = field(default_factory=dict)
    fails: list[FailRule] = field(default_factory=list)
    drops: list[DropRule] = field(default_factory=list)
    responds: list[RespondRule] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # endpoints requested since the last reset

    def reset(self) -> None:
        """Remove every fault."""
        self.latency.clear()
        self.fails.clear()
        self.drops.clear()
        self.responds.clear()
        self.seen.clear()

    def respond(self, rule: RespondRule) -> RespondRule:
        """Arm a canned answer (for tests holding the emulator itself)."""
        self.responds.append(rule)
        return rule

    def take_respond(self, endpoint: str) -> RespondRule | None:
        """Consume one canned answer for the endpoint, if any is armed."""
        self.seen.add(endpoint)
        for rule in self.responds:
            if rule.following is not None and not any(
                glob_match(rule.following, e) for e in self.seen
            ):
                continue
            if rule.count > 0 and glob_match(rule.endpoint, endpoint):
                rule.count -= 1
                return rule
        return None

    def delay_for(self, endpoint: str) -> float:
        """Total injected latency for an endpoint."""
        return sum(s for pattern, s in self.latency.items() if glob_match(pattern, endpoint))

    def take_drop(self, endpoint: str) -> bool:
        """Consume one drop for the endpoint, if any is armed."""
        for rule in self.drops:
            if rule.count > 0 and glob_match(rule.endpoint, endpoint):
                rule.count -= 1
                return True
        return False

    def take_fail(self, endpoint: str) -> EsError | None:
        """Consume one failure for the endpoint, if any is armed."""
        for rule in self.fails:
            if rule.count > 0 and glob_match(rule.endpoint, endpoint):
                rule.count -= 1
                return rule.error()
        return None
