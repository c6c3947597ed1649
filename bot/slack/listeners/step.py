"""The Workflow Builder step `stop_ml_deployment`: the same table, the preview in the channel."""

from __future__ import annotations

import secrets
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import UsageError
from bot.core.model import MessageRef
from bot.core.outcomes import Proposed, Who
from bot.slack import blocks
from bot.slack.delivery import deliver
from bot.slack.listeners.base import CHANNEL_POST_ERRORS, ListenerBase, log
from bot.slack.notices import complete_step_error
from bot.slack.render import outcome_message
from bot.slack.workflow import (
    command_text,
    missing_inputs,
    request_from_inputs,
    scale_command_text,
    scale_request_from_inputs,
)


class StepListener(ListenerBase):
    """Runs the step's request through the dispatch table; completes it when the action ends."""

    async def on_step(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """`stop_ml_deployment` from Workflow Builder: the same preview, posted in the channel."""
        await self._guarded_step(event, body, client, "/ml-stop")

    async def on_scale_step(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """`scale_ml_deployment`: the same `/ml-scale` preview, posted in the channel."""
        await self._guarded_step(event, body, client, "/ml-scale")

    async def _guarded_step(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, command: str
    ) -> None:
        execution_id = str(event.get("function_execution_id", ""))
        try:
            await self._step(event, body, client, execution_id, command)
        except Exception as exc:
            error_id = secrets.token_hex(4)
            log.error("workflow step failed", extra={"error_id": error_id}, exc_info=exc)
            await complete_step_error(client, execution_id, f"internal error (error id {error_id})")

    async def _step(
        self,
        event: dict[str, Any],
        body: dict[str, Any],
        client: AsyncWebClient,
        execution_id: str,
        command: str = "/ml-stop",
    ) -> None:
        inputs = event.get("inputs") or {}
        scale = command == "/ml-scale"
        if (missing := missing_inputs(inputs, command)) is not None:
            await complete_step_error(client, execution_id, missing.message)
            return
        user, channel = str(inputs["requested_by"]), str(inputs["channel"])
        base = Who(
            user_id=user, user_name=user, team_id=body.get("team_id") or "", channel_id=channel
        )
        who = await self._in_incident(base, client)
        # The one table: the same audit point, gate and store-down answer as `/ml-stop`.
        request = scale_request_from_inputs(inputs) if scale else request_from_inputs(inputs)
        outcome = await self.service.dispatch_request(
            request,
            who,
            command=command,
            text=scale_command_text(inputs) if scale else command_text(inputs),
            execution_id=execution_id,
        )
        if isinstance(outcome, UsageError):
            await complete_step_error(client, execution_id, outcome.message)
            return
        if not isinstance(outcome, Proposed):
            message = outcome_message(outcome, f"{command} {inputs['deployment_id']}", self.now())
            await complete_step_error(client, execution_id, message["text"])
            return
        preview = blocks.proposal(outcome.action, now=self.now())
        posted = await deliver(
            "chat.postMessage",
            lambda: client.chat_postMessage(channel=channel, **preview),
            action_id=outcome.action.id,
        )
        if not posted.ok or posted.data is None:
            # Nobody can press Stop on a preview that is not there: end it, fail the step.
            await self.service.cancel(outcome.action.id, who)
            hint = " (invite the bot to the channel)" if posted.error in CHANNEL_POST_ERRORS else ""
            why = f"could not post the preview in <#{channel}>: {posted.error}{hint}"
            await complete_step_error(client, execution_id, why)
            return
        ref = MessageRef(
            channel_id=str(posted.data["channel"]), ts=str(posted.data["ts"]), ephemeral=False
        )
        await self._proposed(outcome.action, ref, client)
