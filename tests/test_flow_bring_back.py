"""Bringing a stopped deployment back (issue 20): Elasticsearch forgets a stopped deployment,
the bot does not. Real Bolt over signed HTTP, the real client against the emulator."""

from __future__ import annotations

from typing import Any

from conftest import Bench, button_value, text_of

ADMIN, ADMIN2 = "U0ADMIN1", "U0ADMIN2"
CHANNEL = "C0INCIDENTS"
REASON = "INC-4711: e5 node OOM"


def _stop(bench: Bench, text: str) -> dict[str, Any]:
    bench.command(text)
    return bench.confirm()


def _settings(bench: Bench, dep_id: str) -> tuple[Any, ...]:
    d = bench.emulator.state.deployments[dep_id]
    return (d.model_id, d.number_of_allocations, d.threads_per_allocation, d.priority)


def restart_value(message: dict[str, Any]) -> str:
    """The value of the Restart button beside a listing row (a section accessory)."""
    for block in message["blocks"]:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == "ml_deployment.restart":
            return str(accessory["value"])
    raise AssertionError(f"no Restart button in {message}")


def _start_calls(bench: Bench) -> list[Any]:
    return [r for r in bench.emulator.requests if r.path.endswith("/deployment/_start")]


def test_the_listing_shows_what_the_bot_stopped_with_who_when_why_and_restart(
    bench: Bench,
) -> None:
    _stop(bench, f'search-e5 --reason "{REASON}"')
    listing = bench.command("", command="/ml-deployments", user=ADMIN2)
    text = text_of(listing)
    assert "search-e5" in text  # Elasticsearch no longer lists it; the bot does
    section = next(
        b
        for b in listing["blocks"]
        if b.get("accessory", {}).get("action_id") == "ml_deployment.restart"
    )
    row = section["text"]["text"]
    assert "search-e5" in row and f"<@{ADMIN}>" in row and "<!date^" in row
    assert "INC-4711" in row
    # A deployment running again is not "stopped" any more.
    assert "ner-prod" not in row


def test_restart_from_the_listing_keeps_the_settings_and_the_original_reason(
    bench: Bench,
) -> None:
    before = _settings(bench, "search-e5")
    _stop(bench, f'search-e5 --reason "{REASON}"')
    listing = bench.command("", command="/ml-deployments")
    stop_id = restart_value(listing)
    reply = bench.driver.click(
        "ml_deployment.restart", stop_id, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
    )
    assert reply.status == 200
    preview = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_start.confirm" in text_of(e)
            ),
            None,
        )
    )
    assert f"restart after {REASON}" in text_of(preview).replace("\u200b", "")
    assert "restart after action" not in text_of(preview)
    bench.confirm(action_id="ml_start.confirm")
    assert _settings(bench, "search-e5") == before
    # Running again: the listing no longer offers to restart it.
    again = bench.command("", command="/ml-deployments")
    assert "ml_deployment.restart" not in text_of(again)


def test_ml_start_of_a_deployment_id_the_bot_stopped_restarts_it(bench: Bench) -> None:
    before = _settings(bench, "search-e5")
    _stop(bench, f'search-e5 --reason "{REASON}"')
    preview = bench.command("search-e5", command="/ml-start")
    text = text_of(preview)
    assert "no trained model" not in text
    assert "ml_start.confirm" in text and "previous settings" in text
    assert f"restart after {REASON}" in text.replace("\u200b", "")
    bench.confirm(action_id="ml_start.confirm")
    assert _settings(bench, "search-e5") == before
    call = _start_calls(bench)[-1]
    assert call.query["deployment_id"] == "search-e5"
    assert call.path.startswith(f"/_ml/trained_models/{before[0]}/")


def test_typed_settings_win_over_the_previous_ones(bench: Bench) -> None:
    _stop(bench, "search-e5")
    preview = bench.command("search-e5 --allocations 1 --reason back", command="/ml-start")
    assert "ml_start.confirm" in text_of(preview) and "previous settings" not in text_of(preview)
    bench.confirm(action_id="ml_start.confirm")
    assert bench.emulator.state.deployments["search-e5"].number_of_allocations == 1


