"""YAML text with line marks, and validation errors as ``FILE:LINE: where: what`` (pure).

The one place the config file's text is parsed: the role map (``bot.core.policy``) and the
rest of the file (``bot.settings``) both read it through :func:`compose` and report their
problems through :func:`problems_of` and :func:`render`, so every error has a line.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
Problem = tuple[int, Loc, str]  # (line, where, what)


class YamlFileError(Exception):
    """The text is not YAML or not a mapping; ``str()`` is ``FILE:LINE: what``."""


def compose(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The document as data and as the node tree (for line numbers); parsed once."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlFileError(f"{source}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source}:1: YAML error: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}, root
    if not isinstance(data, dict):
        raise YamlFileError(
            f"{source}:1: the config file must be a mapping of sections, "
            f"not a {type(data).__name__}"
        )
    return data, root


def loc_text(loc: Sequence[str | int]) -> str:
    """``roles.ops[0].action`` for a pydantic location."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
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


def duplicate_keys(node: yaml.Node, loc: Loc) -> list[Problem]:
    """Every key given twice in one mapping, at any depth below ``node``."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                name = key.value
                if name in seen and name != "<<":
                    problems.append(
                        (
                            key.start_mark.line + 1,
                            (*loc, name),
                            f'duplicate key "{name}" (first on line {seen[name]})',
                        )
                    )
                seen.setdefault(name, key.start_mark.line + 1)
                problems.extend(duplicate_keys(value, (*loc, name)))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(duplicate_keys(item, (*loc, i)))
    return problems


def suggest(value: object, known: Iterable[str]) -> str:
    """``; did you mean "x"?`` for the closest known word, or nothing."""
    close = difflib.get_close_matches(str(value), list(known), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _inner(annotation: Any, part: str | int) -> Any:
    """The type one step down ``part`` from ``annotation`` (None when unknown)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _inner(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        found = [_inner(a, part) for a in get_args(annotation) if a is not type(None)]
        return next((f for f in found if f is not None), None)
    model = _model_in(annotation)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field is not None else None
    if origin in (list, tuple, dict, Sequence, Mapping):
        return get_args(annotation)[-1] if get_args(annotation) else None
    return None


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the schema allows in the mapping at ``loc``."""
    annotation: Any = model
    for part in loc:
        annotation = _inner(annotation, part)
    while get_origin(annotation) in (Annotated, Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0] if args else None
    found = _model_in(annotation)
    return sorted(found.model_fields) if found is not None else []


_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}


def message(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as a sentence a person can act on."""
    kind = str(error.get("type", ""))
    loc: Loc = tuple(error.get("loc", ()))
    value = error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str) and p != "[key]"), "")
    if kind == "extra_forbidden":
        allowed = _keys_at(model, loc[:-1])
        return f'unknown key "{loc[-1]}" (allowed: {", ".join(allowed)})' + suggest(
            loc[-1], allowed
        )
    if kind == "missing":
        return f'missing required key "{field}"'
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"must be {words} {error.get('ctx', {}).get(name)} (got {value!r})"
    if kind in ("int_type", "int_parsing"):
        return f"must be a whole number (got {value!r})"
    if kind == "too_short":
        return "must list at least one entry"
    if kind == "value_error":
        return str(error.get("msg", "")).removeprefix("Value error, ")
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"{error.get('msg', 'invalid')} (got {shown})"


def problems_of(
    exc: ValidationError,
    root: yaml.Node | None,
    model: type[BaseModel],
    prefix: Loc = (),
) -> list[Problem]:
    """Each error of ``exc`` (validating ``model`` at ``prefix`` of the file) with its line."""
    out: list[Problem] = []
    for error in exc.errors():
        loc: Loc = (*prefix, *error["loc"])
        out.append((line_of(root, loc), loc, message(error, model)))
    return out


def render(source: str, problems: Iterable[Problem]) -> str:
    """``FILE:LINE: where: what``, one line per problem, in file order."""
    ordered = sorted(problems, key=lambda p: p[0])
    return "\n".join(f"{source}:{line}: {loc_text(loc)}: {what}" for line, loc, what in ordered)
