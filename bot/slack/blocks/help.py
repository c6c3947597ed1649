"""Usage errors, help, denials and plain error messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.core.commands import UsageError, usage

if TYPE_CHECKING:  # only its attributes are read; the module graph stays commands → blocks
    from bot.core.policy import Decision, Holder
from bot.slack.blocks.common import (
    EXPRESSION_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    Message,
    _code,
    _context,
    _header,
    _ids_md,
    _join_limited,
    _make_message,
    _section,
    clip,
    escape,
)

# --------------------------------------------------------------------------- errors, help


def usage_error(err: UsageError) -> Message:
    """What is wrong (bold), then the usage line in code."""
    what = clip(escape(err.message.strip() or "That command is not valid."), 1000)
    line = escape(clip(err.usage, 1500)).replace("```", "'''")
    blocks = [_section(f"*{what}*\n```{line}```")]
    command = err.command.strip()
    if command.startswith("/") and " " not in command:
        blocks.append(_context(f"{_code(command + ' help')} shows every option."))
    return _make_message(f"{what} Usage: {line}", blocks)


def help_message(command: str) -> Message:
    """The full usage text of `/ml-stop` or `/ml-deployments`."""
    name = "/" + command.lstrip("/")
    text = escape(usage(command)).replace("```", "'''")
    chunks = [f"```{chunk}```" for chunk in _line_chunks(text, SECTION_TEXT_MAX - 6)]
    blocks = [_header(f"{name} — help"), *(_section(c) for c in chunks[: MAX_BLOCKS - 1])]
    return _make_message(f"Help for {name}: {text}", blocks)


def _line_chunks(text: str, limit: int) -> list[str]:
    """Split text at line breaks into chunks of at most `limit` characters."""
    chunks: list[str] = []
    for line in text.splitlines() or [""]:
        line = clip(line, limit)
        if chunks and len(chunks[-1]) + 1 + len(line) <= limit:
            chunks[-1] += "\n" + line
        else:
            chunks.append(line)
    return chunks


def denied(decision: Decision, command_text: str) -> Message:
    """Says the caller can't run `/ml-stop …`, why in one line, and who could help."""
    text = command_text.strip()
    typed = _code(text, 300) if text.startswith("/") else clip(escape(text), 300)
    why = clip(escape(decision.explanation), 1000)
    helpers = helpers_md(decision.helpers)
    blocks = [_section(f"🚫 You can't run {typed}\n{why}\n{helpers}")]
    return _make_message(f"You can't run {typed}: {why}; {helpers}", blocks)


_SLACK_ID = re.compile(r"[A-Z0-9]{2,40}")


def _ref(prefix: str, slack_id: str) -> str:
    """`<@U…>`, `<!subteam^S…>`, `<#C…>` for a Slack id; anything else as code."""
    if not _SLACK_ID.fullmatch(slack_id):
        return _code(slack_id, 60)
    return f"<{prefix}{slack_id}>"


def helpers_md(helpers: Sequence[Holder]) -> str:
    """`ask one of <@a>, <!subteam^S> (ml-admin), or run it in <#C> (ml-viewer)`."""
    if not helpers:
        return (
            "No role in the role map allows this: whoever maintains the bot's config can add one."
        )
    ask: dict[str, list[str]] = {}
    places: dict[str, list[str]] = {}
    for h in helpers:
        where = " in " + ", ".join(_ref("#", c) for c in h.channels) if h.channels else ""
        if h.anyone:
            places.setdefault(h.role, []).extend(_ref("#", c) for c in h.channels)
            continue
        people = [_ref("@", u) for u in h.users] + [_ref("!subteam^", g) for g in h.usergroups]
        ask.setdefault(h.role, []).extend(p + where for p in people)
    parts = [f"{_join_limited(v, 600)} ({escape(role)})" for role, v in ask.items()]
    runs = [f"{_join_limited(v, 300)} ({escape(role)})" for role, v in places.items()]
    text = f"Ask one of {'; or '.join(parts)}" if parts else ""
    if runs:
        text += ("; or run" if text else "Run") + f" it in {'; or '.join(runs)}"
    return clip(text, 1500) + "."


def error(message: str, *, error_id: str | None = None, hint: str | None = None) -> Message:
    """An error a person can act on; `error_id` names an unexpected failure in the logs."""
    what = clip(escape(message.strip() or "Something went wrong."), 2500)
    notes = [
        escape(clip(hint, 1500)) if hint else "",
        f"error id {_code(error_id)}" if error_id else "",
    ]
    blocks = [_section(f"⚠️ {what}")]
    if any(notes):
        blocks.append(_context(*notes))
    suffix = f" (error id {error_id})" if error_id else ""
    return _make_message(f"{what}{escape(suffix)}", blocks)


def nothing_matched(
    expression: str, cluster: str, unmatched: Sequence[str], hints: Sequence[str]
) -> Message:
    """A typo'd id or an empty wildcard: clearly says nothing was stopped."""
    what = f"No deployment matches {_code(expression, EXPRESSION_MAX)} on {_code(cluster)}"
    lines = [f"❓ *{what}.* Nothing was stopped."]
    if unmatched:
        lines.append(f"Not found: {_ids_md(unmatched, 1200)}")
    lines += [f"• {clip(escape(h), 500)}" for h in hints[:5]]
    lines.append(f"{_code(f'/ml-deployments --cluster {cluster}', 200)} lists what exists.")
    return _make_message(f"{what}: nothing was stopped.", [_section("\n".join(lines))])
