"""The Slack adapter: Bolt AsyncApp listeners that ack at once and then drive the core."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot import blocks
from bot.actions import (
    Approved,
    Changed,
    Ended,
    FreezeChanged,
    Proposed,
    Service,
    Started,
    Who,
)
from bot.blocks import Message
from bot.commands import (
    FreezeRequest,
    HelpRequest,
    ListRequest,
    StartRequest,
    StopRequest,
    UsageError,
    parse,
)
from bot.model import MessageRef, PendingAction
from bot.render import click_message, outcome_message

log = logging.getLogger(__name__)

COMMANDS = ("/ml-stop", "/ml-deployments", "/ml-start")
ACTION_IDS = (
    blocks.CONFIRM_ACTION_ID,
    blocks.CANCEL_ACTION_ID,
    blocks.START_CONFIRM_ACTION_ID,
    blocks.START_CANCEL_ACTION_ID,
    blocks.APPROVE_ACTION_ID,
    blocks.REJECT_ACTION_ID,
    blocks.RESTART_ACTION_ID,
)
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


async def _to_requester(action: PendingAction, message: Message) -> None:
    """A new private message to the requester through their command's response_url."""
    url = action.message.response_url
    if not url:
        return
    try:
        await AsyncWebhookClient(url).send(
            text=message["text"],
            blocks=message["blocks"],
            response_type="ephemeral",
            replace_original=False,
        )
    except Exception:  # a notice that cannot be delivered must not break the flow
        log.warning("could not notify the requester", extra={"action_id": action.id})


