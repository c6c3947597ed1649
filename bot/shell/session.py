"""The local text adapter: type slash commands, read messages as text, press buttons by label."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bot.app import timed
from bot.app.service import Service
from bot.core.commands import (
    HelpRequest,
    UsageError,
)
from bot.core.model import ActionState, PendingAction
from bot.core.outcomes import Approved, Proposed, Started, Timeline, Who
from bot.core.policy import RoleMap
from bot.core.timing import human, parse_for
from bot.slack import blocks
from bot.slack.blocks import Message
from bot.slack.render import click_message, outcome_message

INTRO = """ml-chatops shell: type a slash command as in Slack, e.g.
  /ml-deployments
  /ml-stop elser-prod --reason "INC-1 demo"
  /ml-status
  /ml-scale ner-prod --allocations 2
then type a button's label (e.g. Stop or Cancel) to press it.
`/as U0OTHER` acts as another Slack user (e.g. to approve); `:advance 30m` moves the
bot's clock forward (timed changes fall due); `quit` leaves."""


# Buttons that propose a new action (their value is no pending action of their own).
_PROPOSING = (
    blocks.RESTART_ACTION_ID,
    blocks.REVERT_ACTION_ID,
    blocks.STATUS_SCALE_ACTION_ID,
    blocks.STATUS_STOP_ACTION_ID,
    blocks.REVERT_PREVIEW_START_ACTION_ID,
    blocks.REVERT_PREVIEW_SCALE_ACTION_ID,
)


_REVERT_BUTTONS = (
    blocks.REVERT_NOW_ACTION_ID,
    blocks.KEEP_ACTION_ID,
    blocks.EXTEND_30M_ACTION_ID,
    blocks.EXTEND_1H_ACTION_ID,
    blocks.EXTEND_2H_ACTION_ID,
)


class ShellClock:
    """The shell's clock: the wall clock plus what `:advance` added (for trying timed changes)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        """Move the bot's clock forward."""
        self.offset += seconds


