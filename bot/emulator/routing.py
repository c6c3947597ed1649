"""Routes, path matching and the per-request `Call` handed to handlers (REST param rules)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from bot.emulator.errors import EsError, RawError, illegal_argument
from bot.emulator.security import SECURITY_DISABLED

if TYPE_CHECKING:
    from bot.emulator.security import Principal
    from bot.emulator.server import Emulator

Reply = tuple[int, Any]
Handler = Callable[["Call"], Awaitable[Reply]]

# Params the framework consumes for every handler (RestChannel: format, filter_path, pretty...).
CONSUMED_BY_CHANNEL = frozenset({"format", "filter_path", "pretty", "human", "error_trace"})
# Params accepted everywhere without being suggestions (source is read only without a body).
GLOBAL_PARAMS = frozenset(
    {"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"}
)
METHOD_ORDER = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "CONNECT", "TRACE", "PATCH")


@dataclass(frozen=True)
class Route:
    """One REST route: method, path template, stable endpoint name, handler, query params."""

    method: str
    template: str
    endpoint: str
    handler: Handler
    body: bool = False

    @property
    def segments(self) -> list[str]:
        """Template split on '/'."""
        return [s for s in self.template.split("/") if s]

    def match(self, parts: list[str]) -> dict[str, str] | None:
        """Path params when the decoded path segments fit the template."""
        segs = self.segments
        if len(segs) != len(parts):
            return None
        found: dict[str, str] = {}
        for seg, part in zip(segs, parts, strict=True):
            if seg.startswith("{"):
                found[seg[1:-1]] = part
            elif seg != part:
                return None
        return found

    @property
    def literal_count(self) -> int:
        """Explicit segments win over wildcards, as in ES's PathTrie."""
        return sum(1 for s in self.segments if not s.startswith("{"))


def split_path(raw_path: str) -> list[str]:
    """Decoded path segments (ES decodes each path parameter)."""
    return [unquote(p) for p in raw_path.split("?", 1)[0].split("/") if p]


@dataclass
class Match:
    """The route chosen for a request and its path params."""

    route: Route
    path_params: dict[str, str]


def find_route(routes: list[Route], method: str, uri: str) -> Match:
    """The handler for method+path, or ES's 405 / 400 no-handler errors."""
    parts = split_path(uri)
    candidates = [(r, p) for r in routes if (p := r.match(parts)) is not None]
    if not candidates:
        if len(parts) == 1 and not parts[0].startswith("_") and method in ("GET", "HEAD"):
            raise index_not_found(parts[0])
        raise RawError(
            400, {"error": f"no handler found for uri [{uri}] and method [{method}]", "status": 400}
        )
    fitting = [(r, p) for r, p in candidates if r.method == method]
    if not fitting:
        allowed = [m for m in METHOD_ORDER if any(r.method == m for r, _ in candidates)]
        raise RawError(
            405,
            {
                "error": f"Incorrect HTTP method for uri [{uri}] and method [{method}], "
                f"allowed: [{', '.join(allowed)}]",
                "status": 405,
            },
            headers={"Allow": ",".join(allowed)},
        )
    route, params = max(fitting, key=lambda rp: rp[0].literal_count)
    return Match(route, params)


def index_not_found(index: str) -> EsError:
    """GET /<name> lands on the get-index API."""
    extra = {
        "resource.type": "index_or_alias",
        "resource.id": index,
        "index_uuid": "_na_",
        "index": index,
    }
    return EsError(404, "index_not_found_exception", f"no such index [{index}]", extra=extra)


def _similarity(a: str, b: str) -> float:
    """Lucene LevenshteinDistance.getDistance: 1 - edits / max length."""
    if not a or not b:
        return 0.0
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def unrecognized(path: str, invalid: list[str], candidates: frozenset[str] | set[str]) -> EsError:
    """BaseRestHandler.unrecognized: the exact 'contains unrecognized parameter' text."""
    text = f"request [{path}] contains unrecognized parameter{'s' if len(invalid) > 1 else ''}: "
    pieces = []
    for name in invalid:
        scored = sorted(
            ((_similarity(name, c), c) for c in candidates if _similarity(name, c) > 0.5),
            key=lambda t: (-t[0], t[1]),
        )
        piece = f"[{name}]"
        if scored:
            keys = [c for _, c in scored]
            piece += (
                " -> did you mean "
                + (f"[{keys[0]}]" if len(keys) == 1 else f"any of [{', '.join(keys)}]")
                + "?"
            )
        pieces.append(piece)
    return illegal_argument(text + ", ".join(pieces))


@dataclass
class Call:
    """One request as a handler sees it: params, parsed body, principal and the emulator."""

    emulator: Emulator
    route: Route
    method: str
    uri: str
    path: str
    path_params: dict[str, str]
    query: dict[str, str]
    body: Any
    raw_body: str
    principal: Principal | None
    consumed: set[str] = field(default_factory=set)
    params_checked: bool = False

    @property
    def has_body(self) -> bool:
        """RestRequest.hasContentOrSourceParam."""
        return bool(self.raw_body.strip()) or "source" in self.query

    def param(self, name: str, default: str | None = None) -> str | None:
        """A query parameter, marked consumed."""
        self.consumed.add(name)
        return self.query.get(name, default)

    def has_param(self, name: str) -> bool:
        """RestRequest.hasParam (does not consume)."""
        return name in self.query

    def bool_param(self, name: str, default: bool) -> bool:
        """RestRequest.paramAsBoolean: '' is true; only 'true'/'false' otherwise."""
        value = self.param(name)
        if value is None:
            return default
        if value in ("", "true"):
            return True
        if value == "false":
            return False
        raise illegal_argument(
            f"Failed to parse value [{value}] as only [true] or [false] are allowed."
        )

    def int_param(self, name: str, default: int | None) -> int | None:
        """RestRequest.paramAsInt."""
        value = self.param(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise illegal_argument(
                f"Failed to parse int parameter [{name}] with value [{value}]"
            ) from None

    def check_params(self) -> None:
        """Reject query params the handler never consumed, as BaseRestHandler does."""
        if self.params_checked:
            return
        self.params_checked = True
        allowed = GLOBAL_PARAMS | self.consumed | set(self.path_params)
        invalid = sorted(k for k in self.query if k not in allowed)
        if invalid:
            raise unrecognized(
                self.path, invalid, CONSUMED_BY_CHANNEL | self.consumed | set(self.path_params)
            )

    def authorize(self, action: str) -> None:
        """Finish REST parsing, then authorize the transport action (ES's order)."""
        self.check_params()
        self.emulator.security.authorize(self.principal, action)

    def require_security(self) -> None:
        """Security APIs fail with the real 500 when security is off."""
        if not self.emulator.security.enabled:
            raise EsError(500, "exception", SECURITY_DISABLED)
