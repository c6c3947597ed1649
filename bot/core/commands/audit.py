"""``/ml-audit``: which actions to list, how far back, in which format."""

from __future__ import annotations

import re

from bot.core.commands.requests import DEFAULT_AUDIT_SINCE, AuditRequest, HelpRequest, UsageError
from bot.core.commands.scan import safely, scan
from bot.core.commands.tokens import AUDIT, show
from bot.core.commands.usage import error

MAX_AUDIT_SINCE = 90 * 24 * 3600
_DURATION_RE = re.compile(r"(\d+)([smhd])", re.ASCII)  # ASCII digits only, as every number
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_audit(text: str) -> AuditRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-audit``. Never raises."""
    return safely(AUDIT, _parse_audit, text)


def _parse_audit(text: str) -> AuditRequest | HelpRequest | UsageError:
    if not text.strip():
        return AuditRequest()
    parsed = scan(AUDIT, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return error(AUDIT, parsed)
    if parsed.positionals:
        word = show(parsed.positionals[0][0])
        return error(AUDIT, f"unexpected {word}; `/ml-audit` takes only flags")
    since = DEFAULT_AUDIT_SINCE
    if "--since" in parsed.values:
        raw = parsed.values["--since"]
        found = _DURATION_RE.fullmatch(raw.strip().lower())
        if found is None:
            return error(
                AUDIT, f"`--since` takes a duration like `30m`, `2h` or `7d`, got {show(raw)}"
            )
        since = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        if not 0 < since <= MAX_AUDIT_SINCE:
            return error(AUDIT, "`--since` must be more than 0 and at most `90d`")
    fmt = parsed.values.get("--format", "text")
    if fmt not in ("text", "markdown"):
        return error(AUDIT, f"`--format` is `text` or `markdown`, got {show(fmt)}")
    incident = parsed.values.get("--incident")
    if incident is not None and len(incident) > 80:
        return error(AUDIT, "`--incident` takes an incident id of at most 80 characters")
    return AuditRequest(incident=incident, since_seconds=since, markdown=fmt == "markdown")
