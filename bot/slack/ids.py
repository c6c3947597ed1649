"""The routing contract: command names, action ids and function callback ids.

Buttons carry these ids; the Slack adapter, the HTTP edge and the local shell route on them.
"""

from __future__ import annotations

import re

CONFIRM_ACTION_ID = "ml_stop.confirm"
CANCEL_ACTION_ID = "ml_stop.cancel"
START_CONFIRM_ACTION_ID = "ml_start.confirm"
START_CANCEL_ACTION_ID = "ml_start.cancel"
APPROVE_ACTION_ID = "ml_stop.approve"
REJECT_ACTION_ID = "ml_stop.reject"
RESTART_ACTION_ID = "ml_deployment.restart"
SCALE_CONFIRM_ACTION_ID = "ml_scale.confirm"
SCALE_CANCEL_ACTION_ID = "ml_scale.cancel"
REVERT_ACTION_ID = "ml_scale.revert"
STATUS_SCALE_ACTION_ID = "ml_status.scale"  # value: the /ml-scale text it proposes
STATUS_STOP_ACTION_ID = "ml_status.stop"  # value: the /ml-stop text it proposes
# A timed change's revert (issue 22); values are `revert id:due time shown[:seconds]`.
REVERT_NOW_ACTION_ID = "ml_revert.now"
KEEP_ACTION_ID = "ml_revert.keep"
EXTEND_30M_ACTION_ID = "ml_revert.extend_30m"
EXTEND_1H_ACTION_ID = "ml_revert.extend_1h"
EXTEND_2H_ACTION_ID = "ml_revert.extend_2h"
EXTEND_ACTION_IDS = (EXTEND_30M_ACTION_ID, EXTEND_1H_ACTION_ID, EXTEND_2H_ACTION_ID)
# A revert the world overtook offers previews instead; value: the command text, dispatched
# as if typed (the n-th of a kind in a message carries `#n`).
REVERT_PREVIEW_START_ACTION_ID = "ml_revert.preview_start"  # /ml-start text
REVERT_PREVIEW_SCALE_ACTION_ID = "ml_revert.preview_scale"  # /ml-scale text

# A partly refused stop: the preview of only the deployments that can stop (value: the text).
NARROW_ACTION_ID = "ml_stop.narrow"
SHOW_ALL_ACTION_ID = "ml_stop.show_all"  # a long preview's targets, in a modal
DETAILS_PREV_ACTION_ID = "ml_stop.details_prev"  # that modal's Previous
DETAILS_NEXT_ACTION_ID = "ml_stop.details_next"  # and Next

# Slack refuses a message whose buttons share an action_id: the n-th of one kind in a
# message carries `#n`, and everything that routes on the id routes on `routed(id)`.
_NTH = "#"


def nth(action_id: str, n: int) -> str:
    """The action id of the n-th button of one kind in a message (the first keeps the id)."""
    return action_id if n == 0 else f"{action_id}{_NTH}{n}"


def routed(action_id: str) -> str:
    """The routing id of a button, without the `#n` that keeps it unique in its message."""
    return action_id.split(_NTH, 1)[0]


def pattern(action_id: str) -> re.Pattern[str]:
    """What Bolt matches for `action_id`: the id itself or its n-th copies."""
    return re.compile(rf"^{re.escape(action_id)}(?:{_NTH}\d+)?$")


STEP_CALLBACK_ID = "stop_ml_deployment"  # the workflow step (manifest `functions`)
SCALE_STEP_CALLBACK_ID = "scale_ml_deployment"  # the scale step (manifest `functions`)

COMMANDS = ("/ml-stop", "/ml-deployments", "/ml-start", "/ml-audit", "/ml-scale", "/ml-status")
ACTION_IDS = (
    CONFIRM_ACTION_ID,
    CANCEL_ACTION_ID,
    START_CONFIRM_ACTION_ID,
    START_CANCEL_ACTION_ID,
    APPROVE_ACTION_ID,
    REJECT_ACTION_ID,
    RESTART_ACTION_ID,
    NARROW_ACTION_ID,
    SHOW_ALL_ACTION_ID,
    DETAILS_PREV_ACTION_ID,
    DETAILS_NEXT_ACTION_ID,
    SCALE_CONFIRM_ACTION_ID,
    SCALE_CANCEL_ACTION_ID,
    REVERT_ACTION_ID,
    STATUS_SCALE_ACTION_ID,
    STATUS_STOP_ACTION_ID,
    REVERT_NOW_ACTION_ID,
    KEEP_ACTION_ID,
    *EXTEND_ACTION_IDS,
    REVERT_PREVIEW_START_ACTION_ID,
    REVERT_PREVIEW_SCALE_ACTION_ID,
)
FUNCTIONS = (STEP_CALLBACK_ID, SCALE_STEP_CALLBACK_ID)
