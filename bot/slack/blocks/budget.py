"""How much a message may hold, and fitting a message into it: one helper every family uses.

Slack refuses a message over 50 blocks (`invalid_blocks`) and, empirically, one whose blocks
hold more than about 12,000 characters of text in total (`msg_blocks_too_long`; see
docs/slack.md). A message family builds its blocks in three parts and lets `fit` decide:

    head: what must always show (the title, the summary, the counts, the ids to change)
    body: the detail, most important first (one block per item or per packed lines)
    tail: the controls and footer (buttons, expiry), always kept last

`fit(head, body, tail, more=...)` keeps head and tail, as many body blocks as fit in
order, and in place of the rest the block(s) `more(n)` saying how many were left out and how
to see them; `fit_lines` does the same for one-line items packed into sections.
`room(head, tail)` is the text left for the body; `compact_ids` lists ids in a given number
of characters, writing the parts they share once (`d-{001,002}-prod`) before it ever drops
one. docs/architecture.md shows the calls.

Pure: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

Block = dict[str, Any]

MAX_BLOCKS = 50  # per message (100 in a modal)
# Slack's empirical limit is 12,000; 1,000 stays free for what Slack counts that we do not.
BLOCKS_TEXT_MAX = 11_000
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


def text_size(blocks: Iterable[Any]) -> int:
    """Characters of text in every plain_text/mrkdwn object inside `blocks`."""
    return sum(len(str(obj.get("text", ""))) for obj in _text_objects(blocks))


def _text_objects(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if value.get("type") in _TEXT_TYPES and "text" in value:
            yield value
            return
        for item in value.values():
            yield from _text_objects(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _text_objects(item)


def room(head: Sequence[Block], tail: Sequence[Block], *, limit: int = BLOCKS_TEXT_MAX) -> int:
    """Text characters left for the body once `head` and `tail` are in."""
    return max(limit - text_size(head) - text_size(tail), 0)


def fit(
    head: Sequence[Block],
    body: Sequence[Block],
    tail: Sequence[Block],
    *,
    more: Callable[[int], Sequence[Block]],
    limit: int = BLOCKS_TEXT_MAX,
    max_blocks: int = MAX_BLOCKS,
    max_body: int | None = None,
) -> list[Block]:
    """`head`, the body blocks that fit (in order), `more(left_out)` if any, then `tail`.

    At most `max_body` body blocks show (what a person reads at a glance), budget allowing.

    `more(n)` says what the last n body blocks held (a count, the ids, how to see them);
    `more(len(body))` must be the largest, as its size is kept free before the body is
    filled. Head and tail are trusted to fit on their own.
    """
    reserve = more(len(body)) if body else []
    spare_blocks = max_blocks - len(head) - len(tail) - len(reserve)
    if max_body is not None:
        spare_blocks = min(spare_blocks, max_body)
    spare_text = room(head, tail, limit=limit) - text_size(reserve)
    kept: list[Block] = []
    for block in body:
        size = text_size([block])
        if len(kept) >= spare_blocks or size > spare_text:
            break
        kept.append(block)
        spare_text -= size
    left = len(body) - len(kept)
    if left == 0:
        return [*head, *kept, *tail]
    return [*head, *kept, *more(left), *tail]


def fit_lines(
    head: Sequence[Block],
    lines: Sequence[str],
    tail: Sequence[Block],
    *,
    pack: Callable[[Sequence[str]], list[Block]],
    more: Callable[[int], str],
    limit: int = BLOCKS_TEXT_MAX,
    max_blocks: int = MAX_BLOCKS,
    max_lines: int | None = None,
) -> list[Block]:
    """`fit` for one-line items: as many leading `lines` as fit (at most `max_lines`), packed
    into blocks by `pack`, then the line `more(n)` for the n left out (`more(len(lines))` the
    longest), then `tail`."""
    reserve = pack([more(len(lines))]) if lines else []
    spare = room(head, tail, limit=limit) - text_size(reserve)
    shown = take_lines(lines[:max_lines], spare)
    body = pack(lines[:shown])
    while shown and len(head) + len(body) + len(reserve) + len(tail) > max_blocks:
        shown -= max(1, shown // 10)
        body = pack(lines[:shown])
    left = len(lines) - shown
    return [*head, *body, *(pack([more(left)]) if left else []), *tail]


def take_lines(lines: Sequence[str], chars: int, *, sep: int = 1) -> int:
    """How many leading `lines` fit in `chars` characters (joined with `sep`-long separators)."""
    used = 0
    for count, line in enumerate(lines):
        used += len(line) + (sep if count else 0)
        if used > chars:
            return count
    return len(lines)


GLANCE = 10  # ids a person reads one by one; beyond it shared parts are written once


def compact_ids(
    ids: Sequence[str],
    chars: int,
    *,
    code: Callable[[str], str],
    more: Callable[[int], str],
) -> str:
    """Every id in at most `chars` characters if it can be done, else as many as fit + `more(n)`.

    Up to GLANCE ids (or when they fit no other way) as `a, b, c`; beyond, ids that differ in
    one part are written once as `d-{001,002,003}-prod` (brace expansion, as a shell reads
    it), which is shorter and easier to scan. Only when even that is too long are ids left
    out, with an exact count. `code` formats one item (say, inline code), `more(n)` the text
    for the n left out.
    """
    plain = ", ".join(code(i) for i in ids)
    grouped = ", ".join(_grouped(ids, code))
    if len(ids) > GLANCE and len(grouped) <= chars:
        return grouped
    if len(plain) <= chars:
        return plain
    if len(grouped) <= chars:
        return grouped
    parts = [code(i) for i in ids]
    for shown in range(len(parts), -1, -1):
        tail = more(len(parts) - shown)
        text = ", ".join([*parts[:shown], tail])
        if len(text) <= chars:
            return text
    return more(len(parts))


_SEPARATOR = re.compile(r"([-_.])")
Shape = tuple[str, str]  # the text before and after the one part that varies


def _grouped(ids: Sequence[str], code: Callable[[str], str]) -> list[str]:
    """Ids that differ in one part (between `-`, `_` or `.`) as one `pre{a,b}post` item each.

    Each id joins the most common of its "all parts but one" shapes; shapes shared by fewer
    than three ids stay as plain ids. Order follows the first id of each group.
    """
    variants = [_shapes(ident) for ident in ids]
    counts: dict[Shape, int] = {}
    for shapes in variants:
        for shape in {key for key, _ in shapes}:
            counts[shape] = counts.get(shape, 0) + 1
    groups: dict[Shape | str, list[str]] = {}
    for ident, shapes in zip(ids, variants, strict=True):
        best = max(shapes, key=lambda item: counts[item[0]], default=None)
        if best is None or counts[best[0]] < 3:
            groups[ident] = [ident]
        else:
            groups.setdefault(best[0], []).append(best[1])
    out: list[str] = []
    for key, members in groups.items():
        if isinstance(key, str):
            out.append(code(key))
            continue
        pre, post = key
        out += [code(pre + "{" + ",".join(c) + "}" + post) for c in _chunks(members, _GROUP_MAX)]
    return out


def _shapes(ident: str) -> list[tuple[Shape, str]]:
    """For each part of `ident`: ((text before it, text after it), the part)."""
    tokens = _SEPARATOR.split(ident)  # parts at even indices, separators at odd ones
    if len(tokens) == 1:
        return []
    return [
        (("".join(tokens[:i]), "".join(tokens[i + 1 :])), tokens[i])
        for i in range(0, len(tokens), 2)
        if tokens[i]
    ]


_GROUP_MAX = 1000  # one `prefix{…}` item stays well inside a 3,000-character section


def _chunks(items: Sequence[str], chars: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        if chunk and len(",".join([*chunk, item])) > chars:
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def split_list(text: str, limit: int, sep: str = ", ") -> list[str]:
    """A `sep`-joined list cut into pieces of at most `limit` characters, between items."""
    pieces: list[str] = []
    for item in text.split(sep):
        if pieces and len(pieces[-1]) + len(sep) + len(item) <= limit:
            pieces[-1] += sep + item
        else:
            pieces.append(item)
    return pieces
