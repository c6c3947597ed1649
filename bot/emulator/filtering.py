"""`filter_path` response filtering, as Elasticsearch's XContent filtering does it.

Pinned from ES source: `FilterPath` (the path trie), `FilterPathBasedFilter` (include/exclude
decisions), `AbstractRestChannel` (parameter parsing) and `JsonXContentGenerator` (includes
applied first, then excludes; the root object is always written, so an empty result is `{}`).
Field names with dots are never split (REST responses build the filter without
`matchFieldNamesWithDots`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

WILDCARD = "*"
DOUBLE_WILDCARD = "**"


@dataclass
class PathNode:
    """One segment of the compiled trie (FilterPath): exact children and glob children."""

    pattern: str
    final: bool
    terms: dict[str, PathNode] = field(default_factory=dict)
    wildcards: list[PathNode] = field(default_factory=list)

    @property
    def double(self) -> bool:
        """`**`: this node also matches at every deeper level."""
        return self.pattern == DOUBLE_WILDCARD


@dataclass
class _BuildNode:
    final: bool
    children: dict[str, _BuildNode] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """The include and exclude trees of one `filter_path` value (None: no such filters)."""

    includes: PathNode | None
    excludes: PathNode | None


def parse_filter_path(value: str | None) -> Filters:
    """Split on commas and trim, drop empty tokens, a leading `-` marks an exclusion."""
    tokens = {t.strip() for t in (value or "").split(",")} - {""}
    includes = {t for t in tokens if not t.startswith("-")}
    excludes = {t[1:] for t in tokens if t.startswith("-")}
    return Filters(compile_paths(includes), compile_paths(excludes))


def compile_paths(paths: set[str]) -> PathNode | None:
    """FilterPath.compile: one trie of all paths; a shorter path wins over a longer one."""
    if not paths:
        return None
    root = _BuildNode(final=False)
    for path in paths:
        path = path.strip()
        if path:
            _insert(path, root)
    return _build("", root)


def _insert(path: str, node: _BuildNode) -> None:
    split, escapes, i = -1, False, 0
    while i < len(path):
        if path[i] == ".":
            split = i
            break
        if path[i] == "\\" and i + 1 < len(path) and path[i + 1] == ".":
            i += 1
            escapes = True
        i += 1
    # As in ES, a leading '.' (split at 0) makes the whole text one literal segment.
    if split > 0:
        head = path[:split].replace("\\.", ".") if escapes else path[:split]
        child = node.children.setdefault(head, _BuildNode(final=False))
        if not child.final:
            _insert(path[split + 1 :], child)
    else:
        node.children[path.replace("\\.", ".") if escapes else path] = _BuildNode(final=True)


def _build(segment: str, node: _BuildNode) -> PathNode:
    built = PathNode(segment, node.final)
    for name, child in node.children.items():
        sub = _build(name, child)
        if WILDCARD in name:
            built.wildcards.append(sub)
        else:
            built.terms[name] = sub
    return built


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    # org.elasticsearch.core.Glob: only `*` is special (any run of characters, even none).
    return re.compile(".*".join(re.escape(part) for part in pattern.split(WILDCARD)), re.DOTALL)


def _matches(node: PathNode, name: str, following: list[PathNode]) -> bool:
    """FilterPath.matches: True when `name` ends a path; else collect the nodes to go on with."""
    term = node.terms.get(name)
    if term is not None:
        if term.final:
            return True
        following.append(term)
    for wild in node.wildcards:
        if _glob(wild.pattern).fullmatch(name):
            if wild.final:
                return True
            following.append(wild)
    if node.double:
        following.append(node)
    return False


def _evaluate(name: str, nodes: list[PathNode]) -> bool | list[PathNode]:
    """True: the path ends here; False: no path goes on; else the nodes for the value inside."""
    following: list[PathNode] = []
    for node in nodes:
        if _matches(node, name, following):
            return True
    return following or False


def _filter(value: Any, nodes: list[PathNode], inclusive: bool) -> tuple[bool, Any]:
    """Jackson's FilteringGeneratorDelegate (INCLUDE_ALL_AND_PATH) over a decoded value.

    A container under a partial match is written only if something inside it is (so emptied
    objects and arrays vanish); arrays pass the same filter to their items; a scalar under a
    partial match is kept only when excluding (`_includeScalar`).
    """
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for name, item in value.items():
            decision = _evaluate(name, nodes)
            if isinstance(decision, bool):
                if decision == inclusive:
                    kept[name] = item
                continue
            keep, filtered = _filter(item, decision, inclusive)
            if keep:
                kept[name] = filtered
        return bool(kept), kept
    if isinstance(value, list):
        items = [r[1] for r in (_filter(v, nodes, inclusive) for v in value) if r[0]]
        return bool(items), items
    return not inclusive, value


def apply(body: Any, filters: Filters) -> Any:
    """The body as ES writes it under these filters: includes first, then excludes."""
    if not isinstance(body, dict | list):
        return body  # every ES JSON response is an object (a few are arrays)
    for tree, inclusive in ((filters.includes, True), (filters.excludes, False)):
        if tree is not None:
            # JsonXContentGenerator writes the root object past the filters: `{}` at worst.
            body = _filter(body, [tree], inclusive)[1]
    return body


def filter_body(body: Any, filter_path: str | None) -> Any:
    """Filter a successful response body by the request's `filter_path` value."""
    filters = parse_filter_path(filter_path)
    if filters.includes is None and filters.excludes is None:
        return body
    return apply(body, filters)
