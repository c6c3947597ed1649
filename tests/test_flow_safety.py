"""Safety: four eyes, re-check at click, verified outcome, restart, locks, run_as, freeze."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ROLE_MAP, Bench, button_value, text_of

ADMIN, ADMIN2, OPS = "U0ADMIN1", "U0ADMIN2", "U0OPS1"
CHANNEL = "C0INCIDENTS"

FOUR_EYES = (
    ROLE_MAP
    + """
approvals:
  - {clusters: [default], actions: [stop], deployments: ["ner-*"], required: 1,
     approvers: [ml-admin]}
"""
)
AUTO_RUN = (
    ROLE_MAP
    + """
approvals:
  - {actions: [stop], deployments: ["ner-*"], required: 2, approvers: [ml-admin],
     auto_run: true}
"""
)


def card(bench: Bench) -> dict[str, Any]:
    """The newest message in the channel with Approve/Reject (or that was the card)."""
    return bench.slack.wait_for(
        lambda: next(
            (m for m in reversed(bench.slack.messages(CHANNEL)) if "approv" in text_of(m).lower()),
            None,
        )
    )


def click_card(bench: Bench, action_id: str, user: str) -> None:
    message = card(bench)
    value = button_value(message, action_id)
    reply = bench.driver.click(
        action_id,
        value,
        user_id=user,
        channel_id=CHANNEL,
        message_ts=message["ts"],
        message=message,
        ephemeral=False,
    )
    assert reply.status == 200


def ephemerals_of(bench: Bench, user: str) -> list[str]:
    return [text_of(e) for e in bench.slack.ephemerals(channel=CHANNEL, user=user)]


def wait_text(bench: Bench, user: str, fragment: str) -> str:
    return bench.slack.wait_for(
        lambda: next((t for t in reversed(ephemerals_of(bench, user)) if fragment in t), None)
    )


# --------------------------------------------------------------------------- four eyes


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_approval_by_a_second_user_then_stop(bench: Bench) -> None:
    preview = bench.command("ner-prod --reason INC-7")
    assert "approval" in text_of(preview).lower()
    assert "ml_stop.approve" in text_of(card(bench))
    # Stop before the approval: refused, nothing runs.
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    assert bench.emulator.stop_calls() == []

    click_card(bench, "ml_stop.approve", ADMIN2)
    bench.slack.wait_for(lambda: f"<@{ADMIN2}>" in text_of(card(bench)) or None)
    wait_text(bench, ADMIN, "approved")
    result = bench.confirm()
    assert "stopped" in text_of(result)
    assert len(bench.emulator.stop_calls("ner-prod")) == 1
    audit = [d for d in bench.audit.docs if d["event"]["action"] == "stop"]
    assert audit[0]["ml_chatops"]["approvers"] == [ADMIN2]


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_self_approval_is_refused(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.approve", ADMIN)
    wait_text(bench, ADMIN, "someone else")
    action = bench.run(bench.runtime.store.get(button_value(card(bench), "ml_stop.approve")))
    assert action.approvals == ()


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_approval_by_a_non_approver_is_refused_privately(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.approve", OPS)
    text = wait_text(bench, OPS, "denied")
    assert "approving stop" in text and "ml-admin" in text
    action = bench.run(bench.runtime.store.get(button_value(card(bench), "ml_stop.approve")))
    assert action.approvals == ()


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_approval_after_expiry_ends_it(bench: Bench) -> None:
    bench.command("ner-prod")
    value = button_value(card(bench), "ml_stop.approve")
    bench.clock.advance(601)
    click_card(bench, "ml_stop.approve", ADMIN2)
    bench.slack.wait_for(lambda: "ml_stop.approve" not in text_of(card(bench)) or None)
    assert bench.run(bench.runtime.store.get(value)).state.value == "expired"
    assert bench.emulator.stop_calls() == []


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_reject_ends_the_request(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.reject", ADMIN2)
    # The card itself says "Reject" on its button: wait for the card whose buttons are gone.
    bench.slack.wait_for(lambda: "ml_stop.approve" not in text_of(card(bench)) or None)
    assert "reject" in text_of(card(bench)).lower()
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "reject")
    assert bench.emulator.stop_calls() == []


@pytest.mark.parametrize("role_map_text", [AUTO_RUN])
def test_auto_run_after_enough_approvals(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.approve", ADMIN2)
    bench.slack.wait_for(lambda: f"<@{ADMIN2}>" in text_of(card(bench)) or None)
    assert bench.emulator.stop_calls() == []  # one of two
    bench.slack.usergroups["S0SRE"] = ["U0SRE1"]
    click_card(bench, "ml_stop.approve", "U0SRE1")
    bench.slack.wait_for(lambda: bench.emulator.stop_calls("ner-prod") or None, timeout=10)
    bench.slack.wait_for(
        lambda: (
            any("ml_deployment.restart" in text_of(m) for m in bench.slack.messages(CHANNEL))
            or None
        )
    )
    assert len(bench.emulator.stop_calls("ner-prod")) == 1


# --------------------------------------------------------------------------- re-check at click


def _touch_config(bench: Bench, text: str) -> None:
    bench.rewrite_config(text)  # and wait until the serving bot has read it


def test_role_removed_between_preview_and_click(bench: Bench) -> None:
    bench.command("ner-prod", user=OPS)
    _touch_config(bench, ROLE_MAP.replace("usergroups: [S0MLOPS]", "usergroups: [S0OTHER]"))
    bench.driver.click_button("ml_stop.confirm", user_id=OPS, channel_id=CHANNEL)
    wait_text(bench, OPS, "denied")
    assert bench.emulator.stop_calls() == []


def test_pipeline_added_between_preview_and_click_asks_again(bench: Bench) -> None:
    bench.command("ner-prod")
    # By model id: it breaks with the stop, yet ES does not refuse (a direct one would).
    model = bench.emulator.state.deployments["ner-prod"].model_id
    bench.emulator.state.put_pipeline(
        "late-ner", {"processors": [{"inference": {"model_id": model}}]}
    )
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    fresh = bench.slack.wait_for(
        lambda: ("late-ner" in text_of(bench.ephemeral()) and bench.ephemeral()) or None
    )
    assert "Changed since" in text_of(fresh) and "ml_stop.confirm" in text_of(fresh)
    assert bench.emulator.stop_calls() == []


def test_wildcard_matching_more_at_click_asks_again(bench: Bench) -> None:
    bench.command("ner-* --force")
    bench.emulator.state.start_deployment(
        bench.emulator.state.deployments["ner-prod"].model_id, "ner-canary"
    )
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "ner-canary" in text_of(bench.ephemeral()) or None)
    assert bench.emulator.stop_calls() == []
    result = bench.confirm()  # the new preview's Stop
    assert "ner-canary" in text_of(result)
    assert len(bench.emulator.stop_calls()) == 2


# --------------------------------------------------------------------------- verified outcome


def test_stop_is_verified_after_the_call(bench: Bench) -> None:
    bench.emulator.lifecycle.linger = 0.4
    bench.command("ner-prod")
    result = bench.confirm()
    assert "stopped (verified)" in text_of(result)
    stats_after = [r for r in bench.emulator.requests if r.path.endswith("ner-prod/_stats")]
    assert len(stats_after) >= 2  # polled until gone


def test_stop_answered_but_still_there_is_reported(bench: Bench) -> None:
    bench.emulator.lifecycle.linger = 30
    bench.command("ner-prod")
    result = bench.confirm()
    assert "still stopping after" in text_of(result)


def test_long_stop_shows_progress_first(bench: Bench) -> None:
    bench.command("ner-prod --finish-pending-work")
    bench.emulator.lifecycle.stop_delay = 0.6
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "Stopping" in text_of(bench.ephemeral()) or None)
    # One line in the channel: "Stopping…" while it runs, replaced by the result.
    line = bench.slack.wait_for(lambda: bench.slack.messages(CHANNEL) or None)
    assert len(line) == 1 and "Stopping" in line[0]["text"]
    ts = line[0]["ts"]
    bench.slack.wait_for(
        lambda: "ml_deployment.restart" in text_of(bench.slack.message(CHANNEL, ts) or {}) or None,
        timeout=10,
    )
    assert len(bench.slack.messages(CHANNEL)) == 1


# --------------------------------------------------------------------------- restart


def test_restart_with_previous_settings(bench: Bench) -> None:
    before = bench.emulator.state.deployments["search-e5"]
    settings = (
        before.model_id,
        before.number_of_allocations,
        before.threads_per_allocation,
        before.priority,
    )
    bench.command("search-e5")
    result = bench.confirm()
    assert "ml_deployment.restart" in text_of(result)
    assert "search-e5" not in bench.emulator.state.deployments
    bench.driver.click_button("ml_deployment.restart", user_id=ADMIN, channel_id=CHANNEL)
    start_preview = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_start.confirm" in text_of(e)
            ),
            None,
        )
    )
    assert "search-e5" in text_of(start_preview)
    bench.confirm(action_id="ml_start.confirm")
    after = bench.emulator.state.deployments["search-e5"]
    assert (
        after.model_id,
        after.number_of_allocations,
        after.threads_per_allocation,
        after.priority,
    ) == settings
    start_call = next(r for r in bench.emulator.requests if r.path.endswith("/_start"))
    assert start_call.query["deployment_id"] == "search-e5"


def test_ml_start_by_hand(bench: Bench) -> None:
    model = bench.emulator.state.deployments["ner-prod"].model_id
    preview = bench.command(f"{model} --deployment-id ner-second --threads 2", command="/ml-start")
    assert "ml_start.confirm" in text_of(preview)
    bench.driver.click_button("ml_start.confirm", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "ner-second" in bench.emulator.state.deployments or None)
    assert bench.emulator.state.deployments["ner-second"].threads_per_allocation == 2


def test_ml_start_of_a_running_deployment_is_refused(bench: Bench) -> None:
    model = bench.emulator.state.deployments["ner-prod"].model_id
    reply = bench.command(f"{model} --deployment-id ner-prod", command="/ml-start")
    assert "already deployed" in text_of(reply)


# --------------------------------------------------------------------------- locks


def test_second_stop_of_a_pending_deployment_is_refused_with_holder(bench: Bench) -> None:
    bench.command("ner-prod")
    reply = bench.command("ner-*,search-e5", user=ADMIN2)
    assert f"<@{ADMIN}>" in text_of(reply) and "ner-prod" in text_of(reply)
    assert "ml_stop.confirm" not in text_of(reply)


def test_lock_is_released_when_the_first_ends(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.driver.click_button("ml_stop.cancel", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "cancelled" in text_of(bench.ephemeral()) or None)
    reply = bench.command("ner-prod", user=ADMIN2)
    assert "ml_stop.confirm" in text_of(reply)


# --------------------------------------------------------------------------- attribution


def test_opaque_id_names_the_slack_user_and_action(bench: Bench) -> None:
    preview = bench.command("ner-prod")
    action_id = button_value(preview)
    bench.confirm()
    stop = bench.emulator.stop_calls("ner-prod")[0]
    assert stop.headers.get("x-opaque-id") == f"ml-chatops/T0TEAM/{ADMIN}/{action_id}"


RUN_AS = """
clusters:
  default:
    url: "{ES_URL}"
    username: impersonator
    password_env: ML_CHATOPS_TEST_IMPERSONATOR_PW
    run_as: true
    run_as_users: {U0ADMIN1: ml-bot, U0ADMIN2: viewer}
