"""What the bot stopped and has not brought back: its own history, read as facts (pure).

Elasticsearch forgets a stopped deployment, so after a stop only the bot's store knows
what ran, with which settings, who stopped it and why. `/ml-deployments` lists these and
`/ml-start <deployment_id>` restarts them from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.model import Deployment, PendingAction, StopSpec
from bot.core.policy import matches

RECENT_SECONDS = 7 * 24 * 3600  # how far back the listing looks for the bot's stops


@dataclass(frozen=True)
class Stopped:
    """Deployments one stop of the bot stopped that are not running now."""

    action: PendingAction  # the stop (its Restart button value is `action.id`)
    deployments: tuple[Deployment, ...]  # as they ran before the stop

    @property
    def when(self) -> float:
        """When the stop finished (or began, for an old record)."""
        return self.action.finished_at or self.action.started_at or self.action.created_at


def _stopped_ids(action: PendingAction) -> set[str]:
    return {o.deployment_id for o in action.outcomes if o.ok}


def _in_pattern(pattern: str | None, deployment_id: str) -> bool:
    if not pattern:
        return True
    exprs = pattern.split(",")
    return any(e in ("_all", "*") or matches(e, deployment_id) for e in exprs)


def last_stops(actions: Iterable[PendingAction], cluster: str) -> dict[str, PendingAction]:
    """deployment id → the newest stop on `cluster` that stopped it."""
    latest: dict[str, PendingAction] = {}
    for action in actions:
        if action.cluster != cluster or not isinstance(action.spec, StopSpec):
            continue
        for dep_id in _stopped_ids(action):
            known = latest.get(dep_id)
            if known is None or _finished(action) > _finished(known):
                latest[dep_id] = action
    return latest


def _finished(action: PendingAction) -> float:
    return action.finished_at or action.started_at or action.created_at


def recently_stopped(
    actions: Iterable[PendingAction],
    cluster: str,
    running: Iterable[str],
    pattern: str | None = None,
) -> tuple[Stopped, ...]:
    """The bot's stops on `cluster` whose deployments are still down, newest first.

    A deployment counts under its newest stop only; one running now is left out.
    """
    up = set(running)
    by_action: dict[str, list[str]] = {}
    stops: dict[str, PendingAction] = {}
    for dep_id, action in last_stops(actions, cluster).items():
        if dep_id in up or not _in_pattern(pattern, dep_id):
            continue
        by_action.setdefault(action.id, []).append(dep_id)
        stops[action.id] = action
    found = [
        Stopped(stops[a], tuple(d for d in stops[a].targets if d.deployment_id in set(ids)))
        for a, ids in by_action.items()
    ]
    return tuple(sorted(found, key=lambda s: s.when, reverse=True))


def stopped_deployment(
    actions: Iterable[PendingAction], cluster: str, deployment_id: str
) -> tuple[PendingAction, Deployment] | None:
    """The newest stop on `cluster` that stopped `deployment_id`, and the deployment as it ran."""
    action = last_stops(actions, cluster).get(deployment_id)
    if action is None:
        return None
    dep = next((d for d in action.targets if d.deployment_id == deployment_id), None)
    return None if dep is None else (action, dep)


def restart_reason(stop: PendingAction) -> str:
    """Why a restart happens: after the stop's own reason, or after the stop by its id."""
    reason = (stop.spec.reason or "").strip()
    return f"restart after {reason}" if reason else f"restart after action {stop.id}"
