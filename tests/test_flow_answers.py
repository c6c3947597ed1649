"""Answers that lead somewhere (issue 20): typos, denials, locks and partly refused wildcards
say what to do next. Real Bolt over signed HTTP, the real client against the emulator."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Bench, button_value, text_of

ADMIN, ADMIN2, OPS = "U0ADMIN1", "U0ADMIN2", "U0OPS1"
CHANNEL = "C0INCIDENTS"


def stop_paths(bench: Bench) -> list[str]:
    return [r.path for r in bench.emulator.requests if r.path.endswith("/deployment/_stop")]


# --------------------------------------------------------------------------- did you mean


def test_a_typo_in_a_deployment_id_suggests_the_nearest_one(bench: Bench) -> None:
    text = text_of(bench.command("ner-prdo"))
    assert "Nothing was stopped" in text
    assert "did you mean `ner-prod`" in text
    assert "ml_stop.confirm" not in text and stop_paths(bench) == []


def test_a_typo_with_no_allow_no_match_suggests_too(bench: Bench) -> None:
    text = text_of(bench.command("search-e5,ner-prdo --no-allow-no-match"))
    assert "did you mean `ner-prod`" in text and "ml_stop.confirm" not in text


def test_stopping_what_the_bot_already_stopped_says_how_to_bring_it_back(bench: Bench) -> None:
    bench.command("search-e5")
    bench.confirm()
    text = text_of(bench.command("search-e5"))
    assert "stopped by the bot" in text and "/ml-start search-e5" in text


def test_an_unrelated_id_gets_no_suggestion(bench: Bench) -> None:
    assert "did you mean" not in text_of(bench.command("totally-different"))


# --------------------------------------------------------------------------- who can help


def test_a_denial_names_the_roles_that_would_allow_it_and_who_holds_them(bench: Bench) -> None:
    reply = bench.command("ner-*", user=OPS)
    text = text_of(reply)
    assert "denied" in text and "wildcards" in text
    for mention in ("<@U0ADMIN1>", "<@U0ADMIN2>", "<!subteam^S0SRE>"):
        assert mention in text
    assert "ml-admin" in text
    assert "(ml-operator)" not in text  # the caller's own role does not grant it
    assert stop_paths(bench) == []


def test_a_denial_in_the_wrong_channel_says_where_it_would_work(bench: Bench) -> None:
    text = text_of(bench.command("", command="/ml-deployments", user="U0RANDOM", channel="C0X"))
    assert "denied" in text
    assert "<#C0INCIDENTS>" in text and "ml-viewer" in text  # anyone there may list
    assert "<!subteam^S0MLOPS> in <#C0INCIDENTS>" in text


def test_a_freeze_denial_names_the_admins(bench: Bench) -> None:
    text = text_of(bench.command("freeze", user=OPS))
    assert "denied" in text and "<@U0ADMIN1>" in text and "ml-admin" in text


STOP_ONLY = """
roles:
  ml-operator:
    - {action: [stop], deployments: ["ner-*"]}
bindings:
  - {role: ml-operator, users: [U0ADMIN1]}
"""


@pytest.mark.parametrize("role_map_text", [STOP_ONLY])
def test_a_denial_no_role_could_lift_says_so(bench: Bench) -> None:
    text = text_of(bench.command("", command="/ml-deployments"))
    assert "denied" in text and "No role in the role map allows this" in text


def test_a_non_approver_is_told_who_may_approve(bench: Bench) -> None:
    bench.rewrite_config(
        bench.config_path.read_text()
        + 'approvals:\n  - {actions: [stop], deployments: ["ner-*"], approvers: [ml-admin]}\n'
    )
    bench.command("ner-prod")
    card = bench.slack.wait_for(
        lambda: next(
            (m for m in bench.slack.messages(CHANNEL) if "ml_stop.approve" in text_of(m)), None
        )
    )
    bench.driver.click(
        "ml_stop.approve",
        button_value(card, "ml_stop.approve"),
        user_id=OPS,
        channel_id=CHANNEL,
        message_ts=card["ts"],
        message=card,
        ephemeral=False,
    )
    refusal = bench.slack.wait_for(
        lambda: next(
            (t for e in bench.slack.ephemerals(user=OPS) if "denied" in (t := text_of(e))), None
        )
    )
    assert "<@U0ADMIN2>" in refusal and "ml-admin" in refusal


# --------------------------------------------------------------------------- locks


def test_a_locked_deployment_names_the_holder_and_what_to_do(bench: Bench) -> None:
    bench.command("ner-prod")
    text = text_of(bench.command("ner-prod", user=ADMIN2))
    assert f"ask <@{ADMIN}> to Cancel" in text and "expires at" in text
    assert "ml_stop.confirm" not in text
    mine = text_of(bench.command("ner-prod"))
    assert "pending by you" in mine and "Cancel" in mine


# --------------------------------------------------------------------------- partly refused


def _accessory(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in message["blocks"]:
        if block.get("accessory", {}).get("action_id") == action_id:
            return dict(block["accessory"])
    raise AssertionError(f"no {action_id} in {message}")


def test_a_partly_refused_wildcard_names_every_match_and_previews_the_others(
    bench: Bench,
) -> None:
    reply = bench.command('elser-* --reason "INC-9 shed load"')
    text = text_of(reply)
    assert "ml_stop.confirm" not in text  # still no Stop bound to fail
    for dep in ("elser-prod", "elser-endpoint", "elser-search"):
        assert dep in text
    button = _accessory(reply, "ml_stop.narrow")
    assert "elser-search" in button["value"] and "elser-prod" not in button["value"]
    click = bench.driver.click(
        "ml_stop.narrow", button["value"], user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
    )
    assert click.status == 200
    preview = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_stop.confirm" in text_of(e)
            ),
            None,
        )
    )
    assert "INC-9 shed load" in text_of(preview)
    assert "elser-prod" not in text_of(preview)
    bench.confirm()
    assert [p.split("/")[3] for p in stop_paths(bench)] == ["elser-search"]
    assert "elser-prod" in bench.emulator.state.deployments
    # The click went through the one audit point, as a typed command does.
    commands = [d for d in bench.audit.docs if d["event"]["action"] == "command"]
    assert len(commands) == 2


ALL_ONLY = """
roles:
  sweeper:
    - {action: [stop, status], deployments: ["*"], options: [all]}
bindings:
  - {role: sweeper, users: [U0ADMIN1]}
"""


@pytest.mark.parametrize("role_map_text", [ALL_ONLY])
def test_the_narrower_preview_is_offered_only_if_the_role_allows_it(bench: Bench) -> None:
    # `_all` is granted, a comma list is not: the others are named, but no button.
    text = text_of(bench.command("_all"))
    assert "elser-search" in text and "can be stopped without `--force`" in text
    assert "ml_stop.narrow" not in text and "does not grant" in text


def test_a_typo_of_a_deployment_the_bot_stopped_is_suggested_as_stopped(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.confirm()
    text = text_of(bench.command("ner-prdo"))
    assert "did you mean `ner-prod` (stopped by the bot)" in text


def test_help_names_the_button_the_preview_shows(bench: Bench) -> None:
    text = text_of(bench.command("help"))
    assert "a Stop button" in text and "Confirm button" not in text
    preview = bench.command("ner-prod")
    labels = [
        e["text"]["text"]
        for b in preview["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    ]
    assert "Stop" in labels
