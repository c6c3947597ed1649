"""Answers that lead somewhere (issue 20): typos, denials, locks and partly refused wildcards
say what to do next. Real Bolt over signed HTTP, the real client against the emulator."""

from __future__ import annotations

from typing import Any

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
