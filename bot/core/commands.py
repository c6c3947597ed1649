"""Slash-command text → typed request (pure: no I/O, no Slack).

``parse(command, text)`` turns what Slack sends for ``/ml-stop`` and ``/ml-deployments``
into a :class:`StopRequest`, :class:`ListRequest`, :class:`HelpRequest` or
:class:`UsageError`. It never raises, whatever the text.

Decisions where the contract is silent:

* Words are split the POSIX-shell way (``shlex``). Typographic quotes (U+201C/U+201D
  double, U+2018/U+2019 single, as macOS/iOS autocorrect inserts them) count as plain
  quotes when they are outside plain quotes; a U+2019 between two letters or digits
  (don't typed on a phone) is an apostrophe, not a quote. Inside plain quotes they are
  literal, so any reason text survives ``shlex.quote``. Unicode spaces outside quotes
  separate words; an em/en dash at the start of a word (an autocorrected ``--force``) is
  read as ``--``.
* ``--reason`` takes exactly one shell word: a multi-word reason must be quoted, and an
  unquoted one is a usage error that shows the quoted form. ``--reason=TEXT`` also works
  (and is the way to give a reason that itself looks like a flag). The reason is kept
  verbatim (no trimming); an empty or blank reason is an error; at most 500 characters.
* ``-h``/``--help`` anywhere (as a flag, not as a value), ``help`` as the only word, and
  empty text ask for help. A deployment literally named ``help`` can still be stopped
  with any flag after it (``/ml-stop help --cluster prod``). ``/ml-deployments`` with no
  text lists everything (its pattern is optional), so only the help words show its help.
* Any word starting with ``-`` is a flag. Unknown flags get the nearest known one
  (short forms such as ``-f``, prefixes such as ``--finish-pending``, then ``difflib``).
  A value flag followed by something that looks like a flag (``--x``/``-x``) is missing
  its value; ``--reason -5`` is fine.
* Comma lists: ``a,b`` is one word. A quoted list may have spaces after the commas
  (``"a, b"``); the elements are trimmed. ``a, b`` as two words is an error suggesting
  ``a,b``. Duplicates are dropped, order kept. ``_all`` and a bare ``*`` are only
  allowed alone; an element made only of ``*`` other than a lone ``*`` is an error.
* Options a request needs granted: ``_all`` and bare ``*`` need ``all`` only; otherwise a
  ``*`` anywhere needs ``wildcard`` and several ids need ``list``.
* ``validate_id`` checks a whole deployment argument (one id, pattern, comma list or
  ``_all``), exactly as ``/ml-stop`` would accept it.
* ``/ml-stop freeze`` and ``/ml-stop unfreeze`` (optionally ``--reason TEXT``) are the kill
  switch; ``freeze`` and ``unfreeze`` are therefore reserved words, not deployment ids.
* ``/ml-start <model_id>`` takes one exact id (no wildcard, list or ``_all``); numbers are
  validated the way Elasticsearch does (threads a power of two up to 32; a low priority
  deployment has one allocation and one thread), so the error arrives before any call.
* Bounds, checked before any tokenizing so one huge command cannot stall the server:
  the text is at most ``MAX_TEXT_LENGTH`` (4,000) characters and a comma list at most
  ``MAX_IDS`` (50) ids; an id is at most ``MAX_ID_LENGTH`` (64, Elasticsearch's
  ``MlStrings.ID_LENGTH_LIMIT``). Slack documents no limit for slash-command text (a
  message's text is truncated at 40,000); 4,000 holds 50 ids of 64 characters, a reason of
  500 and every flag. Beyond a bound the usage error names it.
* Text is taken as received: Slack's ``&amp;``/``&lt;``/``&gt;`` escapes are not undone
  here (``&`` in an id is an error anyway; a reason keeps them verbatim).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "COMMANDS",
    "MAX_IDS",
    "MAX_ID_LENGTH",
    "MAX_REASON_LENGTH",
    "MAX_TEXT_LENGTH",
    "USAGE_LINES",
    "AuditRequest",
    "FreezeRequest",
    "HelpRequest",
    "ListRequest",
    "StartRequest",
    "StopRequest",
    "UsageError",
    "parse",
    "parse_deployments",
    "parse_stop",
    "usage",
    "validate_cluster",
    "validate_id",
]

STOP = "/ml-stop"
DEPLOYMENTS = "/ml-deployments"
START = "/ml-start"
AUDIT = "/ml-audit"
COMMANDS: tuple[str, ...] = (STOP, DEPLOYMENTS, START, AUDIT)
DEFAULT_AUDIT_SINCE = 24 * 3600
MAX_AUDIT_SINCE = 90 * 24 * 3600
_DURATION_RE = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_ALLOCATIONS = 1000  # a guard against typos; clusters cap far lower in practice
MAX_THREADS = 32

MAX_ID_LENGTH = 64  # Elasticsearch's MlStrings.ID_LENGTH_LIMIT
MAX_IDS = 50  # ids in one comma list
MAX_REASON_LENGTH = 500
MAX_TEXT_LENGTH = 4000  # room for MAX_IDS ids of MAX_ID_LENGTH, a reason and every flag
_R = TypeVar("_R")

USAGE_LINES: dict[str, str] = {
    STOP: (
        "/ml-stop <deployment_id> [--force] [--finish-pending-work] "
        "[--allow-no-match | --no-allow-no-match] [--cluster NAME] [--reason TEXT]"
    ),
    DEPLOYMENTS: "/ml-deployments [pattern] [--cluster NAME]",
    START: (
        "/ml-start <model_id> [--deployment-id ID] [--allocations N] [--threads N] "
        "[--priority normal|low] [--cluster NAME] [--reason TEXT]"
    ),
    AUDIT: "/ml-audit [--incident ID] [--since 2h] [--format text|markdown]",
}


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class StopRequest:
    """``/ml-stop``: what to stop, how, where, and why."""

    ids: tuple[str, ...]
    force: bool = False
    finish_pending_work: bool = False
    allow_no_match: bool = True
    cluster: str | None = None
    reason: str | None = None

    @property
    def expression(self) -> str:
        """What the user asked for, e.g. ``"elser-*"`` or ``"a,b"``."""
        return ",".join(self.ids)

    @property
    def is_wildcard(self) -> bool:
        return any("*" in i for i in self.ids)

    @property
    def is_list(self) -> bool:
        return len(self.ids) > 1

    @property
    def is_all(self) -> bool:
        return self.ids in (("_all",), ("*",))

    def options(self) -> frozenset[str]:
        """The policy options this request needs granted."""
        opts: set[str] = set()
        if self.force:
            opts.add("force")
        if self.finish_pending_work:
            opts.add("finish_pending_work")
        if self.is_all:
            opts.add("all")
        else:
            if self.is_wildcard:
                opts.add("wildcard")
            if self.is_list:
                opts.add("list")
        return frozenset(opts)

    def flags_text(self) -> str:
        """Canonical flags (no cluster, no reason), e.g. ``"--force --no-allow-no-match"``."""
        flags: list[str] = []
        if self.force:
            flags.append("--force")
        if self.finish_pending_work:
            flags.append("--finish-pending-work")
        if not self.allow_no_match:
            flags.append("--no-allow-no-match")
        return " ".join(flags)

    def as_text(self) -> str:
        """The canonical command text; ``parse_stop(req.as_text()) == req``."""
        parts = [self.expression]
        if flags := self.flags_text():
            parts.append(flags)
        if self.cluster is not None:
            parts.append(f"--cluster {shlex.quote(self.cluster)}")
        if self.reason is not None:
            if _is_flag_like(self.reason):
                parts.append(f"--reason={shlex.quote(self.reason)}")
            else:
                parts.append(f"--reason {shlex.quote(self.reason)}")
        return " ".join(parts)


@dataclass(frozen=True)
class ListRequest:
    """``/ml-deployments [pattern] [--cluster NAME]``."""

    pattern: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class StartRequest:
    """``/ml-start <model_id> [--deployment-id ID] [--allocations N] ...``."""

    model_id: str
    deployment_id: str | None = None
    allocations: int | None = None
    threads: int | None = None
    priority: str | None = None
    cluster: str | None = None
    reason: str | None = None

    @property
    def target_id(self) -> str:
        """The deployment id Elasticsearch will use (the model id by default)."""
        return self.deployment_id or self.model_id


@dataclass(frozen=True)
class AuditRequest:
    """``/ml-audit``: the bot's actions in this channel (or an incident), newest last."""

    incident: str | None = None
    since_seconds: int = DEFAULT_AUDIT_SINCE
    markdown: bool = False


