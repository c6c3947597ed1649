"""The `/ml-deployments` table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bot.core.impact import pipeline_names
from bot.core.model import Deployment
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    EXPRESSION_MAX,
    SECTION_TEXT_MAX,
    TABLE_ROWS,
    Block,
    Message,
    _allocations,
    _code,
    _code_whole,
    _context,
    _header,
    _join_limited,
    _make_message,
    _packed_sections,
    _pipelines_md,
    _plural,
    _section,
    _word,
    clip,
    escape,
)
from bot.slack.impact_blocks import endpoint_marker

# --------------------------------------------------------------------------- /ml-deployments


def _table_row(dep: Deployment) -> str:
    """One line of the deployments table."""
    facts = [
        f"{_code(dep.deployment_id)}",
        f"model {_code(dep.model_id)}",
        f"*{_word(dep.state)}*",
        f"{_allocations(dep)} allocations",
        _adaptive_md(dep),
        f"{_plural(dep.threads_per_allocation, 'thread')} each"
        if dep.threads_per_allocation
        else "",
        _word(dep.priority),
        _plural(dep.inference_count, "inference"),
    ]
    if pipelines := pipeline_names(dep.impact, dep.pipelines):
        facts.append(f"⚠ pipelines {_pipelines_md(pipelines, 300)}")
    facts.append(endpoint_marker(dep))
    return " · ".join(f for f in facts if f)


def _rows_that_fit(head: list[Block], deployments: Sequence[Deployment]) -> list[Block]:
    """As many table rows as the message holds (at most TABLE_ROWS), then the rest by id."""
    rows = [_table_row(d) for d in deployments[:TABLE_ROWS]]
    spare = budget.room(head, [])
    more_room = min(spare // 3, SECTION_TEXT_MAX)
    shown = budget.take_lines(rows, spare - more_room, sep=1)
    shown = min(shown, (budget.MAX_BLOCKS - len(head) - 2) * 10)  # ~10 rows per section
    blocks = _packed_sections(rows[:shown])
    rest = deployments[shown:]
    if rest:
        blocks.append(_section(_more_rows_md(rest, more_room)))
    return blocks


def _more_rows_md(rest: Sequence[Deployment], chars: int) -> str:
    head = f"*… and {len(rest):,} more:* "
    tail = " — narrow the list with a pattern, e.g. `/ml-deployments elser-*`"
    ids = budget.compact_ids(
        [d.deployment_id for d in rest],
        chars - len(head) - len(tail),
        code=_code_whole,
        more=lambda n: f"… +{n:,} more",
    )
    return head + ids + tail


def _adaptive_md(dep: Deployment) -> str:
    """`adaptive 1-4` when adaptive allocations are on (allocated/target moves between them)."""
    adaptive = dep.adaptive_allocations or {}
    if not adaptive.get("enabled"):
        return ""
    low = adaptive.get("min_number_of_allocations")
    high = adaptive.get("max_number_of_allocations")
    return f"adaptive {low if low is not None else 0}-{high if high is not None else 'no max'}"


def deployments_table(
    cluster: str, pattern: str | None, deployments: Sequence[Deployment]
) -> Message:
    """Read-only table of the deployments matching `pattern` on `cluster`."""
    matching = f"matching {_code(pattern, EXPRESSION_MAX)} " if pattern else ""
    where = f"{matching}on {_code(cluster)}"
    if not deployments:
        text = f"No deployments {where}."
        return _make_message(text, [_section(text)])
    title = f"Deployments on {cluster}" + (f" matching {pattern}" if pattern else "")
    states = Counter(d.state for d in deployments)
    tally = ", ".join(f"{n:,} {escape(clip(s, 40))}" for s, n in states.most_common(8))
    blocks = [_header(title), _context(f"{_plural(len(deployments), 'deployment')} {where}", tally)]
    blocks += _rows_that_fit(blocks, deployments)
    summary = _join_limited(
        [f"{escape(d.deployment_id)} ({escape(d.state)})" for d in deployments], 2500
    )
    return _make_message(f"{_plural(len(deployments), 'deployment')} {where}: {summary}", blocks)
