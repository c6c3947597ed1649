"""The Slack adapter: Bolt AsyncApp listeners that ack at once and then drive the core."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import blocks
from bot.actions import (
    Already,
    Denied,
    Ended,
    Failed,
    Listing,
    NothingMatched,
    NotRequester,
    Proposed,
    Service,
    Started,
    Unknown,
    Who,
)
from bot.blocks import Message
from bot.commands import HelpRequest, ListRequest, StopRequest, UsageError, parse
from bot.model import MessageRef, PendingAction

log = logging.getLogger(__name__)

STOP_COMMAND = "/ml-stop"
LIST_COMMAND = "/ml-deployments"
COMMANDS = (STOP_COMMAND, LIST_COMMAND)
ACTION_IDS = (blocks.CONFIRM_ACTION_ID, blocks.CANCEL_ACTION_ID)
CHANNEL_POST_ERRORS = {"not_in_channel", "channel_not_found", "is_archived"}


def who_from_command(command: dict[str, Any]) -> Who:
    """The caller of a slash command."""
    return Who(
        user_id=command["user_id"],
        user_name=command.get("user_name") or command["user_id"],
        team_id=command.get("team_id") or "",
        channel_id=command.get("channel_id") or "",
    )


def who_from_action(body: dict[str, Any]) -> Who:
    """The clicker of a button, from a block_actions payload."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Who(
        user_id=user["id"],
        user_name=user.get("username") or user.get("name") or user["id"],
        team_id=team.get("id") or user.get("team_id") or "",
        channel_id=channel.get("id") or container.get("channel_id") or "",
    )


def render_proposal_outcome(outcome: object, command_text: str, now: float) -> Message:
    """The message for any result of `Service.propose`."""
    if isinstance(outcome, Proposed):
        return blocks.proposal(outcome.action, now=now)
    if isinstance(outcome, Denied):
        return blocks.denied(outcome.decision, command_text)
    if isinstance(outcome, NothingMatched):
        return blocks.nothing_matched(
            outcome.expression, outcome.cluster, outcome.unmatched, outcome.hints
        )
    if isinstance(outcome, Failed):
        return blocks.error(outcome.message)
    if isinstance(outcome, Listing):
        return blocks.deployments_table(outcome.cluster, outcome.pattern, outcome.deployments)
    raise TypeError(f"unexpected outcome {outcome!r}")


def render_click_outcome(outcome: object) -> Message:
    """The message for a click that did not start a stop."""
    if isinstance(outcome, NotRequester):
        return blocks.not_requester(outcome.action, outcome.clicker_id)
    if isinstance(outcome, Already):
        return blocks.already(outcome.action)
    if isinstance(outcome, Ended):
        return blocks.final_preview(outcome.action)
    if isinstance(outcome, Denied):
        return blocks.denied(outcome.decision, "the confirmed stop")
    if isinstance(outcome, Unknown):
        return blocks.error(
            f"this prompt (`{outcome.action_id}`) is not known to the bot any more; "
            "run the command again"
        )
    raise TypeError(f"unexpected outcome {outcome!r}")


class SlackAdapter:
    """Listeners and the Slack I/O they need; the decisions are the Service's."""

    def __init__(self, service: Service) -> None:
        self.service = service

    async def on_command(
        self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """Ack at once, then parse, decide and answer privately."""
        await ack()
        await _guarded(self._command(command, respond), respond)

    async def _command(self, command: dict[str, Any], respond: AsyncRespond) -> None:
        name = command.get("command", "")
        text = command.get("text", "")
        request = parse(name, text)
        if isinstance(request, HelpRequest):
            await respond(**blocks.help_message(request.command), response_type="ephemeral")
            return
        if isinstance(request, UsageError):
            await respond(**blocks.usage_error(request), response_type="ephemeral")
            return
        who = who_from_command(command)
        if isinstance(request, ListRequest):
            listing = await self.service.list_deployments(request, who)
            message = render_proposal_outcome(listing, f"{name} {text}", self.service.clock())
            await respond(**message, response_type="ephemeral")
            return
        assert isinstance(request, StopRequest)
        outcome = await self.service.propose(request, who)
        message = render_proposal_outcome(outcome, f"{name} {text}", self.service.clock())
        await respond(**message, response_type="ephemeral")
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=command.get("response_url"), ephemeral=True
            )
            await self.service.attach_message(outcome.action.id, ref)

    async def on_confirm(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """Stop, exactly once, then replace the preview and post the result in the channel."""
        await ack()
        await _guarded(self._confirm(body, respond, client), respond)

    async def _confirm(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        who = who_from_action(body)
        outcome = await self.service.confirm(_button_value(body), who)
        if not isinstance(outcome, Started):
            await self._answer_click(outcome, respond)
            return
        await respond(**blocks.progress(outcome.action), replace_original=True)
        final = await self.service.execute(outcome.action, who)
        await respond(**blocks.final_preview(final), replace_original=True)
        await self._post_result(final, client, respond)

    async def on_cancel(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Cancel the pending stop."""
        await ack()
        await _guarded(self._cancel(body, respond), respond)

    async def _cancel(self, body: dict[str, Any], respond: AsyncRespond) -> None:
        outcome = await self.service.cancel(_button_value(body), who_from_action(body))
        await self._answer_click(outcome, respond)

    async def _answer_click(self, outcome: object, respond: AsyncRespond) -> None:
        message = render_click_outcome(outcome)
        if isinstance(outcome, Ended):
            await respond(**message, replace_original=True)
        else:
            await respond(**message, response_type="ephemeral", replace_original=False)

    async def _post_result(
        self, action: PendingAction, client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        message = blocks.result(action, now=self.service.clock())
        try:
            await client.chat_postMessage(channel=action.channel_id, **message)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error not in CHANNEL_POST_ERRORS:
                raise
            hint = blocks.error(
                f"I could not post the result in the channel (`{error}`); "
                "invite me with `/invite @ml-chatops` so everyone sees it. The result:"
            )
            await respond(
                text=hint["text"] + "\n" + message["text"],
                blocks=hint["blocks"] + message["blocks"],
                response_type="ephemeral",
                replace_original=False,
            )


def _button_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value", ""))


async def _apologise(error: Exception, respond: AsyncRespond | None) -> None:
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


async def _guarded(work: Awaitable[None], respond: AsyncRespond) -> None:
    # Our own error boundary after ack(): Bolt's runner overwrites an early ack with
    # None when a listener fails within its 10 ms polling step, answering Slack 404.
    try:
        await work
    except Exception as exc:
        await _apologise(exc, respond)


async def on_error(error: Exception, body: dict[str, Any], respond: AsyncRespond) -> None:
    """Failures before our listeners run: log with an id, tell the user that id."""
    await _apologise(error, respond if body.get("response_url") else None)


def create_bolt_app(service: Service, *, client: AsyncWebClient, signing_secret: str) -> AsyncApp:
    """The Bolt app with every listener registered."""
    app = AsyncApp(
        client=client, signing_secret=signing_secret, raise_error_for_unhandled_request=False
    )
    adapter = SlackAdapter(service)
    for name in COMMANDS:
        app.command(name)(adapter.on_command)
    app.action(blocks.CONFIRM_ACTION_ID)(adapter.on_confirm)
    app.action(blocks.CANCEL_ACTION_ID)(adapter.on_cancel)
    app.error(on_error)
    return app
