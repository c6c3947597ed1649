"""Block Kit rendered as plain text, for the local shell and fallbacks."""

from __future__ import annotations

import re

from bot.slack.blocks.common import Block, Message
from bot.slack.ids import routed

# --------------------------------------------------------------------------- terminal rendering

_MRKDWN_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"<!date\^[^|>]*\|([^>]*)>"), r"\1"),
    (re.compile(r"<@([A-Z0-9]+)\|([^>]+)>"), r"@\2"),
    (re.compile(r"<@([A-Z0-9]+)>"), r"@\1"),
    (re.compile(r"<#([A-Z0-9]+)\|([^>]+)>"), r"#\2"),
    (re.compile(r"<#([A-Z0-9]+)>"), r"#\1"),
    (re.compile(r"<!subteam\^([A-Z0-9]+)(?:\|([^>]+))?>"), r"@\1"),
    (re.compile(r"<!(\w+)(?:\|[^>]*)?>"), r"@\1"),
    (re.compile(r"<([a-z]+://[^|>]+)\|([^>]+)>"), r"\2 (\1)"),
    (re.compile(r"<([a-z]+://[^>]+)>"), r"\1"),
)


def mrkdwn_to_text(text: str) -> str:
    """Slack mrkdwn as a terminal shows it: mentions and dates readable, entities decoded."""
    for pattern, replacement in _MRKDWN_RULES:
        text = pattern.sub(replacement, text)
    text = text.replace("```", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _block_text(block: Block) -> list[str]:
    """The lines a terminal shows for one block."""
    kind = block.get("type")
    if kind == "header":
        title = str(block["text"]["text"])
        return [title, "=" * min(len(title), 72)]
    if kind == "divider":
        return ["-" * 40]
    if kind == "context":
        parts = [str(e.get("text", e.get("alt_text", ""))) for e in block.get("elements", [])]
        return [mrkdwn_to_text("  ".join(parts))]
    if kind == "actions":
        labels = [f"[{e['text']['text']}]" for e in block.get("elements", []) if "text" in e]
        return ["  ".join(labels)]
    if kind == "section":
        lines = [mrkdwn_to_text(block["text"]["text"])] if "text" in block else []
        fields = [str(f["text"]).replace("\n", " ", 1) for f in block.get("fields", [])]
        button = block.get("accessory") or {}
        beside = [f"  [{button['text']['text']}]"] if button.get("type") == "button" else []
        return lines + [mrkdwn_to_text(f) for f in fields] + beside
    return []


def to_text(message: Message) -> str:
    """A readable plain-text rendering of a message for the local shell."""
    if not message["blocks"]:
        return mrkdwn_to_text(message["text"])
    return "\n".join(line for block in message["blocks"] for line in _block_text(block))


def button_labels(message: Message) -> list[tuple[str, str, str]]:
    """`(label, action_id, value)` of every button, in display order."""
    found = []
    for block in message["blocks"]:
        elements = list(block.get("elements", []))
        if "accessory" in block:
            elements.append(block["accessory"])
        for element in elements:
            if element.get("type") == "button":
                found.append(
                    (
                        element["text"]["text"],
                        routed(element["action_id"]),
                        element.get("value", ""),
                    )
                )
    return found
