"""What every listener shares: who is asking, incident context, cards, posting, step completion."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.ports import CommandMetrics as Metrics
from bot.app.service import Service
from bot.core.errors import StoreUnavailable
from bot.core.incidents import IncidentConfig, incident_id
from bot.core.model import MessageRef, PendingAction
from bot.core.outcomes import Who
from bot.core.text import cap
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.delivery import deliver, privately
from bot.slack.notices import complete_step_error, update_card
from bot.slack.respond import Respond, ResponseBudget, post_response_url
from bot.slack.workflow import error_for, outputs_for

log = logging.getLogger("bot.slack.app")  # one logger name for every listener, as before

# The audit keeps what was asked, bounded: Slack allows 40,000 characters of command text.
NAME_MAX = 256  # a Slack name or id is far shorter; anything longer is not worth keeping
CHANNEL_POST_ERRORS = {"not_in_channel", "channel_not_found", "is_archived"}


def _card_moved(posted: PendingAction, latest: PendingAction) -> bool:
    """Whether the card drawn from `posted` no longer shows `latest`."""
    return (posted.state, posted.approvals, posted.required_approvals) != (
        latest.state,
        latest.approvals,
        latest.required_approvals,
    )


# Replaces the message a button sat on (via response_url, or chat.update for channel messages).
Replace = Callable[[Message], Awaitable[Any]]


def who_from_command(command: dict[str, Any]) -> Who:
    """The caller of a slash command."""
    return Who(
        user_id=cap(command["user_id"], NAME_MAX),
        user_name=cap(command.get("user_name") or command["user_id"], NAME_MAX),
        team_id=cap(command.get("team_id") or "", NAME_MAX),
        channel_id=cap(command.get("channel_id") or "", NAME_MAX),
        channel_name=cap(command.get("channel_name") or "", NAME_MAX),
    )


def who_from_action(body: dict[str, Any]) -> Who:
    """The clicker of a button, from a block_actions payload."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Who(
        user_id=cap(str(user["id"]), NAME_MAX),
        user_name=cap(str(user.get("username") or user.get("name") or user["id"]), NAME_MAX),
        team_id=cap(str(team.get("id") or user.get("team_id") or ""), NAME_MAX),
        channel_id=cap(str(channel.get("id") or container.get("channel_id") or ""), NAME_MAX),
        channel_name=cap(str(channel.get("name") or ""), NAME_MAX),
    )


def permalink(team_domain: str | None, ref: MessageRef | None) -> str | None:
    """A link to a channel message (the form Slack's own "Copy link" gives)."""
    if ref is None or not ref.channel_id or not ref.ts:
        return None
    host = f"https://{team_domain}.slack.com" if team_domain else "https://slack.com"
    return f"{host}/archives/{ref.channel_id}/p{ref.ts.replace('.', '')}"


async def to_requester(
    action: PendingAction,
    message: Message,
    client: AsyncWebClient,
    budget: ResponseBudget | None = None,
) -> bool:
    """A new private message to the requester: their response_url while it has uses left,
    else an ephemeral message in the action's channel, else a DM. Never silently lost."""
    url = action.message.response_url
    body = {
        "text": message["text"],
        "blocks": message["blocks"],
        "response_type": "ephemeral",
        "replace_original": False,
    }
    # Logs a refusal; a notice that cannot be delivered must not break the flow.
    if url and await post_response_url(url, body, client.session, budget):
        return True
    return await privately(client, action.channel_id, action.requester_id, message, action.id)


