"""The Workflow Builder steps `stop_ml_deployment` and `scale_ml_deployment`: their contracts
and the pure mapping to a request.

`manifest.yml` declares the same inputs and outputs; a test keeps the two equal.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

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


# slack_sdk sends functions.complete* arguments in the query string, and servers answer 414
# to a request URI over about 8 KB (docs/slack.md): each argument stays under this many
# characters once URL-encoded, so error + outputs + the rest stay well under 8 KB.
PARAM_MAX_ENCODED = 2500
_PROBLEM_MAX = 200  # one deployment's error message in a step error


def encoded_size(text: str) -> int:
    """Length of `text` as a query-string value (UTF-8, percent-encoded)."""
    return len(quote(text, safe=""))


def cap_text(text: str, limit: int = PARAM_MAX_ENCODED) -> str:
    """`text` cut (ending in `…`) so that its URL-encoded form fits in `limit` characters."""
    if encoded_size(text) <= limit:
        return text
    low, high = 0, len(text)
    while low < high:  # the longest prefix that fits, with room for the ellipsis
        mid = (low + high + 1) // 2
        if encoded_size(text[:mid] + "…") <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + "…"


def cap_list(items: list[str], sep: str, limit: int = PARAM_MAX_ENCODED) -> str:
    """Whole items joined by `sep` while they fit, then `… and N more` (an exact count)."""
    joined = sep.join(items)
    if encoded_size(joined) <= limit:
        return joined
    for shown in range(len(items) - 1, -1, -1):
        text = sep.join([*items[:shown], f"… and {len(items) - shown:,} more"])
        if encoded_size(text) <= limit:
            return text
    return f"{len(items):,} items"


def outputs_for(action: PendingAction, result_url: str) -> dict[str, str]:
    """The step's outputs for a finished stop or scale (lists capped for the query string)."""
    if isinstance(action.spec, ScaleSpec):
        after = [
            f"{o.deployment_id}: target {o.target}, {o.allocated or 0} allocated"
            for o in action.outcomes
            if isinstance(o, ScaleOutcome) and o.ok
        ]
        return {
            "outcome": action.state.value,
            "settings_after": cap_list(after, "; "),
            "result_url": result_url,
        }
    stopped = [o.deployment_id for o in action.outcomes if o.ok]
    return {
        "outcome": action.state.value,
        "stopped_deployments": cap_list(stopped, ",", PARAM_MAX_ENCODED - 500),
        "result_url": cap_text(result_url, 400),
    }


def error_for(action: PendingAction) -> str | None:
    """Why the step failed, or None when it succeeded (the workflow branches on this)."""
    if action.state is ActionState.SUCCEEDED:
        return None
    kind = action.kind
    done = {"stop": "stopped", "start": "started", "scale": "scaled"}[kind]
    doing = {"stop": "stopping", "start": "starting", "scale": "scaling"}[kind]
    if action.state is ActionState.FAILED:
        head = f"{kind} failed on {action.cluster}: "
        problems = [
            f"{o.deployment_id}: {cap_text(o.message, _PROBLEM_MAX)}"
            for o in action.outcomes
            if not o.ok or o.verified is False
        ]
        listed = cap_list(problems, "; ", PARAM_MAX_ENCODED - encoded_size(head))
        return head + (listed or "see the result message")
    if action.state is ActionState.UNKNOWN and action.outcomes:
        head = f"the outcome of the {kind} on {action.cluster} is unknown ("
        tail = f"): check `/ml-deployments {cap_text(action.spec.expression, 200)}`"
        unsure = [
            f"{o.deployment_id}: {cap_text(o.message, _PROBLEM_MAX)}"
            for o in action.outcomes
            if o.unknown
        ]
        room = PARAM_MAX_ENCODED - encoded_size(head + tail)
        return head + (cap_list(unsure, "; ", room) or "see the result message") + tail
    if action.state is ActionState.UNKNOWN:
        return (
            f"the bot restarted while {doing}; the outcome is unknown: "
            f"check `/ml-deployments {action.spec.expression}`"
        )
    who = f" by <@{action.actor_id}>" if action.actor_id else ""
    return f"the {kind} was {action.state.value}{who}; nothing was {done}"
