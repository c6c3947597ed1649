"""Hostile input through the real HTTP path: forged, replayed, malformed and oversized requests.

Every test here sends bytes to the running bot's `POST /slack/events` and checks what came
out the other side: the status, the Slack stand-in's record of outbound calls (Web API,
response_urls and any other URL), the store and the audit. Extend it with new attacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import pytest
from conftest import Bench, text_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.driver import FORM, JSON, Reply
from support.redis_server import redis_server, redis_url

from bot.adapters.store_sqlite import ActionStore, open_store
from bot.core.commands import FreezeRequest, HelpRequest, UsageError, parse
from bot.logs import make_handler
from bot.slack import blocks
from bot.slack.edge import MAX_BODY_BYTES

__all__ = ["redis_server", "redis_url"]  # fixtures

EVIL = "U0EVIL"
CHANNEL = "C0INCIDENTS"
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line the bot writes during the test, rendered by its real JSON formatter."""
    stream = io.StringIO()
    handler = make_handler(stream, json_lines=True)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def nothing_went_out(bench: Bench) -> None:
    """No Web API call, no response_url post, no call to any other URL."""
    assert bench.slack.calls() == []
    assert bench.slack.response_posts() == []
    assert bench.slack.strays() == []


def evil_command(bench: Bench, text: str = "ner-prod") -> bytes:
    """A slash command naming another user and a URL of the sender's choice."""
    return bench.driver.build_command(
        "/ml-stop",
        text,
        user_id=EVIL,
        response_url=bench.slack.base_url + "/anything",
    )


# (timestamp, body digest) pairs signed so far: the edge refuses a repeated signature.
_SIGNED: set[tuple[int, bytes]] = set()


def post_bytes(bench: Bench, body: bytes, kind: str = FORM) -> Reply:
    """Sign `body` at a timestamp not used for these bytes yet (the same bytes may come again).

    A counter offset from the clock collided when two posts straddled a second boundary.
    """
    ts, digest = int(time.time()), hashlib.sha256(body).digest()
    while (ts, digest) in _SIGNED:
        ts -= 1
    _SIGNED.add((ts, digest))
    return bench.driver.post_raw(body, bench.driver.sign_bytes(body, ts=ts, content_type=kind))


def settle(bench: Bench) -> None:
    """Let listener runs the bot started finish (a ping through the same loop)."""
    bench.run(asyncio.sleep(0.05))
    bench.run(bench.runtime.inflight.wait(5))


# ---- 1. nothing from an unverified request is used ---------------------------------------

BAD_HEADERS: dict[str, dict[str, str | None]] = {
    "non-numeric timestamp 1e9": {"X-Slack-Request-Timestamp": "1e9"},
    "non-numeric timestamp abc": {"X-Slack-Request-Timestamp": "abc"},
    # Latin-1 superscript one: str.isdigit() says yes, int() raises.
    "superscript digit": {"X-Slack-Request-Timestamp": "\u00b9" + "7" * 9},
    "fractional timestamp": {"X-Slack-Request-Timestamp": "1700000000.5"},
    "stale timestamp": {"X-Slack-Request-Timestamp": "-3600"},
    "future timestamp": {"X-Slack-Request-Timestamp": "+3600"},
    "no timestamp": {"X-Slack-Request-Timestamp": None},
    "no signature": {"X-Slack-Signature": None},
    "malformed signature": {"X-Slack-Signature": "v0=zz"},
    "wrong signature": {"X-Slack-Signature": "v0=" + "0" * 64},
    "v1 signature": {"X-Slack-Signature": "v1=" + "0" * 64},
}


def spoiled(bench: Bench, body: bytes, case: str) -> dict[str, str]:
    """Headers signing `body` correctly, then spoiled as `case` says."""
    headers = bench.driver.signed_headers(body)
    for name, value in BAD_HEADERS[case].items():
        if value is None:
            headers.pop(name)
        elif value[0] in "+-":  # a timestamp that far from now, correctly signed
            ts = str(int(time.time()) + int(value))
            headers = bench.driver.signed_headers(body, ts=ts)
        else:
            headers[name] = value
    return headers


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_an_unverified_request_is_401_and_nothing_in_it_is_used(
    bench: Bench, log_lines: io.StringIO, case: str
) -> None:
    body = evil_command(bench)
    reply = bench.driver.post_raw(body, spoiled(bench, body, case))
    settle(bench)
    assert reply.status == 401, reply.body_text
    nothing_went_out(bench)
    assert bench.audit.docs == []
    assert bench.run(bench.runtime.store.due(float("inf"))) == []
    logged = log_lines.getvalue()
    assert EVIL not in logged and "ner-prod" not in logged  # no attribution, no body
    assert len(lines_of(log_lines)) == 1


