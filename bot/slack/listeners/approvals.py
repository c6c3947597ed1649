"""The approval card's buttons: Approve (maybe running the action) and Reject."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.outcomes import Approved, Ended, Started, Who
from bot.slack import blocks
from bot.slack.listeners.base import button_value, tell
from bot.slack.listeners.running import Running
from bot.slack.render import click_message
from bot.slack.respond import Respond


class ApprovalListeners(Running):
    """Four eyes: approve or reject a pending action from its card."""

    async def on_approve(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """An approver approved; update the card, tell the requester, maybe run."""
        outcome = await self.service.approve(button_value(body), who)
        if not isinstance(outcome, Approved):
            await self._answer_card_click(outcome, body, respond, client)
            return
        action = outcome.action
        await self._update_card(action, client)
        await self._to_requester(action, blocks.approval_recorded(action, who.user_id), client)
        if action.approved and action.auto_run:
            started = await self.service.run_approved(action, who)
            if isinstance(started, Started):
                await self._run(started.action, who, client, None)
            else:
                await self._answer_click(started, body, respond, client)

    async def on_reject(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """An approver rejected: the action ends."""
        outcome = await self.service.reject(button_value(body), who)
        await self._answer_card_click(outcome, body, respond, client)
        if isinstance(outcome, Ended):
            await self._to_requester(outcome.action, blocks.final_preview(outcome.action), client)
            await self._finish_step(outcome.action, client, None)

    async def _answer_card_click(
        self, outcome: object, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        if isinstance(outcome, Ended):
            await self._update_card(outcome.action, client)
            return
        await tell(body, respond, client, click_message(outcome, self.now()))
