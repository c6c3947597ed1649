"""The routing contract: command names, action ids and function callback ids.

Buttons carry these ids; the Slack adapter, the HTTP edge and the local shell route on them.
"""

from __future__ import annotations

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
    SCALE_CONFIRM_ACTION_ID,
    SCALE_CANCEL_ACTION_ID,
    REVERT_ACTION_ID,
    STATUS_SCALE_ACTION_ID,
    STATUS_STOP_ACTION_ID,
    REVERT_NOW_ACTION_ID,
    KEEP_ACTION_ID,
    *EXTEND_ACTION_IDS,
)
FUNCTIONS = (STEP_CALLBACK_ID, SCALE_STEP_CALLBACK_ID)
