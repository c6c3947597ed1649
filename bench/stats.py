"""Figures from flow records: ack percentiles, the server's own overhead, throughput.

Overhead is a latency minus the time the emulator was told to sit on the requests of that
flow: the requests are found in the emulator's log by the action id inside their
`X-Opaque-Id`, and the union of their injected delays (overlapping calls counted once) is
subtracted. A flow whose requests cannot be found falls back to one configured latency.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from bench.loadgen import Flow
from bot.emulator import RequestRecord

SLACK_ACK_LIMIT = 3.0
ACK_GIVE_UP = 10.0  # the load generator's ack timeout: a failed ack counts as this long
Interval = tuple[float, float]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def union_length(intervals: Iterable[Interval]) -> float:
    """Total length covered by the intervals."""
    total, end = 0.0, -math.inf
    for lo, hi in sorted(intervals):
        if hi <= end:
            continue
        total += hi - max(lo, end)
        end = hi
    return total


def injected_delays(
    records: Iterable[RequestRecord],
    delay_for: Callable[[str], float],
    action_ids: Iterable[str],
) -> dict[str, list[Interval]]:
    """Per action id, the intervals its Elasticsearch requests spent in injected latency."""
    wanted = set(action_ids)
    found: dict[str, list[Interval]] = {a: [] for a in wanted}
    for record in records:
        delay = delay_for(record.endpoint)
        opaque = record.headers.get("x-opaque-id", "")
        if not opaque:
            continue
        for token in opaque.split("/"):
            if token in wanted:
                found[token].append((record.timestamp, record.timestamp + delay))
    return found


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 2)


def _dist(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict[str, Any]:
    out: dict[str, Any] = {f"p{p}": _ms(percentile(values, p)) for p in points}
    out["max"] = _ms(max(values)) if values else None
    out["count"] = len(values)
    return out


def _within(intervals: list[Interval], start: float, end: float) -> float:
    clipped = [(max(lo, start), min(hi, end)) for lo, hi in intervals if lo < end and hi > start]
    return union_length(clipped)


def flow_figures(
    flows: Sequence[Flow],
    *,
    delays: Mapping[str, list[Interval]],
    fallback_click: float,
    fallback_command: float,
) -> dict[str, Any]:
    """Ack, overhead and throughput figures of one run."""
    command_acks = [f.command_ack for f in flows if f.command_ack is not None]
    click_acks = [f.click_ack for f in flows if f.click_ack is not None]
    acks = command_acks + click_acks
    attempts = sum(1 for f in flows if f.command_sent) + sum(1 for f in flows if f.click_sent)
    failed_acks = attempts - len(acks)
    slow = sum(1 for a in acks if a > SLACK_ACK_LIMIT) + failed_acks

    overhead: list[float] = []
    command_overhead: list[float] = []
    attributed = 0
    for f in flows:
        spans = delays.get(f.action_id or "", [])
        if f.completed and f.click_sent is not None and f.result_at is not None:
            inside = _within(spans, f.click_sent, f.result_at)
            if inside > 0 or fallback_click == 0:
                attributed += 1  # found in the log, or nothing to subtract (the baseline)
            waited = inside if inside > 0 else fallback_click
            overhead.append(f.result_at - f.click_sent - waited)
        if f.proposal_at is not None:
            inside = _within(spans, f.command_sent, f.proposal_at)
            waited = inside if inside > 0 else fallback_command
            command_overhead.append(f.proposal_at - f.command_sent - waited)

    completed = [f for f in flows if f.completed]
    previews = [f.proposal_at - f.command_sent for f in flows if f.proposal_at is not None]
    results = [r for f in completed if (r := f.click_to_result) is not None]
    span = 0.0
    if completed:
        span = max(f.result_at or 0.0 for f in completed) - min(f.command_sent for f in flows)
    errors = Counter((f.error or "")[:120] for f in flows if f.error)
    return {
        "flows": {
            "started": len(flows),
            "completed": len(completed),
            "failed": len(flows) - len(completed),
        },
        "ack_ms": _dist(acks),
        "acks_over_3s_pct": round(100.0 * slow / attempts, 3) if attempts else None,
        "acks_failed": failed_acks,
        "ack_worst_ms": _ms(ACK_GIVE_UP if failed_acks else max(acks, default=None)),
        "command_ack_ms": _dist(command_acks),
        "click_ack_ms": _dist(click_acks),
        "overhead_ms": {
            **_dist(overhead, (50, 99)),
            "attributed_pct": round(100.0 * attributed / len(overhead), 1) if overhead else None,
        },
        "command_overhead_ms": _dist(command_overhead, (50, 99)),
        "preview_ms": _dist(previews, (50, 99)),
        "result_ms": _dist(results, (50, 99)),
        "flows_per_s": round(len(completed) / span, 2) if span > 0 else None,
        "errors": dict(errors.most_common(5)),
    }


def ratio(bot: float | None, baseline: float | None) -> float | None:
    """bot / baseline, rounded; None when either is missing or the baseline is 0."""
    if bot is None or baseline is None or baseline == 0:
        return None
    return round(bot / baseline, 3)


def waves(timestamps: Iterable[float], latency: float) -> int:
    """Sequential rounds of requests: a request sent before the round's first one could have
    been answered (within `latency`) was sent in parallel with it."""
    count, round_end = 0, -math.inf
    for at in sorted(timestamps):
        if at >= round_end:
            count += 1
            round_end = at + latency
    return count


def one_flow_requests(
    flows: Sequence[Flow], records: Sequence[RequestRecord], latency: float
) -> dict[str, Any]:
    """Elasticsearch requests of sequential flows, by phase and endpoint, for one flow.

    Flows must not overlap (the round-trip scenario runs one at a time): a request belongs
    to the flow whose command → result window holds it. The flow shown is the median one by
    total requests; `per_flow` gives every flow's total so a varying count shows.
    """
    windows: list[tuple[Flow, list[RequestRecord], list[RequestRecord]]] = []
    attributed = 0
    for f in flows:
        if not f.completed or f.proposal_at is None or f.click_sent is None:
            continue
        end = f.result_at or 0.0
        preview = [r for r in records if f.command_sent <= r.timestamp <= f.proposal_at]
        click = [r for r in records if f.click_sent <= r.timestamp <= end]
        attributed += len(preview) + len(click)
        windows.append((f, preview, click))
    if not windows:
        return {}
    ordered = sorted(windows, key=lambda w: len(w[1]) + len(w[2]))
    _, preview, click = ordered[len(ordered) // 2]

    def phase(rs: list[RequestRecord]) -> dict[str, Any]:
        return {
            "requests": len(rs),
            "sequential_rounds": waves((r.timestamp for r in rs), latency),
            "by_endpoint": dict(Counter(r.endpoint for r in rs).most_common()),
        }

    return {
        "preview": phase(preview),
        "click": phase(click),
        "total": len(preview) + len(click),
        "per_flow": [len(p) + len(c) for _, p, c in windows],
        "outside_flows": len(records) - attributed,
    }
