"""Loading the role map: a config file's text to a :class:`RoleMap`, or ``FILE:LINE`` errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.core import yamlfile
from bot.core.config import TOP_LEVEL_KEYS
from bot.core.policy.schema import (
    ACTIONS,
    DEFER_CROSS_REFS,
    OPTIONS,
    SECTIONS,
    RoleMap,
    cross_refs,
)


class PolicyError(Exception):
    """An invalid role map; ``str()`` is ``FILE:LINE: where: what`` (one line per error)."""


def _error_message(error: Mapping[str, Any]) -> str:
    loc: yamlfile.Loc = tuple(error.get("loc", ()))
    value = error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    if error.get("type") == "literal_error" and field in ("action", "actions", "options"):
        what, known = ("option", OPTIONS) if field == "options" else ("action", ACTIONS)
        return f'unknown {what} "{value}" (known: {", ".join(sorted(known))})' + (
            yamlfile.suggest(value, known)
        )
    return yamlfile.message(error, RoleMap)


def _unknown_sections(data: Mapping[str, Any], root: Any) -> list[yamlfile.Problem]:
    """Top-level keys neither the role map nor the rest of the file knows."""
    return [
        (
            yamlfile.line_of(root, (key,)),
            (key,),
            f'unknown key "{key}" (allowed: {", ".join(sorted(TOP_LEVEL_KEYS))})'
            + yamlfile.suggest(key, TOP_LEVEL_KEYS),
        )
        for key in data
        if key not in TOP_LEVEL_KEYS
    ]


def parse_role_map(text: str, source: str = "<config>") -> RoleMap:
    """Validate the role map in a config file's text; raise :class:`PolicyError`.

    The whole file is checked for unknown top-level keys and duplicate keys, so a reload
    that passes here cannot carry a typo the rest of the file's loader would refuse."""
    try:
        data, root = yamlfile.compose(text, source)
    except yamlfile.YamlFileError as exc:
        raise PolicyError(str(exc)) from None
    section = {k: data[k] for k in SECTIONS if k in data and data[k] is not None}
    problems = _unknown_sections(data, root)
    if root is not None:
        problems += yamlfile.duplicate_keys(root, ())
    role_map: RoleMap | None = None
    try:
        role_map = RoleMap.model_validate(section, context={DEFER_CROSS_REFS: True})
    except ValidationError as exc:
        for error in exc.errors():
            loc: yamlfile.Loc = tuple(error["loc"])
            problems.append((yamlfile.line_of(root, loc), loc, _error_message(error)))
    for loc, msg in cross_refs(section):
        problems.append((yamlfile.line_of(root, loc), loc, msg))
    if problems or role_map is None:
        raise PolicyError(yamlfile.render(source, problems))
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
