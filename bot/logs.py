"""Logging: JSON lines for machines, plain lines on a terminal; request context; no secrets.

Fields bound with `log_context()` / `bind()` (Slack ids, action id) ride on every record
logged in that context, including tasks started from it (Bolt's listener tasks copy the
context of the request that started them). Every rendered line passes through the
redactor, which knows the configured secrets and the shapes of Slack tokens.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.core.text import cap

# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_CONTEXT: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "ml_chatops_log_context", default=None
)
# Slack tokens (bot, user, app, config, workflow) even when nobody registered them.
_TOKEN = re.compile(r"\bx(?:ox[abeoprs]|app|wfp)-[A-Za-z0-9-]{6,}")
REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4  # shorter values would redact ordinary words
# A sender controls much of what gets logged; one line must stay one readable line.
FIELD_MAX = 1000
MESSAGE_MAX = 4000
STACK_MAX = 20_000


def _capped(value: Any) -> Any:
    # Numbers and booleans pass as they are; anything else is logged as bounded text.
    if value is None or isinstance(value, bool | int | float):
        return value
    return cap(value if isinstance(value, str) else str(value), FIELD_MAX)


class Redactor:
    """Replaces known secret values and Slack-token shapes in rendered log lines."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str | None]) -> None:
        """Remember secret values to hide (empty and very short ones are ignored)."""
        self._secrets |= {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}

    def __call__(self, text: str) -> str:
        """`text` with every secret replaced."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return _TOKEN.sub(REDACTED, text)


REDACTOR = Redactor()


def add_secrets(values: Iterable[str | None]) -> None:
    """Register secret values that must never appear in a log line."""
    REDACTOR.add(values)


def redact(text: str) -> str:
    """`text` without the registered secrets, for output that bypasses logging."""
    return REDACTOR(text)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields to every record logged inside the block (and tasks started from it)."""
    token = _CONTEXT.set({**current_context(), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context until it ends (e.g. an action id once known)."""
    _CONTEXT.set({**current_context(), **{k: v for k, v in fields.items() if v}})


def current_context() -> Mapping[str, Any]:
    """The fields bound in the current context."""
    return _CONTEXT.get() or {}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """Context fields, then the record's own `extra=` fields (which win)."""
    own = {k: v for k, v in vars(record).items() if k not in _STANDARD and k != "_context"}
    return {cap(k, 100): _capped(v) for k, v in {**getattr(record, "_context", {}), **own}.items()}


class _ContextFilter(logging.Filter):
    """Copies the context fields onto the record, in the task that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the context; never drops a record."""
        record._context = dict(current_context())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with context and `extra=` fields (action id, Slack ids)."""

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        doc: dict[str, Any] = {
            "@timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": cap(record.getMessage(), MESSAGE_MAX),
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["error.stack_trace"] = cap(self.formatException(record.exc_info), STACK_MAX)
        return REDACTOR(json.dumps(doc, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value ...` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The `time LEVEL logger: message` head, with the message bounded."""
        record.message = cap(record.message, MESSAGE_MAX)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        """The traceback, bounded."""
        return cap(super().formatException(ei), STACK_MAX)

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as one readable line (plus a traceback if any)."""
        line = super().format(record)
        fields = _fields(record)
        if fields:
            head, sep, tail = line.partition("\n")
            extras = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"{head} [{extras}]{sep}{tail}"
        return REDACTOR(line)


def make_handler(stream: TextIO, *, json_lines: bool) -> logging.Handler:
    """A handler writing JSON lines (or text lines) with context fields, redacted."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(_ContextFilter())
    return handler


def setup_logging(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    """Send logs to stderr: JSON unless stderr is a terminal."""
    use_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    root = logging.getLogger()
    root.handlers[:] = [make_handler(sys.stderr, json_lines=use_json)]
    root.setLevel(level)
    # The client logs every request at INFO: noise at our volume, and ~3% of CPU (bench/).
    logging.getLogger("elastic_transport").setLevel(max(root.level, logging.WARNING))
