"""The `/_emulator/` test interface for allocations and health (no auth, never logged).

- POST /_emulator/placement  {"mode": "immediate"|"manual"|"timed", "seconds"?: s, "fail"?: why}
- POST /_emulator/placement/step  {"deployment_id"?: id, "count"?: N}  place pending allocations
- POST /_emulator/deployments/<deployment_id>/health  {"rejected_execution_count": 12, ...}
  sets any of HEALTH_FIELDS (see state.py); `"routing_state": "failed"` with
  `"routing_reason"` makes the node's route fail
- POST /_emulator/capacity  {"ml_processors"?: N, "ml_autoscaling"?: bool, "ml_max_bytes"?: B}
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.emulator.state import HEALTH_FIELDS

if TYPE_CHECKING:
    from bot.emulator.server import Emulator

JSON = dict[str, Any]
CAPACITY_FIELDS = {"ml_processors": int, "ml_autoscaling": bool, "ml_max_bytes": int}


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def _json(request: web.Request) -> JSON:
    raw = await request.text()
    data = json.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text='{"error": "expected a JSON object"}')
    return data


def routes(emulator: Emulator) -> list[web.RouteDef]:
    """aiohttp routes for placement, health and capacity of one emulator."""

    async def placement(request: web.Request) -> web.Response:
        body = await _json(request)
        try:
            emulator.placement.configure(
                str(body.get("mode", "immediate")),
                float(body.get("seconds", 0)),
                body.get("fail"),
            )
        except ValueError as exc:
            return _reply({"error": str(exc)}, 400)
        p = emulator.placement
        return _reply({"mode": p.mode, "seconds": p.seconds, "fail": p.fail})

    async def step(request: web.Request) -> web.Response:
        body = await _json(request)
        placed = emulator.placement.step(body.get("deployment_id"), int(body.get("count", 1)))
        return _reply({"placed": placed})

    async def health(request: web.Request) -> web.Response:
        body = await _json(request)
        deployment_id = request.match_info["deployment_id"]
        try:
            emulator.state.set_health(deployment_id, **body)
        except (KeyError, ValueError) as exc:
            return _reply({"error": str(exc)}, 400)
        dep = emulator.state.deployments[deployment_id]
        return _reply({k: getattr(dep, k) for k in HEALTH_FIELDS})

    async def capacity(request: web.Request) -> web.Response:
        body = await _json(request)
        unknown = sorted(set(body) - set(CAPACITY_FIELDS))
        if unknown:
            return _reply({"error": f"unknown capacity fields {unknown}"}, 400)
        for key, value in body.items():
            setattr(emulator.state, key, CAPACITY_FIELDS[key](value))
        return _reply({k: getattr(emulator.state, k) for k in CAPACITY_FIELDS})

    return [
        web.post("/_emulator/placement", placement),
        web.post("/_emulator/placement/step", step),
        web.post("/_emulator/deployments/{deployment_id}/health", health),
        web.post("/_emulator/capacity", capacity),
    ]
