"""The Slack bench itself, exercised through a real bare Bolt AsyncApp served over HTTP."""

# The fixtures are imported so this module runs without a conftest; test arguments then
# "redefine" them, hence F401/F811. Safe to keep once conftest registers the same fixtures.
# ruff: noqa: F401, F811

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_bolt.context.complete.async_complete import AsyncComplete
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook import WebhookClient
from support.driver import Reply, SlackDriver
from support.fixtures import bg_loop, no_slack_oauth_env, signing_secret, slack
from support.loop import BackgroundLoop
from support.serving import serve_bolt, standin_client
from support.slack_standin import SlackStandIn

CHANNEL = "C0INCIDENTS"
ADMIN = "U0ADMIN1"

# The worked example of https://docs.slack.dev/authentication/verifying-requests-from-slack
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TS = "1531420618"
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    "%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)


@dataclass
class Bot:
    """A served bare Bolt app, what its listeners saw, and a driver pointed at it."""

    url: str
    driver: SlackDriver
    seen: list[dict[str, Any]] = field(default_factory=list)

    def seen_kind(self, kind: str) -> list[dict[str, Any]]:
        return [s for s in self.seen if s["kind"] == kind]


def confirm_blocks(target: str) -> list[dict[str, Any]]:
    button = {
        "type": "button",
        "action_id": "confirm_stop",
        "text": {"type": "plain_text", "text": "Stop"},
        "value": target,
        "style": "danger",
    }
    section = {"type": "section", "text": {"type": "mrkdwn", "text": f"Stop `{target}`?"}}
    return [section, {"type": "actions", "block_id": "confirm", "elements": [button]}]


def cancel_blocks(target: str) -> list[dict[str, Any]]:
    text = {"type": "plain_text", "text": "Cancel"}
    button = {"type": "button", "action_id": "cancel_stop", "text": text, "value": target}
    return [{"type": "section", "text": {"type": "mrkdwn", "text": "Preview"}, "accessory": button}]


