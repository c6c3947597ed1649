"""Slash-command text as the user typed it: Slack's HTML escaping undone, exactly.

Slack sends a command's `text` with `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;` (and nothing
else; mentions and links arrive as `<@U…|name>` only when the command escapes them, and those
are real angle brackets, left alone). Undoing the three in one pass keeps `&amp;lt;` (a typed
`&lt;`) as `&lt;`, never `<`. Message rendering escapes it again for mrkdwn.
"""

from __future__ import annotations

import re

_ENTITY = re.compile(r"&(amp|lt|gt);")
_CHAR = {"amp": "&", "lt": "<", "gt": ">"}


def unescape_command_text(text: str) -> str:
    """`A&amp;B &lt;x&gt;` → `A&B <x>`; every other character as received."""
    return _ENTITY.sub(lambda m: _CHAR[m.group(1)], text)
