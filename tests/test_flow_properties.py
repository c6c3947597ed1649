"""Properties through the real HTTP path: valid input reaches a preview, invalid a usage error."""

from __future__ import annotations

import shlex
import string

from conftest import Bench, text_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.commands import UsageError, parse

ID_CHARS = string.ascii_lowercase + string.digits + "-_"
ALNUM = string.ascii_lowercase + string.digits

deployment_ids = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(ALNUM),
    st.text(ID_CHARS, max_size=40),
    st.sampled_from(ALNUM),
).filter(lambda d: d not in ("freeze", "unfreeze"))  # the kill switch's reserved words
reasons = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=120
).filter(lambda r: r.strip() != "")
names = st.text(string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=21)
flag_sets = st.fixed_dictionaries(
    {
        "force": st.booleans(),
        "finish": st.booleans(),
        "no_match": st.sampled_from(["", "--allow-no-match", "--no-allow-no-match"]),
    }
)

BENCH_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@BENCH_SETTINGS
@given(dep=deployment_ids, flags=flag_sets, reason=reasons, user_name=names, channel_name=names)
def test_any_valid_command_reaches_the_preview(
    bench: Bench,
    dep: str,
    flags: dict[str, object],
    reason: str,
    user_name: str,
    channel_name: str,
) -> None:
    state = bench.emulator.state
    if dep not in state.deployments:
        if "hyp-model" not in state.models:
            state.add_model("hyp-model")
        if dep not in state.models:
            state.start_deployment("hyp-model", dep)
        else:
            state.start_deployment(dep, dep)
    parts = [dep]
    if flags["force"]:
        parts.append("--force")
    if flags["finish"]:
        parts.append("--finish-pending-work")
    if flags["no_match"]:
        parts.append(str(flags["no_match"]))
    parts.append("--reason=" + shlex.quote(reason))  # the form for reasons that look like flags
    reply = bench.driver.command(
        "/ml-stop",
        " ".join(parts),
        user_id="U0ADMIN1",
        user_name=user_name,
        channel_id="C0INCIDENTS",
        channel_name=channel_name,
    )
    assert reply.status == 200
    url = bench.driver.last_response_url
    post = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)[0].body
    assert "ml_stop.confirm" in text_of(post), text_of(post)
    assert f"`{dep}`" in text_of(post)
    bench.clock.advance(3600)  # let this preview expire so its lock frees the id


@BENCH_SETTINGS
@given(text=st.text(max_size=80))
def test_any_invalid_text_gets_a_usage_error(bench: Bench, text: str) -> None:
    parsed = parse("/ml-stop", text)
    if not isinstance(parsed, UsageError):
        return
    reply = bench.driver.command("/ml-stop", text, user_id="U0ADMIN1")
    assert reply.status == 200
    url = bench.driver.last_response_url
    post = bench.slack.wait_for(lambda: bench.slack.response_posts(url) or None)[0].body
    assert "Usage" in text_of(post) or "/ml-stop <" in text_of(post), text_of(post)
    assert "ml_stop.confirm" not in text_of(post)
    assert not [r for r in bench.emulator.requests if r.path.endswith("_stop")]
