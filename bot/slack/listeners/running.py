"""From a started action to its result: progress everywhere, execute, result, step outputs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import MessageRef, PendingAction
from bot.core.outcomes import Changed, Ended, NeedsApproval, Who
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.listeners.base import (
    CHANNEL_POST_ERRORS,
    ListenerBase,
    Replace,
    replacer,
    tell,
    to_requester,
    with_invite_hint,
)
from bot.slack.render import click_message
from bot.slack.respond import Respond


class Running(ListenerBase):
    """Runs a started action and answers clicks that did not start one."""

    async def _run(
        self, action: PendingAction, who: Who, client: AsyncWebClient, preview: Replace | None
    ) -> None:
        """Progress, execute, then the result: one channel line, follow-ups in its thread."""
        root, preview = await self._start_progress(action, client, preview)
        final = await self.service.execute(action, who)
        message = blocks.result(final, now=self.now())
        # The private preview, the approval card and the channel line change independently.
        updates: list[Awaitable[Any]] = [self._update_card(final, client)]
        if preview is not None:
            updates.append(preview(blocks.final_preview(final)))
        if root is not None and root.channel_id and root.ts:
            updates.append(client.chat_update(channel=root.channel_id, ts=root.ts, **message))
        else:
            updates.append(self._post_privately(final, message, client))
        await asyncio.gather(*updates)
        await self._finish_step(final, client, root)
        if final.revert_id is not None:  # a timed change: its revert's live line, in its thread
            await self._after_timed(final, client)

    async def _after_timed(self, change: PendingAction, client: AsyncWebClient) -> None:
        """Overridden by the timed-change listeners (bot/slack/listeners/timed.py)."""

    async def _start_progress(
        self, action: PendingAction, client: AsyncWebClient, preview: Replace | None
    ) -> tuple[MessageRef | None, Replace | None]:
        """Show "Stopping…" everywhere at once; returns the channel line and the preview."""
        shared = action.message
        if not shared.ephemeral and shared.channel_id and shared.ts:
            # A preview already in the channel (a workflow step) becomes the result line.
            await self.service.attach_result(action.id, shared)
            progress = client.chat_update(
                channel=shared.channel_id, ts=shared.ts, **blocks.progress(action)
            )
            await asyncio.gather(progress, self._update_card(action, client))
            return shared, None
        steps: list[Awaitable[Any]] = [self._update_card(action, client)]
        if preview is not None:
            steps.append(preview(blocks.progress(action)))
        root, *_ = await asyncio.gather(self._open_result(action, client), *steps)
        return root, preview

    async def _open_result(
        self, action: PendingAction, client: AsyncWebClient
    ) -> MessageRef | None:
        """Post the progress line the result will replace; a restart goes in its stop's thread."""
        thread_ts = None
        if action.source_action_id:
            source = await self.service.get(action.source_action_id)
            thread_ts = source.result_ref.ts if source and source.result_ref else None
        try:
            posted = await client.chat_postMessage(
                channel=action.channel_id, thread_ts=thread_ts, **blocks.progress(action)
            )
        except SlackApiError as exc:
            if str(exc.response.get("error")) not in CHANNEL_POST_ERRORS:
                raise
            return None
        ref = MessageRef(channel_id=posted["channel"], ts=posted["ts"], ephemeral=False)
        await self.service.attach_result(action.id, ref)
        return ref

    async def _post_privately(
        self, action: PendingAction, message: Message, client: AsyncWebClient
    ) -> None:
        await to_requester(action, with_invite_hint(message, None), client)

    async def _answer_click(
        self, outcome: object, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        message = click_message(outcome, self.now())
        if isinstance(outcome, Ended | Changed):
            await replacer(body, respond, client)(message)
        else:
            await tell(body, respond, client, message)
        if isinstance(outcome, Ended):
            await self._finish_step(outcome.action, client, None)
        if isinstance(outcome, Changed | NeedsApproval) and outcome.action.approval_card is None:
            # The targets or the rules now call for four eyes: the card appears at this click.
            if outcome.action.required_approvals:
                await self._post_card(outcome.action, client)
        elif isinstance(outcome, Changed | Ended | NeedsApproval):
            # A changed preview needs its approvals again; an ended one retires its card.
            await self._update_card(outcome.action, client)