class SlackAdapter:
    """Listeners and the Slack I/O they need; the decisions are the Service's."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def now(self) -> float:
        """The service's clock."""
        return self.service.clock()

    # ------------------------------------------------------------------ commands

    async def on_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        """Ack at once, then parse, decide and answer privately."""
        await ack()
        await _guarded(self._command(command, respond, client), respond)

    async def _command(
        self, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        name, text = command.get("command", ""), command.get("text", "")
        request = parse(name, text)
        if isinstance(request, HelpRequest):
            await respond(**blocks.help_message(request.command), response_type="ephemeral")
            return
        if isinstance(request, UsageError):
            await respond(**blocks.usage_error(request), response_type="ephemeral")
            return
        who = who_from_command(command)
        if isinstance(request, ListRequest):
            outcome: object = await self.service.list_deployments(request, who)
        elif isinstance(request, FreezeRequest):
            outcome = await self.service.freeze(request, who)
        elif isinstance(request, StartRequest):
            outcome = await self.service.propose_start(request, who)
        else:
            assert isinstance(request, StopRequest)
            outcome = await self.service.propose(request, who)
        message = outcome_message(outcome, f"{name} {text}", self.now())
        if isinstance(outcome, FreezeChanged):
            await self._post(who.channel_id, message, client, respond)
            return
        await respond(**message, response_type="ephemeral")
        if isinstance(outcome, Proposed):
            await self._proposed(outcome.action, command.get("response_url"), client)

    async def _proposed(
        self, action: PendingAction, response_url: str | None, client: AsyncWebClient
    ) -> None:
        ref = MessageRef(channel_id=action.channel_id, response_url=response_url, ephemeral=True)
        await self.service.attach_message(action.id, ref)
        if action.required_approvals:
            card = blocks.approval_card(action, now=self.now())
            posted = await client.chat_postMessage(channel=action.channel_id, **card)
            await self.service.attach_card(
                action.id,
                MessageRef(channel_id=posted["channel"], ts=posted["ts"], ephemeral=False),
            )

    # ------------------------------------------------------------------ preview buttons

    async def on_confirm(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """Run, exactly once, then replace the preview and post the result in the channel."""
        await ack()
        await _guarded(self._confirm(body, respond, client), respond)

    async def _confirm(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        who = who_from_action(body)
        outcome = await self.service.confirm(_button_value(body), who)
        if isinstance(outcome, Started):
            await self._run(outcome.action, who, client, respond)
        else:
            await self._answer_click(outcome, respond)

    async def _run(
        self,
        action: PendingAction,
        who: Who,
        client: AsyncWebClient,
        preview: AsyncRespond | None,
    ) -> None:
        if preview is not None:
            await preview(**blocks.progress(action), replace_original=True)
        await self._update_card(action, client)
        final = await self.service.execute(action, who)
        if preview is not None:
            await preview(**blocks.final_preview(final), replace_original=True)
        await self._update_card(final, client)
        await self._post(final.channel_id, blocks.result(final, now=self.now()), client, preview)

    async def on_cancel(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """Cancel the pending action."""
        await ack()
        await _guarded(self._cancel(body, respond, client), respond)

    async def _cancel(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        outcome = await self.service.cancel(_button_value(body), who_from_action(body))
        await self._answer_click(outcome, respond)
        if isinstance(outcome, Ended):
            await self._update_card(outcome.action, client)

    async def _answer_click(self, outcome: object, respond: AsyncRespond) -> None:
        message = click_message(outcome, self.now())
        replace = isinstance(outcome, Ended | Changed)
        if replace:
            await respond(**message, replace_original=True)
        else:
            await respond(**message, response_type="ephemeral", replace_original=False)

    # ------------------------------------------------------------------ approval card

    async def on_approve(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """An approver approved; update the card, tell the requester, maybe run."""
        await ack()
        await _guarded(self._approve(body, respond, client), respond)

    async def _approve(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        who = who_from_action(body)
        outcome = await self.service.approve(_button_value(body), who)
        if not isinstance(outcome, Approved):
            await self._answer_card_click(outcome, respond, client)
            return
        action = outcome.action
        await self._update_card(action, client)
        await _to_requester(action, blocks.approval_recorded(action, who.user_id))
        if action.approved and action.auto_run:
            started = await self.service.run_approved(action, who)
            if isinstance(started, Started):
                await self._run(started.action, who, client, None)
            else:
                await self._answer_click(started, respond)

    async def on_reject(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """An approver rejected: the action ends."""
        await ack()
        await _guarded(self._reject(body, respond, client), respond)

    async def _reject(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        outcome = await self.service.reject(_button_value(body), who_from_action(body))
        await self._answer_card_click(outcome, respond, client)
        if isinstance(outcome, Ended):
            await _to_requester(outcome.action, blocks.final_preview(outcome.action))

    async def _answer_card_click(
        self, outcome: object, respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        if isinstance(outcome, Ended):
            await self._update_card(outcome.action, client)
            return
        message = click_message(outcome, self.now())
        await respond(**message, response_type="ephemeral", replace_original=False)

    async def _update_card(self, action: PendingAction, client: AsyncWebClient) -> None:
        card = action.approval_card
        if card is None or card.channel_id is None or card.ts is None:
            return
        try:
            await client.chat_update(
                channel=card.channel_id, ts=card.ts, **blocks.approval_card(action, now=self.now())
            )
        except SlackApiError as exc:
            log.warning(
                "could not update the approval card",
                extra={"action_id": action.id, "slack_error": exc.response.get("error")},
            )

    # ------------------------------------------------------------------ restart

    async def on_restart(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        """Restart with previous settings: a start preview for the clicker, privately."""
        await ack()
        await _guarded(self._restart(body, respond, client), respond)

    async def _restart(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        who = who_from_action(body)
        outcome = await self.service.propose_restart(_button_value(body), who)
        message = outcome_message(outcome, "Restart with previous settings", self.now())
        await respond(**message, response_type="ephemeral", replace_original=False)
        if isinstance(outcome, Proposed):
            await self._proposed(outcome.action, body.get("response_url"), client)

    # ------------------------------------------------------------------ posting

    async def _post(
        self,
        channel: str,
        message: Message,
        client: AsyncWebClient,
        respond: AsyncRespond | None,
    ) -> None:
        """Post in the channel; if the bot may not, give it privately with a hint."""
        try:
            await client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error not in CHANNEL_POST_ERRORS or respond is None:
                raise
            hint = blocks.error(
                f"I could not post in the channel (`{error}`); "
                "invite me with `/invite @ml-chatops` so everyone sees it:"
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
    for action_id in (blocks.CONFIRM_ACTION_ID, blocks.START_CONFIRM_ACTION_ID):
        app.action(action_id)(adapter.on_confirm)
    for action_id in (blocks.CANCEL_ACTION_ID, blocks.START_CANCEL_ACTION_ID):
        app.action(action_id)(adapter.on_cancel)
    app.action(blocks.APPROVE_ACTION_ID)(adapter.on_approve)
    app.action(blocks.REJECT_ACTION_ID)(adapter.on_reject)
    app.action(blocks.RESTART_ACTION_ID)(adapter.on_restart)
    app.error(on_error)
    return app
