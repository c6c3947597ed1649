"""Bodies that trickle or stop halfway: timed out, logged once at INFO, no traceback."""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit

import pytest
from conftest import Bench

import bot.server

PATH = "/slack/events"


def _open(bench: Bench, length: int) -> socket.socket:
    """A connection that sent its headers and 1 byte of a `length`-byte body."""
    url = urlsplit(bench.bot_url)
    conn = socket.create_connection((url.hostname, url.port), timeout=20)
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: {url.hostname}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {length}\r\n\r\nx"
    )
    conn.sendall(head.encode())
    return conn


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(4096):
        chunks.append(chunk)
    return b"".join(chunks)


def test_slow_bodies_are_timed_out_and_their_connections_closed(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.server, "BODY_READ_TIMEOUT", 0.5)
    conns = [_open(bench, 1000) for _ in range(50)]  # 50 senders at (less than) 1 byte/s
    try:
        # Each is answered 408 and closed by the server (recv sees the end of the stream).
        answers = [_read_all(c) for c in conns]
    finally:
        for conn in conns:
            conn.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert bench.emulator.requests == [] and bench.slack.calls() == []


def test_an_aborted_body_is_logged_once_at_info(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        conn = _open(bench, 1000)
        conn.close()  # the sender goes away mid-body
        records = bench.slack.wait_for(
            lambda: [r for r in caplog.records if "aborted" in r.getMessage()] or None
        )
        # A normal request afterwards is served (and flushes the log of the aborted one).
        assert bench.driver.command("/ml-stop", "help").status == 200
    assert len(records) == 1 and records[0].levelno == logging.INFO
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("aiohttp"))