@dataclass(frozen=True)
class FreezeRequest:
    """``/ml-stop freeze`` / ``/ml-stop unfreeze``: the kill switch."""

    freeze: bool
    reason: str | None = None


@dataclass(frozen=True)
class HelpRequest:
    command: str


@dataclass(frozen=True)
class UsageError:
    command: str
    message: str
    usage: str


Request = (
    StopRequest
    | ListRequest
    | StartRequest
    | FreezeRequest
    | AuditRequest
    | HelpRequest
    | UsageError
)


# --------------------------------------------------------------------------- validation

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.*")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_CLUSTER_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_FLAG_LIKE_RE = re.compile(r"--?[A-Za-z]")


def _show(token: str, limit: int = 70) -> str:
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


def _is_flag_like(token: str) -> bool:
    return bool(_FLAG_LIKE_RE.match(token))


def _looks_like_slack_markup(token: str) -> bool:
    return token.startswith("<") or token.startswith("&lt;")


_SLACK_MARKUP = "looks like a Slack mention/link; type the deployment id as plain text"


def _check_element(element: str) -> str | None:
    """Why one element of a deployment argument (no commas) is invalid, or None."""
    shown = _show(element)
    if element == "":
        return "empty deployment id"
    if _looks_like_slack_markup(element):
        return f"{shown} {_SLACK_MARKUP}"
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
            f"; did you mean {_show(lowered)}?"
            if ascii_ok and _check_element(lowered) is None
            else ""
        )
        return f"{shown} has uppercase letters; deployment ids are lowercase{hint}"
    bad = sorted({c for c in element if c not in _ID_CHARS})
    if bad:
        what = ", ".join(_show(c) for c in bad)
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


