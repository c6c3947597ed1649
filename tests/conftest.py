"""The test bench: emulator + Slack stand-in + the real bot over HTTP, per test."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from support.driver import SlackDriver
from support.fixtures import bg_loop, no_slack_oauth_env, signing_secret, slack
from support.loop import BackgroundLoop
from support.shared import ROLE_MAP
from support.slack_standin import SlackStandIn

from bot.adapters.audit import MemorySink
from bot.bootstrap import Runtime, build_runtime
from bot.core.model import PendingAction
from bot.emulator import Emulator, demo_state
from bot.server import create_web_app
from bot.settings import Settings
from bot.slack.app import create_bolt_app

__all__ = ["ROLE_MAP", "bg_loop", "no_slack_oauth_env", "signing_secret", "slack"]

# The suite is a gate: its property tests draw the same inputs on every run, so a run that
# passed passes again. `HYPOTHESIS_PROFILE=explore pytest` hunts with new inputs each time;
# a counterexample it finds becomes an `@example` (or a plain test) in the gate.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


class ManualClock:
    """The bot's clock, which tests move forward to expire prompts."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Bench:
    """Everything one end-to-end test talks to."""

    loop: BackgroundLoop
    slack: SlackStandIn
    emulator: Emulator
    es_url: str
    bot_url: str
    driver: SlackDriver
    runtime: Runtime
    audit: MemorySink
    clock: ManualClock
    config_path: Path

    def run(self, coro):  # type: ignore[no-untyped-def]
        return self.loop.run(coro)

    def rewrite_config(self, text: str) -> None:
        """Write the config file and wait until the serving bot's watcher has read it.

        The server re-reads the file off the event loop (within a second of a change); a
        test that edits it must not race that read."""
        self.config_path.write_text(text)
        later = time.time() + 5
        os.utime(self.config_path, (later, later))
        source = self.runtime.role_maps
        assert source is not None and source.watching
        deadline = time.monotonic() + 30  # a bound on a hung test, not a timing assertion
        while source.mtime != later and time.monotonic() < deadline:
            time.sleep(0.02)
        assert source.mtime == later, "the config watcher never read the new file"

    def command(
        self,
        text: str,
        *,
        command: str = "/ml-stop",
        user: str = "U0ADMIN1",
        channel: str = "C0INCIDENTS",
    ) -> dict[str, Any]:
        """Send a signed slash command; return the bot's (first) reply on its response_url."""
        reply = self.driver.command(command, text, user_id=user, channel_id=channel)
        assert reply.status == 200, reply.body_text
        url = self.driver.last_response_url
        posts = self.slack.wait_for(lambda: self.slack.response_posts(url) or None)
        return posts[0].body

    def confirm(
        self,
        *,
        user: str = "U0ADMIN1",
        channel: str = "C0INCIDENTS",
        action_id: str = "ml_stop.confirm",
    ) -> dict[str, Any]:
        """Click the newest Stop button; return the result once the action has ended."""
        target = self.slack.wait_for(
            lambda: self.driver.latest_click_target(action_id, user_id=user, channel_id=channel)
        )
        reply = self.driver.click_button(action_id, user_id=user, channel_id=channel)
        assert reply.status == 200, reply.body_text
        return self.result_of(str(target.value), channel)

    def result_of(self, action_id: str, channel: str = "C0INCIDENTS") -> dict[str, Any]:
        """The channel message that reports an action, once the action is final."""

        def final() -> PendingAction | None:
            action = self.run(self.runtime.store.get(action_id))
            done = action is not None and action.state.is_final
            return action if done and action.result_ref else None

        action = self.slack.wait_for(final, timeout=15)
        assert action.result_ref is not None and action.result_ref.ts is not None
        return self.slack.wait_for(
            lambda: self._settled(channel, str(action.result_ref.ts)), timeout=5
        )

    def _settled(self, channel: str, ts: str) -> dict[str, Any] | None:
        message = self.slack.message(channel, ts)
        # The progress line is replaced by the result; wait for the replacement.
        return message if message and "…" not in message.get("text", "")[-3:] else None

    def ephemeral(self, user: str = "U0ADMIN1", channel: str = "C0INCIDENTS") -> dict[str, Any]:
        """The newest message only `user` sees in `channel` (after replacements)."""
        return self.slack.ephemerals(channel=channel, user=user)[-1]


