"""Slash commands: dispatch, then answer privately (or in the channel for the kill switch)."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.commands import HelpRequest, UsageError
from bot.core.model import MessageRef
from bot.core.outcomes import FreezeChanged, Proposed, Timeline, Who
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.listeners.base import ListenerBase, permalink
from bot.slack.render import outcome_label, outcome_message
from bot.slack.respond import Respond
from bot.slack.slash_text import unescape_command_text


class CommandListeners(ListenerBase):
    """`/ml-stop`, `/ml-deployments`, `/ml-start`, `/ml-audit`."""

    async def on_command(
        self, command: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Parse, decide and answer privately."""
        name = command.get("command", "")
        text = unescape_command_text(command.get("text", ""))  # as typed, not as Slack sent it
        outcome = await self.service.dispatch(name, text, who)
        if isinstance(outcome, HelpRequest):
            self._count(name, "help")
            await respond(**blocks.help_message(outcome.command), response_type="ephemeral")
            return
        if isinstance(outcome, UsageError):
            self._count(name, "usage_error")
            await respond(**blocks.usage_error(outcome), response_type="ephemeral")
            return
        if isinstance(outcome, Timeline):
            self._count(name, "audit")
            await respond(**self._timeline(outcome, command), response_type="ephemeral")
            return
        self._count(name, outcome_label(outcome))
        message = outcome_message(outcome, f"{name} {text}", self.now())
        if isinstance(outcome, FreezeChanged):
            await self._post(who.channel_id, message, client, respond)
            return
        await respond(**message, response_type="ephemeral")
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=command.get("response_url"), ephemeral=True
            )
            await self._proposed(outcome.action, ref, client)

    def _timeline(self, found: Timeline, command: dict[str, Any]) -> Message:
        domain = command.get("team_domain")
        links = {a.id: permalink(domain, a.result_ref) for a in found.actions}
        return blocks.audit_timeline(
            found.actions,
            scope=found.scope,
            markdown=found.markdown,
            links={k: v for k, v in links.items() if v},
        )
