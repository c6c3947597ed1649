"""A scale's preview lines (before → after, API, what depends on it) and `/ml-status` (pure)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from bot.core.health import Assessment, DeploymentHealth, Level, MlMemory, size_text
from bot.core.impact import Impact
from bot.core.model import Deployment, PendingAction, ScaleSpec
from bot.core.outcomes import StatusReport
from bot.core.scale import Api, Refusal, plan_scale
from bot.slack.blocks.common import (
    BUTTON_TEXT_MAX,
    MAX_BLOCKS,
    SECTION_TEXT_MAX,
    Block,
    Message,
    _code,
    _context,
    _divider,
    _header,
    _join_limited,
    _make_message,
    _plain,
    _section,
    clip,
    escape,
)
from bot.slack.ids import STATUS_SCALE_ACTION_ID, STATUS_STOP_ACTION_ID

DETAILED_STATUS = 12  # deployments /ml-status shows in full; the rest get one line each
LIST_LINES = 40
STATUS_BUDGET = 9000  # characters of detail sections in one /ml-status (Slack: keep < 12,000)
TARGET_MAX = 800  # characters of one scale target in a preview
DETAILED_SCALE_TARGETS = 6  # scale targets a preview shows in full (each up to TARGET_MAX)


def uses_md(impact: Impact | None) -> str:
    """What depends on the deployment, worded for a scale: nothing breaks, capacity changes."""
    if impact is None:
        return "Depends on it: not read"
    names = [f"inference endpoint {_code(e.endpoint_id)}" for e in impact.endpoints]
    names += [f"semantic_text {_code(f'{s.index}.{s.path}')}" for s in impact.semantic]
    names += [f"ingest pipeline {_code(p.name)}" for p in impact.pipelines]
    unread = "; ".join(escape(u) for u in (*impact.unknown, *impact.partial))
    tail = f" ({clip(unread, 200)})" if unread else ""
    if not names:
        return f"Depends on it: nothing found{tail}"
    listed = _join_limited(names, 400)
    return f"Nothing breaks; these get more or less capacity: {listed}{tail}"


def scale_target_md(spec: ScaleSpec, dep: Deployment) -> str:
    """One target: before → after, threads, the API and why, and what uses it."""
    plan = plan_scale(dep, spec.change_for(dep.deployment_id))
    head = f"*{_code(dep.deployment_id)}* — model {_code(dep.model_id)} · state *{dep.state}*"
    if isinstance(plan, Refusal):
        return f"{head}\n⛔ cannot be scaled: {escape(plan.reason)}"
    threads = plan.before.threads
    thread_text = (
        f" · {threads} thread{'s' if threads != 1 else ''} per allocation" if threads else ""
    )
    placed = f" ({dep.allocations} allocated now)" if dep.allocations is not None else ""
    change = f"{escape(plan.before.text())}{placed} → *{escape(plan.after.text())}*{thread_text}"
    route = plan.route
    if route.api is Api.INFERENCE:
        api = (
            f"`PUT _inference/{route.task_type or ''}/{route.endpoint_id}/_update` "
            f"(`{route.privilege}`): {escape(route.why)}"
        )
    else:
        api = (
            f"`POST _ml/trained_models/{dep.deployment_id}/deployment/_update` "
            f"(`{route.privilege}`): {escape(route.why)}"
        )
    return clip(
        "\n".join([head, change, f"API: {clip(api, 400)}", uses_md(dep.impact)]), TARGET_MAX
    )


def scale_extra_blocks(spec: ScaleSpec) -> list[Block]:
    """The preview's deployments left alone, and the ML memory line."""
    out: list[Block] = []
    if spec.skipped:
        lines = [f"{_code(i)}: {escape(why)}" for i, why in spec.skipped]
        out.append(
            _section(clip("⛔ *Not scaled (no button for these):* " + "; ".join(lines), 1500))
        )
    if spec.memory:
        out.append(_section(f"🧠 {clip(escape(spec.memory), 600)}"))
    return out


def change_md(action: PendingAction) -> str:
    """`*Change:* `--allocations 4`` (or a revert's source)."""
    spec = action.spec
    assert isinstance(spec, ScaleSpec)
    if spec.per_target:
        return (
            f"*Change:* back to the settings before action {_code(action.source_action_id or '?')}"
        )
    return f"*Change:* {_code(spec.change.text())} — nothing stops; capacity changes"


# --------------------------------------------------------------------------- /ml-status


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ms"


def _ago(epoch_ms: int | None, now: float) -> str:
    if epoch_ms is None:
        return "never"
    seconds = max(0.0, now - epoch_ms / 1000)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


_ICON = {Level.FAILING: "🔴", Level.OVERLOADED: "🟠", Level.DEGRADED: "🟡", Level.HEALTHY: "🟢"}


def _allocations_md(h: DeploymentHealth) -> str:
    adaptive = ""
    if h.adaptive_on and h.adaptive is not None:
        low = h.adaptive.get("min_number_of_allocations")
        high = h.adaptive.get("max_number_of_allocations")
        adaptive = f" · adaptive min {low if low is not None else 0}, max {high or 'none'}"
    return (
        f"allocations: target {h.target if h.target is not None else '?'}, "
        f"allocated {h.allocated if h.allocated is not None else '?'}{adaptive}"
        + (f" · {h.threads} thread(s) each" if h.threads else "")
    )


