"""The Slack adapter: Bolt AsyncApp listeners that ack at once and then drive the core."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.app.ports import CommandMetrics as Metrics
from bot.app.service import (
    Approved,
    Changed,
    Ended,
    FreezeChanged,
    NeedsApproval,
    Proposed,
    Service,
    Started,
    Timeline,
    Who,
)
from bot.core.commands import (
    HelpRequest,
    UsageError,
)
from bot.core.incidents import IncidentConfig, incident_id
from bot.core.model import MessageRef, PendingAction
from bot.core.text import cap
from bot.slack import blocks, ids
from bot.slack.blocks import Message
from bot.slack.notices import complete_step_error, update_card
from bot.slack.render import click_message, outcome_label, outcome_message
from bot.slack.respond import Respond, Responder, webhook
from bot.slack.workflow import STEP_CALLBACK_ID, error_for, outputs_for, request_from_inputs

log = logging.getLogger(__name__)

COMMANDS, ACTION_IDS, FUNCTIONS = ids.COMMANDS, ids.ACTION_IDS, ids.FUNCTIONS
# The audit keeps what was asked, bounded: Slack allows 40,000 characters of command text.
NAME_MAX = 256  # a Slack name or id is far shorter; anything longer is not worth keeping
CHANNEL_POST_ERRORS = {"not_in_channel", "channel_not_found", "is_archived"}

# What a listener does after the ack: (body, respond, client, who).
Work = Callable[[dict[str, Any], Respond, AsyncWebClient, Who], Awaitable[None]]
Listener = Callable[..., Awaitable[None]]
# Replaces the message a button sat on (via response_url, or chat.update for channel messages).
Replace = Callable[[Message], Awaitable[Any]]


def who_from_command(command: dict[str, Any]) -> Who:
    """The caller of a slash command."""
    return Who(
        user_id=cap(command["user_id"], NAME_MAX),
        user_name=cap(command.get("user_name") or command["user_id"], NAME_MAX),
        team_id=cap(command.get("team_id") or "", NAME_MAX),
        channel_id=cap(command.get("channel_id") or "", NAME_MAX),
        channel_name=cap(command.get("channel_name") or "", NAME_MAX),
    )


def who_from_action(body: dict[str, Any]) -> Who:
    """The clicker of a button, from a block_actions payload."""
    user = body.get("user") or {}
    team = body.get("team") or {}
    channel = body.get("channel") or {}
    container = body.get("container") or {}
    return Who(
        user_id=cap(str(user["id"]), NAME_MAX),
        user_name=cap(str(user.get("username") or user.get("name") or user["id"]), NAME_MAX),
        team_id=cap(str(team.get("id") or user.get("team_id") or ""), NAME_MAX),
        channel_id=cap(str(channel.get("id") or container.get("channel_id") or ""), NAME_MAX),
        channel_name=cap(str(channel.get("name") or ""), NAME_MAX),
    )


def permalink(team_domain: str | None, ref: MessageRef | None) -> str | None:
    """A link to a channel message (the form Slack's own "Copy link" gives)."""
    if ref is None or not ref.channel_id or not ref.ts:
        return None
    host = f"https://{team_domain}.slack.com" if team_domain else "https://slack.com"
    return f"{host}/archives/{ref.channel_id}/p{ref.ts.replace('.', '')}"


async def _to_requester(action: PendingAction, message: Message, client: AsyncWebClient) -> None:
    """A new private message to the requester through their command's response_url."""
    url = action.message.response_url
    if not url:
        return
    try:
        await webhook(url, client.session).send(
            text=message["text"],
            blocks=message["blocks"],
            response_type="ephemeral",
            replace_original=False,
        )
    except Exception:  # a notice that cannot be delivered must not break the flow
        log.warning("could not notify the requester", extra={"action_id": action.id})


def _replacer(body: dict[str, Any], respond: Respond, client: AsyncWebClient) -> Replace:
    """How to replace the message a click came from."""
    if body.get("response_url"):
        return lambda m: respond(**m, replace_original=True)
    container = body.get("container") or {}
    channel, ts = str(container.get("channel_id", "")), str(container.get("message_ts", ""))
    return lambda m: client.chat_update(channel=channel, ts=ts, **m)


async def _tell(
    body: dict[str, Any], respond: Respond, client: AsyncWebClient, message: Message
) -> None:
    """A private answer to whoever clicked."""
    if body.get("response_url"):
        await respond(**message, response_type="ephemeral", replace_original=False)
        return
    who = who_from_action(body)
    await client.chat_postEphemeral(channel=who.channel_id, user=who.user_id, **message)


class SlackAdapter:
    """Listeners and the Slack I/O they need; the decisions are the Service's."""

    def __init__(
        self,
        service: Service,
        incidents: IncidentConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.service = service
        self.incidents = incidents
        self.metrics = metrics

    def _count(self, command: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.command(command, outcome)

    def now(self) -> float:
        """The service's clock."""
        return self.service.clock()

    async def _in_incident(self, who: Who, client: AsyncWebClient) -> Who:
        """Attach the incident id when the channel is an incident channel."""
        if self.incidents is None:
            return who
        name, topic = who.channel_name, None
        if self.incidents.id_from == "topic" or not name:
            try:
                info = await client.conversations_info(channel=who.channel_id)
                channel = info.get("channel") or {}
                name = name or channel.get("name") or ""
                topic = (channel.get("topic") or {}).get("value")
            except SlackApiError as exc:
                log.warning("conversations.info failed", extra={"error": exc.response.get("error")})
        found = incident_id(self.incidents, name, topic)
        return replace(who, channel_name=name, incident_id=found)

    # ------------------------------------------------------------------ commands

    def listener(self, work: Work, *, incident: bool = False) -> Listener:
        """The one Bolt listener shape: ack at once, then `work` inside our error boundary.

        `who` (with the incident id when `incident`) is worked out once and also put in
        Bolt's `context`, so middleware and logs see the same caller.
        """

        async def listener(
            ack: AsyncAck,
            body: dict[str, Any],
            respond: AsyncRespond,
            client: AsyncWebClient,
            context: AsyncBoltContext,
        ) -> None:
            await ack()
            url = body.get("response_url")
            # Bolt's `respond` opens a new HTTP session per message; ours shares the client's.
            answer: Respond = Responder(str(url), client.session) if url else respond

            async def run() -> None:
                who = who_from_command(body) if "command" in body else who_from_action(body)
                if incident:
                    who = await self._in_incident(who, client)
                context["who"] = who
                await work(body, answer, client, who)

            await _guarded(run(), answer)

        listener.__name__ = listener.__qualname__ = getattr(work, "__name__", "listener")
        return listener

    async def on_command(
        self, command: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Parse, decide and answer privately."""
        name, text = command.get("command", ""), command.get("text", "")
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

    async def _proposed(
        self, action: PendingAction, ref: MessageRef, client: AsyncWebClient
    ) -> None:
        await self.service.attach_message(action.id, ref)
        if action.required_approvals:
            await self._post_card(action, client)

    async def _post_card(self, action: PendingAction, client: AsyncWebClient) -> None:
        card = blocks.approval_card(action, now=self.now())
        posted = await client.chat_postMessage(channel=action.channel_id, **card)
        card_ref = MessageRef(channel_id=posted["channel"], ts=posted["ts"], ephemeral=False)
        await self.service.attach_card(action.id, card_ref)

    # ------------------------------------------------------------------ preview buttons

    async def on_confirm(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Run, exactly once, then replace the preview and report in the channel."""
        outcome = await self.service.confirm(_button_value(body), who)
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
            await self._run(outcome.action, who, client, _replacer(body, respond, client))
        else:
            await self._answer_click(outcome, body, respond, client)

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
        await _to_requester(action, _with_invite_hint(message, None), client)

    async def on_cancel(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Cancel the pending action."""
        outcome = await self.service.cancel(_button_value(body), who)
        await self._answer_click(outcome, body, respond, client)

    async def _answer_click(
        self, outcome: object, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        message = click_message(outcome, self.now())
        if isinstance(outcome, Ended | Changed):
            await _replacer(body, respond, client)(message)
        else:
            await _tell(body, respond, client, message)
        if isinstance(outcome, Ended):
            await self._finish_step(outcome.action, client, None)
        if isinstance(outcome, Changed | NeedsApproval) and outcome.action.approval_card is None:
            # The targets or the rules now call for four eyes: the card appears at this click.
            if outcome.action.required_approvals:
                await self._post_card(outcome.action, client)
        elif isinstance(outcome, Changed | Ended | NeedsApproval):
            # A changed preview needs its approvals again; an ended one retires its card.
            await self._update_card(outcome.action, client)

    # ------------------------------------------------------------------ approval card

    async def on_approve(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """An approver approved; update the card, tell the requester, maybe run."""
        outcome = await self.service.approve(_button_value(body), who)
        if not isinstance(outcome, Approved):
            await self._answer_card_click(outcome, body, respond, client)
            return
        action = outcome.action
        await self._update_card(action, client)
        await _to_requester(action, blocks.approval_recorded(action, who.user_id), client)
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
        outcome = await self.service.reject(_button_value(body), who)
        await self._answer_card_click(outcome, body, respond, client)
        if isinstance(outcome, Ended):
            await _to_requester(outcome.action, blocks.final_preview(outcome.action), client)
            await self._finish_step(outcome.action, client, None)

    async def _answer_card_click(
        self, outcome: object, body: dict[str, Any], respond: Respond, client: AsyncWebClient
    ) -> None:
        if isinstance(outcome, Ended):
            await self._update_card(outcome.action, client)
            return
        await _tell(body, respond, client, click_message(outcome, self.now()))

    async def _update_card(self, action: PendingAction, client: AsyncWebClient) -> None:
        await update_card(client, action, self.now())

    # ------------------------------------------------------------------ restart

    async def on_restart(
        self, body: dict[str, Any], respond: Respond, client: AsyncWebClient, who: Who
    ) -> None:
        """Restart with previous settings: a start preview for the clicker, privately."""
        outcome = await self.service.propose_restart(_button_value(body), who)
        message = outcome_message(outcome, "Restart with previous settings", self.now())
        await _tell(body, respond, client, message)
        if isinstance(outcome, Proposed):
            ref = MessageRef(
                channel_id=who.channel_id, response_url=body.get("response_url"), ephemeral=True
            )
            await self._proposed(outcome.action, ref, client)

    # ------------------------------------------------------------------ workflow step

    async def on_step(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        """`stop_ml_deployment` from Workflow Builder: the same preview, posted in the channel."""
        execution_id = str(event.get("function_execution_id", ""))
        try:
            await self._step(event, body, client, execution_id)
        except Exception as exc:
            error_id = secrets.token_hex(4)
            log.error("workflow step failed", extra={"error_id": error_id}, exc_info=exc)
            await complete_step_error(client, execution_id, f"internal error (error id {error_id})")

    async def _step(
        self, event: dict[str, Any], body: dict[str, Any], client: AsyncWebClient, execution_id: str
    ) -> None:
        inputs = event.get("inputs") or {}
        request = request_from_inputs(inputs)
        if isinstance(request, UsageError):
            await complete_step_error(client, execution_id, request.message)
            return
        user, channel = str(inputs["requested_by"]), str(inputs["channel"])
        base = Who(
            user_id=user, user_name=user, team_id=body.get("team_id") or "", channel_id=channel
        )
        who = await self._in_incident(base, client)
        outcome = await self.service.propose(request, who, execution_id=execution_id)
        if not isinstance(outcome, Proposed):
            message = outcome_message(outcome, f"/ml-stop {inputs['deployment_id']}", self.now())
            await complete_step_error(client, execution_id, message["text"])
            return
        preview = blocks.proposal(outcome.action, now=self.now())
        posted = await client.chat_postMessage(channel=channel, **preview)
        ref = MessageRef(channel_id=posted["channel"], ts=posted["ts"], ephemeral=False)
        await self._proposed(outcome.action, ref, client)

    async def _finish_step(
        self, action: PendingAction, client: AsyncWebClient, root: MessageRef | None
    ) -> None:
        """Complete the workflow step that asked for this action, if one did."""
        if not action.function_execution_id:
            return
        error = error_for(action)
        if error is not None:
            await complete_step_error(client, action.function_execution_id, error)
            return
        url = permalink(None, root) or ""
        try:
            await client.functions_completeSuccess(
                function_execution_id=action.function_execution_id,
                outputs=outputs_for(action, url),
            )
        except SlackApiError as exc:
            log.error(
                "functions.completeSuccess failed", extra={"error": exc.response.get("error")}
            )

    # ------------------------------------------------------------------ posting

    async def _post(
        self,
        channel: str,
        message: Message,
        client: AsyncWebClient,
        respond: Respond | None,
    ) -> None:
        """Post in the channel; if the bot may not, give it privately with a hint."""
        try:
            await client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error not in CHANNEL_POST_ERRORS or respond is None:
                raise
            private = _with_invite_hint(message, error)
            await respond(**private, response_type="ephemeral", replace_original=False)


def _with_invite_hint(message: Message, error: str | None) -> Message:
    """A channel message the bot could not post, given privately with how to fix that."""
    why = f" (`{error}`)" if error else ""
    hint = blocks.error(
        f"I could not post in the channel{why}; invite me with `/invite @ml-chatops` so "
        "everyone sees it:"
    )
    return {
        "text": hint["text"] + "\n" + message["text"],
        "blocks": hint["blocks"] + message["blocks"],
    }


def _button_value(body: dict[str, Any]) -> str:
    actions = body.get("actions") or [{}]
    return str(actions[0].get("value", ""))


async def _apologise(error: Exception, respond: Respond | None) -> None:
    error_id = secrets.token_hex(4)
    log.error("unhandled error", extra={"error_id": error_id}, exc_info=error)
    if respond is None:
        return
    message = blocks.error(
        "Sorry, something went wrong on my side; nothing more was done.", error_id=error_id
    )
    try:
        await respond(**message, response_type="ephemeral", replace_original=False)
    except Exception:  # the apology itself failing must not raise again
        log.warning("could not deliver the error message", extra={"error_id": error_id})


async def _guarded(work: Awaitable[None], respond: Respond | None) -> None:
    # Our own error boundary after ack(): Bolt's runner overwrites an early ack with
    # None when a listener fails within its 10 ms polling step, answering Slack 404.
    try:
        await work
    except Exception as exc:
        await _apologise(exc, respond)


async def on_error(error: Exception) -> None:
    """Failures before our listeners run: log with an id, answer nobody.

    Bolt calls this for any request, so replying here could answer a request nothing has
    vouched for (the HTTP edge verifies first, but Socket Mode and future paths may not).
    """
    await _apologise(error, None)


def create_bolt_app(
    service: Service,
    *,
    client: AsyncWebClient,
    signing_secret: str,
    incidents: IncidentConfig | None = None,
    metrics: Metrics | None = None,
) -> AsyncApp:
    """The Bolt app with every listener registered."""
    app = AsyncApp(
        client=client, signing_secret=signing_secret, raise_error_for_unhandled_request=False
    )
    adapter = SlackAdapter(service, incidents, metrics)
    wrap = adapter.listener
    for name in COMMANDS:
        app.command(name)(wrap(adapter.on_command, incident=True))
    for action_id in (ids.CONFIRM_ACTION_ID, ids.START_CONFIRM_ACTION_ID):
        app.action(action_id)(wrap(adapter.on_confirm, incident=True))
    for action_id in (ids.CANCEL_ACTION_ID, ids.START_CANCEL_ACTION_ID):
        app.action(action_id)(wrap(adapter.on_cancel))
    app.action(ids.APPROVE_ACTION_ID)(wrap(adapter.on_approve))
    app.action(ids.REJECT_ACTION_ID)(wrap(adapter.on_reject))
    app.action(ids.RESTART_ACTION_ID)(wrap(adapter.on_restart, incident=True))
    app.function(STEP_CALLBACK_ID)(adapter.on_step)
    app.error(on_error)
    return app
