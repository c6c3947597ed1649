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
* Text is parsed as the user typed it: the Slack adapter undoes Slack's ``&amp;``/``&lt;``/
  ``&gt;`` escaping first (bot/slack/slash_text.py), so a reason ``"A&B <x>"`` stays that.

One module per job: ``tokens`` (names, bounds, tokenizer), ``requests`` (the dataclasses),
``ids`` (id and cluster validation), ``scan`` (flags), ``stop``/``start``/``listing``/``audit``
(one parser per command), ``usage`` (usage lines and help).
"""

from __future__ import annotations

from bot.core.commands.audit import parse_audit
from bot.core.commands.ids import validate_cluster, validate_id
from bot.core.commands.listing import parse_deployments
from bot.core.commands.requests import (
    AuditRequest,
    FreezeRequest,
    HelpRequest,
    ListRequest,
    Request,
    ScaleRequest,
    StartRequest,
    StatusRequest,
    StopRequest,
    UsageError,
)
from bot.core.commands.scale import parse_scale, parse_status
from bot.core.commands.start import parse_start
from bot.core.commands.stop import parse_stop
from bot.core.commands.tokens import (
    AUDIT,
    COMMANDS,
    DEPLOYMENTS,
    MAX_ID_LENGTH,
    MAX_IDS,
    MAX_REASON_LENGTH,
    MAX_TEXT_LENGTH,
    SCALE,
    START,
    STATUS,
    STOP,
    show,
)
from bot.core.commands.usage import USAGE_LINES, usage

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
    "Request",
    "ScaleRequest",
    "StartRequest",
    "StatusRequest",
    "StopRequest",
    "UsageError",
    "parse",
    "parse_audit",
    "parse_deployments",
    "parse_scale",
    "parse_start",
    "parse_status",
    "parse_stop",
    "usage",
    "validate_cluster",
    "validate_id",
]


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
    if name == SCALE:
        return parse_scale(text)
    if name == STATUS:
        return parse_status(text)
    known = ", ".join(f"`{c}`" for c in COMMANDS)
    return UsageError(
        command=command if isinstance(command, str) else "",
        message=f"unknown command {show(str(command))} (known: {known})",
        usage="\n".join(USAGE_LINES.values()),
    )