def test_a_forged_click_is_401_and_reaches_no_url(bench: Bench) -> None:
    body = bench.driver.build_click(
        "ml_stop.confirm", "a0", user_id=EVIL, response_url=bench.slack.base_url + "/x"
    )
    headers = bench.driver.signed_headers(body) | {"X-Slack-Request-Timestamp": "1e9"}
    assert bench.driver.post_raw(body, headers).status == 401
    settle(bench)
    nothing_went_out(bench)


# ---- 3. a command is parsed as a command, whatever its text says -------------------------


def check_command_answered(bench: Bench, text: str) -> None:
    """Send `/ml-stop text`; its reply must be what the parser says about `text`."""
    request = parse("/ml-stop", text)
    if isinstance(request, FreezeRequest):
        return  # posts in the channel, not on the response_url; covered elsewhere
    reply = bench.driver.command("/ml-stop", text)
    assert reply.status == 200, (text, reply.status, reply.body_text)
    url = bench.driver.last_response_url
    posts = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
    answer = posts[0].body
    assert answer is not None
    if isinstance(request, UsageError):
        assert answer["blocks"] == blocks.usage_error(request)["blocks"], text
    elif isinstance(request, HelpRequest):
        assert answer["blocks"] == blocks.help_message(request.command)["blocks"], text
    else:
        assert "went wrong" not in text_of(answer), text


@pytest.mark.parametrize(
    "text",
    [
        'spare-one --reason "payload too large"',
        "payload-parser",
        "payload",
        "payload=%7B%7D",
        '{"payload": 1}',
        "x&payload=1",
    ],
)
def test_a_command_mentioning_payload_is_answered(bench: Bench, text: str) -> None:
    check_command_answered(bench, text)


@HYPOTHESIS
@given(text=st.text() | st.builds(lambda a, b: a + "payload" + b, st.text(), st.text()))
def test_any_unicode_command_text_is_acknowledged_and_parsed(bench: Bench, text: str) -> None:
    check_command_answered(bench, text)


@HYPOTHESIS
@given(raw=st.binary(max_size=2000))
def test_any_signed_bytes_get_an_answer_not_a_crash(bench: Bench, raw: bytes) -> None:
    for body, kind in (
        (raw, FORM),
        (raw, JSON),
        (b"payload=" + quote_from_bytes(raw).encode(), FORM),
    ):
        reply = post_bytes(bench, body, kind)
        assert reply.status in (200, 400, 404), (body, kind, reply.status)


@HYPOTHESIS
@given(raw=st.binary(min_size=1, max_size=200))
def test_command_text_in_any_bytes_is_400_or_answered(bench: Bench, raw: bytes) -> None:
    body = bench.driver.build_command("/ml-stop", "").replace(
        b"&text=&", b"&text=" + quote_from_bytes(raw).encode() + b"&"
    )
    reply = post_bytes(bench, body)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert reply.status == 400
    else:
        assert reply.status == 200


# ---- 5. replays and Slack's retries ------------------------------------------------------


def test_a_replayed_signed_command_is_refused(bench: Bench) -> None:
    first = bench.driver.command("/ml-stop", "ner-prod")
    assert first.status == 200
    url = bench.driver.last_response_url
    bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)
    settle(bench)
    calls, events = len(bench.slack.calls()), len(bench.audit.docs)
    again = bench.driver.post_raw(first.request.body, first.request.headers)
    settle(bench)
    assert again.status == 401
    assert len(bench.slack.response_posts(url)) == 1
    assert len(bench.slack.calls()) == calls and len(bench.audit.docs) == events


