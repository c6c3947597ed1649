"""Ingest pipeline APIs: put, get (404 with `{}` when nothing matches) and delete."""

from __future__ import annotations

from typing import Any

from bot.emulator import privileges as p
from bot.emulator.errors import EsError, RawError, not_found
from bot.emulator.privileges import glob_match
from bot.emulator.routing import Call, Reply
from bot.emulator.state import MAX_PROCESSOR_RECURSION, tokens


def _matching(call: Call, expression: str) -> list[str]:
    """Pipeline ids matching a comma list with wildcards, in storage order."""
    wanted = tokens(expression)
    return [
        pid
        for pid in call.emulator.state.pipelines
        if any(glob_match(t, pid) if "*" in t else t == pid for t in wanted)
    ]


async def get_pipeline(call: Call) -> Reply:
    """GET _ingest/pipeline[/<id>]; GetPipelineResponse.status() is 404 when none are found."""
    summary = call.bool_param("summary", False)
    call.param("master_timeout")
    call.authorize(p.ACTION_PIPELINE_GET)
    ids = _matching(call, call.path_params.get("id", "*"))
    pipelines = call.emulator.state.pipelines
    body = {pid: ({} if summary else pipelines[pid]) for pid in ids}
    if not body:
        raise RawError(404, {})
    return 200, body


async def put_pipeline(call: Call) -> Reply:
    """PUT _ingest/pipeline/<id>."""
    call.param("master_timeout")
    call.param("timeout")
    call.param("if_version")
    call.check_params()
    body = call.body
    if not call.has_body:
        raise EsError(400, "parse_exception", "request body is required")
    if not isinstance(body, dict) or not isinstance(body.get("processors"), list):
        raise EsError(
            400,
            "parse_exception",
            "[processors] required property is missing",
            extra={"property_name": "processors"},
        )
    _check_inference_processors(body["processors"])
    call.authorize(p.ACTION_PIPELINE_PUT)
    call.emulator.state.put_pipeline(call.path_params["id"], body)
    return 200, {"acknowledged": True}


def _check_inference_processors(processors: list[Any], level: int = 0) -> None:
    """Building the pipeline's processors: an inference processor needs `model_id`
    (ConfigurationUtils.readStringProperty; text from ES inference_processor.yml)."""
    if level > MAX_PROCESSOR_RECURSION:
        return
    for processor in processors:
        if not isinstance(processor, dict):
            continue
        for kind, config in processor.items():
            if not isinstance(config, dict):
                continue
            if kind == "inference" and config.get("model_id") is None:
                raise EsError(
                    400,
                    "parse_exception",
                    "[model_id] required property is missing",
                    extra={"property_name": "model_id", "processor_type": "inference"},
                )
            nested = [config["processor"]] if kind == "foreach" and "processor" in config else []
            _check_inference_processors(nested + list(config.get("on_failure") or []), level + 1)


async def delete_pipeline(call: Call) -> Reply:
    """DELETE _ingest/pipeline/<id>; an explicit missing id is 404, a wildcard is not."""
    call.param("master_timeout")
    call.param("timeout")
    call.authorize(p.ACTION_PIPELINE_DELETE)
    expression = call.path_params["id"]
    ids = _matching(call, expression)
    if not ids and "*" not in expression:
        raise not_found(f"pipeline [{expression}] is missing")
    for pid in ids:
        del call.emulator.state.pipelines[pid]
    return 200, {"acknowledged": True}
