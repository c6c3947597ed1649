"""Slash-command text is parsed, recorded and shown as typed, not as Slack escaped it (#19)."""

from __future__ import annotations

from conftest import Bench

from bot.slack.slash_text import unescape_command_text


def test_exactly_the_three_entities_are_undone_in_one_pass() -> None:
    assert unescape_command_text("A&amp;B &lt;x&gt;") == "A&B <x>"
    # A typed `&lt;` arrives as `&amp;lt;` and must come back as `&lt;`, not `<`.
    assert unescape_command_text("&amp;lt; &amp;amp;") == "&lt; &amp;"
    # Anything else Slack may send stays as received (mentions, other entities).
    assert unescape_command_text("<@U123|bob> &quot; &#60; &") == "<@U123|bob> &quot; &#60; &"


def test_a_reason_with_ampersand_and_angle_brackets_is_recorded_and_shown_as_typed(
    bench: Bench,
) -> None:
    reason = "A&B <x> &lt;"
    answer = bench.command(f'ner-prod --reason "{reason}"')
    reason_text = next(
        b["text"]["text"] for b in answer["blocks"] if "Reason" in b.get("text", {}).get("text", "")
    )
    # Escaped once for mrkdwn: a reader sees exactly what was typed.
    assert "A&amp;B &lt;x&gt; &amp;lt;" in reason_text.replace("\u200b", "")
    result = bench.confirm()
    assert "A&amp;B &lt;x&gt; &amp;lt;" in str(result["blocks"]).replace("\u200b", "")
    reasons = [d["event"]["reason"] for d in bench.audit.docs if d["event"].get("reason")]
    assert reasons and set(reasons) == {reason}, reasons  # recorded as typed, never escaped
    commands = [d["ml_chatops"] for d in bench.audit.docs if d["event"]["action"] == "command"]
    assert any(reason in str(c) for c in commands), commands