def text_of(message: dict[str, Any]) -> str:
    """Every piece of text in a message (fallback and blocks), for assertions."""
    blocks = json.dumps(message.get("blocks", []), ensure_ascii=False)
    return message.get("text", "") + "\n" + blocks


def button_value(message: dict[str, Any], action_id: str = "ml_stop.confirm") -> str:
    """The value of a button in a message."""
    for block in message.get("blocks", []):
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {message}")


@pytest.fixture
def emulator(bg_loop: BackgroundLoop) -> Iterator[tuple[Emulator, str]]:
    """The demo cluster on the background loop, and its URL (for bot subprocesses)."""
    emu = Emulator(demo_state())
    url = bg_loop.run(emu.start())
    yield emu, url
    bg_loop.run(emu.stop())


@pytest.fixture
def role_map_text() -> str:
    return ROLE_MAP


@pytest.fixture
def es_auth() -> tuple[str, str] | None:
    """The emulator's superuser (None: security off)."""
    return None


@pytest.fixture
def bot_es_user() -> tuple[str, str] | None:
    """The user the bot authenticates as (None: no credentials)."""
    return None


@pytest.fixture
def es_timeout() -> float:
    """The bot's Elasticsearch request timeout."""
    return 5.0


@pytest.fixture
def bench_state_url(tmp_path: Path) -> str:
    """The bench's ML_CHATOPS_STATE; a test module may override it (e.g. with Redis)."""
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def bench(
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    tmp_path: Path,
    role_map_text: str,
    no_slack_oauth_env: None,
    es_auth: tuple[str, str] | None,
    bot_es_user: tuple[str, str] | None,
    es_timeout: float,
    bench_state_url: str,
) -> Iterator[Bench]:
    emulator = Emulator(demo_state(), auth=es_auth)
    es_url = bg_loop.run(emulator.start())
    config = tmp_path / "config.yml"
    config.write_text(role_map_text.replace("{ES_URL}", es_url))
    slack.usergroups.update({"S0SRE": ["U0SRE1"], "S0MLOPS": ["U0OPS1"]})
    clock = ManualClock()
    audit = MemorySink()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=slack.bot_token,
        slack_signing_secret=signing_secret,
        slack_api_url=slack.api_url,
        elasticsearch_url=es_url,
        elasticsearch_request_timeout=es_timeout,
        elasticsearch_username=bot_es_user[0] if bot_es_user else None,
        elasticsearch_password=bot_es_user[1] if bot_es_user else None,
        ml_chatops_config=config,
        ml_chatops_state=bench_state_url,
    )

    async def build() -> tuple[Runtime, str]:
        runtime = build_runtime(settings, clock=clock, audit_sinks=[audit])
        bolt = create_bolt_app(
            runtime.service,
            client=runtime.slack,
            signing_secret=signing_secret,
            incidents=runtime.config.incidents,
            metrics=runtime.metrics,
        )
        return runtime, create_web_app(runtime, bolt)  # type: ignore[return-value]

    runtime, web_app = bg_loop.run(build())
    bot_url = bg_loop.serve(web_app)  # type: ignore[arg-type]
    driver = SlackDriver(bot_url, signing_secret, slack)
    yield Bench(bg_loop, slack, emulator, es_url, bot_url, driver, runtime, audit, clock, config)
    bg_loop.stop(bot_url)
    bg_loop.run(runtime.close())
    bg_loop.run(emulator.stop())
