"""`--for DURATION` / `--until TIME`: when a timed change reverts itself (pure).

The parser checks the syntax and the fixed rules (from 10 s, not zero); `resolve_at` turns a
window into a UTC epoch against the bot's clock, the config's time zone and maximum. Errors
are sentences naming the rule, shown as usage errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIN_SECONDS = 10  # short windows are real, and they make the feature testable end to end
DEFAULT_MAX_SECONDS = 7 * 86_400
MAX_WINDOW_TEXT = 40  # the longest ISO 8601 time with an offset and microseconds fits

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# ASCII digits only: Arabic-Indic or full-width digits are not what an on-call engineer typed.
_DURATION_RE = re.compile(r"(\d{1,9})([smhd])", re.ASCII)
_CLOCK_RE = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)", re.ASCII)
_FOR_RULE = "a duration is a whole number and a unit: `30s`, `30m`, `2h`, `1d`"
_UNTIL_RULE = "`--until` takes `HH:MM` or a full ISO 8601 time (`2026-12-08T06:00:00Z`)"


@dataclass(frozen=True)
class Window:
    """How long a change lasts: `--for` seconds, or `--until` as typed (resolved later)."""

    seconds: int | None = None
    until: str | None = None

    def text(self) -> str:
        """The flag as a user would type it."""
        if self.seconds is not None:
            return f"--for {duration_text(self.seconds)}"
        return f"--until {self.until}"


def duration_text(seconds: float) -> str:
    """`30m`, `2h`, `1d`, `90s`: the largest unit that divides the duration."""
    whole = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def human(seconds: float) -> str:
    """`28 min`, `2 h 5 min`, `1 d 3 h`, `40 s`: a span for people."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def parse_for(text: str) -> int | str:
    """Seconds of a `--for` value, or why it is not one."""
    shown = text[:MAX_WINDOW_TEXT]
    match = _DURATION_RE.fullmatch(text.strip()) if len(text) <= MAX_WINDOW_TEXT else None
    if match is None:
        return f"`--for {shown}` is not a duration: {_FOR_RULE}"
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds == 0:
        return f"`--for {shown}`: a duration must be more than zero"
    if seconds < MIN_SECONDS:
        return f"`--for {shown}`: the shortest window is {MIN_SECONDS} s"
    return seconds


def check_until(text: str) -> str | None:
    """Why a `--until` value cannot be a time, or None (the clock decides the rest)."""
    if len(text) > MAX_WINDOW_TEXT:
        return f"`--until` value too long: {_UNTIL_RULE}"
    if _CLOCK_RE.fullmatch(text.strip()):
        return None
    try:
        datetime.fromisoformat(text.strip())
    except ValueError:
        return f"`--until {text}` is not a time: {_UNTIL_RULE}"
    if "T" not in text.upper() and " " not in text.strip():
        return f"`--until {text}` has no time of day: {_UNTIL_RULE}"
    return None


def window_of(for_text: str | None, until_text: str | None) -> Window | str | None:
    """The window two optional flag values ask for, None for neither, or the usage error."""
    if for_text is not None and until_text is not None:
        return "`--for` and `--until` say the same thing two ways: give one of them"
    if for_text is not None:
        seconds = parse_for(for_text)
        return seconds if isinstance(seconds, str) else Window(seconds=seconds)
    if until_text is not None:
        problem = check_until(until_text)
        return problem if problem else Window(until=until_text.strip())
    return None


def known_zone(name: str) -> bool:
    """Whether `name` is a time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone(name: str) -> tzinfo:
    """The config's time zone (UTC when unknown: config checks report the name)."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def resolve_at(
    window: Window, now: float, *, tz: str = "UTC", max_seconds: float = DEFAULT_MAX_SECONDS
) -> float | str:
    """The UTC epoch the change reverts at (a `--for` counts from `now`), or the usage error."""
    if window.seconds is not None:
        at = now + window.seconds
        typed = window.text()
    else:
        assert window.until is not None
        typed = window.text()
        try:
            at = _until_epoch(window.until, now, zone(tz))
        except (ValueError, OverflowError, OSError):
            return f"`{typed}` is not a time this bot can schedule: {_UNTIL_RULE}"
        if at <= now:
            return f"`{typed}` is in the past (now it is {_clock(now, tz)}); give a later time"
        if at - now < MIN_SECONDS:
            return f"`{typed}` is less than {MIN_SECONDS} s away: the shortest window is that"
    if at - now > max_seconds:
        return (
            f"`{typed}` is more than {human(max_seconds)} away; the longest window "
            f"is {human(max_seconds)} (`revert_max_seconds` in the config)"
        )
    return at


def _until_epoch(text: str, now: float, tz: tzinfo) -> float:
    match = _CLOCK_RE.fullmatch(text)
    if match is None:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return parsed.timestamp()
    # HH:MM is the next time the clock shows it in the config's zone (today or tomorrow).
    local_now = datetime.fromtimestamp(now, tz)
    hour, minute = int(match.group(1)), int(match.group(2))
    candidate = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate.timestamp() <= now:
        candidate = (local_now + timedelta(days=1)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
    return candidate.timestamp()


def _clock(epoch: float, tz: str) -> str:
    return datetime.fromtimestamp(epoch, zone(tz)).strftime("%H:%M %Z")


def slack_time(epoch: float, tz: str = "UTC") -> str:
    """`<!date^…^{time}|14:32 UTC>`: Slack shows it in the reader's own zone."""
    return f"<!date^{int(epoch)}^{{time}}|{_clock(epoch, tz)}>"


def utc_text(epoch: float) -> str:
    """`2026-12-07 14:32:00 UTC`: for the shell and the audit trail."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