def _parse_expression(token: str) -> tuple[tuple[str, ...], None] | tuple[None, str]:
    """A deployment argument → (ids, None) or (None, reason)."""
    if token in ("_all", "*"):
        return (token,), None
    if _looks_like_slack_markup(token.strip()):
        return None, f"{_show(token)} {_SLACK_MARKUP}"
    if "," in token:
        if token.count(",") >= MAX_IDS:
            return None, (
                f"the list has {token.count(',') + 1} ids; give at most {MAX_IDS} at a time"
            )
        raw = token.split(",")
        elements = [e.strip() for e in raw]
        if any(e == "" for e in elements):
            return None, (
                f"{_show(token)} has an empty element; separate ids with single commas (`a,b`)"
            )
    else:
        elements = [token.strip()] if token.strip() else [token]
    for element in elements:
        if len(elements) > 1 and element in ("_all", "*"):
            return None, f"{_show(element)} can only be used alone, not in a comma list"
        problem = _check_element(element)
        if problem is not None:
            return None, problem
    return tuple(dict.fromkeys(elements)), None  # duplicates dropped, order kept


def validate_id(token: str) -> str | None:
    """None if ``token`` is a valid deployment argument (id, pattern, comma list, ``_all``),
    else the reason, naming the offending part in backticks."""
    _, problem = _parse_expression(token)
    return problem


def validate_cluster(name: str) -> str | None:
    """None if ``name`` is a valid cluster name, else the reason."""
    if _looks_like_slack_markup(name):
        return f"cluster {_show(name)} {_SLACK_MARKUP.replace('deployment id', 'cluster name')}"
    if _CLUSTER_RE.fullmatch(name):
        return None
    hint = ""
    if name.lower() != name and _CLUSTER_RE.fullmatch(name.lower()):
        hint = f"; did you mean {_show(name.lower())}?"
    return (
        f"cluster name {_show(name)} is not valid: use lowercase letters, digits, `-` and `_`, "
        f"starting with a letter or digit, at most 64 characters{hint}"
    )


# --------------------------------------------------------------------------- tokenizing

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


def _split(text: str) -> list[str] | str:
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


# --------------------------------------------------------------------------- flags