def replacer(body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> Replace:
    """How to replace the message a click came from."""
    if body.get("response_url"):
        return lambda m: respond(**m, replace_original=True)
    container = body.get("container") or {}
    channel, ts = str(container.get("channel_id", "")), str(container.get("message_ts", ""))
    return lambda m: client.chat_update(channel=channel, ts=ts, **m)


async def tell(
    body: dict[str, Any], respond: Respond, client: AsyncWebClient, message: Message
) -> None:
    """A private answer to whoever clicked."""
    if body.get("response_url"):
        await respond(**message, response_type="ephemeral", replace_original=False)
        return
    who = who_from_action(body)
    await privately(client, who.channel_id, who.user_id, message, button_value(body) or None)


def with_invite_hint(message: Message, error: str | None) -> Message:
    """A channel message the bot could not post, given privately with how to fix that."""
    why = f" (`{error}`)" if error else ""
    if error and error not in CHANNEL_POST_ERRORS:  # Slack failed; inviting would not help
        text = f"Slack would not take my post in the channel{why}; here it is:"
    else:
        text = (
            f"I could not post in the channel{why}; invite me with `/invite @ml-chatops` so "
            "everyone sees it:"
        )
    hint = blocks.error(text)
    return {
        "text": hint["text"] + "\n" + message["text"],
        "blocks": hint["blocks"] + message["blocks"],
    }


def button_value(body: dict[str, Any]) -> str:
    """The clicked button's value (an action id), or the empty string."""
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value", ""))


class ListenerBase:
    """The service, incident and metrics settings, and the Slack I/O every listener needs."""

    def __init__(
        self,
        service: Service,
        incidents: IncidentConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.incidents = incidents
        self.metrics = metrics
        # Each response_url takes 5 posts; counted in the store, shared by every replica.
        self.budget = ResponseBudget(service.store.seen)

    def _count(self, command: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.command(command, outcome)

    def now(self) -> float:
        """The service's clock."""
        return self.service.clock()

    async def _in_incident(self, who: Who, client: AsyncWebClient) -> Who:
        """Attach the incident id when the channel is an incident channel."""
        if self.incidents is None:
            return who
        name, topic = who.channel_name, None
        if self.incidents.id_from == "topic" or not name:
            try:
                info = await client.conversations_info(channel=who.channel_id)
                channel = info.get("channel") or {}
                name = name or channel.get("name") or ""
                topic = (channel.get("topic") or {}).get("value")
            except SlackApiError as exc:
                log.warning("conversations.info failed", extra={"error": exc.response.get("error")})
        found = incident_id(self.incidents, name, topic)
        return replace(who, channel_name=name, incident_id=found)

    async def _proposed(
        self, action: PendingAction, ref: MessageRef, client: AsyncWebClient
    ) -> None:
        await self.service.attach_message(action.id, ref)
        if action.required_approvals:
            await self._post_card(action, client)

    async def _post_card(self, action: PendingAction, client: AsyncWebClient) -> None:
        """Post the approval card, once per action: a click while it is on its way posts none.

        The right to post is taken in the store (so two clicks, or two replicas, cannot both
        post one), and the card is re-drawn if the action moved while it was on its way.
        """
        if not await self._claim_card(action):
            return  # another click (or replica) is posting it
        card = blocks.approval_card(action, now=self.now())
        posted = await deliver(
            "chat.postMessage",
            lambda: client.chat_postMessage(channel=action.channel_id, **card),
            action_id=action.id,
        )
        if not posted.ok or posted.data is None:
            await self._release_card(action.id)  # the next click may try again
            hint = f"I could not post the approval card in the channel (`{posted.error}`)"
            if posted.error in CHANNEL_POST_ERRORS:
                hint += "; invite me with `/invite @ml-chatops` and ask again"
            await self._to_requester(action, blocks.error(hint + "."), client)
            return
        card_ref = MessageRef(
            channel_id=str(posted.data["channel"]), ts=str(posted.data["ts"]), ephemeral=False
        )
        await self.service.attach_card(action.id, card_ref)
        latest = await self._latest(action.id)
        if latest is not None and _card_moved(action, latest):
            # A click or the expiry changed it while the card was on its way: show that.
            await self._update_card(replace(latest, approval_card=card_ref), client)

    async def _at_home(self, who: Who, action_id: str) -> Who:
        """The clicker placed in the channel the clicked action belongs to.

        The audit and channel-scoped grants use the action's channel, never one a payload
        names (a card shared elsewhere, or a crafted payload).
        """
        action = await self._latest(action_id) if action_id else None
        if action is None or action.channel_id == who.channel_id:
            return who
        log.warning(
            "a click names channel %s; action %s belongs to %s",
            who.channel_id,
            action.id,
            action.channel_id,
            extra={"ml_chatops.action_id": action.id},
        )
        return replace(
            who, channel_id=action.channel_id, channel_name="", incident_id=action.incident_id
        )

    async def _claim_card(self, action: PendingAction) -> bool:
        """Take the right to post the action's card: a card reference with no ts yet."""
        pending = MessageRef(channel_id=action.channel_id, ts=None, ephemeral=False)
        try:
            claimed = await self.service.store.mutate(
                action.id,
                lambda a: replace(a, approval_card=pending) if a.approval_card is None else None,
            )
        except StoreUnavailable as exc:  # cannot tell: one card too many beats none
            log.warning("approval card claim not checked: %s", exc.message)
            return True
        return claimed is not None

    async def _release_card(self, action_id: str) -> None:
        """Give up the claim of a card that could not be posted."""
        try:
            await self.service.store.mutate(
                action_id,
                lambda a: (
                    replace(a, approval_card=None)
                    if a.approval_card is not None and a.approval_card.ts is None
                    else None
                ),
            )
        except StoreUnavailable as exc:
            log.warning("approval card claim not released: %s", exc.message)

    async def _latest(self, action_id: str) -> PendingAction | None:
        try:
            return await self.service.get(action_id)
        except StoreUnavailable:
            return None

    async def _to_requester(
        self, action: PendingAction, message: Message, client: AsyncWebClient
    ) -> bool:
        """A private message to the requester (response_url, ephemeral or DM), never lost."""
        return await to_requester(action, message, client, self.budget)

    async def _update_card(self, action: PendingAction, client: AsyncWebClient) -> None:
        await update_card(client, action, self.now())

    async def _finish_step(
        self, action: PendingAction, client: AsyncWebClient, root: MessageRef | None
    ) -> None:
        """Complete the workflow step that asked for this action, if one did (never raises)."""
        if not action.function_execution_id:
            return
        error = error_for(action)
        if error is not None:
            await complete_step_error(client, action.function_execution_id, error)
            return
        url = permalink(None, root) or ""
        execution_id = action.function_execution_id
        await deliver(
            "functions.completeSuccess",
            lambda: client.functions_completeSuccess(
                function_execution_id=execution_id, outputs=outputs_for(action, url)
            ),
            action_id=action.id,
        )

    async def _post(
        self,
        channel: str,
        message: Message,
        client: AsyncWebClient,
        respond: Respond | None,
    ) -> None:
        """Post in the channel; if the bot may not (or Slack fails), give it privately."""
        posted = await deliver(
            "chat.postMessage", lambda: client.chat_postMessage(channel=channel, **message)
        )
        if posted.ok or respond is None:
            return
        private = with_invite_hint(message, posted.error)
        await respond(**private, response_type="ephemeral", replace_original=False)
