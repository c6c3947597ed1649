"""Deployment ids, patterns, comma lists and cluster names: validation (pure)."""

from __future__ import annotations

import re

from bot.core.commands.tokens import MAX_ID_LENGTH, MAX_IDS, show

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_CLUSTER_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def looks_like_slack_markup(token: str) -> bool:
    return token.startswith("<") or token.startswith("&lt;")


SLACK_MARKUP = "looks like a Slack mention/link; type the deployment id as plain text"


def _check_element(element: str) -> str | None:
    """Why one element of a deployment argument (no commas) is invalid, or None."""
    shown = show(element)
    if element == "":
        return "empty deployment id"
    if looks_like_slack_markup(element):
        return f"{shown} {SLACK_MARKUP}"
    if any(ch.isspace() for ch in element):
        return f"{shown} contains whitespace; deployment ids have no spaces"
    bad = sorted({c for c in element if c in "/\\"})
    if bad or ".." in element:
        what = ", ".join(f"`{c}`" for c in bad) if bad else "`..`"
        return f"{shown} contains path characters ({what}); type just the deployment id"
    bad = [c for c in "?&=#" if c in element]
    if bad:
        what = ", ".join(f"`{c}`" for c in bad)
        return f"{shown} contains query-string characters ({what}); type just the deployment id"
    if "%" in element:
        return f"{shown} contains `%` (URL encoding?); type the deployment id as plain text"
    if any(c.isupper() for c in element):
        lowered = element.lower()
        ascii_ok = lowered != element and all(c in _ID_CHARS for c in lowered)
        hint = (
            f"; did you mean {show(lowered)}?"
            if ascii_ok and _check_element(lowered) is None
            else ""
        )
        return f"{shown} has uppercase letters; deployment ids are lowercase{hint}"
    bad = sorted({c for c in element if c not in _ID_CHARS})
    if bad:
        what = ", ".join(show(c) for c in bad)
        return (
            f"{shown} contains {what}; deployment ids use only lowercase letters, digits, "
            "`-`, `_`, `.` (and `*` as a wildcard)"
        )
    if len(element) > MAX_ID_LENGTH:
        return (
            f"{shown} is {len(element)} characters long; deployment ids are at most {MAX_ID_LENGTH}"
        )
    if set(element) == {"*"}:
        if element == "*":
            return None
        return f"{shown} is only wildcards; use `*` or `_all` alone"
    body = element[1:] if element.startswith(".") else element
    if body == "":
        return f"{shown} is not a deployment id"
    if body[0] not in _ALNUM and body[0] != "*":
        where = "after the leading `.` " if element.startswith(".") else ""
        return f"{shown} must start {where}with a lowercase letter or digit"
    if body[-1] not in _ALNUM and body[-1] != "*":
        return f"{shown} must end with a lowercase letter or digit"
    return None


def parse_expression(token: str) -> tuple[tuple[str, ...], None] | tuple[None, str]:
    """A deployment argument → (ids, None) or (None, reason)."""
    if token in ("_all", "*"):
        return (token,), None
    if looks_like_slack_markup(token.strip()):
        return None, f"{show(token)} {SLACK_MARKUP}"
    if "," in token:
        if token.count(",") >= MAX_IDS:
            return None, (
                f"the list has {token.count(',') + 1} ids; give at most {MAX_IDS} at a time"
            )
        raw = token.split(",")
        elements = [e.strip() for e in raw]
        if any(e == "" for e in elements):
            return None, (
                f"{show(token)} has an empty element; separate ids with single commas (`a,b`)"
            )
    else:
        elements = [token.strip()] if token.strip() else [token]
    for element in elements:
        if len(elements) > 1 and element in ("_all", "*"):
            return None, f"{show(element)} can only be used alone, not in a comma list"
        problem = _check_element(element)
        if problem is not None:
            return None, problem
    return tuple(dict.fromkeys(elements)), None  # duplicates dropped, order kept


def validate_id(token: str) -> str | None:
    """None if ``token`` is a valid deployment argument (id, pattern, comma list, ``_all``),
    else the reason, naming the offending part in backticks."""
    _, problem = parse_expression(token)
    return problem


def validate_cluster(name: str) -> str | None:
    """None if ``name`` is a valid cluster name, else the reason."""
    if looks_like_slack_markup(name):
        return f"cluster {show(name)} {SLACK_MARKUP.replace('deployment id', 'cluster name')}"
    if _CLUSTER_RE.fullmatch(name):
        return None
    hint = ""
    if name.lower() != name and _CLUSTER_RE.fullmatch(name.lower()):
        hint = f"; did you mean {show(name.lower())}?"
    return (
        f"cluster name {show(name)} is not valid: use lowercase letters, digits, `-` and `_`, "
        f"starting with a letter or digit, at most 64 characters{hint}"
    )