roles:
  ml-admin:
    - {action: [stop, status], deployments: ["*"]}
bindings:
  - {role: ml-admin, users: [U0ADMIN1, U0ADMIN2, U0SRE1]}
"""


@pytest.fixture
def run_as_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CHATOPS_TEST_IMPERSONATOR_PW", "imp-pw")


@pytest.mark.parametrize("es_auth", [("elastic", "changeme")])
@pytest.mark.parametrize("role_map_text", [RUN_AS])
def test_run_as_allowed_and_denied(run_as_bench: None, bench: Bench) -> None:
    state = bench.emulator.state
    state.add_role("impersonate", cluster=["monitor_ml", "read_pipeline"], run_as=["*"])
    state.add_user("impersonator", "imp-pw", ["impersonate"])
    state.add_role("ml-operator", cluster=["manage_ml", "monitor", "read_pipeline"])
    state.add_role("ml-viewer", cluster=["monitor_ml", "read_pipeline"])

    bench.command("ner-prod")
    result = bench.confirm()
    assert "stopped" in text_of(result) and "refused" not in text_of(result)
    stop = bench.emulator.stop_calls("ner-prod")[0]
    assert stop.headers.get("es-security-runas-user") == "ml-bot"

    bench.command("search-e5", user=ADMIN2)
    denied = bench.confirm(user=ADMIN2)
    assert "as your Elasticsearch user" in text_of(denied)
    assert "search-e5" in state.deployments

    unmapped = bench.command("search-e5", user="U0SRE1")
    assert "none is mapped" in text_of(unmapped)


# --------------------------------------------------------------------------- freeze


def test_freeze_and_unfreeze(bench: Bench) -> None:
    bench.command("ner-prod")  # pending before the freeze
    bench.driver.command("/ml-stop", 'freeze --reason "INC-9 hands off"', user_id=ADMIN2)
    notice = bench.slack.wait_for(
        lambda: next((m for m in bench.slack.messages(CHANNEL) if "froze" in text_of(m)), None)
    )
    assert "INC-9 hands off" in text_of(notice)
    frozen = bench.command("search-e5")
    assert "frozen" in text_of(frozen) and f"<@{ADMIN2}>" in text_of(frozen)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "frozen")
    assert bench.emulator.stop_calls() == []

    bench.driver.command("/ml-stop", "unfreeze", user_id=ADMIN2)
    bench.slack.wait_for(
        lambda: any("unfroze" in text_of(m) for m in bench.slack.messages(CHANNEL)) or None
    )
    assert "ml_stop.confirm" in text_of(bench.command("search-e5"))


def test_freeze_needs_the_freeze_grant(bench: Bench) -> None:
    reply = bench.command("freeze", user=OPS)
    assert "denied" in text_of(reply)
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod", user=OPS))


def test_config_freeze_is_read_without_restart(bench: Bench) -> None:
    _touch_config(bench, "freeze: true\n" + ROLE_MAP)
    reply = bench.command("ner-prod")
    assert "frozen" in text_of(reply) and "config" in text_of(reply)


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_a_changed_preview_needs_its_approvals_again(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.approve", ADMIN2)
    bench.slack.wait_for(lambda: f"<@{ADMIN2}>" in text_of(card(bench)) or None)
    # By model id: it breaks with the stop, yet ES does not refuse (a direct one would).
    model = bench.emulator.state.deployments["ner-prod"].model_id
    bench.emulator.state.put_pipeline(
        "late-ner", {"processors": [{"inference": {"model_id": model}}]}
    )
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "late-ner")  # the preview, replaced (not the newest ephemeral)
    # The card shows the approval gone and asks again; Stop now waits for a new approval.
    bench.slack.wait_for(lambda: "ml_stop.approve" in text_of(card(bench)) or None)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    assert bench.emulator.stop_calls() == []


def test_a_wildcard_matching_a_deployment_someone_else_holds_is_refused(bench: Bench) -> None:
    bench.command("ner-* --force")
    model = bench.emulator.state.deployments["ner-prod"].model_id
    bench.emulator.state.start_deployment(model, "ner-canary")
    assert "ml_stop.confirm" in text_of(bench.command("ner-canary", user=ADMIN2))
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    text = wait_text(bench, ADMIN, f"<@{ADMIN2}>")
    assert "ner-canary" in text
    assert bench.emulator.stop_calls() == []


# ------------------------------------------------------------------ four eyes, re-evaluated

GUARDED = (
    ROLE_MAP
    + """