_BOOL_FLAGS: dict[str, dict[str, str]] = {
    STOP: {
        "--force": "force",
        "--finish-pending-work": "finish_pending_work",
        "--allow-no-match": "allow_no_match",
        "--no-allow-no-match": "no_allow_no_match",
    },
    DEPLOYMENTS: {},
    START: {},
    AUDIT: {},
}
_VALUE_FLAGS: dict[str, tuple[str, ...]] = {
    STOP: ("--cluster", "--reason"),
    DEPLOYMENTS: ("--cluster",),
    START: (
        "--deployment-id",
        "--allocations",
        "--threads",
        "--priority",
        "--cluster",
        "--reason",
    ),
    AUDIT: ("--incident", "--since", "--format"),
}
_HELP_FLAGS = ("-h", "--help")
_SHORT_ALIASES = {
    "-f": "--force",
    "-c": "--cluster",
    "-r": "--reason",
    "-w": "--finish-pending-work",
}


def _known_flags(command: str) -> list[str]:
    return [*_BOOL_FLAGS[command], *_VALUE_FLAGS[command], "--help"]


def _suggest_flag(command: str, name: str) -> str | None:
    known = _known_flags(command)
    lowered = name.lower().replace("_", "-")
    if lowered in known:
        return lowered
    alias = _SHORT_ALIASES.get(name)
    if alias in known:
        return alias
    if lowered.startswith("-") and not lowered.startswith("--") and "--" + lowered[1:] in known:
        return "--" + lowered[1:]
    prefixed = [k for k in known if len(lowered) > 3 and k.startswith(lowered)]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(lowered, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_flag(command: str, name: str) -> str:
    if command == DEPLOYMENTS and name in _known_flags(STOP):
        return f"{_show(name)} is a /ml-stop flag; /ml-deployments takes only `--cluster NAME`"
    suggestion = _suggest_flag(command, name)
    if suggestion is not None:
        return f"unknown flag {_show(name)}; did you mean `{suggestion}`?"
    known = ", ".join(f"`{k}`" for k in _known_flags(command))
    return f"unknown flag {_show(name)} (known flags: {known})"


@dataclass
class _Parsed:
    positionals: list[tuple[str, bool]]  # (word, follows the --reason value)
    bools: set[str]
    values: dict[str, str]


def _scan(command: str, text: str) -> _Parsed | HelpRequest | str:
    """Split and classify words; a str result is the usage error message."""
    if not text.strip():
        return HelpRequest(command)
    words = _split(text)
    if isinstance(words, str):
        return words
    if not words or words == ["help"] or any(w in _HELP_FLAGS for w in words):
        return HelpRequest(command)
    bool_flags = _BOOL_FLAGS[command]
    value_flags = _VALUE_FLAGS[command]
    parsed = _Parsed(positionals=[], bools=set(), values={})
    after_reason = False
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not (word.startswith("-") and len(word) > 1):
            parsed.positionals.append((word, after_reason))
            continue
        after_reason = False
        name, eq, inline = word.partition("=")
        if name in bool_flags:
            if eq:
                hint = "; use `--no-allow-no-match` to turn it off" if "allow" in name else ""
                return f"{_show(name)} takes no value (got {_show(word)}){hint}"
            key = bool_flags[name]
            if key in parsed.bools:
                return f"{_show(name)} is given more than once"
            parsed.bools.add(key)
            if {"allow_no_match", "no_allow_no_match"} <= parsed.bools:
                return (
                    "`--allow-no-match` and `--no-allow-no-match` contradict each other; pick one"
                )
        elif name in value_flags:
            if name in parsed.values:
                return f"{_show(name)} is given more than once"
            if eq:
                value = inline
            elif i < len(words) and not _is_flag_like(words[i]):
                value = words[i]
                i += 1
            else:
                what = "TEXT" if name == "--reason" else "NAME"
                got = f" but got the flag {_show(words[i])}" if i < len(words) else ""
                return f"{_show(name)} needs a value{got}: `{name} {what}`"
            if value == "":
                what = "TEXT" if name == "--reason" else "NAME"
                return f"{_show(name)} needs a value: `{name} {what}`"
            parsed.values[name] = value
            after_reason = name == "--reason"
        else:
            return _unknown_flag(command, name)
    return parsed


def _check_values(parsed: _Parsed) -> str | None:
    cluster = parsed.values.get("--cluster")
    if cluster is not None and (problem := validate_cluster(cluster)) is not None:
        return problem
    reason = parsed.values.get("--reason")
    if reason is not None:
        if not reason.strip():
            return '`--reason` needs some text: `--reason "why you are stopping it"`'
        if len(reason) > MAX_REASON_LENGTH:
            return (
                f"the reason is {len(reason)} characters long; "
                f"keep it to {MAX_REASON_LENGTH} or fewer"
            )
    return None


def _too_many_positionals(positionals: list[tuple[str, bool]], reason: str | None) -> str:
    words = [w for w, _ in positionals]
    continuation = [w for w, after in positionals if after]
    if continuation and reason is not None:
        full = " ".join([reason, *continuation])
        return (
            "`--reason` takes one word; put a multi-word reason in quotes: "
            f"{_show('--reason ' + _quote_for_user(full), 200)}"
        )
    for word in words:
        if _looks_like_slack_markup(word):
            return f"{_show(word)} {_SLACK_MARKUP}"
    if any(w.endswith(",") or w.startswith(",") for w in words):
        joined = ",".join(p for w in words for p in w.split(",") if p)
        return f"{_show(' '.join(words))}: no spaces in a comma list; write {_show(joined)}"
    shown = ", ".join(_show(w) for w in words)
    return (
        f"more than one deployment id ({shown}); "
        f"separate several ids with commas ({_show(','.join(words))})"
    )


def _quote_for_user(text: str) -> str:
    if '"' in text or "\\" in text:
        return shlex.quote(text)
    return f'"{text}"'


def _error(command: str, message: str) -> UsageError:
    return UsageError(command=command, message=message, usage=USAGE_LINES[command])


# --------------------------------------------------------------------------- parsers


def _safely(command: str, parser: Callable[[str], _R], text: object) -> _R | UsageError:
    """Run a parser on any input; a bug in it becomes a usage error, never an exception."""
    if isinstance(text, str) and len(text) > MAX_TEXT_LENGTH:
        return _error(
            command,
            f"the command text is {len(text):,} characters long; "
            f"at most {MAX_TEXT_LENGTH:,} are accepted",
        )
    try:
        return parser(text if isinstance(text, str) else "")
    except Exception as exc:  # defensive: user input must never raise
        return _error(command, f"could not read the command ({type(exc).__name__})")


def parse_stop(text: str) -> StopRequest | FreezeRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-stop``. Never raises."""
    return _safely(STOP, _parse_stop, text)


def _parse_stop(text: str) -> StopRequest | FreezeRequest | HelpRequest | UsageError:
    parsed = _scan(STOP, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return _error(STOP, parsed)
    if problem := _check_values(parsed):
        return _error(STOP, problem)
    reason = parsed.values.get("--reason")
    if len(parsed.positionals) > 1:
        return _error(STOP, _too_many_positionals(parsed.positionals, reason))
    if not parsed.positionals:
        return _error(STOP, "missing the deployment id: `/ml-stop <deployment_id>`")
    if parsed.positionals[0][0] in ("freeze", "unfreeze"):
        return _freeze(parsed)
    ids, problem = _parse_expression(parsed.positionals[0][0])
    if ids is None:
        return _error(STOP, problem or "invalid deployment id")
    return StopRequest(
        ids=ids,
        force="force" in parsed.bools,
        finish_pending_work="finish_pending_work" in parsed.bools,
        allow_no_match="no_allow_no_match" not in parsed.bools,
        cluster=parsed.values.get("--cluster"),
        reason=reason,
    )


def _freeze(parsed: _Parsed) -> FreezeRequest | UsageError:
    word = parsed.positionals[0][0]
    extra = sorted(parsed.bools) + [v for v in parsed.values if v != "--reason"]
    if extra:
        return _error(STOP, f"`/ml-stop {word}` takes only `--reason TEXT`")
    return FreezeRequest(freeze=word == "freeze", reason=parsed.values.get("--reason"))


def _exact_id(token: str, what: str) -> str | UsageError:
    ids, problem = _parse_expression(token)
    if ids is None:
        return _error(START, problem or f"invalid {what}")
    if len(ids) > 1 or "*" in ids[0] or ids[0] == "_all":
        return _error(START, f"{_show(token)}: give one exact {what}, not a pattern or list")
    return ids[0]


def _number(parsed: _Parsed, flag: str, limit: int) -> int | UsageError | None:
    raw = parsed.values.get(flag)
    if raw is None:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= limit:
        return _error(
            START, f"{_show(flag)} takes a whole number from 1 to {limit}, got {_show(raw)}"
        )
    return int(raw)


def parse_start(text: str) -> StartRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-start``. Never raises."""
    return _safely(START, _parse_start, text)


def _parse_start(text: str) -> StartRequest | HelpRequest | UsageError:
    parsed = _scan(START, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return _error(START, parsed)
    if problem := _check_values(parsed):
        return _error(START, problem)
    if len(parsed.positionals) != 1:
        if not parsed.positionals:
            return _error(START, "missing the model id: `/ml-start <model_id>`")
        return _error(
            START, _too_many_positionals(parsed.positionals, parsed.values.get("--reason"))
        )
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
        return _error(START, problem)
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
        return f"`--priority` is `normal` or `low`, got {_show(priority)}"
    if threads is not None and threads & (threads - 1):
        return f"`--threads` must be a power of 2 (1, 2, 4, 8, 16 or 32), got `{threads}`"
    # Elasticsearch's own messages for a low priority deployment.
    if priority == "low" and allocations not in (None, 1):
        return "[number_of_allocations] must be 1 when [priority] is low"
    if priority == "low" and threads not in (None, 1):
        return "[threads_per_allocation] must be 1 when [priority] is low"
    return None


def parse_audit(text: str) -> AuditRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-audit``. Never raises."""
    return _safely(AUDIT, _parse_audit, text)


def _parse_audit(text: str) -> AuditRequest | HelpRequest | UsageError:
    if not text.strip():
        return AuditRequest()
    parsed = _scan(AUDIT, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return _error(AUDIT, parsed)
    if parsed.positionals:
        word = _show(parsed.positionals[0][0])
        return _error(AUDIT, f"unexpected {word}; `/ml-audit` takes only flags")
    since = DEFAULT_AUDIT_SINCE
    if "--since" in parsed.values:
        raw = parsed.values["--since"]
        found = _DURATION_RE.fullmatch(raw.strip().lower())
        if found is None:
            return _error(
                AUDIT, f"`--since` takes a duration like `30m`, `2h` or `7d`, got {_show(raw)}"
            )
        since = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
        if not 0 < since <= MAX_AUDIT_SINCE:
            return _error(AUDIT, "`--since` must be more than 0 and at most `90d`")
    fmt = parsed.values.get("--format", "text")
    if fmt not in ("text", "markdown"):
        return _error(AUDIT, f"`--format` is `text` or `markdown`, got {_show(fmt)}")
    incident = parsed.values.get("--incident")
    if incident is not None and len(incident) > 80:
        return _error(AUDIT, "`--incident` takes an incident id of at most 80 characters")
    return AuditRequest(incident=incident, since_seconds=since, markdown=fmt == "markdown")


def parse_deployments(text: str) -> ListRequest | HelpRequest | UsageError:
    """Parse the text after ``/ml-deployments``. Never raises."""
    return _safely(DEPLOYMENTS, _parse_deployments, text)


def _parse_deployments(text: str) -> ListRequest | HelpRequest | UsageError:
    if not text.strip():
        return ListRequest()
    parsed = _scan(DEPLOYMENTS, text)
    if isinstance(parsed, HelpRequest):
        return parsed
    if isinstance(parsed, str):
        return _error(DEPLOYMENTS, parsed)
    if problem := _check_values(parsed):
        return _error(DEPLOYMENTS, problem)
    if len(parsed.positionals) > 1:
        return _error(DEPLOYMENTS, _too_many_positionals(parsed.positionals, None))
    pattern: str | None = None
    if parsed.positionals:
        ids, problem = _parse_expression(parsed.positionals[0][0])
        if ids is None:
            return _error(DEPLOYMENTS, problem or "invalid pattern")
        pattern = ",".join(ids)
    return ListRequest(pattern=pattern, cluster=parsed.values.get("--cluster"))


def parse(command: str, text: str) -> Request:
    """Dispatch on the slash command. Never raises."""
    name = command.strip().lower() if isinstance(command, str) else ""
    if name and not name.startswith("/"):
        name = "/" + name
    if name == STOP:
        return parse_stop(text)
    if name == DEPLOYMENTS:
        return parse_deployments(text)
    if name == START:
        return parse_start(text)
    if name == AUDIT:
        return parse_audit(text)
    known = ", ".join(f"`{c}`" for c in COMMANDS)
    return UsageError(
        command=command if isinstance(command, str) else "",
        message=f"unknown command {_show(str(command))} (known: {known})",
        usage="\n".join(USAGE_LINES.values()),
    )


# --------------------------------------------------------------------------- help text

_STOP_HELP = f"""\
Usage: {USAGE_LINES[STOP]}

Stop an Elasticsearch trained-model deployment. You get a preview (what will stop, which
ingest pipelines use it) and a Confirm button; nothing stops until you confirm.

<deployment_id>          one id (`elser-prod`), a comma list without spaces (`a,b`),
                         a wildcard (`elser-*`) or `_all`. Ids are lowercase letters,
                         digits, `-`, `_`, `.`; at most 64 characters. Wildcards, lists
                         and `_all` need extra permission.
--force                  stop even if ingest pipelines still use the deployment, or it
                         is failing to stop cleanly.
--finish-pending-work    let queued inference requests finish before stopping
                         (otherwise they are dropped).
--no-allow-no-match      refuse unless every id/pattern matches a deployment
                         (default: unmatched ids are listed and left alone).
--cluster NAME           the Elasticsearch cluster (default: the configured one).
--reason TEXT            why, for the audit log and the channel; quote several words:
                         --reason "OOM loop, see INC-123". At most {MAX_REASON_LENGTH} characters.
-h, --help, help         this text.
freeze | unfreeze        (admins) refuse every stop and start until unfrozen.

Examples:
  /ml-stop elser-prod --reason "runaway memory"
  /ml-stop search-a,search-b --cluster staging
  /ml-stop .elser_model_2 --finish-pending-work
  /ml-stop ner-* --force --reason "INC-42"
"""

_DEPLOYMENTS_HELP = f"""\
Usage: {USAGE_LINES[DEPLOYMENTS]}

List trained-model deployments and their state (read-only).

[pattern]        an id, a comma list (`a,b`), a wildcard (`elser-*`) or `_all`;
                 all deployments if omitted.
--cluster NAME   the Elasticsearch cluster (default: the configured one).
-h, --help, help this text.

Examples:
  /ml-deployments
  /ml-deployments elser-*
  /ml-deployments --cluster staging
"""


_START_HELP = f"""\
Usage: {USAGE_LINES[START]}

Start a trained-model deployment. You get a preview and a Start button; nothing starts
until you confirm. (A stop's result message also offers "Restart with previous settings".)

<model_id>             the model to deploy (one exact id).
--deployment-id ID     the deployment's id (default: the model id).
--allocations N        number of allocations (default 1).
--threads N            threads per allocation: 1, 2, 4, 8, 16 or 32 (default 1).
--priority normal|low  low priority runs on spare capacity with 1 allocation, 1 thread.
--cluster NAME         the Elasticsearch cluster (default: the configured one).
--reason TEXT          why, for the audit log and the channel.

Examples:
  /ml-start .elser_model_2 --deployment-id elser-prod --allocations 2
  /ml-start my-ner-model --priority low --cluster staging
"""


_AUDIT_HELP = f"""\
Usage: {USAGE_LINES[AUDIT]}

What the bot did in this channel (or for an incident): time, who, what, flags, reason,
approvals and outcome, oldest first, with links to the messages.

--incident ID          an incident's actions, whatever channel they were asked in.
--since DURATION       how far back: `30m`, `2h`, `7d` (default 24h, at most 90d).
--format markdown      plain Markdown to paste into a postmortem.
"""


def usage(command: str) -> str:
    """Full help text for a command (both commands if it is unknown)."""
    name = command.strip().lower() if isinstance(command, str) else ""
    if name and not name.startswith("/"):
        name = "/" + name
    if name == STOP:
        return _STOP_HELP
    if name == DEPLOYMENTS:
        return _DEPLOYMENTS_HELP
    if name == START:
        return _START_HELP
    if name == AUDIT:
        return _AUDIT_HELP
    return "\n".join((_STOP_HELP, _DEPLOYMENTS_HELP, _START_HELP, _AUDIT_HELP))
