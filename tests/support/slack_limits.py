"""What real Slack refuses in a message, as one pure check the Slack stand-in calls.

`check_message(params, surface=...)` looks at a post's `text` and `blocks` (chat.postMessage,
chat.postEphemeral, chat.update, a response_url body, a view) and answers the first problem as
Slack names it, or None. Per-block rules come from slack_sdk's block models
(`Block.parse(...).to_dict()` runs every nested validator: lengths, element counts, button
style, confirm dialogs); the rules they miss are written here, each with its source:

- documented (docs.slack.dev Block Kit reference, /work/shared/reference/slack.md §8):
  50 blocks per message, 100 in views; block_id/action_id unique in a message; section
  fields ≤ 2,000 each; header text plain_text; text objects not empty; `emoji` only on
  plain_text, `verbatim` only on mrkdwn; a `text` fallback whenever blocks are sent;
  `text` over 40,000 characters is truncated.
- empirical: the text of all blocks together at most 12,000 characters
  (`msg_blocks_too_long`; slackapi/bolt-js#2509, #2867; docs/slack.md says so).
- `response_type` only `in_channel` or `ephemeral`.

Slack's `invalid_blocks` answer carries `errors` with a JSON pointer per problem; so does
this one. The stand-in records every problem (refusal or warning) so the suite can fail a
test whose bot sent a message real Slack would refuse, truncate or warn about.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

JSONDict = dict[str, Any]
Surface = Literal["message", "view"]
LongText = Literal["truncate", "refuse"]

MAX_BLOCKS = {"message": 50, "view": 100}
BLOCKS_TEXT_MAX = 12_000  # empirical, see the module docstring
TEXT_MAX = 40_000  # longer `text` is truncated (api.slack.com changelog 2018-04)
FIELD_TEXT_MAX = 2_000
RESPONSE_TYPES = frozenset({"in_channel", "ephemeral"})
_TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


@dataclass(frozen=True)
class Problem:
    """One thing Slack objects to: its error code, what is wrong, and where."""

    error: str  # invalid_blocks | msg_blocks_too_long | msg_too_long | missing_text | ...
    detail: str
    pointer: str = "/blocks"

    def refuses(self) -> bool:
        """A refusal (`ok: false`), not a warning Slack answers beside `ok: true`."""
        return self.error not in ("missing_text", "text_truncated")

    def message(self) -> str:
        """Slack's wording of one `errors` entry: `detail [json-pointer:/blocks/3]`."""
        return f"{self.detail} [json-pointer:{self.pointer}]"


def check_message(
    params: JSONDict, *, surface: Surface = "message", long_text: LongText = "truncate"
) -> list[Problem]:
    """Every problem of a post's `text`/`blocks`, refusals first; empty when Slack takes it.

    `long_text`: what Slack does with `text` over 40,000 characters for this method
    (chat.postMessage truncates; chat.update and chat.postEphemeral answer msg_too_long).
    """
    blocks = params.get("blocks")
    problems: list[Problem] = []
    if isinstance(blocks, list) and blocks:
        problems += block_problems(blocks, surface=surface)
        if not problems and (size := blocks_text_size(blocks)) > BLOCKS_TEXT_MAX:
            problems.append(
                Problem("msg_blocks_too_long", f"blocks hold {size:,} characters of text")
            )
        if surface == "message" and not str(params.get("text") or "").strip():
            problems.append(Problem("missing_text", "blocks without a `text` fallback", "/text"))
    if surface == "message" and len(str(params.get("text") or "")) > TEXT_MAX:
        error = "text_truncated" if long_text == "truncate" else "msg_too_long"
        problems.append(Problem(error, f"text over {TEXT_MAX:,} characters", "/text"))
    return sorted(problems, key=lambda p: not p.refuses())


def check_response_type(body: JSONDict) -> Problem | None:
    """A response_url body's `response_type`, if present, must be in_channel or ephemeral."""
    kind = body.get("response_type")
    if kind is None or kind in RESPONSE_TYPES:
        return None
    return Problem("invalid_response_type", f"response_type {kind!r}", "/response_type")


