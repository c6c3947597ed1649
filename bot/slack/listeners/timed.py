"""Timed changes (issue 22): the live line, its buttons, the heads-up and the due reverts.

Everything about a revert is said in the thread of the change it undoes; the outcome of a
revert that ran is also said in the channel. The sweep (bot/server.py) calls `sweep`; the
buttons come through the one listener wrapper like every other click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import timed
from bot.core.model import MessageRef, PendingAction
from bot.core.outcomes import Started, Who
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.blocks import timed as timed_blocks
from bot.slack.listeners.base import button_value, tell
from bot.slack.listeners.running import Running
from bot.slack.render import click_message
from bot.slack.respond import Respond

log = logging.getLogger(__name__)
T = TypeVar("T")


async def _quietly(call: Awaitable[T]) -> T | None:
    """A Slack call whose failure is logged, not raised (the revert matters more)."""
    try:
        return await call
    except Exception as exc:  # Slack down, refused or unreachable: say it in the log
        log.warning("a timed revert's Slack post failed: %s", exc)
        return None


def _said(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _parts(body: dict[str, Any]) -> list[str]:
    return button_value(body).split(":")


class TimedListeners(Running):
    """Revert now, Extend, Keep; the live line and the sweep's reports."""

    # ---- posting ------------------------------------------------------------------------

    async def _thread_post(
        self, change_id: str | None, channel: str, message: Message, client: AsyncWebClient
    ) -> MessageRef | None:
        """Post in the change's thread (its result line); the channel when it has none."""
        change = await self.service.get(change_id) if change_id else None
        thread = change.result_ref.ts if change and change.result_ref else None
        try:
            posted = await client.chat_postMessage(channel=channel, thread_ts=thread, **message)
        except SlackApiError as exc:
            log.warning("could not post about a timed revert: %s", exc.response.get("error"))
            return None
        return MessageRef(channel_id=posted["channel"], ts=posted["ts"], ephemeral=False)

    async def _refresh_line(self, revert_id: str, client: AsyncWebClient) -> None:
        """Redraw the live line (every revert's state change edits it)."""
        revert = await self.service.get(revert_id)
        if revert is None:
            return
        ref = revert.message
        if ref.ephemeral or not ref.channel_id or not ref.ts:
            return
        try:
            await client.chat_update(
                channel=ref.channel_id, ts=ref.ts, **timed_blocks.revert_line(revert, self.now())
            )
        except SlackApiError as exc:
            log.warning("could not update the revert line: %s", exc.response.get("error"))

    async def _after_timed(self, change: PendingAction, client: AsyncWebClient) -> None:
        await self.announce_revert(change, client)

    async def announce_revert(self, change: PendingAction, client: AsyncWebClient) -> None:
        """After a timed change ran: the live line in its thread ("reverts at 14:32 …")."""
        if change.revert_id is None:
            return
        revert = await self.service.get(change.revert_id)
        if revert is None:
            return
        line = timed_blocks.revert_line(revert, self.now())
        ref = await self._thread_post(change.id, change.channel_id, line, client)
        if ref is not None:
            await self.service.attach_message(revert.id, ref)

    # ---- the sweep ------------------------------------------------------------------------

    async def sweep(self, client: AsyncWebClient) -> None:
        """Heads-ups, due reverts run (each claimed once), reverts not run explained."""
        for item in await self.service.sweep_timed():
            revert = item.revert
            if isinstance(item, timed.HeadsUp):
                message = timed_blocks.heads_up(revert, self.now())
                await self._thread_post(revert.revert_of, revert.channel_id, message, client)
                # The live line's "(in N min)" is redrawn here too, not on every sweep: one
                # chat.update per revert and heads-up keeps 1,000 timers off Slack's limits.
                await self._refresh_line(revert.id, client)
            elif isinstance(item, timed.NotRun):
                message = timed_blocks.not_run(revert, item.reason, item.offers)
                await self._thread_post(revert.revert_of, revert.channel_id, message, client)
                await self._refresh_line(revert.id, client)
            else:
                await self.run_revert(revert, client, late=item.late)

    async def run_revert(self, revert: PendingAction, client: AsyncWebClient, late: float) -> None:
        """Run a claimed revert as its requester: progress and result in the change's thread,
        the outcome in the channel, the live line edited.

        Slack failing (even unexpectedly) never holds back or strands the claimed revert:
        every post is best effort, and the revert runs exactly once between them."""
        await _quietly(self._refresh_line(revert.id, client))
        root = await _quietly(self._open_result(revert, client))
        final = await self.service.execute(revert, timed.requester(revert))
        if root is not None and root.channel_id and root.ts:
            result = blocks.result(final, now=self.now())
            await _quietly(client.chat_update(channel=root.channel_id, ts=root.ts, **result))
        await _quietly(self._refresh_line(revert.id, client))
        report = timed_blocks.revert_report(final, late)
        await _quietly(client.chat_postMessage(channel=revert.channel_id, **report))

    # ---- the buttons ------------------------------------------------------------------------

    async def on_revert_now(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Revert now (and Retry): run it at once, if nothing moved it meanwhile."""
        parts = _parts(body)
        shown = parts[1] if len(parts) > 1 else ""
        outcome = await self.service.revert_now(parts[0], shown, who)
        if isinstance(outcome, Started):
            # Said in the change's thread (like Extend and Keep), before the revert's progress.
            revert = outcome.action
            said = f"<@{who.user_id}> pressed Revert now: {timed_blocks.what_text(revert)}"
            message: Message = {"text": said, "blocks": [_said(said)]}
            await _quietly(self._thread_post(revert.revert_of, revert.channel_id, message, client))
            await self.run_revert(revert, client, late=0.0)
            return
        await tell(body, respond, client, click_message(outcome, self.now()))

    async def on_extend(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Extend by the button's amount."""
        parts = _parts(body)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            await tell(body, respond, client, blocks.error("this button is not one the bot drew"))
            return
        outcome = await self.service.extend_revert(parts[0], int(parts[1]), int(parts[2]), who)
        await self._rescheduled(outcome, body, respond, client, who)

    async def on_keep(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Keep the change: cancel its revert."""
        parts = _parts(body)
        if len(parts) != 2 or not parts[1].isdigit():
            await tell(body, respond, client, blocks.error("this button is not one the bot drew"))
            return
        outcome = await self.service.keep_change(parts[0], int(parts[1]), who)
        await self._rescheduled(outcome, body, respond, client, who)

    async def _rescheduled(
        self,
        outcome: object,
        body: dict[str, Any],
        respond: Respond,
        client: AsyncWebClient,
        who: Who,
    ) -> None:
        if not isinstance(outcome, timed.Rescheduled):
            await tell(body, respond, client, click_message(outcome, self.now()))
            return
        revert = outcome.revert
        await self._refresh_line(revert.id, client)
        line = timed_blocks.revert_line(revert, self.now())
        said = f"<@{who.user_id}>: {outcome.change}"
        message: Message = {"text": said, "blocks": line["blocks"][:1]}
        message["blocks"].insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": said}})
        await self._thread_post(revert.revert_of, revert.channel_id, message, client)