def function_executed(bench: Bench) -> tuple[dict[str, Any], str]:
    inputs = {"requested_by": "U0ADMIN1", "channel": CHANNEL, "deployment_id": "ner-prod"}
    execution = bench.slack.new_function_execution("stop_ml_deployment", inputs)
    event = {
        "type": "function_executed",
        "function": {"id": "Fn0STOP", "callback_id": "stop_ml_deployment"},
        "inputs": inputs,
        "function_execution_id": execution.id,
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": execution.token,
    }
    return event, execution.id


def test_a_retried_function_executed_event_runs_once(bench: Bench) -> None:
    event, execution_id = function_executed(bench)
    assert bench.driver.event(event, event_id="Ev0ONCE").status == 200
    bench.slack.wait_for(lambda: bench.slack.messages(CHANNEL) or None)
    settle(bench)
    for retry in (1, 2, 3):
        reply = bench.driver.event(event, event_id="Ev0ONCE", retry_num=retry)
        assert reply.status == 200
    # Slack sometimes re-sends an execution under a new event id: the execution id holds.
    assert bench.driver.event(event, event_id="Ev0OTHER", retry_num=1).status == 200
    settle(bench)
    assert len(bench.slack.messages(CHANNEL)) == 1
    assert bench.slack.function_execution(execution_id)["state"] == "running"
    assert bench.slack.calls("functions.completeError") == []


# ---- 6. malformed but signed --------------------------------------------------------------

