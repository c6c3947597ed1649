"""/ml-deployments: a read-only table for anyone the role map allows `status`."""

from __future__ import annotations

import re

from conftest import Bench, text_of


def test_lists_every_deployment_with_state(bench: Bench) -> None:
    reply = bench.command("", command="/ml-deployments")
    text = text_of(reply)
    for dep in ("elser-prod", "elser-search", "ner-prod", "search-e5", "sentiment-batch"):
        assert dep in text
    assert "elser-ingest" in text
    assert not [r for r in bench.emulator.requests if r.method != "GET"]


def test_pattern_filters(bench: Bench) -> None:
    text = text_of(bench.command("elser-*", command="/ml-deployments"))
    assert "elser-prod" in text and "ner-prod" not in text


def test_viewer_by_channel_may_list_but_not_stop(bench: Bench) -> None:
    listing = bench.command("", command="/ml-deployments", user="U0RANDOM")
    assert "ner-prod" in text_of(listing)
    denied = bench.command("ner-prod", user="U0RANDOM")
    assert "denied" in text_of(denied)


def test_no_role_outside_bound_channels_is_denied(bench: Bench) -> None:
    reply = bench.command("", command="/ml-deployments", user="U0RANDOM", channel="C0OTHER")
    assert "denied" in text_of(reply)


def test_empty_match_says_so(bench: Bench) -> None:
    text = text_of(bench.command("nothing-*", command="/ml-deployments"))
    assert "No deployments match" in text


def test_listing_usage_error(bench: Bench) -> None:
    text = text_of(bench.command("--force", command="/ml-deployments"))
    assert "--force" in text and "/ml-deployments" in text


def _pipelines_in(text: str) -> set[str]:
    return set(re.findall(r"ingest pipeline `([^`]+)`", text))


def test_the_listing_and_the_stop_preview_name_the_same_pipelines(bench: Bench) -> None:
    # Issue 20: one source for "what uses this deployment", whatever route reaches it.
    listing = bench.command("", command="/ml-deployments")
    rows = {
        line.split("`")[1]: line
        for block in listing["blocks"]
        if block["type"] == "section"
        for line in block["text"]["text"].split("\n")
        if line.startswith("`")
    }
    assert "ner-enrich" in rows["ner-prod"]  # reached through model alias `ner-current`
    for dep_id, row in rows.items():
        listed = set(re.findall(r"`([^`]+)`", row.partition("⚠ pipelines")[2].partition("·")[0]))
        preview = text_of(bench.command(f"{dep_id} --force"))
        assert "ml_stop.confirm" in preview, dep_id
        assert listed == _pipelines_in(preview), dep_id
