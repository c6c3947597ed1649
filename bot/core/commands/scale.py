"""``/ml-scale``: new allocations or adaptive settings; ``/ml-status``: health (read-only).

Elasticsearch's own rules that need no cluster state are applied here, with its texts, so
the error arrives before any call: a positive ``--allocations``, ``--min`` ≥ 0, ``--max`` ≥ 1,
min ≤ max, and no ``--allocations`` with ``--adaptive on``. The rules that depend on the
deployment (merged adaptive settings, state) are in ``bot.core.scale``.
"""

from __future__ import annotations

from bot.core.commands.ids import parse_expression
from bot.core.commands.requests import HelpRequest, ScaleRequest, StatusRequest, UsageError
from bot.core.commands.scan import Parsed, check_values, safely, scan, too_many_positionals
from bot.core.commands.tokens import SCALE, STATUS, show, whole_number
from bot.core.commands.usage import error
from bot.core.timing import window_of

MAX_ALLOCATIONS = 1000  # a guard against typos; clusters cap far lower in practice
_ON = {"on": True, "true": True, "off": False, "false": False}


def parse_scale(text: str) -> ScaleRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-scale``. Never raises."""
    return safely(SCALE, _parse_scale, text)


def _count(parsed: Parsed, flag: str, low: int, rule: str) -> int | str | None:
    """A whole number from `low` to MAX_ALLOCATIONS, or the problem (ES's text first)."""
    raw = parsed.values.get(flag)
    if raw is None:
        return None
    number = whole_number(raw, low, MAX_ALLOCATIONS)
    if number is None:
        hint = ""
        if flag == "--allocations" and whole_number(raw, 0, 0) == 0:
            hint = "; to let it scale to zero when idle use `--adaptive on --min 0`"
        return (
            f"{rule} (`{flag}` takes a whole number from {low} to {MAX_ALLOCATIONS}, "
            f"got {show(raw)}){hint}"
        )
    return number


def _parse_scale(text: str) -> ScaleRequest | HelpRequest | UsageError:
    parsed = scan(SCALE, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(SCALE, parsed)
    if problem := check_values(parsed):
        return error(SCALE, problem)
    reason = parsed.values.get("--reason")
    if len(parsed.positionals) > 1:
        return error(SCALE, too_many_positionals(parsed.positionals, reason))
    if not parsed.positionals:
        return error(
            SCALE, "missing the deployment id: `/ml-scale <deployment_id> --allocations N`"
        )
    ids, problem = parse_expression(parsed.positionals[0][0])
    if ids is None:
        return error(SCALE, problem or "invalid deployment id")
    numbers = [
        _count(parsed, "--allocations", 1, "[number_of_allocations] must be a positive integer"),
        _count(parsed, "--min", 0, "[min_number_of_allocations] must be a non-negative integer"),
        _count(parsed, "--max", 1, "[max_number_of_allocations] must be a positive integer"),
    ]
    for found in numbers:
        if isinstance(found, str):
            return error(SCALE, found)
    allocations, low, high = (n if isinstance(n, int) else None for n in numbers)
    adaptive: bool | None = None
    if "--adaptive" in parsed.values:
        word = parsed.values["--adaptive"].lower()
        if word not in _ON:
            return error(SCALE, f"`--adaptive` is `on` or `off`, got {show(word)}")
        adaptive = _ON[word]
    if problem := _combination(allocations, adaptive, low, high):
        return error(SCALE, problem)
    window = window_of(parsed.values.get("--for"), parsed.values.get("--until"))
    if isinstance(window, str):
        return error(SCALE, window)
    return ScaleRequest(
        ids=ids,
        allocations=allocations,
        adaptive=adaptive,
        min_allocations=low,
        max_allocations=high,
        cluster=parsed.values.get("--cluster"),
        reason=reason,
        window=window,
    )


def _combination(
    allocations: int | None, adaptive: bool | None, low: int | None, high: int | None
) -> str | None:
    """Which flags go together (Elasticsearch's texts where it has one)."""
    bounds = low is not None or high is not None
    if allocations is None and adaptive is None and not bounds:
        return "say what to change: `--allocations N`, or `--adaptive on [--min N] [--max M]`"
    if bounds and adaptive is not True:
        given = (
            "`--min`/`--max`"
            if low is not None and high is not None
            else ("`--min`" if low is not None else "`--max`")
        )
        if adaptive is False:
            return f"{given} bound adaptive allocations; they do not go with `--adaptive off`"
        return f"{given} bound adaptive allocations: add `--adaptive on`"
    if adaptive is True and allocations is not None:
        return (
            "[number_of_allocations] cannot be set if adaptive allocations is enabled; "
            "use `--adaptive on --min N --max M`, or `--adaptive off --allocations N`"
        )
    if low is not None and high is not None and low > high:
        return (
            "[min_number_of_allocations] must not be larger than [max_number_of_allocations] "
            f"(got `--min {low} --max {high}`)"
        )
    return None


def parse_status(text: str) -> StatusRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-status``. Never raises."""
    return safely(STATUS, _parse_status, text)


def _parse_status(text: str) -> StatusRequest | HelpRequest | UsageError:
    if not text.strip():
        return StatusRequest()
    parsed = scan(STATUS, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(STATUS, parsed)
    if problem := check_values(parsed):
        return error(STATUS, problem)
    if len(parsed.positionals) > 1:
        return error(STATUS, too_many_positionals(parsed.positionals, None))
    pattern: str | None = None
    if parsed.positionals:
        ids, problem = parse_expression(parsed.positionals[0][0])
        if ids is None:
            return error(STATUS, problem or "invalid deployment id")
        pattern = ",".join(ids)
    return StatusRequest(pattern=pattern, cluster=parsed.values.get("--cluster"))
