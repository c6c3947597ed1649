"""Bounded text: what a sender supplies is cut before it is logged, audited or shown."""

from __future__ import annotations


def cap(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…[+{len(text) - limit:,} chars]"
