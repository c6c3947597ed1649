"""What the use cases answer: one frozen dataclass per outcome, rendered by the adapters."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.health import Assessment, DeploymentHealth, MlMemory
from bot.core.model import Deployment, PendingAction
from bot.core.policy import Decision
from bot.core.stopped import Stopped


@dataclass(frozen=True)
class Who:
    """The Slack person (or shell user) behind a command or click."""

    user_id: str
    user_name: str
    team_id: str
    channel_id: str
    channel_name: str = ""
    incident_id: str | None = None  # set in an incident channel (see bot.core.incidents)


@dataclass(frozen=True)
class Denied:
    """The role map said no."""

    decision: Decision


@dataclass(frozen=True)
class Failed:
    """Something outside the role map went wrong; nothing was changed."""

    message: str


@dataclass(frozen=True)
class ForceNeeded:
    """Elasticsearch would refuse a plain stop of these deployments; nothing was proposed."""

    cluster: str
    deployments: tuple[Deployment, ...]  # the ones it would refuse, with their impact
    may_force: bool  # the caller's role grants `--force` for this stop
    note: str | None = None  # what changed since an earlier preview (at a click)
    matched: tuple[str, ...] = ()  # every deployment the request matched, refused or not
    narrower: str | None = None  # `/ml-stop` text for only the others, if the caller may


@dataclass(frozen=True)
class NothingMatched:
    """The id expression matched no deployment: nothing will be stopped."""

    expression: str
    cluster: str
    unmatched: tuple[str, ...]
    hints: tuple[str, ...]


@dataclass(frozen=True)
class Proposed:
    """A preview is ready to show, with its pending action saved."""

    action: PendingAction
    note: str | None = None  # mrkdwn from our own code shown above the preview


@dataclass(frozen=True)
class Locked:
    """Another pending or running action holds one of the deployments."""

    holder: PendingAction
    deployment_ids: tuple[str, ...]
    asker_id: str | None = None  # who asked now (the holder's requester: their own preview)


@dataclass(frozen=True)
class Frozen:
    """The kill switch is on; `by` is None when the config file froze it."""

    by: str | None
    since: float | None
    reason: str | None


@dataclass(frozen=True)
class FreezeChanged:
    """The kill switch was turned on or off."""

    freeze: bool
    by: str
    reason: str | None
    until: float | None = None  # a timed freeze unfreezes itself then
    timed: bool = False  # the timer unfroze it (not a person)
    channel: str | None = None  # where it was frozen (a timed unfreeze is said there)


@dataclass(frozen=True)
class Listing:
    """The read-only deployments table."""

    cluster: str
    pattern: str | None
    deployments: tuple[Deployment, ...]
    hidden: int = 0
    stopped: tuple[Stopped, ...] = ()  # the bot's recent stops still down (newest first)
    stopped_note: str | None = None  # why `stopped` could not be read
    reverts: tuple[PendingAction, ...] = ()  # timed changes' pending reverts on this cluster


@dataclass(frozen=True)
class Timeline:
    """The bot's actions in a channel or an incident, for `/ml-audit`."""

    actions: tuple[PendingAction, ...]
    scope: str
    markdown: bool


@dataclass(frozen=True)
class NotRequester:
    """Someone other than the requester clicked."""

    action: PendingAction
    clicker_id: str


@dataclass(frozen=True)
class Already:
    """The action is no longer waiting for a click (running, finished, expired)."""

    action: PendingAction


@dataclass(frozen=True)
class Unknown:
    """No pending action has that id."""

    action_id: str


@dataclass(frozen=True)
class Started:
    """This click won the move to `executing`; run `execute()` next."""

    action: PendingAction


@dataclass(frozen=True)
class Ended:
    """The action reached a final state by this call (cancelled, rejected or expired)."""

    action: PendingAction


@dataclass(frozen=True)
class NeedsApproval:
    """Stop was pressed before enough approvals arrived."""

    action: PendingAction


@dataclass(frozen=True)
class Changed:
    """The targets changed since the preview; the action now holds the new ones."""

    action: PendingAction
    note: str


@dataclass(frozen=True)
class SelfApproval:
    """The requester tried to approve their own request."""

    action: PendingAction


@dataclass(frozen=True)
class Approved:
    """An approval was recorded (`action.approved` says whether enough are in)."""

    action: PendingAction
    approver_id: str


ProposeResult = Denied | Failed | ForceNeeded | NothingMatched | Proposed | Locked | Frozen
ClickResult = (
    Denied
    | Failed
    | NotRequester
    | Already
    | Unknown
    | Started
    | Ended
    | NeedsApproval
    | Changed
    | Frozen
    | Locked
    | ForceNeeded
)
ApproveResult = Denied | Failed | Already | Unknown | Ended | SelfApproval | Approved


@dataclass(frozen=True)
class StatusReport:
    """`/ml-status`: each deployment's health, judged, worst first; ML memory on the nodes."""

    cluster: str
    pattern: str | None
    items: tuple[tuple[DeploymentHealth, Assessment, Deployment], ...]
    memory: MlMemory | str
    hidden: int = 0
    reverts: tuple[PendingAction, ...] = ()  # timed changes' pending reverts on this cluster
