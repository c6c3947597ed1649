"""Shell words → flags and positionals, checked per command; the never-raise wrapper."""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from bot.core.commands.ids import SLACK_MARKUP, looks_like_slack_markup, validate_cluster
from bot.core.commands.requests import HelpRequest, UsageError
from bot.core.commands.tokens import (
    AUDIT,
    DEPLOYMENTS,
    MAX_REASON_LENGTH,
    MAX_TEXT_LENGTH,
    SCALE,
    START,
    STATUS,
    STOP,
    is_flag_like,
    show,
    split_words,
)
from bot.core.commands.usage import error

_R = TypeVar("_R")

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
    SCALE: {},
    STATUS: {},
}
_VALUE_FLAGS: dict[str, tuple[str, ...]] = {
    STOP: ("--cluster", "--reason", "--for", "--until"),
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
    SCALE: (
        "--allocations",
        "--adaptive",
        "--min",
        "--max",
        "--cluster",
        "--reason",
        "--for",
        "--until",
    ),
    STATUS: ("--cluster",),
}
_HELP_FLAGS = ("-h", "--help")
# What a value flag's value is called in "needs a value" messages.
_PLACEHOLDERS = {
    "--reason": "TEXT",
    "--allocations": "N",
    "--threads": "N",
    "--min": "N",
    "--max": "N",
    "--adaptive": "on|off",
    "--since": "DURATION",
    "--for": "DURATION",
    "--until": "TIME",
}
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
        return f"{show(name)} is a /ml-stop flag; /ml-deployments takes only `--cluster NAME`"
    suggestion = _suggest_flag(command, name)
    if suggestion is not None:
        return f"unknown flag {show(name)}; did you mean `{suggestion}`?"
    known = ", ".join(f"`{k}`" for k in _known_flags(command))
    return f"unknown flag {show(name)} (known flags: {known})"


@dataclass
class Parsed:
    positionals: list[tuple[str, bool]]  # (word, follows the --reason value)
    bools: set[str]
    values: dict[str, str]


def _asks_for_help(words: list[str], value_flags: Collection[str]) -> bool:
    """`-h`/`--help` where a flag may stand; right after `--reason` it is a missing value."""
    after_value_flag = False
    for word in words:
        if word in _HELP_FLAGS and not after_value_flag:
            return True
        after_value_flag = word in value_flags
    return False


def scan(command: str, text: str) -> Parsed | HelpRequest | str:
    """Split and classify words; a str result is the usage error message."""
    if not text.strip():
        return HelpRequest(command)
    words = split_words(text)
    if isinstance(words, str):
        return words
    bool_flags = _BOOL_FLAGS[command]
    value_flags = _VALUE_FLAGS[command]
    if not words or words == ["help"] or _asks_for_help(words, value_flags):
        return HelpRequest(command)
    parsed = Parsed(positionals=[], bools=set(), values={})
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
                return f"{show(name)} takes no value (got {show(word)}){hint}"
            key = bool_flags[name]
            if key in parsed.bools:
                return f"{show(name)} is given more than once"
            parsed.bools.add(key)
            if {"allow_no_match", "no_allow_no_match"} <= parsed.bools:
                return (
                    "`--allow-no-match` and `--no-allow-no-match` contradict each other; pick one"
                )
        elif name in value_flags:
            if name in parsed.values:
                return f"{show(name)} is given more than once"
            if eq:
                value = inline
            elif i < len(words) and not is_flag_like(words[i]):
                value = words[i]
                i += 1
            else:
                what = _PLACEHOLDERS.get(name, "NAME")
                got = f" but got the flag {show(words[i])}" if i < len(words) else ""
                return f"{show(name)} needs a value{got}: `{name} {what}`"
            if value == "":
                what = _PLACEHOLDERS.get(name, "NAME")
                return f"{show(name)} needs a value: `{name} {what}`"
            parsed.values[name] = value
            after_reason = name == "--reason"
        else:
            return _unknown_flag(command, name)
    return parsed


def check_values(parsed: Parsed) -> str | None:
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


def too_many_positionals(positionals: list[tuple[str, bool]], reason: str | None) -> str:
    words = [w for w, _ in positionals]
    continuation = [w for w, after in positionals if after]
    if continuation and reason is not None:
        full = " ".join([reason, *continuation])
        return (
            "`--reason` takes one word; put a multi-word reason in quotes: "
            f"{show('--reason ' + _quote_for_user(full), 200)}"
        )
    for word in words:
        if looks_like_slack_markup(word):
            return f"{show(word)} {SLACK_MARKUP}"
    if any(w.endswith(",") or w.startswith(",") for w in words):
        joined = ",".join(p for w in words for p in w.split(",") if p)
        return f"{show(' '.join(words))}: no spaces in a comma list; write {show(joined)}"
    shown = ", ".join(show(w) for w in words)
    return (
        f"more than one deployment id ({shown}); "
        f"separate several ids with commas ({show(','.join(words))})"
    )


def _quote_for_user(text: str) -> str:
    if '"' in text or "\\" in text:
        return shlex.quote(text)
    return f'"{text}"'


def safely(command: str, parser: Callable[[str], _R], text: object) -> _R | UsageError:
    """Run a parser on any input; a bug in it becomes a usage error, never an exception."""
    if isinstance(text, str) and len(text) > MAX_TEXT_LENGTH:
        return error(
            command,
            f"the command text is {len(text):,} characters long; "
            f"at most {MAX_TEXT_LENGTH:,} are accepted",
        )
    try:
        return parser(text if isinstance(text, str) else "")
    except Exception as exc:  # defensive: user input must never raise
        return error(command, f"could not read the command ({type(exc).__name__})")
