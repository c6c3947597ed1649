"""The `/_emulator/` test interface (no auth, never logged): faults, queued work, request log.

- POST /_emulator/latency          {"endpoint": "ml.stop", "seconds": 0.2}  (0 removes it)
- POST /_emulator/fail     {"count": N, "status": 429|500|503, "endpoint"?, "type"?, "reason"?}
- POST /_emulator/drop             {"count": N, "endpoint"?}
- POST /_emulator/respond  {"count": N, "endpoint"?, "status"?, "body"?, "content_type"?,
                            "handled"?, "following"?}  (a canned answer: see RespondRule)
- POST /_emulator/deployments/<deployment_id>/queue   {"count": N, "seconds_each": s}
- POST /_emulator/stop_delay       {"seconds": s}
- POST /_emulator/linger           {"seconds": s}  (stays `stopping` after the stop answered)
- GET|DELETE /_emulator/requests   the request log / clear it
- POST /_emulator/reset            clear every fault, the stop delay and slow placement
- GET  /_emulator/state            a JSON snapshot of the cluster state (same format as --data)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.faults import DropRule, FailRule, RespondRule
from bot.emulator.loader import dump_state

if TYPE_CHECKING:
    from bot.emulator.server import Emulator

JSON = dict[str, Any]


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers={"X-Elastic-Product": "Elasticsearch"},
    )


async def _json(request: web.Request) -> JSON:
    raw = await request.text()
    if not raw.strip():
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}')
    return data


def routes(emulator: Emulator) -> list[web.RouteDef]:
    """aiohttp routes for the admin interface of one emulator."""

    async def latency(request: web.Request) -> web.Response:
        body = await _json(request)
        endpoint = str(body.get("endpoint", "*"))
        seconds = float(body.get("seconds", 0))
        if seconds > 0:
            emulator.faults.latency[endpoint] = seconds
        else:
            emulator.faults.latency.pop(endpoint, None)
        return _reply({"latency": emulator.faults.latency})

    async def fail(request: web.Request) -> web.Response:
        body = await _json(request)
        rule = FailRule(
            count=int(body.get("count", 1)),
            status=int(body.get("status", 503)),
            endpoint=str(body.get("endpoint") or "*"),
            type=body.get("type"),
            reason=body.get("reason"),
        )
        emulator.faults.fails.append(rule)
        return _reply({"armed": rule.__dict__})

    async def drop(request: web.Request) -> web.Response:
        body = await _json(request)
        rule = DropRule(count=int(body.get("count", 1)), endpoint=str(body.get("endpoint") or "*"))
        emulator.faults.drops.append(rule)
        return _reply({"armed": rule.__dict__})

    async def respond(request: web.Request) -> web.Response:
        body = await _json(request)
        text = body.get("body", "")
        rule = RespondRule(
            count=int(body.get("count", 1)),
            endpoint=str(body.get("endpoint") or "*"),
            status=int(body.get("status", 200)),
            body=text if isinstance(text, str) else json.dumps(text),
            content_type=str(body.get("content_type") or "application/json"),
            handled=bool(body.get("handled", False)),
            following=body.get("following"),
        )
        emulator.faults.respond(rule)
        return _reply({"armed": rule.__dict__})

    async def queue(request: web.Request) -> web.Response:
        body = await _json(request)
        deployment_id = request.match_info["deployment_id"]
        if deployment_id not in emulator.state.deployments:
            return _reply({"error": f"no deployment [{deployment_id}]"}, 404)
        dep = emulator.lifecycle.enqueue(
            deployment_id, int(body.get("count", 1)), float(body.get("seconds_each", 0.1))
        )
        return _reply({"deployment_id": deployment_id, "pending": dep.pending_requests})

    async def stop_delay(request: web.Request) -> web.Response:
        body = await _json(request)
        emulator.lifecycle.stop_delay = float(body.get("seconds", 0))
        return _reply({"stop_delay": emulator.lifecycle.stop_delay})

    async def linger(request: web.Request) -> web.Response:
        body = await _json(request)
        emulator.lifecycle.linger = float(body.get("seconds", 0))
        return _reply({"linger": emulator.lifecycle.linger})

    async def get_requests(request: web.Request) -> web.Response:
        return _reply([r.to_json() for r in emulator.requests])

    async def clear_requests(request: web.Request) -> web.Response:
        emulator.requests.clear()
        return _reply({"cleared": True})

    async def reset(request: web.Request) -> web.Response:
        emulator.faults.reset()
        emulator.lifecycle.stop_delay = 0.0
        emulator.lifecycle.linger = 0.0
        emulator.placement.configure()  # allocations placed at once again
        return _reply({"reset": True})

    async def state(request: web.Request) -> web.Response:
        return _reply(dump_state(emulator.state))

    return [
        web.post("/_emulator/latency", latency),
        web.post("/_emulator/fail", fail),
        web.post("/_emulator/drop", drop),
        web.post("/_emulator/respond", respond),
        web.post("/_emulator/deployments/{deployment_id}/queue", queue),
        web.post("/_emulator/stop_delay", stop_delay),
        web.post("/_emulator/linger", linger),
        web.get("/_emulator/requests", get_requests),
        web.delete("/_emulator/requests", clear_requests),
        web.post("/_emulator/reset", reset),
        web.get("/_emulator/state", state),
    ]
