"""The bot's Slack client under Slack's rate limits, end to end through a /ml-stop flow."""

from __future__ import annotations

from conftest import Bench, text_of

CHANNEL = "C0INCIDENTS"


def test_a_rate_limited_result_post_is_retried_after_retry_after(bench: Bench) -> None:
    bench.command("ner-prod")
    bench.slack.rate_limit_next("chat.postMessage", retry_after=1)

    result = bench.confirm()  # waits for the result to land in the channel

    assert "ner-prod" in text_of(result) and "stopped" in text_of(result)
    first, second = bench.slack.calls("chat.postMessage")[-2:]
    assert second.at - first.at >= 1.0  # the client waited as Slack asked
    assert first.params == second.params  # the same message, sent again
    assert len(bench.slack.messages(CHANNEL)) == 1  # and it landed once
    assert len(bench.emulator.stop_calls("ner-prod")) == 1  # the stop itself ran once
