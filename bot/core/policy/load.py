"""Loading the role map: a config file's text to a :class:`RoleMap`, or ``FILE:LINE`` errors."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.core.policy.schema import (
    ACTIONS,
    DEFER_CROSS_REFS,
    OPTIONS,
    SECTIONS,
    ApprovalRule,
    Binding,
    Grant,
    Loc,
    RoleMap,
    cross_refs,
    loc_text,
)


class PolicyError(Exception):
    """An invalid role map; ``str()`` is ``FILE:LINE: where: what`` (one line per error)."""


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """The 1-based line of the YAML node at ``loc`` (or of its nearest existing parent)."""
    if root is None:
        return 1
    node: yaml.Node = root
    line: int = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found: tuple[yaml.Node, yaml.Node] | None = None
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = (key, value)  # the last one wins, as in PyYAML
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(node: yaml.Node, loc: Loc) -> list[tuple[Loc, int, str]]:
    problems: list[tuple[Loc, int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = key.value
                if name in seen and name != "<<":
                    problems.append(
                        (
                            (*loc, name),
                            key.start_mark.line + 1,
                            f'duplicate key "{name}" (first on line {seen[name]})',
                        )
                    )
                seen.setdefault(name, key.start_mark.line + 1)
                problems.extend(_duplicate_keys(value, (*loc, name)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(_duplicate_keys(item, (*loc, i)))
    return problems


_MODELS_BY_SECTION: dict[str, type[BaseModel]] = {
    "roles": Grant,
    "bindings": Binding,
    "approvals": ApprovalRule,
}


def _suggest(value: object, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(known), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _error_message(error: Mapping[str, Any]) -> str:
    kind = str(error.get("type", ""))
    loc: tuple[str | int, ...] = tuple(error.get("loc", ()))
    value = error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    if kind == "literal_error":
        if field in ("action", "actions"):
            return f'unknown action "{value}" (known: {", ".join(sorted(ACTIONS))})' + _suggest(
                value, ACTIONS
            )
        if field == "options":
            return f'unknown option "{value}" (known: {", ".join(sorted(OPTIONS))})' + _suggest(
                value, OPTIONS
            )
    if kind == "extra_forbidden":
        section = str(loc[0]) if loc else ""
        model = _MODELS_BY_SECTION.get(section)
        allowed = sorted(model.model_fields) if model else list(SECTIONS)
        return f'unknown key "{loc[-1]}" (allowed: {", ".join(allowed)})' + _suggest(
            loc[-1], allowed
        )
    if kind == "missing":
        return f'missing required key "{field}"'
    if kind == "greater_than_equal":
        return f"must be at least {error.get('ctx', {}).get('ge')} (got {value!r})"
    if kind in ("int_type", "int_parsing"):
        return f"must be a whole number (got {value!r})"
    if kind == "too_short":
        return "must list at least one entry"
    if kind == "value_error":
        message = str(error.get("msg", ""))
        return message.removeprefix("Value error, ")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"{error.get('msg', 'invalid')} (got {shown})"


def parse_role_map(text: str, source: str = "<config>") -> RoleMap:
    """Validate the role map in a config file's text; raise :class:`PolicyError`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise PolicyError(f"{source}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}:1: YAML error: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PolicyError(
            f"{source}:1: the config file must be a mapping of sections, "
            f"not a {type(data).__name__}"
        )
    section = {k: data[k] for k in SECTIONS if k in data and data[k] is not None}

    problems: list[tuple[int, Loc, str]] = []
    if root is not None:
        for key, value in getattr(root, "value", []):
            if isinstance(key, yaml.ScalarNode) and key.value in SECTIONS:
                for loc, line, msg in _duplicate_keys(value, (key.value,)):
                    problems.append((line, loc, msg))
        for loc, line, msg in _duplicate_keys(root, ()):
            if len(loc) == 1 and loc[0] in SECTIONS:
                problems.append((line, loc, msg))

    role_map: RoleMap | None = None
    try:
        role_map = RoleMap.model_validate(section, context={DEFER_CROSS_REFS: True})
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            problems.append((_line_of(root, loc), loc, _error_message(error)))
    for loc, msg in cross_refs(section):
        problems.append((_line_of(root, loc), loc, msg))

    if problems or role_map is None:
        problems.sort(key=lambda p: p[0])
        lines = [f"{source}:{line}: {loc_text(loc)}: {msg}" for line, loc, msg in problems]
        raise PolicyError("\n".join(lines))
    return role_map


def load_role_map(path: str | Path) -> RoleMap:
    """Read the config file at ``path`` and validate its role map."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text ({exc.reason})") from None
    return parse_role_map(text, source=str(path))
