"""The local shell over fakes, errbot-testbot style: type a line, read the reply as text."""

from __future__ import annotations

import pytest
from fakes import APPROVAL, ROLE_MAP, World, who

from bot.shell.session import ShellSession
from bot.slack import blocks


class ShellBot:
    """Type lines as a user; each call returns the bot's reply as plain text."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.session = ShellSession(world.service, who("U0ADMIN1"))

    async def push(self, line: str) -> str:
        """Type one line (a command, a button label or `/as USER`)."""
        return "\n".join(blocks.to_text(m) for m in await self.session.handle(line))


@pytest.fixture
def shell_bot() -> ShellBot:
    world = World()
    world.gateway.deploy("ner-prod", "elser-prod")
    return ShellBot(world)


async def test_stop_through_the_shell(shell_bot: ShellBot) -> None:
    assert "ner-prod" in await shell_bot.push("/ml-stop ner-prod")
    await shell_bot.push("Stop")
    assert shell_bot.world.gateway.stops == ["ner-prod"]


async def test_usage_error_and_help(shell_bot: ShellBot) -> None:
    assert "--bogus" in await shell_bot.push("/ml-stop ner-prod --bogus")
    assert "/ml-stop" in await shell_bot.push("/ml-stop help")
    assert shell_bot.world.gateway.stops == []


async def test_four_eyes_through_the_shell(shell_bot: ShellBot) -> None:
    shell_bot.world.rules = ROLE_MAP + APPROVAL
    shell_bot.world.gateway.deploy("ner-guarded")
    assert "approval" in (await shell_bot.push("/ml-stop ner-guarded")).lower()
    assert "more approval" in await shell_bot.push("Stop")
    await shell_bot.push("/as U0ADMIN2")
    await shell_bot.push("Approve")
    await shell_bot.push("/as U0ADMIN1")
    await shell_bot.push("Stop")
    assert shell_bot.world.gateway.stops == ["ner-guarded"]


async def test_the_shell_audits_its_commands(shell_bot: ShellBot) -> None:
    await shell_bot.push("/ml-deployments")
    assert shell_bot.world.audit.actions()[0] == ("command", "success")


async def test_a_typed_label_presses_the_newest_live_button(shell_bot: ShellBot) -> None:
    await shell_bot.push("/ml-stop ner-prod")
    await shell_bot.push("/ml-stop elser-prod")
    assert "cancel" in (await shell_bot.push("Cancel")).lower()  # the newest: elser-prod's
    # elser-prod's Stop is newer but finished; ner-prod's is the newest live one.
    await shell_bot.push("Stop")
    assert shell_bot.world.gateway.stops == ["ner-prod"]


async def test_a_finished_button_says_which_action_it_was_for(shell_bot: ShellBot) -> None:
    await shell_bot.push("/ml-stop ner-prod")
    action_id = next(v for label, _, v in shell_bot.session.buttons if label == "Stop")
    await shell_bot.push("Stop")
    again = await shell_bot.push("Stop")
    assert f"that `Stop` was for action `{action_id}`, which already ran" in again
    assert shell_bot.world.gateway.stops == ["ner-prod"]
    await shell_bot.push("/ml-stop elser-prod")
    await shell_bot.push("Cancel")
    assert "which was cancelled" in await shell_bot.push("Cancel")
    assert "not a command" in await shell_bot.push("Approve")  # no such button was shown
