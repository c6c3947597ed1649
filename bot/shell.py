"""The local text adapter: type slash commands, read messages as text, press buttons by label."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from bot import blocks
from bot.actions import Service, Started, Who
from bot.blocks import Message
from bot.commands import HelpRequest, ListRequest, StopRequest, UsageError, parse
from bot.slack_app import render_click_outcome, render_proposal_outcome

INTRO = """ml-chatops shell: type a slash command as in Slack, e.g.
  /ml-deployments
  /ml-stop elser-prod --reason "INC-1 demo"
then type a button's label (e.g. Stop or Cancel) to press it. `quit` leaves."""


@dataclass
class ShellSession:
    """One person at the prompt; keeps the buttons of the last message so they can be pressed."""

    service: Service
    who: Who
    buttons: list[tuple[str, str, str]] = field(default_factory=list)

    async def handle(self, line: str) -> list[Message]:
        """Process one typed line; return the messages the bot shows, in order."""
        line = line.strip()
        if not line:
            return []
        press = self._button(line)
        if press is not None:
            return await self._press(*press)
        command, _, text = line.partition(" ")
        if not command.startswith("/"):
            hint = "type a slash command (try `/ml-stop help`)"
            if self.buttons:
                labels = " or ".join(f"`{label}`" for label, _, _ in self.buttons)
                hint += f", or press {labels}"
            return [blocks.error(f"`{line}` is not a command; {hint}")]
        return await self._command(command, text)

    def _button(self, line: str) -> tuple[str, str] | None:
        for label, action_id, value in self.buttons:
            if line.casefold() == label.casefold():
                return action_id, value
        return None

    async def _command(self, command: str, text: str) -> list[Message]:
        request = parse(command, text)
        if isinstance(request, HelpRequest):
            return self._show(blocks.help_message(request.command))
        if isinstance(request, UsageError):
            return self._show(blocks.usage_error(request))
        now = self.service.clock()
        if isinstance(request, ListRequest):
            listing = await self.service.list_deployments(request, self.who)
            return self._show(render_proposal_outcome(listing, f"{command} {text}", now))
        assert isinstance(request, StopRequest)
        outcome = await self.service.propose(request, self.who)
        message = render_proposal_outcome(outcome, f"{command} {text}", now)
        return self._show(message)

    async def _press(self, action_id: str, value: str) -> list[Message]:
        self.buttons = []
        if action_id == blocks.CANCEL_ACTION_ID:
            outcome = await self.service.cancel(value, self.who)
            return [render_click_outcome(outcome)]
        outcome = await self.service.confirm(value, self.who)
        if not isinstance(outcome, Started):
            return [render_click_outcome(outcome)]
        final = await self.service.execute(outcome.action, self.who)
        return [blocks.progress(outcome.action), blocks.result(final, now=self.service.clock())]

    def _show(self, message: Message) -> list[Message]:
        self.buttons = blocks.button_labels(message)
        return [message]


async def repl(
    session: ShellSession,
    read: Callable[[str], str] = input,
    write: Callable[[str], object] = print,
) -> None:
    """Read lines until `quit` or end of input, printing each message as text."""
    write(INTRO)
    while True:
        try:
            line = await asyncio.to_thread(read, "ml-chatops> ")
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if line.strip() in ("quit", "exit", ":q"):
            return
        for message in await session.handle(line):
            write(blocks.to_text(message))
            write("")
        sys.stdout.flush()
