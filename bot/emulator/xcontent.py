"""Request body parsing with ES ObjectParser's error texts and `[line:col]` locations."""

from __future__ import annotations

import json
from typing import Any

from bot.emulator.errors import parse_error

JSON = dict[str, Any]
# Field kinds an ObjectParser declares: declareString / declareBoolean / declareInt / object.
FieldKinds = dict[str, str]


def location(raw: str, field: str | None = None) -> str:
    """`[line:col]` of a field name in the raw body (1-based, like Jackson), else of the start."""
    index = raw.find(f'"{field}"') if field is not None else -1
    if index < 0:
        index = max(raw.find("{"), 0)
    line = raw.count("\n", 0, index) + 1
    col = index - (raw.rfind("\n", 0, index) + 1) + 1
    return f"[{line}:{col}]"


def load(raw: str) -> Any:
    """Parse a JSON body; malformed JSON gives x_content_parse_exception."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise parse_error(f"[{exc.lineno}:{exc.colno}] {exc.msg}") from None


def parse_object(raw: str, data: Any, parser: str, kinds: FieldKinds) -> JSON:
    """Check a body object against declared fields as ObjectParser would."""
    if not isinstance(data, dict):
        raise parse_error(
            f"{location(raw)} [{parser}] Expected START_OBJECT but was {_token(data)}"
        )
    for name, value in data.items():
        kind = kinds.get(name)
        if kind is None:
            raise parse_error(f"{location(raw, name)} [{parser}] unknown field [{name}]")
        if not _fits(kind, value):
            raise parse_error(f"{location(raw, name)} [{parser}] failed to parse field [{name}]")
    return {k: _coerce(kinds[k], v) for k, v in data.items()}


def _token(value: Any) -> str:
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    return "VALUE_NULL"


def _fits(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool) or value in ("true", "false")
    if kind == "int":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit()
        )
    if kind == "str":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind == "value":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind == "int_or_null":
        return value is None or _fits("int", value)
    if kind == "object_or_null":
        return value is None or isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return True


def _coerce(kind: str, value: Any) -> Any:
    if kind == "bool":
        return value is True or value == "true"
    if kind == "int" or (kind == "int_or_null" and value is not None):
        return int(value)
    if kind in ("str", "value"):
        return str(value)
    return value
