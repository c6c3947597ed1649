"""Logging: JSON lines with request context, readable text on a terminal, secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, Redactor, add_secrets, bind, log_context, make_handler


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing JSON lines to a buffer."""
    stream = io.StringIO()
    logger = logging.getLogger("test_logs.private")
    logger.handlers[:] = [make_handler(stream, json_lines=True)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_context_fields_ride_on_records_and_tasks_started_inside(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture

    async def later() -> None:
        await asyncio.sleep(0)
        bind(**{"ml_chatops.action_id": "a0123"})  # known only once the work has started
        logger.info("stopping", extra={"deployment": "ner-prod"})

    async def request() -> None:
        with log_context(**{"user.id": "U0ADMIN1", "slack.channel.id": "C0INC", "empty": ""}):
            logger.info("acked")
            task = asyncio.create_task(later())  # as Bolt starts a listener after ack
        logger.info("outside")
        await task

    asyncio.run(request())
    acked, outside, stopping = records(stream)
    assert acked["message"] == "acked" and acked["user.id"] == "U0ADMIN1"
    assert "empty" not in acked  # empty values are not bound
    assert "user.id" not in outside
    assert stopping["user.id"] == "U0ADMIN1" and stopping["slack.channel.id"] == "C0INC"
    assert stopping["ml_chatops.action_id"] == "a0123" and stopping["deployment"] == "ner-prod"
    assert {"@timestamp", "log.level", "log.logger"} <= set(acked)


def test_secrets_are_redacted_in_messages_fields_and_tracebacks(
    capture: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = capture
    password = "pw-Zq81-correct-horse"
    add_secrets([password, None, "", "ab"])
    try:
        raise RuntimeError(f"login failed with {password}")
    except RuntimeError:
        logger.exception("connect %s", "http://elastic:" + password + "@es:9200")
    logger.info("token xoxb-1234-5678-abcdefghij seen", extra={"auth": f"Basic {password}"})
    text = stream.getvalue()
    assert password not in text and "xoxb-1234-5678-abcdefghij" not in text
    first, second = records(stream)
    assert first["message"] == f"connect http://elastic:{REDACTED}@es:9200"
    assert REDACTED in str(first["error.stack_trace"])
    assert second["auth"] == f"Basic {REDACTED}"
    assert "ab" in Redactor()("ab stays")  # too short to be a secret worth hiding


def test_text_lines_for_a_terminal_carry_the_fields() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test_logs.text")
    logger.handlers[:] = [make_handler(stream, json_lines=False)]
    logger.propagate = False
    with log_context(**{"user.id": "U0ADMIN1"}):
        logger.warning("slow ack")
    line = stream.getvalue().strip()
    assert line.endswith("WARNING test_logs.text: slow ack [user.id=U0ADMIN1]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
