"""`--for` / `--until`: the parser's rules and the resolution against the bot's clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.commands import FreezeRequest, ScaleRequest, StopRequest, UsageError, parse
from bot.core.timing import Window, human, parse_for, resolve_at, slack_time, window_of

NOW = datetime(2026, 12, 7, 14, 2, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "seconds"), [("10s", 10), ("30m", 1800), ("2h", 7200), ("1d", 86_400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_for(text) == seconds


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("0m", "more than zero"),
        ("9s", "shortest window is 10 s"),
        ("30", "whole number and a unit"),
        ("-5m", "whole number and a unit"),
        ("1.5h", "whole number and a unit"),
        ("30 m", "whole number and a unit"),
        ("1" * 500 + "m", "whole number and a unit"),
    ],
)
def test_bad_durations_name_the_rule(text: str, rule: str) -> None:
    problem = parse_for(text)
    assert isinstance(problem, str) and rule in problem
    assert len(problem) < 300  # hostile input is not echoed whole


def test_both_flags_is_a_usage_error() -> None:
    result = parse("/ml-stop", "ner-prod --for 30m --until 06:00")
    assert isinstance(result, UsageError) and "give one of them" in result.message


def test_stop_scale_and_freeze_take_a_window() -> None:
    stop = parse("/ml-stop", "ner-prod --for 30m")
    assert isinstance(stop, StopRequest) and stop.window == Window(seconds=1800)
    assert parse("/ml-stop", stop.as_text()) == stop
    scale = parse("/ml-scale", "elser --allocations 8 --until 06:00")
    assert isinstance(scale, ScaleRequest) and scale.window == Window(until="06:00")
    freeze = parse("/ml-stop", "freeze --for 2h --reason window")
    assert isinstance(freeze, FreezeRequest) and freeze.window == Window(seconds=7200)
    unfreeze = parse("/ml-stop", "unfreeze --for 2h")
    assert isinstance(unfreeze, UsageError)


def test_until_clock_time_is_the_next_one_in_the_config_zone() -> None:
    assert resolve_at(Window(until="14:32"), NOW) == NOW + 30 * 60
    # 06:00 has passed today: tomorrow's.
    assert resolve_at(Window(until="06:00"), NOW) == NOW + (16 * 60 - 2) * 60
    # 14:32 in Berlin (UTC+1 in December) is 13:32 UTC: tomorrow's.
    berlin = resolve_at(Window(until="14:32"), NOW, tz="Europe/Berlin")
    assert berlin == NOW + (23 * 60 + 30) * 60


def test_until_iso_and_past_times() -> None:
    assert resolve_at(Window(until="2026-12-07T16:02:00Z"), NOW) == NOW + 7200
    assert resolve_at(Window(until="2026-12-07T17:02:00+01:00"), NOW) == NOW + 7200
    past = resolve_at(Window(until="2026-12-07T13:00:00Z"), NOW)
    assert isinstance(past, str) and "in the past" in past and "14:02 UTC" in past


def test_the_maximum_comes_from_the_config() -> None:
    assert resolve_at(Window(seconds=7 * 86_400), NOW) == NOW + 7 * 86_400
    too_far = resolve_at(Window(seconds=8 * 86_400), NOW)
    assert isinstance(too_far, str) and "longest window is 7 d" in too_far
    short = resolve_at(Window(seconds=3 * 3600), NOW, max_seconds=7200)
    assert isinstance(short, str) and "2 h" in short


def test_rendering() -> None:
    assert human(28 * 60) == "28 min"
    assert human(3 * 3600 + 60) == "3 h 1 min"
    assert slack_time(NOW + 1800).startswith(f"<!date^{int(NOW) + 1800}^")
    assert "14:32 UTC" in slack_time(NOW + 1800)


@given(st.text(max_size=80), st.text(max_size=80))
def test_window_of_never_raises(for_text: str, until_text: str) -> None:
    for value in (window_of(for_text, None), window_of(None, until_text)):
        assert isinstance(value, Window | str)
        if isinstance(value, Window):
            resolved = resolve_at(value, NOW)
            assert isinstance(resolved, float | str)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"])
def test_extreme_iso_times_are_usage_errors(text: str) -> None:
    assert isinstance(resolve_at(Window(until=text), NOW), str)


def test_the_config_names_an_unknown_time_zone() -> None:
    from pydantic import ValidationError

    from bot.core.config import AppConfig

    assert AppConfig(timezone="Europe/Berlin").timezone == "Europe/Berlin"
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Base'"):
        AppConfig(timezone="Mars/Base")


@pytest.mark.parametrize("text", ["\u0663\u0660m", "\uff13\uff10m", "30M", "30 min", "1h30m"])
def test_only_plain_durations(text: str) -> None:
    assert isinstance(parse_for(text), str)


def test_non_ascii_clock_times_are_refused() -> None:
    assert isinstance(window_of(None, "\u0660\u0666:\u0660\u0660"), str)
