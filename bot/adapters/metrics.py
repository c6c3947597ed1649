"""Prometheus metrics: one `Metrics` (with its own registry) per runtime.

A registry per runtime, not the process-wide default, so tests can build many runtimes in
one process without duplicate-registration errors and read exact counts back.
Decisions, approvals and stops are counted from the audit trail (`MetricsSink`), so every
audited event is counted and nothing is counted that was not audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "MetricsSink"]

# `*_created` series double the output and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Slack wants an ack within 3 s; the buckets are dense below that.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# A stop with --finish-pending-work may take minutes.
ES_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Every metric the bot exports, registered in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "ml_chatops_commands",
            "Slash commands handled, by command and outcome "
            "(proposed, denied, nothing_matched, failed, listed, help, usage_error).",
            ["command", "outcome"],
            registry=r,
        )
        self.decisions = Counter(
            "ml_chatops_policy_decisions",
            "Role-map decisions on stops and starts, by result (allowed, denied).",
            ["result"],
            registry=r,
        )
        self.approvals = Counter(
            "ml_chatops_approvals",
            "Four-eyes answers, by result: approved, refused (self-approval or not an "
            "approver), rejected.",
            ["result"],
            registry=r,
        )
        self.stops = Counter(
            "ml_chatops_stops",
            "Deployment stops run after a confirmation, by cluster and outcome.",
            ["cluster", "outcome"],
            registry=r,
        )
        self.scales = Counter(
            "ml_chatops_scales",
            "Deployment scales (`_update`) run after a confirmation, by cluster and outcome.",
            ["cluster", "outcome"],
            registry=r,
        )
        self.es_latency = Histogram(
            "ml_chatops_elasticsearch_request_duration_seconds",
            "Elasticsearch calls by cluster, client endpoint and HTTP status "
            "(or timeout, unreachable, tls, error).",
            ["cluster", "endpoint", "status"],
            buckets=ES_BUCKETS,
            registry=r,
        )
        self.ack_latency = Histogram(
            "ml_chatops_slack_ack_duration_seconds",
            "Time from receiving a Slack request to answering it (the ack), by kind "
            "(command, block_actions, other) and transport (http, socket_mode).",
            ["kind", "transport"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.pending_actions = Gauge(
            "ml_chatops_pending_actions",
            "Proposed stops waiting for a click (refreshed at each scrape).",
            registry=r,
        )
        self.inflight = Gauge(
            "ml_chatops_inflight_listeners",
            "Slack listener runs still working after their ack (e.g. stops in progress).",
            registry=r,
        )
        self.audit_spool = Gauge(
            "ml_chatops_audit_spool_events",
            "Audit events waiting in a spool for a sink that is behind or cannot be written "
            "(the audit file, the index, the audit channel).",
            registry=r,
        )

    def command(self, command: str, outcome: str) -> None:
        """Count one slash command and how it ended."""
        self.commands.labels(command, outcome).inc()

    def observe_es(self, cluster: str, endpoint: str, status: str, seconds: float) -> None:
        """Record one Elasticsearch call."""
        self.es_latency.labels(cluster, endpoint, status).observe(seconds)

    def observe_ack(self, kind: str, transport: str, seconds: float) -> None:
        """Record how long one Slack request took to be acknowledged."""
        self.ack_latency.labels(kind, transport).observe(seconds)

    def track_inflight(self, count: Callable[[], int]) -> None:
        """Read the in-flight gauge from `count` at each scrape."""
        self.inflight.set_function(lambda: float(count()))

    def track_audit_backlog(self, count: Callable[[], int]) -> None:
        """Read the audit backlog gauge (every sink's spooled events) from `count` at scrape."""
        self.audit_spool.set_function(lambda: float(count()))

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class MetricsSink:
    """An audit sink that counts decisions, approvals and stops from the audit documents."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def write(self, doc: dict[str, Any]) -> None:
        """Count the event if it is one the metrics follow."""
        event = doc.get("event") or {}
        action, outcome = event.get("action"), str(event.get("outcome", "unknown"))
        fields = doc.get("ml_chatops") or {}
        if action == "decision":
            self.metrics.decisions.labels("allowed" if outcome == "success" else "denied").inc()
        elif action == "confirm" and outcome == "failure" and "explanation" in fields:
            # The role map is checked again at the click; a denial there is a decision too.
            self.metrics.decisions.labels("denied").inc()
        elif action == "approve":
            self.metrics.approvals.labels("approved" if outcome == "success" else "refused").inc()
        elif action == "reject" and outcome == "success":
            self.metrics.approvals.labels("rejected").inc()
        elif action == "elasticsearch.stop":
            self.metrics.stops.labels(str(fields.get("cluster") or ""), outcome).inc()
        elif action == "elasticsearch.scale":
            self.metrics.scales.labels(str(fields.get("cluster") or ""), outcome).inc()