MALFORMED: dict[str, tuple[bytes, str, int]] = {
    "invalid UTF-8": (b"command=%2Fml-stop&text=\xff\xfe", FORM, 400),
    "invalid UTF-8 escape": (b"command=%2Fml-stop&user_id=U1&text=%FF", FORM, 400),
    "payload not JSON": (b"payload=not-json", FORM, 400),
    "payload a list": (b"payload=%5B1%2C2%5D", FORM, 400),
    "payload a string": (b"payload=%22x%22", FORM, 400),
    "deep JSON": (b"payload=" + b"%5B" * 100_000, FORM, 400),
    "actions not objects": (
        urlencode(
            {"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}, "actions": [1]})}
        ).encode(),
        FORM,
        400,
    ),
    "actions missing": (
        urlencode(
            {"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}})}
        ).encode(),
        FORM,
        400,
    ),
    "view_submission": (
        urlencode({"payload": json.dumps({"type": "view_submission", "view": {}})}).encode(),
        FORM,
        200,
    ),
    "unknown event": (
        json.dumps(
            {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
        ).encode(),
        JSON,
        200,
    ),
    "unhandled function": (
        json.dumps(
            {
                "type": "event_callback",
                "event_id": "Ev2",
                "event": {
                    "type": "function_executed",
                    "function": {"callback_id": "someone_elses_step"},
                    "function_execution_id": "Fx1",
                    "inputs": {},
                },
            }
        ).encode(),
        JSON,
        200,
    ),
    "event not an object": (
        json.dumps({"type": "event_callback", "event_id": "Ev3", "event": "x"}).encode(),
        JSON,
        400,
    ),
    "command without user": (b"command=%2Fml-stop&text=help", FORM, 400),
    "JSON body a number": (b"42", JSON, 400),
    "other content type": (b"command=%2Fml-stop", "text/plain", 400),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_signed_input_gets_one_line_and_no_traceback(
    bench: Bench, log_lines: io.StringIO, case: str
) -> None:
    body, kind, status = MALFORMED[case]
    reply = post_bytes(bench, body, kind)
    settle(bench)
    assert reply.status == status, reply.body_text
    lines = lines_of(log_lines)
    assert len(lines) == 1, lines
    assert "error.stack_trace" not in lines[0]
    nothing_went_out(bench)


# ---- 4. size: refused before parsing; others are not held up ------------------------------


def test_an_oversized_body_is_413_before_anything_parses_it(bench: Bench) -> None:
    body = bench.driver.build_command("/ml-stop", "a" * (MAX_BODY_BYTES + 1))
    reply = bench.driver.post_signed(body)
    settle(bench)
    assert reply.status == 413
    nothing_went_out(bench)
    assert bench.audit.docs == []


def test_a_command_longer_than_slack_allows_gets_a_clear_answer(bench: Bench) -> None:
    reply = bench.driver.command("/ml-stop", "a" * 40_001)
    settle(bench)
    assert reply.status == 200 and "longer than Slack allows" in reply.body_text
    nothing_went_out(bench)


def test_hostile_commands_do_not_hold_up_a_normal_one(bench: Bench) -> None:
    driver = bench.driver
    oversized = driver.build_command("/ml-stop", "x" * (MAX_BODY_BYTES + 1))
    longest = driver.build_command("/ml-stop", ",".join(["a"] * 19_990) + " --force")
    normal = driver.build_command("/ml-stop", "help")
    normal_url = driver.last_response_url

    async def all_at_once() -> list[int]:
        replies = await asyncio.gather(
            driver.apost_signed(oversized),
            driver.apost_signed(longest),
            driver.apost_signed(normal),
        )
        return [r.status for r in replies]

    assert asyncio.run(all_at_once()) == [413, 200, 200]
    # The normal command was parsed and answered, not dropped behind the hostile ones.
    posts = bench.slack.wait_for(lambda: bench.slack.response_posts(normal_url) or None)
    assert posts[0].body == {
        **blocks.help_message("/ml-stop"),
        "response_type": "ephemeral",
    } or "Usage" in text_of(posts[0].body or {})


# ---- 7. logs and audit are bounded --------------------------------------------------------


def test_log_lines_and_audit_text_are_bounded(bench: Bench, log_lines: io.StringIO) -> None:
    huge = "ø" * 39_000
    reply = bench.driver.command("/ml-stop", huge, user_name="n" * 50_000)
    assert reply.status == 200
    bench.slack.wait_for(lambda: bench.slack.response_posts() or None)
    settle(bench)
    unverified = evil_command(bench, "z" * 500_000)
    assert bench.driver.forged_command("/ml-stop", "z" * 500_000).status == 401
    assert bench.driver.post_raw(unverified, {"Content-Type": FORM}).status == 401
    for line in log_lines.getvalue().splitlines():
        assert len(line) < 20_000, line[:200]
    texts = [json.dumps(e) for e in bench.audit.docs]
    assert texts and all(len(t) < 20_000 for t in texts)


def test_one_log_line_stays_bounded_whatever_it_carries() -> None:
    stream = io.StringIO()
    handler = make_handler(stream, json_lines=True)
    record = logging.makeLogRecord(
        {"msg": "m" * 1_000_000, "levelname": "INFO", "user.id": "u" * 1_000_000}
    )
    assert handler.filter(record)
    handler.emit(record)
    line = stream.getvalue()
    assert 1000 < len(line) < 20_000 and "chars]" in line


# ---- the replay primitive, on both shared stores -----------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
async def two_replicas_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[ActionStore, ActionStore]]:
    """Two store connections to one state, as two replicas hold them."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 's.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    stores = (open_store(url), open_store(url))
    yield stores
    for store in stores:
        await store.close()


async def test_seen_is_first_time_once_across_replicas(
    two_replicas_store: tuple[ActionStore, ActionStore],
) -> None:
    a, b = two_replicas_store
    answers = await asyncio.gather(*(s.seen("sig:x", 60) for s in (a, b) * 10))
    assert sorted(answers) == [False] + [True] * 19
    assert await a.seen("sig:y", 60) is False and await b.seen("sig:y", 60) is True
    # A mark that has run out is a first time again.
    assert await a.seen("sig:z", 0.001) is False
    await asyncio.sleep(0.01)
    assert await b.seen("sig:z", 60) is False


# ---- 8. user text shows as typed ----------------------------------------------------------


def test_a_reason_shows_verbatim_not_formatted_or_linked(bench: Bench) -> None:
    reason = "*bold* _it_ ~gone~ `code` https://evil.example/x :fire: <!channel> a&b"
    answer = bench.command(f'ner-prod --reason "{reason}"')
    objects = [
        node
        for node in walk(answer["blocks"])
        if isinstance(node, dict) and node.get("type") == "mrkdwn"
    ]
    assert objects and all(o.get("verbatim") is True for o in objects)
    shown = next(o["text"] for o in objects if "Reason" in o["text"])
    for formatted in ("*bold*", "_it_", "~gone~", "`code`", "https://", ":fire:", "<!channel>"):
        assert formatted not in shown
    # What a reader sees, with the zero-width spaces and entities undone, is what was typed.
    seen = shown.replace("\u200b", "").replace("&lt;", "<").replace("&gt;", ">")
    assert reason in seen.replace("&amp;", "&")


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)
