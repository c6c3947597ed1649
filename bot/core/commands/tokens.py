"""Command names, input bounds and the tokenizer: text → shell words (pure).

Typographic quotes, dashes and Unicode spaces are read the way the user meant them before
``shlex`` splits the text; ``show`` renders any token safely between backticks.
"""

from __future__ import annotations

import re
import shlex

STOP = "/ml-stop"
DEPLOYMENTS = "/ml-deployments"
START = "/ml-start"
AUDIT = "/ml-audit"
SCALE = "/ml-scale"
STATUS = "/ml-status"
COMMANDS: tuple[str, ...] = (STOP, DEPLOYMENTS, START, AUDIT, SCALE, STATUS)

MAX_ID_LENGTH = 64  # Elasticsearch's MlStrings.ID_LENGTH_LIMIT
MAX_IDS = 50  # ids in one comma list
MAX_REASON_LENGTH = 500
MAX_TEXT_LENGTH = 4000  # room for MAX_IDS ids of MAX_ID_LENGTH, a reason and every flag

_FLAG_LIKE_RE = re.compile(r"--?[A-Za-z]")


def show(token: str, limit: int = 70) -> str:
    """A token as it appears between backticks in a message."""
    out: list[str] = []
    for ch in token[: limit + 1]:  # the rest is cut anyway; a huge token costs nothing
        if ch == "`":
            out.append("'")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    text = "".join(out)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`"


def whole_number(raw: str, low: int, high: int) -> int | None:
    """`raw` as a whole number from `low` to `high`, else None. ASCII digits only: Python's
    `int()` also reads full-width and Arabic-Indic digits, which nobody types on purpose."""
    if not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > len(str(high)):
        return None
    number = int(raw)
    return number if low <= number <= high else None


def is_flag_like(token: str) -> bool:
    return bool(_FLAG_LIKE_RE.match(token))


_OPEN_DOUBLE = "\u201c\u201d\u201e\u201f"  # typographic double quotes
_SINGLE_TYPO = "\u2018\u2019\u201a\u201b"  # typographic single quotes
_DASHES = "\u2014\u2013"  # em dash, en dash


def _normalize(text: str) -> str:
    """Rewrite typographic quotes/dashes and Unicode spaces outside plain quotes so that
    ``shlex`` reads the text the way the user meant it."""
    out: list[str] = []
    state = ""  # "", "'", '"', "'t" (opened by U+2018), '"t' (opened by U+201C)
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        prev = text[i - 1] if i > 0 else " "
        nxt = text[i + 1] if i + 1 < n else " "
        if state == "":
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch in "'\"":
                state = ch
                out.append(ch)
            elif ch in _OPEN_DOUBLE:
                state = '"t'
                out.append('"')
            elif ch in _SINGLE_TYPO:
                if prev.isalnum() and nxt.isalnum():
                    out.append(ch)  # an apostrophe, as in a phone-typed don't
                else:
                    state = "'t"
                    out.append("'")
            elif ch.isspace():
                out.append(" ")
            elif ch in _DASHES and (prev.isspace() or i == 0) and nxt.isalpha():
                out.append("--")
            else:
                out.append(ch)
        elif state == "'":
            if ch == "'":
                state = ""
            out.append(ch)
        elif state == "'t":
            if ch == "'" or (ch in _SINGLE_TYPO and not (prev.isalnum() and nxt.isalnum())):
                state = ""
                out.append("'")
            else:
                out.append(ch)
        else:  # inside double quotes, plain or typographic
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            if ch == '"' or (state == '"t' and ch in _OPEN_DOUBLE):
                state = ""
                out.append('"')
            else:
                out.append(ch)
        i += 1
    return "".join(out)


def split_words(text: str) -> list[str] | str:
    """Shell words, or the reason they cannot be split."""
    try:
        return shlex.split(_normalize(text), posix=True)
    except ValueError as exc:
        if "escaped" in str(exc):
            return "the text ends with a lone `\\`; remove it or quote the text"
        return (
            "unbalanced quote: a `\"` or `'` is opened but never closed "
            '(an apostrophe needs quotes around the text, e.g. --reason "don\'t stop")'
        )
