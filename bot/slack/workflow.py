"""The Workflow Builder steps `stop_ml_deployment` and `scale_ml_deployment`: their contracts
and the pure mapping to a request.

`manifest.yml` declares the same inputs and outputs; a test keeps the two equal.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from bot.core.commands import (
    FreezeRequest,
    HelpRequest,
    ScaleRequest,
    StopRequest,
    UsageError,
    parse_scale,
    parse_stop,
)
from bot.core.model import ActionState, PendingAction, ScaleOutcome, ScaleSpec
from bot.slack.ids import SCALE_STEP_CALLBACK_ID as SCALE_STEP_CALLBACK_ID  # re-exported
from bot.slack.ids import STEP_CALLBACK_ID as STEP_CALLBACK_ID  # re-exported

# name → Slack parameter type, exactly as manifest.yml declares them.
STEP_INPUTS: dict[str, str] = {
    "deployment_id": "string",
    "cluster": "string",
    "force": "boolean",
    "finish_pending_work": "boolean",
    "reason": "string",
    "revert_after": "string",
    "revert_at": "string",
    "requested_by": "slack#/types/user_id",
    "channel": "slack#/types/channel_id",
}
STEP_REQUIRED_INPUTS = ("deployment_id", "requested_by", "channel")
STEP_OUTPUTS: dict[str, str] = {
    "outcome": "string",
    "stopped_deployments": "string",
    "result_url": "string",
}


SCALE_STEP_INPUTS: dict[str, str] = {
    "deployment_id": "string",
    "cluster": "string",
    "allocations": "integer",
    "adaptive": "string",
    "min_allocations": "integer",
    "max_allocations": "integer",
    "reason": "string",
    "revert_after": "string",
    "revert_at": "string",
    "requested_by": "slack#/types/user_id",
    "channel": "slack#/types/channel_id",
}
SCALE_STEP_OUTPUTS: dict[str, str] = {
    "outcome": "string",
    "settings_after": "string",
    "result_url": "string",
}


def scale_command_text(inputs: Mapping[str, Any]) -> str:
    """The `/ml-scale` text the scale step's inputs stand for (what is parsed and audited)."""
    words = [shlex.quote(str(inputs.get("deployment_id") or ""))]
    if inputs.get("adaptive") not in (None, ""):
        words += ["--adaptive", shlex.quote(str(inputs["adaptive"]))]
    for name, flag in (
        ("allocations", "--allocations"),
        ("min_allocations", "--min"),
        ("max_allocations", "--max"),
    ):
        if inputs.get(name) not in (None, ""):
            words += [flag, shlex.quote(str(inputs[name]))]
    if inputs.get("cluster"):
        words += ["--cluster", shlex.quote(str(inputs["cluster"]))]
    if inputs.get("reason"):
        words += ["--reason", shlex.quote(str(inputs["reason"]))]
    words += _window_words(inputs)
    return " ".join(words)


def scale_request_from_inputs(inputs: Mapping[str, Any]) -> ScaleRequest | UsageError:
    """The scale step's inputs through the same parser as `/ml-scale`."""
    if (missing := missing_inputs(inputs, "/ml-scale")) is not None:
        return missing
    parsed = parse_scale(scale_command_text(inputs))
    if isinstance(parsed, HelpRequest):
        return UsageError("/ml-scale", f"`{inputs['deployment_id']}` is not a deployment id", "")
    return parsed


def request_from_inputs(inputs: Mapping[str, Any]) -> StopRequest | UsageError:
    """The step's inputs through the same parser as `/ml-stop`, so the same id rules apply."""
    if (missing := missing_inputs(inputs)) is not None:
        return missing
    parsed = parse_stop(command_text(inputs))
    if isinstance(parsed, HelpRequest | FreezeRequest):
        return UsageError("/ml-stop", f"`{inputs['deployment_id']}` is not a deployment id", "")
    return parsed


def _window_words(inputs: Mapping[str, Any]) -> list[str]:
    """The optional `revert_after` / `revert_at` inputs as `--for` / `--until` (issue 22)."""
    words: list[str] = []
    for name, flag in (("revert_after", "--for"), ("revert_at", "--until")):
        if inputs.get(name) not in (None, ""):
            words += [flag, shlex.quote(str(inputs[name]))]
    return words


def missing_inputs(inputs: Mapping[str, Any], command: str = "/ml-stop") -> UsageError | None:
    """The required inputs the step was run without, as a usage error (None: all there)."""
    missing = [name for name in STEP_REQUIRED_INPUTS if not inputs.get(name)]
    if missing:
        return UsageError(command, f"missing step input(s): {', '.join(missing)}", "")
    return None


def command_text(inputs: Mapping[str, Any]) -> str:
    """The `/ml-stop` text the step's inputs stand for (what is parsed and audited)."""
    words = [shlex.quote(str(inputs.get("deployment_id") or ""))]
    if inputs.get("force"):
        words.append("--force")
    if inputs.get("finish_pending_work"):
        words.append("--finish-pending-work")
    if inputs.get("cluster"):
        words += ["--cluster", shlex.quote(str(inputs["cluster"]))]
    if inputs.get("reason"):
        words += ["--reason", shlex.quote(str(inputs["reason"]))]
    words += _window_words(inputs)
    return " ".join(words)


def outputs_for(action: PendingAction, result_url: str) -> dict[str, str]:
    """The step's outputs for a finished stop (or scale)."""
    if isinstance(action.spec, ScaleSpec):
        after = [
            f"{o.deployment_id}: target {o.target}, {o.allocated or 0} allocated"
            for o in action.outcomes
            if isinstance(o, ScaleOutcome) and o.ok
        ]
        return {
            "outcome": action.state.value,
            "settings_after": "; ".join(after),
            "result_url": result_url,
        }
    stopped = [o.deployment_id for o in action.outcomes if o.ok]
    return {
        "outcome": action.state.value,
        "stopped_deployments": ",".join(stopped),
        "result_url": result_url,
    }


def error_for(action: PendingAction) -> str | None:
    """Why the step failed, or None when it succeeded (the workflow branches on this)."""
    if action.state is ActionState.SUCCEEDED:
        return None
    kind = action.kind
    done = {"stop": "stopped", "start": "started", "scale": "scaled"}[kind]
    doing = {"stop": "stopping", "start": "starting", "scale": "scaling"}[kind]
    if action.state is ActionState.FAILED:
        problems = "; ".join(
            f"{o.deployment_id}: {o.message}"
            for o in action.outcomes
            if not o.ok or o.verified is False
        )
        return f"{kind} failed on {action.cluster}: {problems or 'see the result message'}"
    if action.state is ActionState.UNKNOWN:
        return (
            f"the bot restarted while {doing}; the outcome is unknown: "
            f"check `/ml-deployments {action.spec.expression}`"
        )
    who = f" by <@{action.actor_id}>" if action.actor_id else ""
    return f"the {kind} was {action.state.value}{who}; nothing was {done}"
