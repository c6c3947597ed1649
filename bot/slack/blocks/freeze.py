"""Locks held by another action, and the freeze kill switch."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.core.model import ActionState, PendingAction
from bot.slack.blocks.common import (
    ID_MAX,
    Message,
    _code,
    _context,
    _ids_md,
    _join_limited,
    _make_message,
    _mention,
    _relative,
    _section,
    _slack_date,
    _verbs,
    clip,
    escape,
    literal,
)

# --------------------------------------------------------------------------- locks, freeze


def locked(
    holder: PendingAction,
    deployment_ids: Sequence[str],
    *,
    now: float,
    asker_id: str | None = None,
) -> Message:
    """A new request overlaps deployments that `holder` (proposed or executing) holds.

    Says who holds them and what to do: ask them to Cancel, or when it expires; `asker_id`
    is who asked now (their own pending action: press a button in its preview)."""
    verb = _verbs(holder).verb
    held = set(holder.deployment_ids)
    conflicts = [i for i in deployment_ids if i in held] or list(holder.deployment_ids)
    ids = _ids_md(conflicts, 1500) if conflicts else "these deployments"
    has = "has" if len(conflicts) == 1 else "have"
    mine = asker_id is not None and asker_id == holder.requester_id
    by = "you" if mine else _mention(holder.requester_id)
    plain_ids = _join_limited([escape(clip(i, ID_MAX)) for i in conflicts], 1000)
    if holder.state is ActionState.EXECUTING:
        since = holder.started_at if holder.started_at is not None else holder.created_at
        rest = f"already {has} a {verb} by {by} running since"
        when, plain_when = _slack_date(since), _utc(since)
        retry = plain_retry = "its result is posted in the channel; try again when it ends"
    else:
        rest = f"already {has} a {verb} pending by {by} since"
        expires = f"expires {_slack_date(holder.expires_at)}, {_relative(holder.expires_at - now)}"
        plain_expires = f"expires {_utc(holder.expires_at)}"
        when = f"{_slack_date(holder.created_at)} ({expires})"
        plain_when = f"{_utc(holder.created_at)} ({plain_expires})"
        if mine:
            what = f"press {_verbs(holder).title} or Cancel in that preview, or it expires at"
        else:
            what = f"ask {by} to Cancel it, or it expires at"
        retry = f"{what} {_slack_date(holder.expires_at)}"
        plain_retry = f"{what} {_utc(holder.expires_at)}"
    line = f"🔒 {ids} {rest} {when}; {retry}."
    blocks = [
        _section(line),
        _context(f"action {_code(holder.id)}", f"cluster {_code(holder.cluster)}"),
    ]
    return _make_message(f"{plain_ids} {rest} {plain_when}; {plain_retry}.", blocks)


def _utc(epoch: float) -> str:
    """`22:23 UTC` for plain-text fallbacks."""
    return time.strftime("%H:%M UTC", time.gmtime(epoch))


def _slack_datetime(epoch: float) -> str:
    """Date and time in the reader's zone (for things that may be days old)."""
    fallback = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def frozen(by: str | None, since: float | None, reason: str | None) -> Message:
    """Why a stop or start was refused: the kill switch is on."""
    when = f" since {_slack_datetime(since)}" if since is not None else ""
    plain_when = (
        f" since {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(since))}"
        if since is not None
        else ""
    )
    why = f" ({clip(literal(reason.strip()), 1000)})" if reason and reason.strip() else ""
    if by:
        who = f"by {_mention(by)}"
        how = "An admin can `/ml-stop unfreeze`."
    else:
        who = "by the config file (`freeze: true`)"
        how = "An admin has to remove `freeze: true` from the config to unfreeze."
    line = f"ML stops and starts are frozen {who}{{when}}{why}. {how}"
    return _make_message(line.format(when=plain_when), [_section("🧊 " + line.format(when=when))])


def freeze_notice(freeze: bool, by: str, reason: str | None, *, now: float) -> Message:
    """The channel notice that someone froze or unfroze stops and starts."""
    why = f": {clip(literal(reason.strip()), 1500)}" if reason and reason.strip() else ""
    if freeze:
        text = f"🧊 {_mention(by)} froze ML stops and starts{why}"
        hint = "nothing can be stopped or started until an admin runs `/ml-stop unfreeze`"
    else:
        text = f"✅ {_mention(by)} unfroze ML stops and starts{why}"
        hint = "stops and starts work again"
    blocks = [_section(text), _context(hint, f"at {_slack_date(now)}")]
    return _make_message(text, blocks)
