"""Bot replicas as real `ml-chatops serve` processes (built on `botproc.BotProcess`).

Each replica has its own working directory and PORT; all share the test's Slack stand-in,
emulator, config file and state URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .botproc import BotProcess, clean_env, free_port


class Launcher:
    """Starts replicas on demand and stops every one of them at the end."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.started: list[BotProcess] = []

    def start(self) -> BotProcess:
        """A new replica, once its /healthz answers."""
        cwd = self.workdir / f"bot{len(self.started)}"
        cwd.mkdir()
        bot = BotProcess(clean_env(self.env, home=cwd), cwd, free_port())
        self.started.append(bot)
        bot.wait_healthy()
        return bot

    def stop_all(self) -> None:
        """SIGTERM every replica still running (SIGKILL if it does not stop)."""
        for bot in self.started:
            try:
                bot.terminate(timeout=20)
            finally:
                bot.kill()

    def __iter__(self) -> Iterator[BotProcess]:
        return iter(self.started)


def bot_env(
    *,
    slack_token: str,
    signing_secret: str,
    slack_api_url: str,
    es_url: str,
    config: Path,
    state: str,
) -> dict[str, str]:
    """The public settings of a replica."""
    return {
        "SLACK_BOT_TOKEN": slack_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack_api_url,
        "ELASTICSEARCH_URL": es_url,
        "ELASTICSEARCH_REQUEST_TIMEOUT": "60",
        "ML_CHATOPS_CONFIG": str(config),
        "ML_CHATOPS_STATE": state,
    }
