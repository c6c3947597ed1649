"""``/ml-stop``: a stop, or the kill switch (``freeze`` / ``unfreeze``)."""

from __future__ import annotations

from bot.core.commands.ids import parse_expression
from bot.core.commands.requests import FreezeRequest, HelpRequest, StopRequest, UsageError
from bot.core.commands.scan import Parsed, check_values, safely, scan, too_many_positionals
from bot.core.commands.tokens import STOP
from bot.core.commands.usage import error
from bot.core.timing import window_of


def parse_stop(text: str) -> StopRequest | FreezeRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-stop``. Never raises."""
    return safely(STOP, _parse_stop, text)


def _parse_stop(text: str) -> StopRequest | FreezeRequest | HelpRequest | UsageError:
    parsed = scan(STOP, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(STOP, parsed)
    if problem := check_values(parsed):
        return error(STOP, problem)
    reason = parsed.values.get("--reason")
    if len(parsed.positionals) > 1:
        return error(STOP, too_many_positionals(parsed.positionals, reason))
    if not parsed.positionals:
        return error(STOP, "missing the deployment id: `/ml-stop <deployment_id>`")
    if parsed.positionals[0][0] in ("freeze", "unfreeze"):
        return _freeze(parsed)
    ids, problem = parse_expression(parsed.positionals[0][0])
    if ids is None:
        return error(STOP, problem or "invalid deployment id")
    window = window_of(parsed.values.get("--for"), parsed.values.get("--until"))
    if isinstance(window, str):
        return error(STOP, window)
    return StopRequest(
        ids=ids,
        force="force" in parsed.bools,
        finish_pending_work="finish_pending_work" in parsed.bools,
        allow_no_match="no_allow_no_match" not in parsed.bools,
        cluster=parsed.values.get("--cluster"),
        reason=reason,
        window=window,
    )


def _freeze(parsed: Parsed) -> FreezeRequest | UsageError:
    word = parsed.positionals[0][0]
    timing = ("--for", "--until") if word == "freeze" else ()
    extra = sorted(parsed.bools) + [v for v in parsed.values if v not in ("--reason", *timing)]
    if extra:
        takes = (
            "`--reason TEXT`, `--for DURATION` or `--until TIME`" if timing else "`--reason TEXT`"
        )
        return error(STOP, f"`/ml-stop {word}` takes only {takes}")
    window = window_of(parsed.values.get("--for"), parsed.values.get("--until"))
    if isinstance(window, str):
        return error(STOP, window)
    return FreezeRequest(
        freeze=word == "freeze", reason=parsed.values.get("--reason"), window=window
    )
