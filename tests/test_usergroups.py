"""User group membership over the real HTTP path: answers that cannot be read fail closed."""

from __future__ import annotations

import pytest
from conftest import Bench, text_of

from bot.adapters.usergroups import UnreadableAnswer, members_in

OPS = "U0OPS1"


def test_ok_without_users_fails_closed_and_is_not_cached(bench: Bench) -> None:
    bench.slack.usergroups["S0MLOPS"] = None  # `{"ok": true}` and no `users`
    text = text_of(bench.command("ner-prod", user=OPS))
    assert "denied" in text and "ml_stop.confirm" not in text
    assert "could not check membership of usergroup S0MLOPS" in text and "failing closed" in text
    bench.slack.usergroups["S0MLOPS"] = [OPS]
    # Asked again at once: the unreadable answer was not cached as an empty group.
    assert "ml_stop.confirm" in text_of(bench.command("ner-prod", user=OPS))
    asked = [
        c
        for c in bench.slack.calls("usergroups.users.list")
        if c.params == {"usergroup": "S0MLOPS"}
    ]
    assert len(asked) == 2


@pytest.mark.parametrize("answer", [{"ok": True}, {"ok": True, "users": None}, {"users": [1]}])
def test_an_answer_without_a_list_of_user_ids_is_unreadable(answer: dict[str, object]) -> None:
    with pytest.raises(UnreadableAnswer):
        members_in(answer)


def test_an_empty_list_is_an_empty_group() -> None:
    assert members_in({"ok": True, "users": []}) == frozenset()