def _detail_md(h: DeploymentHealth, verdict: Assessment, dep: Deployment, now: float) -> str:
    state = f"state *{escape(h.state)}*" + (f" ({clip(escape(h.reason), 200)})" if h.reason else "")
    queue = f"{h.pending:,}" + (f" of {h.queue_capacity:,}" if h.queue_capacity else "")
    nodes = [
        f"{_code(n.name, 60)} {escape(n.routing_state)}"
        + (f" ({clip(escape(n.reason), 200)})" if n.reason and n.reason != h.reason else "")
        + f", {n.pending:,} queued"
        for n in h.nodes
    ]
    lines = [
        f"{_ICON[verdict.level]} *{_code(h.deployment_id)}* — model {_code(h.model_id)} · {state}",
        "*"
        + clip(escape("; ".join(verdict.findings)), 500)
        + "*"
        + (f" — {clip(verdict.advice, 300)}" if verdict.advice else ""),
        _allocations_md(h),
        "nodes: " + (_join_limited(nodes, 900) if nodes else "none"),
        f"queue: {queue} pending · rejected {h.rejected:,} · timeouts {h.timeouts:,} · "
        f"errors {h.errors:,}",
        f"inference time: {_ms(h.average_ms(last_minute=True))} last minute, "
        f"{_ms(h.average_ms())} overall · throughput {h.throughput_last_minute:,}/min "
        f"(peak {h.peak_throughput:,}) · {h.inference_count:,} inferences · "
        f"last access {_ago(h.last_access, now)}",
        uses_md(dep.impact).replace("Nothing breaks; these get more or less capacity", "Used by"),
        f"model memory: {size_text(h.required_memory)} per node",
    ]
    return clip("\n".join(lines), 2000)


def _buttons(h: DeploymentHealth, verdict: Assessment, cluster: str, index: int) -> Block | None:
    elements: list[Block] = []
    where = f" --cluster {cluster}"
    if verdict.scale_up is not None:
        elements.append(
            {
                "type": "button",
                "text": _plain(clip(f"Scale up ({verdict.scale_up.text()})", BUTTON_TEXT_MAX)),
                "action_id": STATUS_SCALE_ACTION_ID,
                "value": f"{h.deployment_id} {verdict.scale_up.text()}{where}",
                "style": "primary",
            }
        )
    if verdict.stop:
        elements.append(
            {
                "type": "button",
                "text": _plain("Stop…"),
                "action_id": STATUS_STOP_ACTION_ID,
                "value": f"{h.deployment_id}{where}",
                "style": "danger",
            }
        )
    if not elements:
        return None
    return {"type": "actions", "block_id": f"ml_status.actions.{index}", "elements": elements}


def memory_md(memory: MlMemory | str) -> str:
    """`ML memory: 3.1 GB free of 8.0 GB on 2 ML nodes (largest free 2.0 GB)`."""
    if isinstance(memory, str):
        return f"🧠 ML memory: unknown ({escape(memory)})"
    return (
        f"🧠 ML memory: {size_text(memory.free)} free of {size_text(memory.limit)} on "
        f"{len(memory.nodes)} ML node(s) (largest free {size_text(memory.largest_free)})"
    )


def status_message(report: StatusReport, *, now: float | None = None) -> Message:
    """`/ml-status`: one deployment in full, or every one, the unhealthy first."""
    when = time.time() if now is None else now
    items = report.items
    title = f"ML deployments on {clip(report.cluster, 40)}"
    if report.pattern:
        title += f" matching {clip(report.pattern, 60)}"
    blocks: list[Block] = [_header(title)]
    if not items:
        blocks.append(_section("No deployments you may see."))
    bad = [i for i in items if i[1].level is not Level.HEALTHY]
    # Named deployments in full; without a name only the unhealthy ones (the rest one line).
    named = report.pattern is not None and len(items) <= DETAILED_STATUS
    detailed = list(items) if named else bad[:DETAILED_STATUS]
    used = 0
    shown: list[tuple[DeploymentHealth, Assessment, Deployment]] = []
    for index, (health, verdict, dep) in enumerate(detailed):
        text = _detail_md(health, verdict, dep, when)
        if len(blocks) > MAX_BLOCKS - 6 or used + len(text) > STATUS_BUDGET:
            break
        used += len(text)
        shown.append((health, verdict, dep))
        blocks.append(_section(text))
        buttons = _buttons(health, verdict, report.cluster, index)
        if buttons is not None:
            blocks.append(buttons)
    rest = [i for i in items if i not in shown]
    if rest:
        blocks.append(_section(_rest_md(rest)))
    blocks += [_divider(), _section(memory_md(report.memory))]
    if report.hidden:
        blocks.append(_context(f"{report.hidden:,} more you may not see"))
    worst = _summary(items)
    return _make_message(f"{escape(title)}: {worst}", blocks)


def _rest_md(rest: Sequence[tuple[DeploymentHealth, Assessment, Deployment]]) -> str:
    """One line per deployment, then an exact count of those that did not fit."""
    lines: list[str] = []
    used = 0
    for h, v, _ in rest[:LIST_LINES]:
        line = (
            f"{_ICON[v.level]} {_code(h.deployment_id)} {clip(escape(h.state), 20)} · "
            f"{h.allocated if h.allocated is not None else '?'}/"
            f"{h.target if h.target is not None else '?'} allocations · "
            f"{clip(escape('; '.join(v.findings)), 120)}"
        )
        if used + len(line) > SECTION_TEXT_MAX - 200:
            break
        lines.append(line)
        used += len(line) + 1
    if len(rest) > len(lines):
        lines.append(f"… and {len(rest) - len(lines):,} more: narrow with `/ml-status <pattern>`")
    return "\n".join(lines)


def _summary(items: Sequence[tuple[DeploymentHealth, Assessment, Deployment]]) -> str:
    counts = {level: 0 for level in Level}
    for _, verdict, _ in items:
        counts[verdict.level] += 1
    parts = [f"{n} {level.name.lower()}" for level, n in counts.items() if n]
    return ", ".join(parts) or "none"
