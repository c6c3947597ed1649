"""The message budget helper (bot/slack/blocks/budget.py): fitting never loses count."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.slack.blocks import budget


def _section(text: str) -> dict[str, object]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _code(ident: str) -> str:
    return f"`{ident}`"


def _more(n: int) -> str:
    return f"… +{n} more"


def _expand(text: str) -> tuple[list[str], int]:
    """The ids a reader finds in `compact_ids` output, and the count of those left out."""
    found: list[str] = []
    for span in re.findall(r"`([^`]+)`", text):
        group = re.fullmatch(r"(.*)\{(.*)\}(.*)", span)
        found += [group[1] + x + group[3] for x in group[2].split(",")] if group else [span]
    left = re.search(r"… \+(\d+) more", text)
    return found, int(left[1]) if left else 0


def test_text_size_counts_every_text_object() -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "Stop"}, "value": "x" * 99}
    blocks = [_section("abc"), {"type": "actions", "elements": [button]}, {"type": "divider"}]
    assert budget.text_size(blocks) == 7  # a button's value is not text


def test_fit_keeps_head_and_tail_and_counts_what_it_leaves_out() -> None:
    head, tail = [_section("h" * 1000)], [_section("t" * 1000)]
    body = [_section(f"{i}" * 1000) for i in range(20)]
    fitted = budget.fit(head, body, tail, more=lambda n: [_section(f"{n} more")])
    assert fitted[0] == head[0] and fitted[-1] == tail[0]
    kept = len(fitted) - 3
    assert fitted[-2] == _section(f"{20 - kept} more")
    assert budget.text_size(fitted) <= budget.BLOCKS_TEXT_MAX


def test_fit_respects_max_body_and_block_count() -> None:
    body = [_section("x") for _ in range(100)]
    fitted = budget.fit([], body, [], more=lambda n: [_section(f"{n} more")], max_body=5)
    assert len(fitted) == 6 and fitted[-1] == _section("95 more")
    fitted = budget.fit([], body, [], more=lambda n: [_section(f"{n} more")])
    assert len(fitted) == budget.MAX_BLOCKS and fitted[-1] == _section("51 more")
    assert budget.fit([], body[:3], [], more=lambda n: [_section("x")]) == body[:3]


def test_fit_lines_packs_and_counts() -> None:
    lines = [f"line {i} " + "x" * 200 for i in range(100)]

    def pack(chunk: object) -> list[dict[str, object]]:
        return [_section("\n".join(chunk))] if chunk else []  # type: ignore[arg-type]

    fitted = budget.fit_lines([], lines, [], pack=pack, more=lambda n: f"{n} more")
    assert budget.text_size(fitted) <= budget.BLOCKS_TEXT_MAX
    shown = fitted[0]["text"]["text"].count("line ")  # type: ignore[index]
    assert fitted[-1] == _section(f"{100 - shown} more")
    capped = budget.fit_lines([], lines, [], pack=pack, more=lambda n: f"{n} more", max_lines=3)
    assert capped[-1] == _section("97 more")


def test_compact_ids_groups_the_part_that_varies() -> None:
    ids = [f"d-{i:03d}-e5-prod" for i in range(12)] + ["elser-prod"]
    text = budget.compact_ids(ids, 1000, code=_code, more=_more)
    assert text.startswith("`d-{000,001,002,")
    assert text.endswith("}-e5-prod`, `elser-prod`")
    # At a glance (10 or fewer) every id is written out.
    assert budget.compact_ids(ids[:3], 1000, code=_code, more=_more) == (
        "`d-000-e5-prod`, `d-001-e5-prod`, `d-002-e5-prod`"
    )


IDS = st.lists(
    st.from_regex(r"[a-z0-9]{1,6}([-_.][a-z0-9]{1,6}){0,3}", fullmatch=True),
    max_size=300,
    unique=True,
)


@given(ids=IDS, chars=st.integers(min_value=0, max_value=4000))
def test_compact_ids_never_loses_count(ids: list[str], chars: int) -> None:
    text = budget.compact_ids(ids, chars, code=_code, more=_more)
    found, left = _expand(text)
    assert sorted(found) == sorted(set(found)), "no id twice"
    assert set(found) <= set(ids) and len(found) + left == len(ids)
    if len(", ".join(_code(i) for i in ids)) <= chars:
        assert left == 0  # when they fit plainly, none is left out


def test_split_list_cuts_between_items() -> None:
    text = ", ".join(f"`id-{i}`" for i in range(500))
    pieces = budget.split_list(text, 3000)
    assert all(len(p) <= 3000 for p in pieces) and ", ".join(pieces) == text