def build_app(standin: SlackStandIn, secret: str, seen: list[dict[str, Any]]) -> AsyncApp:
    """A bare Bolt app: a command posting a confirm button, two button handlers, one step."""
    app = AsyncApp(client=standin_client(standin), signing_secret=secret)

    @app.command("/ml-stop")
    async def on_stop(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        seen.append({"kind": "command", "command": command})
        target = command["text"]
        blocks = confirm_blocks(target)
        await client.chat_postMessage(channel=command["channel_id"], text="Stop?", blocks=blocks)
        await respond(text="Preview posted", blocks=cancel_blocks(target))

    @app.action("confirm_stop")
    async def on_confirm(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        await ack()
        seen.append({"kind": "confirm", "body": body, "action": action})
        await respond(replace_original=True, text=f"Stopped {action['value']}")

    @app.action("cancel_stop")
    async def on_cancel(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        seen.append({"kind": "cancel", "body": body})
        await respond(replace_original=True, text="Cancelled")

    @app.function("stop_ml_deployment")
    async def on_step(inputs: dict[str, Any], complete: AsyncComplete) -> None:
        await complete(outputs={"stopped": True, "deployment": inputs["deployment_id"]})

    return app


@pytest.fixture
def bot(
    bg_loop: BackgroundLoop,
    slack: SlackStandIn,
    signing_secret: str,
    no_slack_oauth_env: None,
) -> Iterator[Bot]:
    seen: list[dict[str, Any]] = []
    url = serve_bolt(bg_loop, lambda: build_app(slack, signing_secret, seen))
    yield Bot(url, SlackDriver(url, signing_secret, slack), seen)
    bg_loop.stop(url)


def run_command(bot: Bot, slack: SlackStandIn, text: str) -> Reply:
    """Send /ml-stop and wait until its listener has finished (its respond() landed)."""
    before = len(slack.response_posts())
    reply = bot.driver.command("/ml-stop", text)
    assert reply.status == 200
    slack.wait_for(lambda: len(slack.response_posts()) > before)
    return reply


# ---- signing -------------------------------------------------------------------------------


def test_signer_matches_slack_worked_example() -> None:
    driver = SlackDriver("http://127.0.0.1:9", VECTOR_SECRET)
    headers = driver.signed_headers(VECTOR_BODY, ts=VECTOR_TS)
    assert headers["X-Slack-Signature"] == VECTOR_SIGNATURE
    basestring = f"v0:{VECTOR_TS}:{VECTOR_BODY}".encode()
    digest = hmac.new(VECTOR_SECRET.encode(), basestring, hashlib.sha256).hexdigest()
    assert f"v0={digest}" == VECTOR_SIGNATURE


def test_forged_signature_is_rejected_before_anything_runs(bot: Bot, slack: SlackStandIn) -> None:
    reply = bot.driver.forged_command("/ml-stop", "elser-1")
    assert reply.status == 401
    assert reply.json == {"error": "invalid request"}
    time.sleep(0.2)  # give a wrongly started listener time to show up
    assert bot.seen == []
    assert slack.calls() == [] and slack.response_posts() == []


def test_replayed_old_timestamp_is_rejected(bot: Bot, slack: SlackStandIn) -> None:
    original = run_command(bot, slack, "elser-1")
    replay = bot.driver.replay(original, age_seconds=600)
    assert replay.status == 401
    assert replay.request.body == original.request.body
    # The replay is validly signed, only old: valid for a clock set back to its timestamp.
    clock = _FixedClock(float(replay.request.headers["X-Slack-Request-Timestamp"]))
    verifier = SignatureVerifier(bot.driver.signing_secret, clock=clock)
    assert verifier.is_valid_request(replay.request.body, replay.request.headers)
    time.sleep(0.2)
    assert len(bot.seen_kind("command")) == 1


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


# ---- commands and clicks through Bolt --------------------------------------------------------


def test_signed_command_reaches_listener_and_its_replies_land(
    bot: Bot,
    slack: SlackStandIn,
) -> None:
    reply = bot.driver.command("/ml-stop", "elser-1 --force")
    assert reply.status == 200 and reply.body_text == ""
    post = slack.wait_for_calls("chat.postMessage")[0]
    assert post.token == slack.bot_token and post.params["channel"] == CHANNEL
    command = bot.seen_kind("command")[0]["command"]
    assert command["text"] == "elser-1 --force" and command["user_id"] == ADMIN
    assert command["response_url"] == bot.driver.last_response_url
    assert command["is_enterprise_install"] == "false" and command["trigger_id"]
    [message] = slack.messages(CHANNEL)
    assert message["blocks"] == confirm_blocks("elser-1 --force")
    [posted] = slack.wait_for(lambda: slack.response_posts())
    assert posted.status == 200 and posted.effects == ("ephemeral",)
    assert slack.ephemerals(CHANNEL, ADMIN)[0]["text"] == "Preview posted"
    assert len(slack.calls("auth.test")) == 1


def test_click_reaches_action_listener_and_replaces_the_message(
    bot: Bot,
    slack: SlackStandIn,
) -> None:
    run_command(bot, slack, "elser-1")
    run_command(bot, slack, "elser-2")
    newest = slack.messages(CHANNEL)[-1]
    reply = bot.driver.click_button("confirm_stop", user_id=ADMIN, channel_id=CHANNEL)
    assert reply.status == 200
    seen = slack.wait_for(lambda: bot.seen_kind("confirm"))[0]
    body, action = seen["body"], seen["action"]
    assert body["type"] == "block_actions" and body["user"]["id"] == ADMIN
    assert body["container"] == {
        "type": "message",
        "message_ts": newest["ts"],
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    assert body["message"]["ts"] == newest["ts"] and body["channel"]["id"] == CHANNEL
    assert action["value"] == "elser-2" and action["block_id"] == "confirm"
    replaced = slack.wait_for(lambda: slack.messages(CHANNEL)[-1]["text"] == "Stopped elser-2")
    assert replaced and slack.messages(CHANNEL)[-1]["blocks"] == []
    assert slack.messages(CHANNEL)[0]["text"] == "Stop?"


def test_click_on_an_ephemeral_button_replaces_the_ephemeral(
    bot: Bot,
    slack: SlackStandIn,
) -> None:
    run_command(bot, slack, "elser-1")
    assert bot.driver.latest_click_target("cancel_stop", user_id="U0OTHER") is None
    assert bot.driver.click_button("cancel_stop", user_id=ADMIN).status == 200
    body = slack.wait_for(lambda: bot.seen_kind("cancel"))[0]["body"]
    assert body["container"]["is_ephemeral"] is True and "message" not in body
    slack.wait_for(lambda: slack.ephemerals(CHANNEL, ADMIN)[0]["text"] == "Cancelled")
    assert len(slack.ephemerals(CHANNEL, ADMIN)) == 1
    assert bot.driver.latest_click_target("cancel_stop", user_id=ADMIN) is None


async def test_async_commands_run_concurrently(bot: Bot, slack: SlackStandIn) -> None:
    replies = await asyncio.gather(*(bot.driver.acommand(text=f"m{i}") for i in range(5)))
    assert [r.status for r in replies] == [200] * 5
    await asyncio.to_thread(slack.wait_for_calls, "chat.postMessage", 5)
    stamps = [m["ts"] for m in slack.messages(CHANNEL)]
    assert len(set(stamps)) == 5 and stamps == sorted(stamps)


def test_function_executed_event_completes_the_step(bot: Bot, slack: SlackStandIn) -> None:
    run = slack.new_function_execution(inputs={"deployment_id": "elser-1"})
    event = {
        "type": "function_executed",
        "function": {"id": "Fn0STOP", "callback_id": run.callback_id, "type": "app"},
        "inputs": run.inputs,
        "function_execution_id": run.id,
        "workflow_execution_id": "Wx0RUN",
        "event_ts": f"{time.time():.6f}",
        "bot_access_token": run.token,
    }
    assert bot.driver.event(event).status == 200
    slack.wait_for(lambda: slack.function_execution(run.id)["state"] == "completed")
    assert slack.function_execution(run.id)["outputs"] == {"stopped": True, "deployment": "elser-1"}
    assert slack.calls("functions.completeSuccess")[0].token == run.token


# ---- the stand-in's answers, through slack_sdk -----------------------------------------------


@dataclass
class Api:
    """Calls Web API methods through slack_sdk's named methods, on the background loop."""

    loop: BackgroundLoop
    client: AsyncWebClient

    def __call__(self, method: str, **params: Any) -> Any:
        return self.loop.run(getattr(self.client, method.replace(".", "_"))(**params))

    def failure(self, method: str, **params: Any) -> Any:
        """Call a method that must raise SlackApiError; return the error's response."""
        with pytest.raises(SlackApiError) as caught:
            self(method, **params)
        return caught.value.response

    def error(self, method: str, **params: Any) -> str:
        """The `error` string of a call that must fail."""
        return str(self.failure(method, **params)["error"])


@pytest.fixture
def api(bg_loop: BackgroundLoop, slack: SlackStandIn) -> Api:
    return Api(bg_loop, standin_client(slack))


def test_wait_for_fails_the_test_on_timeout(slack: SlackStandIn) -> None:
    with pytest.raises(AssertionError, match=r"expected 1 chat\.postMessage"):
        slack.wait_for_calls("chat.postMessage", 1, timeout=0.05)


def test_response_url_allows_five_uses_then_answers_used_url(slack: SlackStandIn) -> None:
    hook = WebhookClient(slack.new_response_url(channel=CHANNEL, user=ADMIN))
    answers = [hook.send(text=f"update {i}") for i in range(6)]
    assert [(a.status_code, a.body) for a in answers] == [(200, "ok")] * 5 + [(404, "used_url")]
    assert len(slack.ephemerals(CHANNEL, ADMIN)) == 5
    late = WebhookClient(slack.new_response_url(channel=CHANNEL, user=ADMIN))
    slack.advance(30 * 60 + 1)
    answer = late.send(text="too late")
    assert (answer.status_code, answer.body) == (404, "expired_url")


def test_response_url_in_channel_and_delete_original(api: Api, slack: SlackStandIn) -> None:
    ts = api("chat.postMessage", channel=CHANNEL, text="Stop?")["ts"]
    url = slack.new_response_url(channel=CHANNEL, user=ADMIN, ts=ts)
    WebhookClient(url).send(text="Stopping", response_type="in_channel")
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["Stop?", "Stopping"]
    WebhookClient(url).send_dict({"delete_original": True})
    assert [m["text"] for m in slack.messages(CHANNEL)] == ["Stopping"]
    assert [p.effects for p in slack.response_posts(url)] == [("in_channel",), ("deleted",)]


def test_rate_limit_is_retried_by_the_retry_handler(
    bg_loop: BackgroundLoop, slack: SlackStandIn
) -> None:
    slack.rate_limit_next("chat.postMessage", retry_after=1)
    client = standin_client(slack, [AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    assert Api(bg_loop, client)("chat.postMessage", channel=CHANNEL, text="hi")["ok"] is True
    first, second = slack.calls("chat.postMessage")
    assert second.at - first.at >= 1.0  # the handler honoured Retry-After
    assert len(slack.messages(CHANNEL)) == 1


def test_rate_limit_without_handler_raises_429(api: Api, slack: SlackStandIn) -> None:
    slack.rate_limit_next("chat.postMessage", retry_after=7)
    response = api.failure("chat.postMessage", channel=CHANNEL, text="hi")
    assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    assert response["error"] == "ratelimited"


def test_ok_false_errors_raise_slack_api_error(api: Api, slack: SlackStandIn) -> None:
    slack.fail_next("chat.postMessage", error="msg_too_long")
    assert api.error("chat.postMessage", channel=CHANNEL, text="x") == "msg_too_long"
    slack.bot_not_in("C0QUIET")
    assert api.error("chat.postMessage", channel="C0QUIET", text="x") == "not_in_channel"
    slack.add_channel("G0SECRET", "secret", private=True, member=False)
    assert api.error("chat.postMessage", channel="G0SECRET", text="x") == "channel_not_found"
    slack.http_error_next("chat.postMessage", status=503)
    assert api.failure("chat.postMessage", channel=CHANNEL, text="x").status_code == 503
    assert api("chat.postMessage", channel=CHANNEL, text="x")["ok"] is True


def test_tokens_and_scopes_are_checked(
    bg_loop: BackgroundLoop, api: Api, slack: SlackStandIn
) -> None:
    wrong = Api(bg_loop, AsyncWebClient(token="xoxb-wrong", base_url=slack.api_url))
    assert wrong.error("auth.test") == "invalid_auth"
    assert Api(bg_loop, AsyncWebClient(base_url=slack.api_url)).error("auth.test") == "not_authed"
    slack.scopes.remove("usergroups:read")
    denied = api.failure("usergroups.users.list", usergroup="S0SRE")
    assert (denied["error"], denied["needed"]) == ("missing_scope", "usergroups:read")
    auth = api("auth.test")
    assert auth["user_id"] == slack.bot_user_id and "chat:write" in auth.headers["x-oauth-scopes"]


def test_chat_update_changes_the_stored_message(api: Api, slack: SlackStandIn) -> None:
    blocks = confirm_blocks("elser-1")
    ts = api("chat.postMessage", channel=CHANNEL, text="Stop?", blocks=blocks)["ts"]
    api("chat.update", channel=CHANNEL, ts=ts, text="Stopping...")
    message = slack.message(CHANNEL, ts)
    assert message is not None and message["text"] == "Stopping..."
    assert message["blocks"] == blocks and "edited" in message
    assert api.error("chat.update", channel=CHANNEL, ts="1.000001", text="x") == "message_not_found"
    eph_ts = api("chat.postEphemeral", channel=CHANNEL, user=ADMIN, text="you")["message_ts"]
    assert api.error("chat.update", channel=CHANNEL, ts=eph_ts, text="x") == "cant_update_message"
    api("chat.delete", channel=CHANNEL, ts=ts)
    assert slack.messages(CHANNEL) == []


def test_usergroups_users_and_channels(api: Api, slack: SlackStandIn) -> None:
    slack.usergroups["S0SRE"] = [ADMIN, "U0SRE2"]
    assert api("usergroups.users.list", usergroup="S0SRE")["users"] == [ADMIN, "U0SRE2"]
    # AsyncWebClient sends this method as GET with a query string.
    assert slack.calls("usergroups.users.list")[0].http_method == "GET"
    assert api.error("usergroups.users.list", usergroup="S0NOPE") == "no_such_subteam"
    assert api("users.info", user=ADMIN)["user"]["name"] == "admin"
    assert api.error("users.info", user="U0NOBODY") == "user_not_found"
    info = api("conversations.info", channel=CHANNEL)["channel"]
    assert info["name"] == "incidents" and info["is_member"] is True
    slack.remove_channel("C0GONE")
    assert api.error("conversations.info", channel="C0GONE") == "channel_not_found"


def test_workflow_step_completes_once(bg_loop: BackgroundLoop, slack: SlackStandIn) -> None:
    run = slack.new_function_execution()
    step = Api(bg_loop, AsyncWebClient(token=run.token, base_url=slack.api_url))
    step("functions.completeError", function_execution_id=run.id, error="boom")
    assert slack.function_execution(run.id)["error"] == "boom"
    again = step.error("functions.completeSuccess", function_execution_id=run.id, outputs={})
    assert again == "function_execution_not_found"


# ---- the loop ------------------------------------------------------------------------------


def test_background_loop_serves_and_tears_down() -> None:
    with BackgroundLoop() as loop:
        url = loop.serve(SlackStandIn().web_app())
        with urllib.request.urlopen(f"{url}/api/auth.test", timeout=5) as answer:
            assert b"not_authed" in answer.read()
        loop.stop(url)
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{url}/api/auth.test", timeout=5)
