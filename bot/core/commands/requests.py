"""The typed requests a slash command parses into (pure dataclasses)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from bot.core.commands.tokens import is_flag_like
from bot.core.timing import Window

DEFAULT_AUDIT_SINCE = 24 * 3600


@dataclass(frozen=True)
class StopRequest:
    """``/ml-stop``: what to stop, how, where, and why."""

    ids: tuple[str, ...]
    force: bool = False
    finish_pending_work: bool = False
    allow_no_match: bool = True
    cluster: str | None = None
    reason: str | None = None
    window: Window | None = None  # `--for` / `--until`: the stop reverts itself

    @property
    def expression(self) -> str:
        """What the user asked for, e.g. ``"elser-*"`` or ``"a,b"``."""
        return ",".join(self.ids)

    @property
    def is_wildcard(self) -> bool:
        return any("*" in i for i in self.ids)

    @property
    def is_list(self) -> bool:
        return len(self.ids) > 1

    @property
    def is_all(self) -> bool:
        return self.ids in (("_all",), ("*",))

    def options(self) -> frozenset[str]:
        """The policy options this request needs granted."""
        opts: set[str] = set()
        if self.force:
            opts.add("force")
        if self.finish_pending_work:
            opts.add("finish_pending_work")
        if self.is_all:
            opts.add("all")
        else:
            if self.is_wildcard:
                opts.add("wildcard")
            if self.is_list:
                opts.add("list")
        return frozenset(opts)

    def flags_text(self) -> str:
        """Canonical flags (no cluster, no reason), e.g. ``"--force --no-allow-no-match"``."""
        flags: list[str] = []
        if self.force:
            flags.append("--force")
        if self.finish_pending_work:
            flags.append("--finish-pending-work")
        if not self.allow_no_match:
            flags.append("--no-allow-no-match")
        return " ".join(flags)

    def as_text(self) -> str:
        """The canonical command text; ``parse_stop(req.as_text()) == req``."""
        parts = [self.expression]
        if flags := self.flags_text():
            parts.append(flags)
        if self.window is not None:
            parts.append(self.window.text())
        if self.cluster is not None:
            parts.append(f"--cluster {shlex.quote(self.cluster)}")
        if self.reason is not None:
            if is_flag_like(self.reason):
                parts.append(f"--reason={shlex.quote(self.reason)}")
            else:
                parts.append(f"--reason {shlex.quote(self.reason)}")
        return " ".join(parts)


@dataclass(frozen=True)
class ListRequest:
    """``/ml-deployments [pattern] [--cluster NAME]``."""

    pattern: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class StartRequest:
    """``/ml-start <model_id> [--deployment-id ID] [--allocations N] ...``."""

    model_id: str
    deployment_id: str | None = None
    allocations: int | None = None
    threads: int | None = None
    priority: str | None = None
    cluster: str | None = None
    reason: str | None = None

    @property
    def target_id(self) -> str:
        """The deployment id Elasticsearch will use (the model id by default)."""
        return self.deployment_id or self.model_id


def _reason_text(reason: str) -> str:
    flag = "--reason=" if is_flag_like(reason) else "--reason "
    return flag + shlex.quote(reason)


@dataclass(frozen=True)
class ScaleRequest:
    """``/ml-scale``: new allocations or adaptive settings for one or more deployments.

    `adaptive` None leaves adaptive allocations as they are; `min_allocations` and
    `max_allocations` come only with ``--adaptive on`` (the parser checks).
    """

    ids: tuple[str, ...]
    allocations: int | None = None
    adaptive: bool | None = None
    min_allocations: int | None = None
    max_allocations: int | None = None
    cluster: str | None = None
    reason: str | None = None
    window: Window | None = None  # `--for` / `--until`: the scale reverts itself

    @property
    def expression(self) -> str:
        """What the user asked for, e.g. ``"elser-*"`` or ``"a,b"``."""
        return ",".join(self.ids)

    @property
    def is_wildcard(self) -> bool:
        return any("*" in i for i in self.ids)

    @property
    def is_all(self) -> bool:
        return self.ids in (("_all",), ("*",))

    def options(self) -> frozenset[str]:
        """The policy options this request needs granted."""
        opts: set[str] = set()
        if self.adaptive is False:
            opts.add("adaptive_off")
        if self.min_allocations == 0:
            opts.add("scale_to_zero")
        if self.is_all:
            opts.add("all")
        else:
            if self.is_wildcard:
                opts.add("wildcard")
            if len(self.ids) > 1:
                opts.add("list")
        return frozenset(opts)

    def numbers(self) -> tuple[int, ...]:
        """The allocation numbers typed (the role map's bounds apply to each)."""
        given = (self.allocations, self.min_allocations, self.max_allocations)
        return tuple(n for n in given if n is not None)

    def flags_text(self) -> str:
        """Canonical flags (no cluster, no reason), e.g. ``"--adaptive on --max 4"``."""
        flags: list[str] = []
        if self.adaptive is not None:
            flags.append(f"--adaptive {'on' if self.adaptive else 'off'}")
        if self.allocations is not None:
            flags.append(f"--allocations {self.allocations}")
        if self.min_allocations is not None:
            flags.append(f"--min {self.min_allocations}")
        if self.max_allocations is not None:
            flags.append(f"--max {self.max_allocations}")
        return " ".join(flags)

    def as_text(self) -> str:
        """The canonical command text; ``parse_scale(req.as_text()) == req``."""
        parts = [self.expression, self.flags_text()]
        if self.window is not None:
            parts.append(self.window.text())
        if self.cluster is not None:
            parts.append(f"--cluster {shlex.quote(self.cluster)}")
        if self.reason is not None:
            parts.append(_reason_text(self.reason))
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class StatusRequest:
    """``/ml-status [deployment] [--cluster NAME]``: one deployment's health, or the worst first."""

    pattern: str | None = None
    cluster: str | None = None


@dataclass(frozen=True)
class AuditRequest:
    """``/ml-audit``: the bot's actions in this channel (or an incident), newest last."""

    incident: str | None = None
    since_seconds: int = DEFAULT_AUDIT_SINCE
    markdown: bool = False


@dataclass(frozen=True)
class FreezeRequest:
    """``/ml-stop freeze`` / ``/ml-stop unfreeze``: the kill switch."""

    freeze: bool
    reason: str | None = None
    window: Window | None = None  # `freeze --for 2h`: unfreezes itself


@dataclass(frozen=True)
class HelpRequest:
    command: str


@dataclass(frozen=True)
class UsageError:
    command: str
    message: str
    usage: str


Request = (
    StopRequest
    | ScaleRequest
    | StatusRequest
    | ListRequest
    | StartRequest
    | FreezeRequest
    | AuditRequest
    | HelpRequest
    | UsageError
)
