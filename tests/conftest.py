"""The test bench: emulator + Slack stand-in + the real bot over HTTP, per test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.driver import SlackDriver
from support.fixtures import bg_loop, no_slack_oauth_env, signing_secret, slack
from support.loop import BackgroundLoop
from support.slack_standin import SlackStandIn

from bot.audit import MemorySink
from bot.emulator import Emulator, demo_state
from bot.runtime import Runtime, build_runtime
from bot.server import create_web_app
from bot.settings import Settings
from bot.slack_app import create_bolt_app

__all__ = ["bg_loop", "no_slack_oauth_env", "signing_secret", "slack"]

ROLE_MAP = """
expire_after_seconds: 600
roles:
  ml-admin:
    - {action: [stop, start, status], deployments: ["*"],
       options: [force, finish_pending_work, wildcard, list, all]}
  ml-operator:
    - {action: [stop, status], deployments: ["ner-*", "search-*"], clusters: [default]}
  ml-viewer:
    - {action: status, deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2]}
  - {role: ml-admin, usergroups: [S0SRE]}
  - {role: ml-operator, usergroups: [S0MLOPS], channels: [C0INCIDENTS]}
  - {role: ml-viewer, channels: [C0INCIDENTS]}
"""


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


@pytest.fixture
def role_map_text() -> str:
    return ROLE_MAP


@pytest.fixture
def bench(
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    tmp_path: Path,
    role_map_text: str,
    no_slack_oauth_env: None,
) -> Iterator[Bench]:
    emulator = Emulator(demo_state())
    es_url = bg_loop.run(emulator.start())
    config = tmp_path / "config.yml"
    config.write_text(role_map_text)
    slack.usergroups.update({"S0SRE": ["U0SRE1"], "S0MLOPS": ["U0OPS1"]})
    clock = ManualClock()
    audit = MemorySink()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token=slack.bot_token,
        slack_signing_secret=signing_secret,
        slack_api_url=slack.api_url,
        elasticsearch_url=es_url,
        elasticsearch_request_timeout=5,
        ml_chatops_config=config,
        ml_chatops_state=f"sqlite:///{tmp_path / 'state.db'}",
    )

    async def build() -> tuple[Runtime, str]:
        runtime = build_runtime(settings, clock=clock, audit_sinks=[audit])
        bolt = create_bolt_app(runtime.service, client=runtime.slack, signing_secret=signing_secret)
        return runtime, create_web_app(runtime, bolt)  # type: ignore[return-value]

    runtime, web_app = bg_loop.run(build())
    bot_url = bg_loop.serve(web_app)  # type: ignore[arg-type]
    driver = SlackDriver(bot_url, signing_secret, slack)
    yield Bench(
        bg_loop, slack, emulator, es_url, bot_url, driver, runtime, audit, clock, config
    )
    bg_loop.stop(bot_url)
    bg_loop.run(runtime.close())
    bg_loop.run(emulator.stop())
