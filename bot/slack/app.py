"""The Slack adapter: Bolt AsyncApp listeners that ack at once and then drive the core.

The listeners live in `bot.slack.listeners`, one module per job; `SlackAdapter` combines
them and adds the one listener wrapper, and `create_bolt_app` registers them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.ports import CommandMetrics as Metrics
from bot.app.service import Service
from bot.core.incidents import IncidentConfig
from bot.core.outcomes import Who
from bot.slack import blocks, ids
from bot.slack.delivery import privately
from bot.slack.listeners.approvals import ApprovalListeners
from bot.slack.listeners.base import (
    NAME_MAX,
    button_value,
    permalink,
    who_from_action,
    who_from_command,
)
from bot.slack.listeners.clicks import ClickListeners
from bot.slack.listeners.commands import CommandListeners
from bot.slack.listeners.details import DetailsListeners
from bot.slack.listeners.step import StepListener
from bot.slack.listeners.timed import TimedListeners
from bot.slack.respond import Respond, Responder
from bot.slack.workflow import SCALE_STEP_CALLBACK_ID, STEP_CALLBACK_ID

__all__ = [
    "ACTION_IDS",
    "COMMANDS",
    "FUNCTIONS",
    "NAME_MAX",
    "SlackAdapter",
    "create_bolt_app",
    "on_error",
    "permalink",
    "who_from_action",
    "who_from_command",
]

log = logging.getLogger(__name__)

COMMANDS, ACTION_IDS, FUNCTIONS = ids.COMMANDS, ids.ACTION_IDS, ids.FUNCTIONS

# What a listener does after the ack: (body, respond, client, who).
Work = Callable[[dict[str, Any], Respond, AsyncWebClient, Who], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]


class SlackAdapter(
    CommandListeners,
    ClickListeners,
    ApprovalListeners,
    StepListener,
    DetailsListeners,
    TimedListeners,
):
    """Every listener, and the one wrapper they are registered through."""

    def listener(self, work: Work, *, incident: bool = False) -> Listener:
        """The one Bolt listener shape: ack at once, then `work` inside our error boundary.

        `who` (with the incident id when `incident`) is worked out once and also put in
        Bolt's `context`, so middleware and logs see the same caller.
        """

        async def listener(
            ack: AsyncAck,
            body: dict[str, Any],
            respond: AsyncRespond,
            client: AsyncWebClient,
            context: AsyncBoltContext,
        ) -> None:
            await ack()
            url = body.get("response_url")
            # Bolt's `respond` opens a new HTTP session per message; ours shares the client's
            # and logs Slack's refusals, which come back as a status, not an exception.
            answer: Respond = (
                Responder(str(url), client.session, self.budget, self._spent_url(body, client))
                if url
                else respond
            )

            async def run() -> None:
                if "command" in body:
                    who = who_from_command(body)
                else:  # a click acts on an action: in that action's channel, whatever it says
                    who = await self._at_home(who_from_action(body), button_value(body))
                if incident:
                    who = await self._in_incident(who, client)
                context["who"] = who
                await work(body, answer, client, who)

            await _guarded(run(), answer)

        listener.__name__ = listener.__qualname__ = getattr(work, "__name__", "listener")
        return listener

    @staticmethod
    def _spent_url(body: dict[str, Any], client: AsyncWebClient) -> Respond:
        """Where a reply goes once the request's response_url has no uses left."""
        who = who_from_command(body) if "command" in body else who_from_action(body)

        async def instead(**message: Any) -> bool:
            return await privately(client, who.channel_id, who.user_id, message)

        return instead


async def _apologise(error: Exception, respond: Respond | None) -> None:
    error_id = secrets.token_hex(4)
    log.error("unhandled error", extra={"error_id": error_id}, exc_info=error)
    if respond is None:
        return
    message = blocks.error(
        "Sorry, something went wrong on my side; nothing more was done.", error_id=error_id
    )
    try:
        await respond(**message, response_type="ephemeral", replace_original=False)
    except Exception:  # the apology itself failing must not raise again
        log.warning("could not deliver the error message", extra={"error_id": error_id})


async def _guarded(work: Awaitable[None], respond: Respond | None) -> None:
    # Our own error boundary after ack(): Bolt's runner overwrites an early ack with
    # None when a listener fails within its 10 ms polling step, answering Slack 404.
    try:
        await work
    except Exception as exc:
        await _apologise(exc, respond)


async def on_error(error: Exception) -> None:
    """Failures before our listeners run: log with an id, answer nobody.

    Bolt calls this for any request, so replying here could answer a request nothing has
    vouched for (the HTTP edge verifies first, but Socket Mode and future paths may not).
    """
    await _apologise(error, None)


def create_bolt_app(
    service: Service,
    *,
    client: AsyncWebClient,
    signing_secret: str,
    incidents: IncidentConfig | None = None,
    metrics: Metrics | None = None,
) -> AsyncApp:
    """The Bolt app with every listener registered."""
    app = AsyncApp(
        client=client, signing_secret=signing_secret, raise_error_for_unhandled_request=False
    )
    adapter = SlackAdapter(service, incidents, metrics)
    wrap = adapter.listener
    for name in COMMANDS:
        app.command(name)(wrap(adapter.on_command, incident=True))
    confirms = (ids.CONFIRM_ACTION_ID, ids.START_CONFIRM_ACTION_ID, ids.SCALE_CONFIRM_ACTION_ID)
    for action_id in confirms:
        app.action(action_id)(wrap(adapter.on_confirm, incident=True))
    cancels = (ids.CANCEL_ACTION_ID, ids.START_CANCEL_ACTION_ID, ids.SCALE_CANCEL_ACTION_ID)
    for action_id in cancels:
        app.action(action_id)(wrap(adapter.on_cancel))
    app.action(ids.REVERT_ACTION_ID)(wrap(adapter.on_revert, incident=True))
    app.action(ids.STATUS_SCALE_ACTION_ID)(wrap(adapter.on_status_scale, incident=True))
    app.action(ids.STATUS_STOP_ACTION_ID)(wrap(adapter.on_status_stop, incident=True))
    app.action(ids.APPROVE_ACTION_ID)(wrap(adapter.on_approve))
    app.action(ids.REJECT_ACTION_ID)(wrap(adapter.on_reject))
    app.action(ids.pattern(ids.RESTART_ACTION_ID))(wrap(adapter.on_restart, incident=True))
    app.action(ids.NARROW_ACTION_ID)(wrap(adapter.on_narrow, incident=True))
    app.action(ids.SHOW_ALL_ACTION_ID)(wrap(adapter.on_show_all))
    for action_id in (ids.DETAILS_PREV_ACTION_ID, ids.DETAILS_NEXT_ACTION_ID):
        app.action(action_id)(wrap(adapter.on_page))
    app.action(ids.REVERT_NOW_ACTION_ID)(wrap(adapter.on_revert_now))
    app.action(ids.KEEP_ACTION_ID)(wrap(adapter.on_keep))
    for action_id in ids.EXTEND_ACTION_IDS:
        app.action(action_id)(wrap(adapter.on_extend))
    app.action(ids.pattern(ids.REVERT_PREVIEW_START_ACTION_ID))(
        wrap(adapter.on_revert_preview_start, incident=True)
    )
    app.action(ids.pattern(ids.REVERT_PREVIEW_SCALE_ACTION_ID))(
        wrap(adapter.on_revert_preview_scale, incident=True)
    )
    app.function(STEP_CALLBACK_ID)(adapter.on_step)
    app.function(SCALE_STEP_CALLBACK_ID)(adapter.on_scale_step)
    app.error(on_error)
    return app
