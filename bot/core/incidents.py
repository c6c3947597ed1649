"""Incident context: which incident a channel belongs to (pure)."""

from __future__ import annotations

import fnmatch
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator


class IncidentConfig(BaseModel):
    """The `incidents` section of the config file."""

    model_config = ConfigDict(extra="forbid")

    # A glob on the channel name (`inc-*`: the name is the incident id) or a regex with a
    # named group `id` (`^inc-(?P<id>\d+)-`: the group is the id).
    channel_pattern: str
    id_from: Literal["name", "topic"] = "name"
    # With id_from: topic, where in the topic the id is (first match; group `id` if present).
    topic_pattern: str = r"(?P<id>[A-Z][A-Z0-9]*-\d+)"

    @field_validator("topic_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        re.compile(value)
        return value

    @property
    def is_regex(self) -> bool:
        """A pattern with a named group `id` is a regex; anything else is a glob."""
        return "(?P<id>" in self.channel_pattern


def _match_name(config: IncidentConfig, channel_name: str) -> str | None:
    if config.is_regex:
        found = re.search(config.channel_pattern, channel_name)
        return found.group("id") if found else None
    return channel_name if fnmatch.fnmatchcase(channel_name, config.channel_pattern) else None


def incident_id(
    config: IncidentConfig | None, channel_name: str | None, topic: str | None = None
) -> str | None:
    """The incident id for a channel, or None outside incident channels."""
    if config is None or not channel_name:
        return None
    from_name = _match_name(config, channel_name)
    if from_name is None or config.id_from == "name":
        return from_name
    found = re.search(config.topic_pattern, topic or "")
    if found is None:
        return from_name  # an incident channel whose topic names no id: fall back to its name
    return found.groupdict().get("id") or found.group(0)


def mentions_incident(text: str | None, incident: str) -> bool:
    """Whether `text` (a reason) names `incident` as a whole word, in any case."""
    if not text or not incident.strip():
        return False
    word = re.escape(incident.strip())
    return re.search(rf"(?<![\w-]){word}(?![\w-])", text, re.IGNORECASE) is not None


def is_incident(channel_incident: str | None, reason: str | None, incident: str) -> bool:
    """An action belongs to `incident` if asked in its channel or if its reason names it."""
    if channel_incident is not None and channel_incident.casefold() == incident.strip().casefold():
        return True
    return mentions_incident(reason, incident)
