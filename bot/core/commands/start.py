"""``/ml-start``: one exact model id and the numbers Elasticsearch accepts."""

from __future__ import annotations

from bot.core.commands.ids import parse_expression
from bot.core.commands.requests import HelpRequest, StartRequest, UsageError
from bot.core.commands.scan import Parsed, check_values, safely, scan, too_many_positionals
from bot.core.commands.tokens import START, show, whole_number
from bot.core.commands.usage import error

MAX_ALLOCATIONS = 1000  # a guard against typos; clusters cap far lower in practice
MAX_THREADS = 32


def _exact_id(token: str, what: str) -> str | UsageError:
    ids, problem = parse_expression(token)
    if ids is None:
        return error(START, problem or f"invalid {what}")
    if len(ids) > 1 or "*" in ids[0] or ids[0] == "_all":
        return error(START, f"{show(token)}: give one exact {what}, not a pattern or list")
    return ids[0]


def _number(parsed: Parsed, flag: str, limit: int) -> int | UsageError | None:
    raw = parsed.values.get(flag)
    if raw is None:
        return None
    number = whole_number(raw, 1, limit)
    if number is None:
        return error(START, f"{show(flag)} takes a whole number from 1 to {limit}, got {show(raw)}")
    return number


def parse_start(text: str) -> StartRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-start``. Never raises."""
    return safely(START, _parse_start, text)


def _parse_start(text: str) -> StartRequest | HelpRequest | UsageError:
    parsed = scan(START, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(START, parsed)
    if problem := check_values(parsed):
        return error(START, problem)
    if len(parsed.positionals) != 1:
        if not parsed.positionals:
            return error(START, "missing the model id: `/ml-start <model_id>`")
        return error(START, too_many_positionals(parsed.positionals, parsed.values.get("--reason")))
    model_id = _exact_id(parsed.positionals[0][0], "model id")
    if isinstance(model_id, UsageError):
        return model_id
    deployment_id = None
    if "--deployment-id" in parsed.values:
        found = _exact_id(parsed.values["--deployment-id"], "deployment id")
        if isinstance(found, UsageError):
            return found
        deployment_id = found
    allocations = _number(parsed, "--allocations", MAX_ALLOCATIONS)
    if isinstance(allocations, UsageError):
        return allocations
    threads = _number(parsed, "--threads", MAX_THREADS)
    if isinstance(threads, UsageError):
        return threads
    priority = parsed.values.get("--priority")
    if problem := _start_rules(allocations, threads, priority):
        return error(START, problem)
    return StartRequest(
        model_id=model_id,
        deployment_id=deployment_id,
        allocations=allocations,
        threads=threads,
        priority=priority,
        cluster=parsed.values.get("--cluster"),
        reason=parsed.values.get("--reason"),
    )


def _start_rules(allocations: int | None, threads: int | None, priority: str | None) -> str | None:
    if priority is not None and priority not in ("normal", "low"):
        return f"`--priority` is `normal` or `low`, got {show(priority)}"
    if threads is not None and threads & (threads - 1):
        return f"`--threads` must be a power of 2 (1, 2, 4, 8, 16 or 32), got `{threads}`"
    # Elasticsearch's own messages for a low priority deployment.
    if priority == "low" and allocations not in (None, 1):
        return "[number_of_allocations] must be 1 when [priority] is low"
    if priority == "low" and threads not in (None, 1):
        return "[threads_per_allocation] must be 1 when [priority] is low"
    return None
