"""`ml-chatops` as a real subprocess: start it with a clean environment, probe it, stop it.

The environment is built from scratch (PATH and what the test passes), so nothing from the
developer's shell (a real SLACK_BOT_TOKEN, a proxy, a `.env` in the repo) leaks in; the
working directory is the test's tmp dir for the same reason.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(extra: Mapping[str, str], home: Path) -> dict[str, str]:
    """PATH, a private HOME and UTF-8, plus `extra`."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@dataclass(frozen=True)
class HttpAnswer:
    """Status, headers and body of one GET."""

    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def http_get(url: str, timeout: float = 10.0) -> HttpAnswer:
    """GET `url` without any proxy; HTTP errors are answers, connection errors raise."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as resp:
            return HttpAnswer(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as err:
        return HttpAnswer(err.code, dict(err.headers), err.read().decode())


def run_cli(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` to completion with exactly `env` (see `clean_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class BotProcess:
    """`python -m bot serve` in the background, its stdout and stderr kept in files."""

    def __init__(self, env: Mapping[str, str], cwd: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.stdout_path = cwd / "bot.stdout"
        self.stderr_path = cwd / "bot.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve"],
                env={**env, "PORT": str(port)},
                cwd=cwd,
                stdout=out,
                stderr=err,
            )

    def get(self, path: str, timeout: float = 10.0) -> HttpAnswer:
        """GET a path on the bot."""
        return http_get(self.url + path, timeout)

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Wait until /healthz answers 200; fail with the bot's stderr if it exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"bot exited {self.proc.returncode}:\n{self.stderr()}")
            try:
                if self.get("/healthz", timeout=1).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"bot not healthy within {timeout}s:\n{self.stderr()}")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stdout(self) -> str:
        """Everything the bot wrote to stdout so far."""
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        """Everything the bot wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        """The JSON log lines on stderr (every line must be one)."""
        return [json.loads(line) for line in self.stderr().splitlines() if line.strip()]

    def wait_for_log(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first JSON log record matching `predicate`, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.log_records():
                if predicate(record):
                    return record
            if time.monotonic() >= deadline:
                raise AssertionError(f"no matching log record within {timeout}s:\n{self.stderr()}")
            time.sleep(0.05)
