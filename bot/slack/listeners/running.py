"""From a started action to its result: the change first, the messages beside and after it.

Once a click is accepted the action runs whatever Slack does: the "⏳ Stopping…" posts run
concurrently with the change (a slow, refused or rate-limited post never delays or strands
it), and the result is delivered by the best route still open: the progress line updated,
else a new channel message, else privately to the requester (response_url, ephemeral, DM).
Every failed post is logged with its Slack method and error code (bot.slack.delivery).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import MessageRef, PendingAction
from bot.core.outcomes import Changed, Ended, NeedsApproval, Who
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.delivery import deliver, error_code
from bot.slack.listeners.base import (
    ListenerBase,
    Replace,
    replacer,
    tell,
    with_invite_hint,
)
from bot.slack.render import click_message
from bot.slack.respond import Respond

log = logging.getLogger("bot.slack.app")

# How long a finished action's result waits for its progress line to be posted before it
# goes out as a new message (the late line is then removed).
PROGRESS_GRACE = 10.0
# How long the change waits for its progress line before going ahead anyway: long enough
# for a healthy post (so a crash mid-change leaves a line recovery can update), too short
# for a slow or rate-limited one to hold the change back.
PROGRESS_HEAD_START = 1.0
# Refusals of a message's blocks (or size): retried once as plain text, which Slack takes.
BLOCK_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long"}
)
PLAIN_TEXT_MAX = 3_000  # a readable line; Slack itself truncates text beyond 40,000


class Running(ListenerBase):
    """Runs a started action and answers clicks that did not start one."""

    async def _run(
        self, action: PendingAction, who: Who, client: AsyncWebClient, preview: Replace | None
    ) -> None:
        """Progress beside the change, then the result: one channel line, follow-ups threaded."""
        progress = asyncio.create_task(self._start_progress(action, client, preview))
        await asyncio.wait([progress], timeout=PROGRESS_HEAD_START)
        try:
            final = await self.service.execute(action, who)
        except Exception as exc:
            await asyncio.wait([progress])
            await self._run_failed(action, exc, client)
            return
        late: asyncio.Task[MessageRef | None] | None = None
        try:
            root = await asyncio.wait_for(asyncio.shield(progress), PROGRESS_GRACE)
        except TimeoutError:
            root, late = None, progress
        except Exception:  # a bug in the progress posts: the result still goes out
            log.exception("progress posts failed", extra={"ml_chatops.action_id": action.id})
            root = None
        shown = None
        try:
            shown = await self._show_result(final, root, preview, client)
        finally:
            await self._finish_step(final, client, shown)
        if late is not None:
            await self._retire_late_line(final, late, shown, client)
        if final.revert_id is not None:  # a timed change: its revert's live line, in its thread
            await self._after_timed(final, client)

    async def _after_timed(self, change: PendingAction, client: AsyncWebClient) -> None:
        """Overridden by the timed-change listeners (bot/slack/listeners/timed.py)."""

    async def _start_progress(
        self, action: PendingAction, client: AsyncWebClient, preview: Replace | None
    ) -> MessageRef | None:
        """Show "Stopping…" everywhere at once (best effort); returns the channel line."""
        shared = action.message
        progress = blocks.progress(action)
        if not shared.ephemeral and shared.channel_id and shared.ts:
            # A preview already in the channel (a workflow step) becomes the result line.
            await self.service.attach_result(action.id, shared)
            await asyncio.gather(
                self._update_line(shared, progress, client, action.id),
                self._update_card(action, client),
            )
            return shared
        steps: list[Awaitable[Any]] = [self._update_card(action, client)]
        if preview is not None:
            steps.append(_replace_quietly(preview, progress, action.id))
        root, *_ = await asyncio.gather(self._open_result(action, client), *steps)
        return root  # type: ignore[no-any-return]

    async def _open_result(
        self, action: PendingAction, client: AsyncWebClient
    ) -> MessageRef | None:
        """Post the progress line the result will replace; a restart goes in its stop's thread."""
        thread_ts = None
        if action.source_action_id:
            source = await self._latest(action.source_action_id)
            thread_ts = source.result_ref.ts if source and source.result_ref else None
        progress = blocks.progress(action)
        posted = await deliver(
            "chat.postMessage",
            lambda: client.chat_postMessage(
                channel=action.channel_id, thread_ts=thread_ts, **progress
            ),
            action_id=action.id,
        )
        if not posted.ok or posted.data is None:
            return None  # the result will be posted as a new message (or privately)
        ref = MessageRef(
            channel_id=str(posted.data["channel"]), ts=str(posted.data["ts"]), ephemeral=False
        )
        await self.service.attach_result(action.id, ref)
        return ref

    async def _show_result(
        self,
        final: PendingAction,
        root: MessageRef | None,
        preview: Replace | None,
        client: AsyncWebClient,
    ) -> MessageRef | None:
        """The private preview, the approval card and the channel line, independently."""
        message = blocks.result(final, now=self.now())
        updates: list[Awaitable[Any]] = [self._update_card(final, client)]
        if preview is not None:
            updates.append(_replace_quietly(preview, blocks.final_preview(final), final.id))
        line = asyncio.ensure_future(self._settle_line(final, root, message, client))
        await asyncio.gather(line, *updates)
        return line.result()

    async def _settle_line(
        self,
        final: PendingAction,
        root: MessageRef | None,
        message: Message,
        client: AsyncWebClient,
    ) -> MessageRef | None:
        """Update the progress line; else post the result anew; else tell the requester."""
        has_line = root is not None and bool(root.channel_id and root.ts)
        if has_line and root and await self._update_line(root, message, client, final.id):
            return root
        posted = await deliver(
            "chat.postMessage",
            lambda: client.chat_postMessage(channel=final.channel_id, **message),
            action_id=final.id,
        )
        if posted.error in BLOCK_ERRORS:
            # Slack refuses the blocks themselves: the plain text still says what happened.
            text = message["text"][:PLAIN_TEXT_MAX]
            posted = await deliver(
                "chat.postMessage",
                lambda: client.chat_postMessage(channel=final.channel_id, text=text),
                action_id=final.id,
            )
        if posted.ok and posted.data is not None:
            ref = MessageRef(
                channel_id=str(posted.data["channel"]), ts=str(posted.data["ts"]), ephemeral=False
            )
            await self.service.attach_result(final.id, ref)
            if root is not None and root.ts and root.channel_id:
                await self._remove_line(root, client, final.id)  # the stale "Stopping…"
            return ref
        # The channel refuses the bot (or Slack is down): the requester still learns it.
        await self._to_requester(final, with_invite_hint(message, posted.error), client)
        return None

    async def _update_line(
        self, ref: MessageRef, message: Message, client: AsyncWebClient, action_id: str
    ) -> bool:
        channel, ts = str(ref.channel_id), str(ref.ts)
        updated = await deliver(
            "chat.update",
            lambda: client.chat_update(channel=channel, ts=ts, **message),
            action_id=action_id,
        )
        return updated.ok

    async def _remove_line(self, ref: MessageRef, client: AsyncWebClient, action_id: str) -> None:
        channel, ts = str(ref.channel_id), str(ref.ts)
        await deliver(
            "chat.delete",
            lambda: client.chat_delete(channel=channel, ts=ts),
            action_id=action_id,
            attempts=1,
        )

    async def _retire_late_line(
        self,
        final: PendingAction,
        late: asyncio.Task[MessageRef | None],
        shown: MessageRef | None,
        client: AsyncWebClient,
    ) -> None:
        """A progress line that landed after the result went out anew: remove it."""
        try:
            line = await late
        except Exception:  # logged where it failed; nothing landed to retire
            return
        if line is None or line == shown:
            return
        if shown is not None:
            await self._remove_line(line, client, final.id)
            await self.service.attach_result(final.id, shown)  # the late post claimed it
        else:  # the result never reached the channel: the late line can still carry it
            await self._update_line(line, blocks.result(final, now=self.now()), client, final.id)

    async def _run_failed(
        self, action: PendingAction, exc: Exception, client: AsyncWebClient
    ) -> None:
        """The change itself broke on our side: say so truthfully; recovery settles it."""
        error_id = secrets.token_hex(4)
        log.error(
            "running action %s failed",
            action.id,
            extra={"error_id": error_id, "ml_chatops.action_id": action.id},
            exc_info=exc,
        )
        message = blocks.error(
            "Something went wrong on my side while running this; its outcome is not known "
            "yet. Check with /ml-deployments; this channel is told once it is settled.",
            error_id=error_id,
        )
        await self._to_requester(action, message, client)

    async def _answer_click(
        self, outcome: object, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        message = click_message(outcome, self.now())
        if isinstance(outcome, Ended | Changed):
            action = outcome.action
            if not await _replace_quietly(replacer(body, respond, client), message, action.id):
                await self._to_requester(action, message, client)
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


async def _replace_quietly(preview: Replace, message: Message, action_id: str) -> bool:
    """Replace the clicked preview; a failure is logged (the response_url logs refusals)."""
    try:
        await preview(message)
    except Exception as exc:  # a dropped connection, or chat.update refused
        log.warning(
            "could not replace the preview: %s",
            error_code(exc),
            extra={"ml_chatops.action_id": action_id},
        )
        return False
    return True
