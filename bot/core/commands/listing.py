"""``/ml-deployments``: an optional pattern and a cluster (read-only)."""

from __future__ import annotations

from bot.core.commands.ids import parse_expression
from bot.core.commands.requests import HelpRequest, ListRequest, UsageError
from bot.core.commands.scan import check_values, safely, scan, too_many_positionals
from bot.core.commands.tokens import DEPLOYMENTS
from bot.core.commands.usage import error


def parse_deployments(text: str) -> ListRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-deployments``. Never raises."""
    return safely(DEPLOYMENTS, _parse_deployments, text)


def _parse_deployments(text: str) -> ListRequest | HelpRequest | UsageError:
    if not text.strip():
        return ListRequest()
    parsed = scan(DEPLOYMENTS, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(DEPLOYMENTS, parsed)
    if problem := check_values(parsed):
        return error(DEPLOYMENTS, problem)
    if len(parsed.positionals) > 1:
        return error(DEPLOYMENTS, too_many_positionals(parsed.positionals, None))
    pattern: str | None = None
    if parsed.positionals:
        ids, problem = parse_expression(parsed.positionals[0][0])
        if ids is None:
            return error(DEPLOYMENTS, problem or "invalid pattern")
        pattern = ",".join(ids)
    return ListRequest(pattern=pattern, cluster=parsed.values.get("--cluster"))
