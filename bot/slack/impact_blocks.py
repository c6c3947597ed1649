"""Block Kit text for what a stop breaks (issue 12): endpoints, semantic_text, pipelines.

Pure functions of an `Impact`; every list is bounded with an exact "+N more" count so a
cluster with hundreds of pipelines still fits Slack's 3000-character sections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bot.core.impact import Impact, PipelineUse, Reach
from bot.core.model import Deployment
from bot.slack.blocks import budget
from bot.slack.blocks.common import (
    ID_MAX,
    SECTION_TEXT_MAX,
    Message,
    _make_message,
    _section,
    clip,
    escape,
)

LINES_PER_KIND = 8  # endpoint, semantic and pipeline lines shown per deployment
DETAILED = 10  # deployments whose whole impact a force-needed message lists

_REACH_WORDS = {
    Reach.DIRECT: "names the deployment",
    Reach.MODEL_ID: "names model {via}",
    Reach.ALIAS: "through model alias {via}",
    Reach.ENDPOINT: "through inference endpoint {via}",
}


def code(text: str) -> str:
    """Elasticsearch-supplied text as escaped inline code (a backtick cannot end the span)."""
    return f"`{escape(clip(text.replace('`', chr(39)).replace(chr(10), ' '), ID_MAX) or ' ')}`"


def _bounded(lines: Sequence[str], noun: str) -> list[str]:
    """At most LINES_PER_KIND lines, then one exact count of the rest."""
    if len(lines) <= LINES_PER_KIND:
        return list(lines)
    rest = len(lines) - LINES_PER_KIND
    return [*lines[:LINES_PER_KIND], f"    … +{rest:,} more {noun}"]


def _refusal_tail(force: bool) -> str:
    return " (`--force` overrides)" if force else " — Elasticsearch refuses without `--force`"


def _pipeline_line(p: PipelineUse, force: bool) -> str:
    how = _REACH_WORDS[p.reach].format(via=code(p.via))
    tail = _refusal_tail(force) if p.refuses else ""
    return f"{'⚠' if p.refuses else '•'} ingest pipeline {code(p.name)} ({how}) stops working{tail}"


def impact_lines(impact: Impact, *, force: bool) -> list[str]:
    """One mrkdwn line per thing the stop breaks or could not check, worst first."""
    ends = [
        f"⚠ inference endpoint {code(e.endpoint_id)}"
        + (f" ({escape(clip(e.task_type, 40))})" if e.task_type else "")
        + (" created this deployment" if e.created else " uses this deployment")
        + f" and stops working{_refusal_tail(force)}"
        for e in impact.endpoints
    ]
    fields = [
        f"⚠ semantic_text {code(f'{s.index}.{s.path}')} (endpoint {code(s.endpoint_id)}): "
        "indexing into it and semantic search on it fail"
        for s in impact.semantic
    ]
    pipes = [_pipeline_line(p, force) for p in impact.pipelines]
    unknown = [f"❔ unknown: {escape(clip(u, 300))}" for u in impact.unknown]
    unknown += [f"❔ {escape(clip(p, 300))}" for p in impact.partial]
    return [
        *_bounded(ends, "inference endpoints"),
        *_bounded(fields, "semantic_text fields"),
        *_bounded(pipes, "ingest pipelines"),
        *unknown,
    ]


def impact_md(impact: Impact | None, *, force: bool, limit: int = 1500) -> str:
    """The impact as one mrkdwn text of at most `limit` characters ("" when nothing)."""
    if impact is None:
        return ""
    return clip("\n".join(impact_lines(impact, force=force)), limit)


def restores_md(impact: Impact | None) -> str:
    """For a start: the inference endpoints (and their semantic_text fields) it brings back."""
    if impact is None or not impact.endpoints:
        return ""
    lines = [f"↺ brings back inference endpoint {code(e.endpoint_id)}" for e in impact.endpoints]
    lines += [f"↺ and semantic_text {code(f'{s.index}.{s.path}')} on it" for s in impact.semantic]
    return clip("\n".join(_bounded(lines, "more")), 1500)


def refusal_md(deployment_id: str, impact: Impact, *, may_force: bool) -> str:
    """Why a plain stop would fail, and what to do about it (empty when it would not)."""
    reasons = impact.refusal_reasons(deployment_id)
    if not reasons:
        return ""
    why = escape(clip("; ".join(reasons), 1200))
    if may_force:
        return f"{why}; add `--force` to stop it anyway"
    return f"{why}; stopping it anyway needs `--force`, which your role does not grant"


def refusal_section(deployments: Iterable[Deployment], *, may_force: bool) -> dict[str, Any] | None:
    """A section explaining every refusal among `deployments`, or None when none refuses."""
    lines = [
        "• " + refusal_md(d.deployment_id, d.impact, may_force=may_force)
        for d in deployments
        if d.impact is not None and d.impact.refuses
    ]
    if not lines:
        return None
    head = "🛑 *Why:*"
    text = "\n".join([head, *_bounded(lines, "deployments")])
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SECTION_TEXT_MAX)}}


def endpoint_marker(dep: Deployment) -> str:
    """`/ml-deployments` note for a deployment that inference endpoints run on ("" if none)."""
    if dep.impact is None or not dep.impact.endpoints:
        return ""
    ids = ", ".join(code(e.endpoint_id) for e in dep.impact.endpoints[:3])
    more = len(dep.impact.endpoints) - 3
    return f"🔗 inference endpoint {ids}" + (f" +{more} more" if more > 0 else "")


def impact_tally(deployments: Iterable[Deployment]) -> str:
    """`2 refuse a plain stop, 1 runs an inference endpoint` for long target lists."""
    deps = [d for d in deployments if d.impact is not None]
    refusing = sum(1 for d in deps if d.impact is not None and d.impact.refuses)
    endpoints = sum(1 for d in deps if d.impact is not None and d.impact.endpoints)
    parts = []
    if refusing:
        parts.append(f"{refusing:,} refused without `--force`")
    if endpoints:
        parts.append(f"{endpoints:,} run inference endpoints")
    return ", ".join(parts)


def _breaks_lines(dep: Deployment) -> list[str]:
    """`*id* — stopping it breaks:` and one line per thing it breaks."""
    lines = [f"*{code(dep.deployment_id)}* — stopping it breaks:"]
    return lines + (impact_lines(dep.impact, force=False) if dep.impact else [])


def force_needed(
    cluster: str,
    deployments: Sequence[Deployment],
    *,
    may_force: bool,
    note: str | None = None,
) -> Message:
    """Instead of a Stop bound to fail: why Elasticsearch refuses, and if `--force` may help."""
    head = f"Elasticsearch on {code(cluster)} would refuse to stop "
    head += "this deployment" if len(deployments) == 1 else f"{len(deployments):,} of these"
    head += " without `--force`; nothing was proposed."
    changed = f"⚠ *Changed since your preview:* {escape(clip(note or '', 1000))}"
    blocks = [_section(changed)] if note else []
    blocks.append(_section(head))
    section = refusal_section(deployments, may_force=may_force)
    if section is not None:
        blocks.append(section)
    ordered = sorted(deployments, key=lambda d: not (d.impact is not None and d.impact.refuses))
    detail = [_section(clip("\n".join(_breaks_lines(d)), SECTION_TEXT_MAX)) for d in ordered]
    advice = (
        "Retype the command with `--force` to stop anyway; what it breaks is listed above."
        if may_force
        else "Your role does not grant `--force`: ask someone whose role does."
    )

    def more(left: int) -> list[dict[str, Any]]:
        rest = [d.deployment_id for d in ordered[len(ordered) - left :]]
        first = f"*… and {left:,} more that stopping breaks:* "
        ids = budget.compact_ids(rest, 2000, code=code, more=lambda n: f"… +{n:,} more")
        return [_section(first + ids)]

    blocks = budget.fit(blocks, detail, [_section(advice)], more=more, max_body=DETAILED)
    reasons = [
        refusal_md(d.deployment_id, d.impact, may_force=may_force)
        for d in deployments
        if d.impact is not None
    ]
    return _make_message(clip(f"{head} " + " ".join(reasons), 2500), blocks)
