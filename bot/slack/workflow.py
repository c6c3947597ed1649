"""The Workflow Builder step `stop_ml_deployment`: its contract and the pure mapping to a request.

`manifest.yml` declares the same inputs and outputs; a test keeps the two equal.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from bot.core.commands import FreezeRequest, HelpRequest, StopRequest, UsageError, parse_stop
from bot.core.model import ActionState, PendingAction
from bot.slack.ids import STEP_CALLBACK_ID as STEP_CALLBACK_ID  # re-exported

# name → Slack parameter type, exactly as manifest.yml declares them.
STEP_INPUTS: dict[str, str] = {
    "deployment_id": "string",
    "cluster": "string",
    "force": "boolean",
    "finish_pending_work": "boolean",
    "reason": "string",
    "requested_by": "slack#/types/user_id",
    "channel": "slack#/types/channel_id",
}
STEP_REQUIRED_INPUTS = ("deployment_id", "requested_by", "channel")
STEP_OUTPUTS: dict[str, str] = {
    "outcome": "string",
    "stopped_deployments": "string",
    "result_url": "string",
}


def request_from_inputs(inputs: Mapping[str, Any]) -> StopRequest | UsageError:
    """The step's inputs through the same parser as `/ml-stop`, so the same id rules apply."""
    if (missing := missing_inputs(inputs)) is not None:
        return missing
    parsed = parse_stop(command_text(inputs))
    if isinstance(parsed, HelpRequest | FreezeRequest):
        return UsageError("/ml-stop", f"`{inputs['deployment_id']}` is not a deployment id", "")
    return parsed


def missing_inputs(inputs: Mapping[str, Any]) -> UsageError | None:
    """The required inputs the step was run without, as a usage error (None: all there)."""
    missing = [name for name in STEP_REQUIRED_INPUTS if not inputs.get(name)]
    if missing:
        return UsageError("/ml-stop", f"missing step input(s): {', '.join(missing)}", "")
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
    return " ".join(words)


def outputs_for(action: PendingAction, result_url: str) -> dict[str, str]:
    """The step's outputs for a finished stop."""
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
    if action.state is ActionState.FAILED:
        problems = "; ".join(f"{o.deployment_id}: {o.message}" for o in action.outcomes if not o.ok)
        return f"stop failed on {action.cluster}: {problems or 'see the result message'}"
    if action.state is ActionState.UNKNOWN and action.outcomes:
        unsure = "; ".join(f"{o.deployment_id}: {o.message}" for o in action.outcomes if o.unknown)
        return (
            f"the outcome of the stop on {action.cluster} is unknown ({unsure}): "
            f"check `/ml-deployments {action.spec.expression}`"
        )
    if action.state is ActionState.UNKNOWN:
        return (
            "the bot restarted while stopping; the outcome is unknown: "
            f"check `/ml-deployments {action.spec.expression}`"
        )
    who = f" by <@{action.actor_id}>" if action.actor_id else ""
    return f"the stop was {action.state.value}{who}; nothing was stopped"