def test_a_typo_in_ml_start_suggests_the_stopped_deployment_and_models(bench: Bench) -> None:
    _stop(bench, "search-e5")
    text = text_of(bench.command("serch-e5", command="/ml-start"))
    assert "did you mean" in text and "/ml-start search-e5" in text
    assert "GET _ml/trained_models" not in text
    model = bench.emulator.state.deployments["ner-prod"].model_id
    typo = model.replace("conll03", "conl03")
    text = text_of(bench.command(typo, command="/ml-start"))
    assert f"model `{model}`" in text and "ml_start.confirm" not in text


def test_an_endpoint_deployment_stopped_elsewhere_gets_the_command_that_brings_it_back(
    bench: Bench,
) -> None:
    model = bench.emulator.state.deployments["elser-endpoint"].model_id
    del bench.emulator.state.deployments["elser-endpoint"]  # stopped outside the bot
    text = text_of(bench.command("elser-endpoint", command="/ml-start"))
    assert f"/ml-start {model} --deployment-id elser-endpoint" in text
    assert "ml_start.confirm" not in text
    # Starting the model under its own id leaves the endpoint down: the preview says how.
    preview = text_of(bench.command(model, command="/ml-start"))
    assert "ml_start.confirm" in preview
    assert "--deployment-id elser-endpoint" in preview


def test_restart_starts_only_what_is_still_down(bench: Bench) -> None:
    result = _stop(bench, "ner-prod,search-e5")
    bench.command("search-e5", command="/ml-start")
    bench.confirm(action_id="ml_start.confirm")
    stop_id = button_value(result, "ml_deployment.restart")
    bench.driver.click(
        "ml_deployment.restart", stop_id, user_id=ADMIN, channel_id=CHANNEL, ephemeral=True
    )
    preview = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_start.confirm" in text_of(e) and "ner-prod" in text_of(e)
            ),
            None,
        )
    )
    assert "search-e5" not in text_of(preview).split("Reason")[-1]
    assert "Already running again" in text_of(preview)  # said, not silently dropped


def test_ml_start_of_the_endpoint_deployment_the_bot_stopped_brings_the_endpoint_back(
    bench: Bench,
) -> None:
    _stop(bench, "elser-endpoint --force")
    preview = text_of(bench.command("elser-endpoint", command="/ml-start"))
    assert "brings back inference endpoint `elser-endpoint`" in preview
    assert "ml_start.confirm" in preview
    bench.confirm(action_id="ml_start.confirm")
    assert bench.emulator.state.deployments["elser-endpoint"].state == "started"


def test_each_listed_stop_has_its_own_restart_button_and_the_second_one_works(
    bench: Bench,
) -> None:
    # Slack refuses a message whose buttons share an action_id: the rows number theirs.
    _stop(bench, f'search-e5 --reason "{REASON}"')
    _stop(bench, 'ner-prod --reason "second"')
    listing = bench.command("", command="/ml-deployments")
    rows = [
        b
        for b in listing["blocks"]
        if str(b.get("accessory", {}).get("action_id", "")).startswith("ml_deployment.restart")
    ]
    buttons = [b["accessory"] for b in rows]
    second = "search-e5" if "search-e5" in rows[1]["text"]["text"] else "ner-prod"
    assert second in rows[1]["text"]["text"] and second not in rows[0]["text"]["text"]
    assert [b["action_id"] for b in buttons] == ["ml_deployment.restart", "ml_deployment.restart#1"]
    reply = bench.driver.click(
        buttons[1]["action_id"],
        buttons[1]["value"],
        user_id=ADMIN,
        channel_id=CHANNEL,
        ephemeral=True,
    )
    assert reply.status == 200
    preview = bench.slack.wait_for(
        lambda: next(
            (
                e
                for e in reversed(bench.slack.ephemerals(user=ADMIN))
                if "ml_start.confirm" in text_of(e)
            ),
            None,
        )
    )
    assert f"Start {second} on" in text_of(preview)