@dataclass
class ShellSession:
    """One terminal; keeps the buttons shown so far so they can be pressed by label."""

    service: Service
    who: Who
    buttons: list[tuple[str, str, str]] = field(default_factory=list)
    clock: ShellClock | None = None  # set: `:advance` moves it and runs the sweep

    async def handle(self, line: str) -> list[Message]:
        """Process one typed line; return the messages the bot shows, in order."""
        line = line.strip()
        if not line:
            return []
        pressed = await self._button(line)
        if pressed is not None:
            return pressed
        command, _, text = line.partition(" ")
        if command == "/as":
            return self._switch(text.strip())
        if command == ":advance":
            return await self._advance(text.strip())
        if not command.startswith("/"):
            hint = "type a slash command (try `/ml-stop help`)"
            if labels := await self.live_labels():
                hint += ", or press " + " or ".join(f"`{label}`" for label in labels)
            return [blocks.error(f"`{line}` is not a command; {hint}")]
        return await self._command(command, text)

    def _switch(self, user: str) -> list[Message]:
        if not user.startswith(("U", "W")) or " " in user:
            return [blocks.error("`/as` takes a Slack user id, e.g. `/as U0ADMIN2`")]
        self.who = replace(self.who, user_id=user, user_name=user)
        return [blocks.error(f"you are now `{user}`")]

    async def live_labels(self) -> list[str]:
        """Each label a press would act on now, once, newest first (finished ones left out)."""
        labels: list[str] = []
        for label, action_id, value in reversed(self.buttons):
            if label.casefold() in {known.casefold() for known in labels}:
                continue
            if await self._live(action_id, value):
                labels.append(label)
        return labels

    async def _live(self, action_id: str, value: str) -> bool | PendingAction | None:
        """True for a button that proposes something new; else its action if still waiting
        (proposed and not past its expiry), or a falsy value: the action as it ended."""
        if action_id in _NEVER_STALE:  # proposes something new: never stale
            return True
        action = await self.service.get(value)
        if action is None or action.state is not ActionState.PROPOSED:
            return False
        return action if self.service.clock() < action.expires_at else False

    async def _button(self, line: str) -> list[Message] | None:
        """Press the newest live button labelled `line`; None if no button has that label."""
        newest: tuple[str, PendingAction | None] | None = None
        for label, action_id, value in reversed(self.buttons):
            if line.casefold() != label.casefold():
                continue
            if action_id in _REVERT_BUTTONS:  # the use case says if it moved meanwhile
                return await self._press_revert(action_id, value)
            if await self._live(action_id, value):
                return await self._press(action_id, value)
            newest = newest or (label, await self.service.get(value))
        if newest is None:
            return None
        return [blocks.error(_finished(*newest))]

    def intro(self) -> str:
        """The banner: how the shell works, who is in the role map, and the rules worth trying."""
        return "\n".join([INTRO, *role_map_tour(self.service.deps.role_map(), self.who)])

    async def _command(self, command: str, text: str) -> list[Message]:
        outcome = await self.service.dispatch(command, text, self.who)
        now = self.service.clock()
        if isinstance(outcome, HelpRequest):
            return self._show(blocks.help_message(outcome.command))
        if isinstance(outcome, UsageError):
            return self._show(blocks.usage_error(outcome))
        if isinstance(outcome, Timeline):
            return self._show(
                blocks.audit_timeline(
                    outcome.actions, scope=outcome.scope, markdown=outcome.markdown
                )
            )
        messages = [outcome_message(outcome, f"{command} {text}", now)]
        if isinstance(outcome, Proposed) and outcome.action.required_approvals:
            messages.append(blocks.approval_card(outcome.action, now=now))
        return self._show(*messages)

    async def _press(self, action_id: str, value: str) -> list[Message]:
        service, who = self.service, self.who
        if action_id in (
            blocks.CANCEL_ACTION_ID,
            blocks.START_CANCEL_ACTION_ID,
            blocks.SCALE_CANCEL_ACTION_ID,
        ):
            cancelled = await service.cancel(value, who)
            return self._show(click_message(cancelled, service.clock()))
        if action_id == blocks.REJECT_ACTION_ID:
            rejected = await service.reject(value, who)
            return self._show(click_message(rejected, service.clock()))
        if action_id == blocks.NARROW_ACTION_ID:  # its value is the command to preview
            return await self._command("/ml-stop", value)
        if action_id == blocks.RESTART_ACTION_ID:
            outcome = await service.propose_restart(value, who)
            return self._show(outcome_message(outcome, "Restart", service.clock()))
        if action_id == blocks.REVERT_ACTION_ID:
            outcome = await service.propose_revert(value, who)
            return self._show(outcome_message(outcome, "Revert to previous", service.clock()))
        if action_id == blocks.STATUS_SCALE_ACTION_ID:
            return await self._command("/ml-scale", value)
        if action_id == blocks.STATUS_STOP_ACTION_ID:
            return await self._command("/ml-stop", value)
        if action_id == blocks.REVERT_PREVIEW_START_ACTION_ID:  # a revert the world overtook
            return await self._command("/ml-start", value)
        if action_id == blocks.REVERT_PREVIEW_SCALE_ACTION_ID:
            return await self._command("/ml-scale", value)
        if action_id == blocks.APPROVE_ACTION_ID:
            return await self._approve(value)
        if action_id == blocks.SHOW_ALL_ACTION_ID:
            return await self._show_all(value)
        started = await service.confirm(value, who)
        return await self._after_start(started)

    async def _advance(self, text: str) -> list[Message]:
        """`:advance 30m`: move the bot's clock, then sweep as the server does every 15 s."""
        seconds = parse_for(text)
        if self.clock is None:
            return [blocks.error("`:advance` works in `ml-chatops shell --demo`")]
        if isinstance(seconds, str):
            return [blocks.error(seconds.replace("--for", ":advance"))]
        self.clock.advance(seconds)
        note = blocks.error(f"the bot's clock moved forward {human(seconds)}")
        return [note, *await self.sweep()]

    async def sweep(self) -> list[Message]:
        """What the server's sweep would say: heads-ups, reverts run or not, timed unfreezes."""
        service, now = self.service, self.service.clock
        shown: list[Message] = []
        for item in await service.sweep_timed():
            if isinstance(item, timed.HeadsUp):
                shown.append(blocks.heads_up(item.revert, now()))
            elif isinstance(item, timed.NotRun):
                shown.append(blocks.not_run(item.revert, item.reason, item.offers))
            else:
                final = await service.execute(item.revert, timed.requester(item.revert))
                shown += [self._result(final), blocks.revert_report(final, item.late)]
        unfrozen = await service.unfreeze_due()
        if unfrozen is not None:
            shown.append(
                blocks.freeze_notice(False, unfrozen.by, "the timed freeze ended", now=now())
            )
        for expired in await service.expire_due():
            shown.append(blocks.final_preview(expired))
        return self._show(*shown)

    async def _press_revert(self, action_id: str, value: str) -> list[Message]:
        """Revert now, Extend or Keep, as the Slack buttons do."""
        service, who, now = self.service, self.who, self.service.clock
        revert_id, _, rest = value.partition(":")
        shown, _, seconds = rest.partition(":")
        outcome: object
        if action_id == blocks.REVERT_NOW_ACTION_ID:
            outcome = await service.revert_now(revert_id, shown, who)
            if isinstance(outcome, Started):
                final = await service.execute(outcome.action, timed.requester(outcome.action))
                return self._show(self._result(final), blocks.revert_report(final, 0.0))
        elif not shown.isdigit():
            return [blocks.error("that button is not one the bot drew")]
        elif action_id == blocks.KEEP_ACTION_ID:
            outcome = await service.keep_change(revert_id, int(shown), who)
        else:
            outcome = await service.extend_revert(revert_id, int(shown), int(seconds or 0), who)
        if isinstance(outcome, timed.Rescheduled):
            return self._show(blocks.revert_line(outcome.revert, now()))
        return self._show(click_message(outcome, now()))

    async def _show_all(self, value: str) -> list[Message]:
        """Slack's details modal, every page at once: a terminal has no size limit."""
        action = await self.service.get(value)
        if action is None:
            return [blocks.error("this preview is no longer known")]
        pages = range(blocks.page_count(action))
        shown = [block for page in pages for block in blocks.details_page(action, page)]
        return [{"text": f"All {len(action.targets)} deployments", "blocks": shown}]

    async def _approve(self, value: str) -> list[Message]:
        outcome = await self.service.approve(value, self.who)
        now = self.service.clock()
        if not isinstance(outcome, Approved):
            return self._show(click_message(outcome, now))
        shown = [blocks.approval_card(outcome.action, now=now), click_message(outcome, now)]
        if outcome.action.approved and outcome.action.auto_run:
            started = await self.service.run_approved(outcome.action, self.who)
            return shown + await self._after_start(started)
        return self._show(*shown)

    async def _after_start(self, started: object) -> list[Message]:
        if not isinstance(started, Started):
            return self._show(click_message(started, self.service.clock()))
        final = await self.service.execute(started.action, self.who)
        shown = [blocks.progress(started.action), self._result(final)]
        revert = await self.service.get(final.revert_id) if final.revert_id else None
        if revert is not None:  # a timed change: its live line
            shown.append(blocks.revert_line(revert, self.service.clock()))
        return self._show(*shown)

    def _result(self, final: PendingAction) -> Message:
        return blocks.result(final, now=self.service.clock())

    def _show(self, *messages: Message) -> list[Message]:
        for message in messages:
            self.buttons.extend(blocks.button_labels(message))
        return list(messages)


