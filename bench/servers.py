"""Servers under test as real subprocesses: `ml-chatops serve`, the bare Bolt app, redis-server.

Start-up time is measured from spawning the process to its first `GET /healthz` 200; peak
memory is the process's `VmHWM` and CPU its utime + stime, both read from `/proc/<pid>`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp
from support.botproc import free_port

from bench import REPO

__all__ = ["RedisServer", "Server", "StartError", "free_port", "launch"]

# Variables that would switch the bot to Socket Mode or OAuth, or leak a real config in.
_SCRUBBED = (
    "SLACK_APP_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_API_URL",
    "ELASTICSEARCH_URL",
    "ELASTICSEARCH_CLOUD_ID",
    "ELASTICSEARCH_API_KEY",
    "ELASTICSEARCH_USERNAME",
    "ELASTICSEARCH_PASSWORD",
    "ML_CHATOPS_CONFIG",
    "ML_CHATOPS_STATE",
    "PORT",
)


class StartError(RuntimeError):
    """A server exited or never answered `/healthz`; the message ends with its stderr tail."""


def bot_command() -> list[str]:
    """`ml-chatops serve` from the running interpreter's environment."""
    script = Path(sys.executable).parent / "ml-chatops"
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "bot", "serve"]


def baseline_command() -> list[str]:
    """The bare Bolt app script."""
    return [sys.executable, str(REPO / "bench" / "baseline_app.py")]


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without Slack/Elasticsearch settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(extra)
    return env


def _status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": state is fields[0]; utime and stime are fields 14 and 15 of stat.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """One server subprocess and what was measured about it."""

    kind: str
    proc: subprocess.Popen[bytes]
    url: str
    startup_s: float
    stderr_path: Path
    peak_rss_kb: int = 0
    cpu_s: float = 0.0
    exit_code: int | None = None
    _files: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def events_url(self) -> str:
        """Where Slack would POST commands and clicks."""
        return self.url + "/slack/events"

    def cpu_now(self) -> float:
        """CPU seconds used so far (user + system)."""
        return _cpu_seconds(self.proc.pid)

    def sample(self) -> None:
        """Read peak RSS and CPU time while the process is alive."""
        if self.proc.poll() is None:
            self.peak_rss_kb = _status_field(self.proc.pid, "VmHWM")
            self.cpu_s = _cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Sample, then SIGTERM (SIGKILL after `timeout`) and wait."""
        self.sample()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.exit_code = self.proc.returncode
        for handle in self._files:
            handle.close()

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines the server wrote to stderr."""
        try:
            text = self.stderr_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


async def launch(
    kind: str,
    command: list[str],
    env: dict[str, str],
    workdir: Path,
    session: aiohttp.ClientSession,
    *,
    name: str,
    timeout: float = 60.0,
    health_path: str = "/healthz",
) -> Server:
    """Spawn a server and wait for its first `health_path` 200; StartError if it never comes."""
    port = int(env["PORT"])
    stdout = (workdir / f"{name}.out").open("wb")
    stderr_path = workdir / f"{name}.err"
    stderr = stderr_path.open("wb")
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=workdir, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    server = Server(kind, proc, url, 0.0, stderr_path, _files=[stdout, stderr])
    deadline = started + timeout
    while True:
        if proc.poll() is not None:
            server.stop()
            raise StartError(f"{name} exited with {proc.returncode}: {server.stderr_tail()}")
        try:
            async with session.get(url + health_path, timeout=aiohttp.ClientTimeout(total=1)) as r:
                if r.status == 200:
                    server.startup_s = time.perf_counter() - started
                    return server
        except (aiohttp.ClientError, TimeoutError):
            pass
        if time.perf_counter() > deadline:
            server.stop()
            raise StartError(f"{name} did not answer {health_path} within {timeout:g}s")
        await asyncio.sleep(0.005)


class RedisServer:
    """A throw-away `redis-server` on a free port of 127.0.0.1 (no persistence)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        """Whether the `redis-server` binary is installed."""
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        """The `ML_CHATOPS_STATE` URL of its database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 15.0) -> RedisServer:
        """Start it and wait until it answers PING."""
        options = {"bind": "127.0.0.1", "port": str(self.port), "save": "", "appendonly": "no"}
        args = [part for key, value in options.items() for part in (f"--{key}", value)]
        self.proc = subprocess.Popen(
            ["redis-server", *args, "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"redis-server exited with {self.proc.returncode}")
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(b"PING\r\n")
                await writer.drain()
                answer = await reader.readline()
                writer.close()
                await writer.wait_closed()
                if answer.startswith(b"+PONG"):
                    return self
            except OSError:
                pass
            await asyncio.sleep(0.02)
        self.stop()
        raise StartError("redis-server did not answer PING")

    def stop(self) -> None:
        """Terminate it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
