"""HTTP-mode set-up, in the README's order: the bot runs with its signing secret before the
HTTP manifest (with the event subscription URL) is saved, so it answers the signed
`url_verification` Slack sends on save; an unsigned one is refused."""

from __future__ import annotations

import json

from conftest import Bench


def test_the_running_bot_answers_slacks_url_verification(bench: Bench) -> None:
    reply = bench.driver.event(
        {
            "token": "legacy",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert reply.status == 200
    assert reply.json == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_an_unsigned_url_verification_is_refused(bench: Bench) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "x"}).encode()
    reply = bench.driver.post_raw(body, {"Content-Type": "application/json"})
    assert reply.status == 401 and "x" not in reply.body_text