def block_problems(blocks: list[Any], *, surface: Surface = "message") -> list[Problem]:
    """What `invalid_blocks` would list for these blocks (empty: none)."""
    limit = MAX_BLOCKS[surface]
    problems: list[Problem] = []
    if len(blocks) > limit:
        problems.append(Problem("invalid_blocks", f"must be less than {limit + 1} items"))
    for index, block in enumerate(blocks):
        problems += [
            Problem("invalid_blocks", detail, f"/blocks/{index}{where}")
            for detail, where in _one_block(block)
        ]
    problems += _duplicate_ids(blocks)
    return problems


def blocks_text_size(blocks: list[Any]) -> int:
    """Characters of text in every text object of `blocks` (what msg_blocks_too_long counts)."""
    return sum(len(str(obj.get("text", ""))) for obj, _ in _text_objects(blocks, ""))


def _one_block(block: Any) -> list[tuple[str, str]]:
    if not isinstance(block, dict):
        return [("must be an object", "")]
    found = [*_sdk_problems(block), *_text_object_problems(block)]
    if block.get("type") == "section":
        found += [
            (f"must be less than {FIELD_TEXT_MAX + 1} characters", f"/fields/{i}/text")
            for i, f in enumerate(block.get("fields") or [])
            if isinstance(f, dict) and len(str(f.get("text", ""))) > FIELD_TEXT_MAX
        ]
    if block.get("type") == "header" and (block.get("text") or {}).get("type") != "plain_text":
        found.append(("must be plain_text", "/text"))
    return found


def _sdk_problems(block: JSONDict) -> list[tuple[str, str]]:
    """slack_sdk's own validators over the whole block, nested elements included."""
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [(f"unsupported type: {block.get('type')!r}", "")]
        parsed.to_dict()  # runs validate_json on the block and every nested object
    except (SlackObjectFormationError, TypeError, KeyError, ValueError) as exc:
        return [(str(exc), "")]
    return []


def _text_object_problems(block: JSONDict) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for obj, where in _text_objects([block], ""):
        kind = obj.get("type")
        if not str(obj.get("text", "")):
            found.append(("must be more than 0 characters", f"{where[2:]}/text"))
        if "emoji" in obj and kind != "plain_text":
            found.append(("`emoji` is only allowed on plain_text", f"{where[2:]}/emoji"))
        if "verbatim" in obj and kind != "mrkdwn":
            found.append(("`verbatim` is only allowed on mrkdwn", f"{where[2:]}/verbatim"))
    return found


def _text_objects(value: Any, where: str) -> Iterator[tuple[JSONDict, str]]:
    """Every `{"type": plain_text|mrkdwn, "text": …}` inside `value`, with its JSON pointer."""
    if isinstance(value, dict):
        if value.get("type") in _TEXT_TYPES and "text" in value:
            yield value, where
            return
        for key, item in value.items():
            yield from _text_objects(item, f"{where}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _text_objects(item, f"{where}/{index}")


def _duplicate_ids(blocks: list[Any]) -> list[Problem]:
    """block_id and action_id must each be unique within one message (slack_sdk checks ≤ 255)."""
    problems: list[Problem] = []
    for key in ("block_id", "action_id"):
        seen: set[str] = set()
        for value, where in _ids(blocks, key, "/blocks"):
            if value in seen:
                problems.append(Problem("invalid_blocks", f"duplicate {key} {value!r}", where))
            seen.add(value)
    return problems


def _ids(value: Any, key: str, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        if isinstance(value.get(key), str):
            yield value[key], f"{where}/{key}"
        for name, item in value.items():
            yield from _ids(item, key, f"{where}/{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _ids(item, key, f"{where}/{index}")


def slack_answer(problems: list[Problem]) -> JSONDict | None:
    """The `ok: false` body Slack answers for the first refusal, or None when none refuses."""
    refusals = [p for p in problems if p.refuses()]
    if not refusals:
        return None
    first = refusals[0].error
    same = [p.message() for p in refusals if p.error == first]
    if first == "invalid_blocks":
        return {
            "error": first,
            "errors": same,
            "response_metadata": {"messages": [f"[ERROR] {m}" for m in same]},
        }
    return {"error": first}