approvals:
  - {actions: [stop], deployments: ["ner-guarded"], required: 1, approvers: [ml-admin]}
"""
)


@pytest.mark.parametrize("role_map_text", [GUARDED])
def test_a_growing_wildcard_cannot_bypass_four_eyes(bench: Bench) -> None:
    preview = bench.command("ner-* --force")
    assert "approval" not in text_of(preview).lower()  # only ner-prod matches: no rule applies
    model = bench.emulator.state.deployments["ner-prod"].model_id
    bench.emulator.state.start_deployment(model, "ner-guarded")
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    bench.slack.wait_for(lambda: "ner-guarded" in text_of(bench.ephemeral()) or None)
    # The guarded deployment brings its approval card with it, and Stop waits for it.
    assert "ml_stop.approve" in text_of(card(bench))
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    assert bench.emulator.stop_calls() == []
    click_card(bench, "ml_stop.approve", ADMIN2)
    wait_text(bench, ADMIN, "approved")
    result = bench.confirm()
    assert "ner-guarded" in text_of(result)
    assert len(bench.emulator.stop_calls()) == 2
    audit = [d for d in bench.audit.docs if d["event"]["action"] == "stop"]
    assert audit[0]["ml_chatops"]["approvers"] == [ADMIN2]


def test_an_approval_rule_added_after_the_preview_applies_at_the_click(bench: Bench) -> None:
    assert "approval" not in text_of(bench.command("ner-prod")).lower()
    _touch_config(bench, FOUR_EYES)
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    assert "ml_stop.approve" in text_of(card(bench))
    assert bench.emulator.stop_calls() == []


@pytest.mark.parametrize("role_map_text", [FOUR_EYES])
def test_an_approvers_role_removed_before_the_stop_voids_the_approval(bench: Bench) -> None:
    bench.command("ner-prod")
    click_card(bench, "ml_stop.approve", ADMIN2)
    bench.slack.wait_for(lambda: f"<@{ADMIN2}>" in text_of(card(bench)) or None)
    _touch_config(bench, FOUR_EYES.replace("users: [U0ADMIN1, U0ADMIN2]", "users: [U0ADMIN1]"))
    bench.driver.click_button("ml_stop.confirm", user_id=ADMIN, channel_id=CHANNEL)
    wait_text(bench, ADMIN, "more approval")
    assert bench.emulator.stop_calls() == []
    # The card takes the void approval back and asks again.
    bench.slack.wait_for(lambda: "ml_stop.approve" in text_of(card(bench)) or None)
    value = button_value(card(bench), "ml_stop.approve")
    assert bench.run(bench.runtime.store.get(value)).approvals == ()
