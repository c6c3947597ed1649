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


# A config file is a few kilobytes written by a person. These bounds keep a hostile or broken
# one (an alias bomb, a file nested thousands deep, a log pasted by mistake) from costing
# more than milliseconds to refuse: the file is re-read while the bot serves.
MAX_CHARS = 256 * 1024
MAX_DEPTH = 64  # nested mappings and lists
MAX_ALIASES = 100  # `*name` uses
MAX_NODES = 20_000  # values in the document with every alias expanded


class _Refused(Exception):
    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line, self.what = line, what


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing deep nesting and many aliases while it composes."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(line, f"more than {MAX_ALIASES} aliases (*name); refused")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(line, f"nested deeper than {MAX_DEPTH} levels; refused")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def expanded_size(root: yaml.Node) -> int:
    """How many values the document has with every alias expanded (counted, never expanded).

    Shared nodes are counted once per use from a memo, so an alias bomb costs its node count
    to measure, not its expansion; a node that contains itself is refused."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise _Refused(node.start_mark.line + 1, "an alias refers to a value that contains it")
        open_.add(key)
        total = 1 + sum(size(child) for child in _children(node))
        open_.discard(key)
        sizes[key] = min(total, MAX_NODES + 1)  # capped: big numbers stay cheap
        return sizes[key]

    return size(root)


# PyYAML's wording, said plainly; `True`: report the line where the construct began.
_PLAIN: tuple[tuple[str, str, str, bool], ...] = (
    ("flow mapping", "expected ',' or '}'", "a `{` opened here is not closed with `}`", True),
    ("flow sequence", "expected ',' or ']'", "a `[` opened here is not closed with `]`", True),
    ("quoted scalar", "", "a quote opened here is not closed", True),
    (
        "",
        "mapping values are not allowed",
        "a `: ` is not allowed here "
        "(is a `key:` on the line before missing, or does a value need quotes?)",
        False,
    ),
    (
        "simple key",
        "could not find expected ':'",
        "expected `key: value` (a `:` is missing)",
        False,
    ),
    (
        "block mapping",
        "expected <block end>",
        "the indentation does not match the lines above",
        False,
    ),
    (
        "block collection",
        "expected <block end>",
        "the indentation does not match the lines above",
        False,
    ),
    (
        "",
        "cannot start any token",
        "a tab (or another character YAML does not allow) "
        "where indentation or a value should be; indent with spaces",
        False,
    ),
    ("", "found undefined alias", "an alias (*name) without an anchor (&name) before it", False),
)


def _open_flow(text: str) -> tuple[int, str] | None:
    """The innermost `[` or `{` still open where the tokens stop (line, bracket), if any."""
    stack: list[tuple[int, str]] = []
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, yaml.FlowSequenceStartToken | yaml.FlowMappingStartToken):
                bracket = "[" if isinstance(token, yaml.FlowSequenceStartToken) else "{"
                stack.append((token.start_mark.line + 1, bracket))
            elif isinstance(token, yaml.FlowSequenceEndToken | yaml.FlowMappingEndToken) and stack:
                stack.pop()
    except yaml.YAMLError:
        pass
    return stack[-1] if stack else None


def syntax_error(exc: yaml.MarkedYAMLError, text: str = "") -> tuple[int, str]:
    """(line, what) for a YAML syntax error, in plain words where we know them."""
    context, problem = exc.context or "", exc.problem or ""
    if "flow" in context or "<stream end>" in problem:
        open_flow = _open_flow(text)
        if open_flow is not None:
            line, bracket = open_flow
            close = "]" if bracket == "[" else "}"
            noticed = exc.problem_mark.line + 1 if exc.problem_mark is not None else line
            after = f" (noticed on line {noticed})" if noticed != line else ""
            return line, f"a `{bracket}` opened here is not closed with `{close}`{after}"
    for in_context, in_problem, plain, at_start in _PLAIN:
        if in_context in context and in_problem in problem:
            start, found = exc.context_mark, exc.problem_mark
            mark = (start if at_start else found) or found or start
            line = mark.line + 1 if mark is not None else 1
            if at_start and found is not None and start is not None and found.line != start.line:
                plain += f" (noticed on line {found.line + 1})"
            return line, plain
    mark = exc.problem_mark or exc.context_mark
    raw = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return (mark.line + 1 if mark is not None else 1), raw


def compose(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    """The document as data and as the node tree (for line numbers); parsed once, bounded."""
    if len(text) > MAX_CHARS:
        raise YamlFileError(
            f"{source}:1: the file is {len(text)} characters; a config file may have at most "
            f"{MAX_CHARS}: refused"
        )
    loader = _BoundedLoader(text)
    try:
        root = loader.get_single_node()
        if root is not None and expanded_size(root) > MAX_NODES:
            raise _Refused(
                1,
                f"aliases (*name) expand this file to more than {MAX_NODES} values; refused "
                "(write the values out, or use fewer aliases)",
            )
        data = loader.construct_document(root) if root is not None else None
    except _Refused as exc:
        raise YamlFileError(f"{source}:{exc.line}: {exc.what}") from None
    except yaml.MarkedYAMLError as exc:
        line, what = syntax_error(exc, text)
        raise YamlFileError(f"{source}:{line}: YAML syntax error: {what}") from None
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


def duplicate_keys(node: yaml.Node, loc: Loc, _seen: set[int] | None = None) -> list[Problem]:
    """Every key given twice in one mapping, at any depth below ``node``.

    A node reached again through an alias is checked once, not once per use."""
    seen_nodes = set() if _seen is None else _seen
    if id(node) in seen_nodes:
        return []
    seen_nodes.add(id(node))
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
                problems.extend(duplicate_keys(value, (*loc, name), seen_nodes))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems.extend(duplicate_keys(item, (*loc, i), seen_nodes))
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