# Buttons that propose something new rather than answer a pending action.
_NEVER_STALE = (blocks.NARROW_ACTION_ID, *_PROPOSING)

# What became of an action whose button is no longer live, as "which ..." reads on.
_FINISHED = {
    ActionState.PROPOSED: "expired (its time is up)",
    ActionState.EXECUTING: "is running now",
    ActionState.SUCCEEDED: "already ran",
    ActionState.FAILED: "already ran (and failed)",
    ActionState.CANCELLED: "was cancelled",
    ActionState.EXPIRED: "expired",
    ActionState.REJECTED: "was rejected",
    ActionState.UNKNOWN: "ran with an unknown outcome",
    ActionState.SCHEDULED: "is a timed revert waiting for its time",
}


def _finished(label: str, action: PendingAction | None) -> str:
    """Why pressing an old button does nothing."""
    if action is None:
        return f"that `{label}` is for an action that is no longer known; run the command again"
    return (
        f"that `{label}` was for action `{action.id}`, which {_FINISHED[action.state]}; "
        "run the command again for a new preview"
    )


def role_map_tour(role_map: RoleMap, who: Who) -> list[str]:
    """Who holds which role (users and channels the role map names), and the approval rules
    with how to try them here (`/as` another approver, then `Approve`)."""
    lines = [f"You are {who.user_id} in {who.channel_id}. Users and channels in the role map:"]
    for role in role_map.roles:
        bound = [b for b in role_map.bindings if b.role == role]
        names = [u for b in bound for u in b.users] + [f"@{g}" for b in bound for g in b.usergroups]
        names += [
            f"anyone in {c}" for b in bound if not (b.users or b.usergroups) for c in b.channels
        ]
        if names:
            lines.append(f"  {role}: {', '.join(dict.fromkeys(names))}")
    if not role_map.bindings:
        lines.append("  none: every command is denied (see `ml-chatops check-config`)")
    for rule in role_map.approvals:
        others = [
            u
            for b in role_map.bindings
            if b.role in rule.approvers
            for u in b.users
            if u != who.user_id
        ]
        what = "/".join(rule.actions) + " of " + ", ".join(rule.deployments)
        needs = f"{rule.required} approval" + ("s" if rule.required > 1 else "")
        how = ""
        if others and "stop" in rule.actions:
            example = next((d for d in rule.deployments if "*" not in d), None) or "<id>"
            how = (
                f": try `/ml-stop {example}` (add `--force` if it says so), "
                f"then `/as {others[0]}` and `Approve`"
            )
        lines.append(
            f"Rule worth trying: {what} needs {needs} from {' or '.join(rule.approvers)}{how}."
        )
    return lines


async def repl(
    session: ShellSession,
    read: Callable[[str], str] = input,
    write: Callable[[str], object] = print,
) -> None:
    """Read lines until `quit` or end of input, printing each message as text."""
    write(session.intro())
    while True:
        try:
            line = await asyncio.to_thread(read, f"{session.who.user_id}> ")
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        if line.strip() in ("quit", "exit", ":q"):
            return
        for message in await session.handle(line):
            write(blocks.to_text(message))
            write("")
        sys.stdout.flush()
