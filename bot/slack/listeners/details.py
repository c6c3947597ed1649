"""`Show all N` on a long preview: every target in detail, in a modal, page by page."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import PendingAction
from bot.core.outcomes import Who
from bot.slack import blocks
from bot.slack.listeners.base import ListenerBase, button_value, log, tell
from bot.slack.respond import Respond


class DetailsListeners(ListenerBase):
    """Opens the details modal (views.open) and turns its pages (views.update)."""

    async def on_show_all(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """The preview's `Show all N`: the first page, for the requester only."""
        action = await self._viewable(button_value(body), who)
        if action is None:
            message = blocks.error("this preview is not yours or is no longer known to the bot")
            await tell(body, respond, client, message)
            return
        await self._views(
            "views.open",
            client.views_open(
                trigger_id=str(body.get("trigger_id", "")), view=blocks.details_modal(action, 0)
            ),
        )

    async def on_page(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Previous / Next inside the modal: the same view, another page."""
        parsed = blocks.parse_page_value(button_value(body))
        view = body.get("view") or {}
        action = await self._viewable(parsed[0], who) if parsed else None
        if parsed is None or action is None or not view.get("id"):
            log.warning("details page click ignored", extra={"user": who.user_id})
            return
        await self._views(
            "views.update",
            client.views_update(
                view_id=str(view["id"]),
                hash=view.get("hash"),
                view=blocks.details_modal(action, parsed[1]),
            ),
        )

    async def _viewable(self, action_id: str, who: Who) -> PendingAction | None:
        # The details are the requester's preview: no one else opens them by a crafted click.
        action = await self.service.get(action_id) if action_id else None
        return action if action is not None and action.requester_id == who.user_id else None

    @staticmethod
    async def _views(method: str, call: Any) -> None:
        try:
            await call
        except SlackApiError as exc:  # an expired trigger or a stale hash: nothing to undo
            log.warning("%s refused", method, extra={"error": exc.response.get("error")})
