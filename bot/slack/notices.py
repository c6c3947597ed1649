"""Slack notices for actions that ended without a click: expired, or outcome unknown.

What Slack allows decides what can be said where: a `response_url` takes 5 posts within
30 minutes of being minted; a slash command's private reply cannot be replaced, only
followed by a new private message; a message posted in the channel (an approval card)
can be updated with `chat.update`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.ports import PermanentDeliveryError, PostLine
from bot.core.model import MessageRef, PendingAction
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.blocks import timed as timed_blocks
from bot.slack.delivery import deliver, privately
from bot.slack.respond import ResponseBudget, post_response_url
from bot.slack.workflow import cap_text, error_for

log = logging.getLogger(__name__)

RESPONSE_URL_LIFETIME = 30 * 60.0
SAFETY_MARGIN = 60.0  # do not race the response_url's expiry


PERMANENT_POST_ERRORS = frozenset(
    {"channel_not_found", "not_in_channel", "is_archived", "msg_too_long", "invalid_blocks"}
)


def channel_poster(client: AsyncWebClient) -> PostLine:
    """`chat.postMessage` of one line, for the audit channel; errors sorted for the spool."""

    async def post(channel: str, text: str) -> None:
        try:
            await client.chat_postMessage(channel=channel, text=text, unfurl_links=False)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in PERMANENT_POST_ERRORS:
                raise PermanentDeliveryError(f"chat.postMessage: {error}") from None
            raise

    return post


async def complete_step_error(client: AsyncWebClient, execution_id: str, error: str) -> None:
    """Fail a Workflow Builder step (so the workflow can branch); a refusal is only logged."""
    done = await deliver(
        "functions.completeError",
        lambda: client.functions_completeError(
            function_execution_id=execution_id, error=cap_text(error)
        ),
    )
    if not done.ok:
        log.error("functions.completeError failed", extra={"error": done.error})


async def update_card(client: AsyncWebClient, action: PendingAction, now: float) -> bool:
    """Show the approval card's current state (if the action has one in the channel)."""
    card = action.approval_card
    if card is None or card.channel_id is None or card.ts is None:
        return False
    channel, ts, message = card.channel_id, card.ts, blocks.approval_card(action, now=now)
    updated = await deliver(
        "chat.update",
        lambda: client.chat_update(channel=channel, ts=ts, **message),
        action_id=action.id,
    )
    return updated.ok


class SlackNotices:
    """Tells the requester (and, for an unknown outcome, the channel) what became of an action."""

    def __init__(
        self,
        client: AsyncWebClient,
        clock: Callable[[], float],
        budget: ResponseBudget | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.budget = budget  # the listeners' count of each response_url's 5 uses

    def _url_usable(self, ref: MessageRef, minted_at: float) -> bool:
        age = self.clock() - minted_at
        return bool(ref.response_url) and age < RESPONSE_URL_LIFETIME - SAFETY_MARGIN

    async def _private(self, action: PendingAction, message: Message) -> bool:
        """Replace the requester's message if Slack lets us, else send a new private one."""
        if await self._replace_private(action, message):
            return True
        # The response_url is spent or too old: a new ephemeral message, or a DM.
        return await privately(
            self.client, action.channel_id, action.requester_id, message, action.id
        )

    async def _revert_unknown(self, revert: PendingAction, message: Message) -> None:
        """A timed revert's owner died mid-run: its live line says so (its `message` is that
        line, not a private one), its result in the thread and the channel get the notice."""
        await self._update(revert.message, timed_blocks.revert_line(revert, self.clock()))
        if revert.result_ref is not None:
            await self._update(revert.result_ref, message)
        # Like every revert's report, the outcome is said in the channel too, not only in
        # a thread nobody is watching at the due time.
        posted = await deliver(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(channel=revert.channel_id, **message),
            action_id=revert.id,
        )
        if not posted.ok:
            log.warning(
                "could not post a revert's unknown outcome in the channel: %s",
                posted.error,
                extra={"ml_chatops.action_id": revert.id},
            )

    async def _replace_private(self, action: PendingAction, message: Message) -> bool:
        ref = action.message
        # A url bound to a message (a click's) can replace it; a command's only adds one.
        minted_at = (action.started_at or action.created_at) if ref.ts else action.created_at
        if ref.response_url and self._url_usable(ref, minted_at):
            body = {
                "text": message["text"],
                "blocks": message["blocks"],
                "replace_original": bool(ref.ts),
                "response_type": "ephemeral",
            }
            if await post_response_url(ref.response_url, body, self.client.session, self.budget):
                return True
        if not ref.ephemeral and ref.channel_id and ref.ts:
            return await self._update(ref, message)
        return False

    async def _update(self, ref: MessageRef, message: Message) -> bool:
        if not ref.channel_id or not ref.ts:
            return False
        channel, ts = ref.channel_id, ref.ts
        updated = await deliver(
            "chat.update", lambda: self.client.chat_update(channel=channel, ts=ts, **message)
        )
        return updated.ok

    async def _end_step(self, action: PendingAction) -> None:
        """A Workflow Builder step waiting on this action fails, so the workflow can branch."""
        error = error_for(action)
        if not action.function_execution_id or error is None:
            return
        await complete_step_error(self.client, action.function_execution_id, error)

    async def expired(self, action: PendingAction) -> None:
        """The preview expired unanswered: say so privately and retire the approval card."""
        message = blocks.final_preview(action)
        await self._end_step(action)
        await update_card(self.client, action, self.clock())
        if not await self._private(action, message):
            log.info(
                "expired preview left as is (no usable response_url)",
                extra={"ml_chatops.action_id": action.id},
            )

    async def outcome_unknown(
        self, action: PendingAction, cause: str = "The bot restarted"
    ) -> None:
        """The owner died mid-run: update the private message and the channel's line."""
        message = blocks.unknown_outcome(action, cause)
        if action.revert_of is not None:
            await self._revert_unknown(action, message)
            return
        await self._end_step(action)
        await self._private(action, message)
        if action.approval_card is not None and action.approval_card.ts:
            await self._update(action.approval_card, blocks.final_preview(action))
        # The channel line that showed progress becomes the (unknown) result.
        if action.result_ref is not None and await self._update(action.result_ref, message):
            return
        posted = await deliver(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(channel=action.channel_id, **message),
            action_id=action.id,
        )
        if not posted.ok:
            log.warning(
                "could not post the unknown outcome in the channel: %s",
                posted.error,
                extra={"ml_chatops.action_id": action.id},
            )
