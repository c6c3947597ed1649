"""The preview's buttons (Stop, Start or Scale; Cancel), the result's Restart and Revert
buttons, and `/ml-status`'s Scale up and Stop buttons."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import HelpRequest, UsageError
from bot.core.commands.tokens import STOP
from bot.core.model import MessageRef
from bot.core.outcomes import Proposed, Started, Who
from bot.slack import blocks
from bot.slack.listeners.base import button_value, replacer, tell
from bot.slack.listeners.running import Running
from bot.slack.render import outcome_label, outcome_message
from bot.slack.respond import Respond


class ClickListeners(Running):
    """Confirm, cancel and restart."""

    async def on_confirm(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Run, exactly once, then replace the preview and report in the channel."""
        outcome = await self.service.confirm(button_value(body), who)
        if isinstance(outcome, Started):
            if body.get("response_url"):
                # Where the preview is now, so expiry and recovery notices can replace it.
                container = body.get("container") or {}
                ref = MessageRef(
                    channel_id=who.channel_id,
                    ts=container.get("message_ts"),
                    response_url=body.get("response_url"),
                    ephemeral=bool(container.get("is_ephemeral", True)),
                )
                await self.service.attach_message(outcome.action.id, ref)
            await self._run(outcome.action, who, client, replacer(body, respond, client))
        else:
            await self._answer_click(outcome, body, respond, client)

    async def on_cancel(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Cancel the pending action."""
        outcome = await self.service.cancel(button_value(body), who)
        await self._answer_click(outcome, body, respond, client)

    async def on_restart(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Restart with previous settings: a start preview for the clicker, privately."""
        outcome = await self.service.propose_restart(button_value(body), who)
        message = outcome_message(outcome, "Restart with previous settings", self.now())
        await tell(body, respond, client, message)
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=body.get("response_url"), ephemeral=True
            )
            await self._proposed(outcome.action, ref, client)

    async def on_narrow(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """A partly refused stop's button: the preview of the others, as if the clicker typed it.

        The value is `/ml-stop` text, so the click goes through the one dispatch table (the
        audit, the gate, the resolution): it can do nothing the clicker could not type."""
        await self._status_button(STOP, body, respond, client, who)

    async def on_revert(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Revert to previous: a scale preview back to the settings before, privately."""
        outcome = await self.service.propose_revert(button_value(body), who)
        message = outcome_message(outcome, "Revert to previous", self.now())
        await tell(body, respond, client, message)
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=body.get("response_url"), ephemeral=True
            )
            await self._proposed(outcome.action, ref, client)

    async def on_status_scale(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """`/ml-status`'s Scale up: the `/ml-scale` preview its value names, for the clicker."""
        await self._status_button("/ml-scale", body, respond, client, who)

    async def on_status_stop(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """`/ml-status`'s Stop: the `/ml-stop` preview, for the clicker."""
        await self._status_button("/ml-stop", body, respond, client, who)

    async def on_revert_preview_start(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """A not-run timed revert's Preview restart: the `/ml-start` preview, for the clicker."""
        await self._status_button("/ml-start", body, respond, client, who)

    async def on_revert_preview_scale(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """A not-run timed revert's Preview scale back: the `/ml-scale` preview, for the clicker."""
        await self._status_button("/ml-scale", body, respond, client, who)

    async def _status_button(
        self,
        command: str,
        body: dict[str, Any],
        respond: Respond,
        client: AsyncWebClient,
        who: Who,
    ) -> None:
        # The button's value is command text: it goes through the same table as typing it
        # (audit, parse, gate), so a click can do nothing the clicker could not type.
        text = button_value(body)
        outcome = await self.service.dispatch(command, text, who)
        if isinstance(outcome, HelpRequest | UsageError):
            await tell(
                body,
                respond,
                client,
                blocks.usage_error(outcome)
                if isinstance(outcome, UsageError)
                else blocks.help_message(outcome.command),
            )
            return
        self._count(command, outcome_label(outcome))
        await tell(body, respond, client, outcome_message(outcome, f"{command} {text}", self.now()))
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=body.get("response_url"), ephemeral=True
            )
            await self._proposed(outcome.action, ref, client)
