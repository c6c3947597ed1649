"""Block Kit messages for prompts, approvals, results, errors and help, as plain dicts.

Pure functions of their inputs (the functional core): nothing here imports Slack.
Every message has a plain `text` fallback and respects Slack's Block Kit limits:
long lists are summarised with an exact count, never cut in the middle of a word,
and user-controlled text is escaped so it cannot ping (`<!channel>`) or inject links.

One module per message family; every name is re-exported here, so
`from bot.slack import blocks; blocks.<fn>` keeps working.
"""

from __future__ import annotations

from bot.slack.blocks.approval import (
    approval_card,
    approval_recorded,
    needs_approval,
    self_approval,
)
from bot.slack.blocks.common import (
    APPROVE_ACTION_ID,
    BUTTON_TEXT_MAX,
    CANCEL_ACTION_ID,
    CONFIRM_ACTION_ID,
    CONFIRM_BUTTON_MAX,
    CONFIRM_TEXT_MAX,
    CONFIRM_TITLE_MAX,
    CONTEXT_TEXT_MAX,
    DETAILED_OUTCOMES,
    DETAILED_TARGETS,
    EXPRESSION_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    FIELDS_MAX,
    HEADER_TEXT_MAX,
    ID_MAX,
    MAX_BLOCKS,
    MESSAGE_MAX,
    REASON_MAX,
    REJECT_ACTION_ID,
    RESTART_ACTION_ID,
    REVERT_ACTION_ID,
    SCALE_CANCEL_ACTION_ID,
    SCALE_CONFIRM_ACTION_ID,
    SECTION_TEXT_MAX,
    START_CANCEL_ACTION_ID,
    START_CONFIRM_ACTION_ID,
    STATUS_SCALE_ACTION_ID,
    STATUS_STOP_ACTION_ID,
    TABLE_ROWS,
    Block,
    Message,
    _context,
    _divider,
    _join_limited,
    _make_message,
    clip,
    escape,
    literal,
)
from bot.slack.blocks.freeze import freeze_notice, frozen, locked
from bot.slack.blocks.help import denied, error, help_message, nothing_matched, usage_error
from bot.slack.blocks.listing import deployments_table
from bot.slack.blocks.preview import progress, proposal
from bot.slack.blocks.result import already, final_preview, not_requester, result, unknown_outcome
from bot.slack.blocks.scale import status_message
from bot.slack.blocks.terminal import button_labels, mrkdwn_to_text, to_text
from bot.slack.blocks.timed import heads_up, not_run, revert_line, revert_report
from bot.slack.blocks.timeline import TIMELINE_MAX_ROWS, audit_timeline
from bot.slack.ids import (  # a timed change's revert buttons (bot/slack/blocks/timed.py)
    EXTEND_1H_ACTION_ID,
    EXTEND_2H_ACTION_ID,
    EXTEND_30M_ACTION_ID,
    KEEP_ACTION_ID,
    REVERT_NOW_ACTION_ID,
)

__all__ = [
    "APPROVE_ACTION_ID",
    "BUTTON_TEXT_MAX",
    "CANCEL_ACTION_ID",
    "CONFIRM_ACTION_ID",
    "CONFIRM_BUTTON_MAX",
    "CONFIRM_TEXT_MAX",
    "CONFIRM_TITLE_MAX",
    "CONTEXT_TEXT_MAX",
    "DETAILED_OUTCOMES",
    "DETAILED_TARGETS",
    "EXPRESSION_MAX",
    "EXTEND_1H_ACTION_ID",
    "EXTEND_2H_ACTION_ID",
    "EXTEND_30M_ACTION_ID",
    "FALLBACK_TEXT_MAX",
    "FIELDS_MAX",
    "FIELD_TEXT_MAX",
    "HEADER_TEXT_MAX",
    "ID_MAX",
    "KEEP_ACTION_ID",
    "MAX_BLOCKS",
    "MESSAGE_MAX",
    "REASON_MAX",
    "REJECT_ACTION_ID",
    "RESTART_ACTION_ID",
    "REVERT_ACTION_ID",
    "REVERT_NOW_ACTION_ID",
    "SCALE_CANCEL_ACTION_ID",
    "SCALE_CONFIRM_ACTION_ID",
    "SECTION_TEXT_MAX",
    "START_CANCEL_ACTION_ID",
    "START_CONFIRM_ACTION_ID",
    "STATUS_SCALE_ACTION_ID",
    "STATUS_STOP_ACTION_ID",
    "TABLE_ROWS",
    "TIMELINE_MAX_ROWS",
    "Block",
    "Message",
    "_context",
    "_divider",
    "_join_limited",
    "_make_message",
    "already",
    "approval_card",
    "approval_recorded",
    "audit_timeline",
    "button_labels",
    "clip",
    "denied",
    "deployments_table",
    "error",
    "escape",
    "final_preview",
    "freeze_notice",
    "frozen",
    "heads_up",
    "help_message",
    "literal",
    "locked",
    "mrkdwn_to_text",
    "needs_approval",
    "not_requester",
    "not_run",
    "nothing_matched",
    "progress",
    "proposal",
    "result",
    "revert_line",
    "revert_report",
    "self_approval",
    "status_message",
    "to_text",
    "unknown_outcome",
    "usage_error",
]
