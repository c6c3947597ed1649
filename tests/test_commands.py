"""bot.core.commands: slash-command text → typed request."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.core import commands
from bot.core.commands import (
    COMMANDS,
    MAX_ID_LENGTH,
    MAX_IDS,
    MAX_REASON_LENGTH,
    MAX_TEXT_LENGTH,
    USAGE_LINES,
    AuditRequest,
    FreezeRequest,
    HelpRequest,
    ListRequest,
    ScaleRequest,
    StartRequest,
    StatusRequest,
    StopRequest,
    UsageError,
    parse,
    parse_deployments,
    parse_stop,
    usage,
    validate_cluster,
    validate_id,
)

STOP = "/ml-stop"
DEPS = "/ml-deployments"


def stop(text: str) -> StopRequest:
    result = parse_stop(text)
    assert isinstance(result, StopRequest), result
    return result


def error(text: str, command: str = STOP) -> str:
    result = parse(command, text)
    assert isinstance(result, UsageError), result
    assert result.command == command
    assert result.usage == USAGE_LINES[command]
    return result.message


# --------------------------------------------------------------------------- happy paths


def test_single_id() -> None:
    assert stop("elser-prod") == StopRequest(ids=("elser-prod",))


def test_all_flags() -> None:
    req = stop(
        "elser-prod --force --finish-pending-work --no-allow-no-match --cluster prod "
        '--reason "runaway memory"'
    )
    assert req == StopRequest(
        ids=("elser-prod",),
        force=True,
        finish_pending_work=True,
        allow_no_match=False,
        cluster="prod",
        reason="runaway memory",
    )
    assert req.flags_text() == "--force --finish-pending-work --no-allow-no-match"
    assert req.options() == frozenset({"force", "finish_pending_work"})


def test_flags_before_the_id_and_equals_forms() -> None:
    req = stop("--cluster=staging --reason=oom ner-1")
    assert req == StopRequest(ids=("ner-1",), cluster="staging", reason="oom")


def test_explicit_allow_no_match_is_the_default() -> None:
    assert stop("x --allow-no-match") == StopRequest(ids=("x",), allow_no_match=True)
    assert stop("x").flags_text() == ""


def test_builtin_dot_id() -> None:
    req = stop(".elser_model_2")
    assert req.ids == (".elser_model_2",)
    assert not req.is_wildcard and not req.is_list and not req.is_all
    assert req.options() == frozenset()


@pytest.mark.parametrize("pattern", ["elser-*", "*-prod", "ner*", "a*b", ".elser*"])
def test_wildcards(pattern: str) -> None:
    req = stop(pattern)
    assert req.ids == (pattern,)
    assert req.is_wildcard and not req.is_all and not req.is_list
    assert req.options() == frozenset({"wildcard"})


def test_comma_list_keeps_order_and_drops_duplicates() -> None:
    req = stop("b,a,b,c")
    assert req.ids == ("b", "a", "c")
    assert req.expression == "b,a,c"
    assert req.is_list and not req.is_wildcard
    assert req.options() == frozenset({"list"})


def test_list_with_wildcard_needs_both() -> None:
    assert stop("a,b-* --force").options() == frozenset({"list", "wildcard", "force"})


def test_duplicates_collapsing_to_one_is_not_a_list() -> None:
    req = stop("a,a")
    assert req.ids == ("a",) and not req.is_list


@pytest.mark.parametrize("text", ["_all", "*"])
def test_all(text: str) -> None:
    req = stop(text)
    assert req.ids == (text,)
    assert req.is_all
    assert req.options() == frozenset({"all"})


def test_quoted_list_may_have_spaces() -> None:
    assert stop('"a, b"').ids == ("a", "b")


def test_ids_at_the_64_limit() -> None:
    assert stop("a" * 64).ids == ("a" * 64,)
    assert stop("." + "b" * 63).ids == ("." + "b" * 63,)
    message = error("a" * 65)
    assert "65 characters" in message and "at most 64" in message
    assert "`" + "a" * 60 in message


# --------------------------------------------------------------------------- help


@pytest.mark.parametrize("text", ["", "   ", "help", "-h", "--help", "x --help", "--froce -h"])
def test_help(text: str) -> None:
    assert parse(STOP, text) == HelpRequest(STOP)


@pytest.mark.parametrize("text", ["help", "-h", "--help", "elser-* --help"])
def test_deployments_help(text: str) -> None:
    assert parse(DEPS, text) == HelpRequest(DEPS)


def test_help_as_a_deployment_name_with_flags() -> None:
    assert stop("help --cluster prod").ids == ("help",)


def test_usage_text() -> None:
    text = usage(STOP)
    for flag in (
        "--force",
        "--finish-pending-work",
        "--no-allow-no-match",
        "--cluster",
        "--reason",
    ):
        assert flag in text
    assert "Examples" in text and "_all" in text
    assert USAGE_LINES[STOP] in text
    assert USAGE_LINES[DEPS] in usage(DEPS)
    assert "--cluster" in usage(DEPS)
    assert usage("/nope").count("Usage:") == len(USAGE_LINES)


# --------------------------------------------------------------------------- quoting


def test_typographic_double_quotes() -> None:
    assert stop("x --reason \u201cmodel is stuck\u201d").reason == "model is stuck"


def test_typographic_single_quotes() -> None:
    assert stop("x --reason \u2018model is stuck\u2019").reason == "model is stuck"


def test_typographic_apostrophe_inside_words_is_kept() -> None:
    assert stop("x --reason don\u2019t").reason == "don\u2019t"
    assert stop("x --reason \u201cit\u2019s broken\u201d").reason == "it\u2019s broken"
    assert stop("x --reason \u2018it\u2019s broken\u2019").reason == "it\u2019s broken"


def test_typographic_quotes_inside_plain_quotes_are_literal() -> None:
    assert stop("x --reason '\u201cquoted\u201d'").reason == "\u201cquoted\u201d"


def test_plain_apostrophe_inside_double_quotes() -> None:
    assert stop('x --reason "it\'s broken"').reason == "it's broken"


def test_autocorrected_dash_and_unicode_spaces() -> None:
    assert stop("x \u2014force").force
    assert stop("x\u00a0\u2013finish-pending-work").finish_pending_work


def test_unicode_reason() -> None:
    assert stop("x --reason 'GPU 🔥 überhitzt — 数据'").reason == "GPU 🔥 überhitzt — 数据"


def test_unbalanced_quote() -> None:
    message = error('x --reason "oops')
    assert "unbalanced quote" in message
    assert "unbalanced quote" in error("x --reason it's")
    assert "unbalanced quote" in error("x --reason \u201coops")


def test_trailing_backslash() -> None:
    assert "`\\`" in error("x\\")


# --------------------------------------------------------------------------- reason


def test_unquoted_multiword_reason_suggests_quotes() -> None:
    message = error("elser --reason model is stuck")
    assert "--reason` takes one word" in message
    assert '`--reason "model is stuck"`' in message


def test_unquoted_multiword_reason_before_other_flags() -> None:
    message = error("elser --reason model is stuck --force")
    assert '`--reason "model is stuck"`' in message


def test_reason_length() -> None:
    assert stop("x --reason " + "r" * 500).reason == "r" * 500
    message = error("x --reason " + "r" * 501)
    assert "501 characters" in message and "500" in message


def test_blank_reason() -> None:
    assert "--reason` needs some text" in error("x --reason '   '")
    assert "`--reason` needs a value" in error("x --reason ''")


def test_reason_that_looks_like_a_flag() -> None:
    assert stop("x --reason=--force").reason == "--force"
    assert stop("x --reason -5").reason == "-5"
    assert "`--reason` needs a value but got the flag `--force`" in error("x --reason --force")


def test_reason_may_contain_a_mention() -> None:
    assert stop("x --reason 'asked by <@U123>'").reason == "asked by <@U123>"


# --------------------------------------------------------------------------- id errors


def test_uppercase_suggests_lowercase() -> None:
    message = error("Elser-Prod")
    assert "`Elser-Prod`" in message and "lowercase" in message
    assert "did you mean `elser-prod`?" in message


@pytest.mark.parametrize("token", ["a/b", "..\\x", "a\\b", "../etc", "a..b"])
def test_path_characters(token: str) -> None:
    message = error(shlex.quote(token))
    assert "path characters" in message
    assert f"`{token}`" in message


@pytest.mark.parametrize(
    ("token", "char"), [("x?y", "?"), ("a&b", "&"), ("a=b", "="), ("a#b", "#")]
)
def test_query_string_characters(token: str, char: str) -> None:
    message = error(token)
    assert "query-string" in message and f"`{char}`" in message and f"`{token}`" in message


def test_percent_encoding() -> None:
    message = error("elser%2dprod")
    assert "`%`" in message and "`elser%2dprod`" in message


def test_whitespace_inside_quoted_id() -> None:
    assert "contains whitespace" in error('"a b"')


@pytest.mark.parametrize(
    "token", ["<@U123>", "<#C123|incidents>", "<!here>", "<https://example.com|link>"]
)
def test_slack_mentions_and_links(token: str) -> None:
    message = error(token)
    assert "looks like a Slack mention/link; type the deployment id as plain text" in message
    assert message.startswith("`<")


def test_mention_among_other_words() -> None:
    assert "Slack mention/link" in error("elser <@U123>")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("-abc", "unknown flag"),  # a leading dash reads as a flag
        ("abc-", "must end with a lowercase letter or digit"),
        ("_abc", "must start with a lowercase letter or digit"),
        ("._abc", "after the leading `.`"),
        ("a.", "must end"),
        ("é", "deployment ids use only"),
        ("a:b", "`:`"),
        ("**", "only wildcards"),
    ],
)
def test_bad_shapes(token: str, fragment: str) -> None:
    assert fragment in error(token)


def test_space_separated_list_suggests_commas() -> None:
    for text in ("a, b", "a ,b", "a , b"):
        message = error(text)
        assert "no spaces in a comma list" in message
        assert "`a,b`" in message


def test_more_than_one_id() -> None:
    message = error("a b")
    assert "more than one deployment id" in message
    assert "`a`, `b`" in message and "`a,b`" in message


def test_empty_list_element() -> None:
    message = error("a,,b")
    assert "empty element" in message and "`a,,b`" in message
    assert "empty element" in error("a,")


@pytest.mark.parametrize("text", ["a,_all", "_all,a", "*,a"])
def test_all_only_alone(text: str) -> None:
    assert "only be used alone" in error(text)


def test_bad_element_in_list_is_named() -> None:
    assert "`B`" in error("a,B,c")


def test_empty_quoted_id() -> None:
    assert "empty deployment id" in error('""')


# --------------------------------------------------------------------------- flag errors


@pytest.mark.parametrize(
    ("flag", "suggestion"),
    [
        ("--froce", "--force"),
        ("--forse", "--force"),
        ("--Force", "--force"),
        ("--finish-pending", "--finish-pending-work"),
        ("--finish_pending_work", "--finish-pending-work"),
        ("-f", "--force"),
        ("-force", "--force"),
        ("--clster", "--cluster"),
        ("-c", "--cluster"),
        ("--resaon", "--reason"),
        ("--no-allow-match", "--no-allow-no-match"),
    ],
)
def test_unknown_flag_suggests(flag: str, suggestion: str) -> None:
    message = error(f"x {flag}")
    assert message == f"unknown flag `{flag}`; did you mean `{suggestion}`?"


def test_unknown_flag_without_suggestion_lists_flags() -> None:
    message = error("x --zzzzzz")
    assert "unknown flag `--zzzzzz`" in message and "`--force`" in message


def test_repeated_flag() -> None:
    assert error("x --force --force") == "`--force` is given more than once"
    assert error("x --cluster a --cluster b") == "`--cluster` is given more than once"
    assert "more than once" in error("x --reason a --reason=b")


def test_conflicting_allow_no_match() -> None:
    message = error("x --allow-no-match --no-allow-no-match")
    assert "`--allow-no-match`" in message and "`--no-allow-no-match`" in message
    assert "contradict" in message


def test_boolean_flag_with_value() -> None:
    assert "takes no value" in error("x --force=yes")
    assert "`--no-allow-no-match`" in error("x --allow-no-match=false")


def test_missing_id() -> None:
    assert "missing the deployment id" in error("--force --cluster prod")


@pytest.mark.parametrize(
    "text", ["x --cluster", "x --cluster --force", "x --cluster=", "x --reason", "x --reason -f"]
)
def test_flag_missing_its_value(text: str) -> None:
    assert "needs a value" in error(text)


@pytest.mark.parametrize("name", ["Prod", "-prod", "prod/eu", "a" * 65, "pr od", "_x"])
def test_bad_cluster(name: str) -> None:
    message = error(f"x --cluster={shlex.quote(name)}")
    assert "cluster name" in message and "is not valid" in message
    assert validate_cluster(name) is not None


def test_bad_cluster_suggests_lowercase() -> None:
    assert "did you mean `prod`?" in error("x --cluster Prod")


def test_cluster_mention() -> None:
    assert "Slack mention/link" in error("x --cluster <#C1|prod>")


def test_good_clusters() -> None:
    for name in ("prod", "eu-west_1", "0", "a" * 64):
        assert validate_cluster(name) is None
        assert stop(f"x --cluster {name}").cluster == name


# --------------------------------------------------------------------------- /ml-deployments


def test_deployments_plain() -> None:
    assert parse(DEPS, "") == ListRequest()
    assert parse(DEPS, "elser-*") == ListRequest(pattern="elser-*")
    assert parse(DEPS, "--cluster staging") == ListRequest(cluster="staging")
    assert parse(DEPS, "b,a,b --cluster=prod") == ListRequest(pattern="b,a", cluster="prod")
    assert parse_deployments("_all") == ListRequest(pattern="_all")


def test_deployments_errors() -> None:
    assert "uppercase" in error("Elser", DEPS)
    assert "/ml-stop flag" in error("x --force", DEPS)
    assert "did you mean `--cluster`?" in error("--clustr prod", DEPS)
    assert "more than one" in error("a b", DEPS)
    assert "`a,b`" in error("a, b", DEPS)
    assert "Slack mention/link" in error("<@U1>", DEPS)


# --------------------------------------------------------------------------- dispatch


def test_unknown_command() -> None:
    result = parse("/ml-restart", "x")
    assert isinstance(result, UsageError)
    assert "unknown command `/ml-restart`" in result.message
    assert USAGE_LINES[STOP] in result.usage


def test_dispatch_tolerates_case_and_missing_slash() -> None:
    assert isinstance(parse("ML-STOP", "x"), StopRequest)
    assert isinstance(parse(" /ml-deployments ", ""), ListRequest)


# --------------------------------------------------------------------------- validate_id


def test_validate_id() -> None:
    for ok in ("a", "elser-prod", ".elser_model_2", "a*", "a,b", "_all", "*", "0"):
        assert validate_id(ok) is None, ok
    for bad in ("", "A", "a b", "a/b", "-a", "a-", "a,", "<@U1>", "a" * 65):
        assert validate_id(bad) is not None, bad


# --------------------------------------------------------------------------- properties

_ID = st.from_regex(r"[a-z0-9]([a-z0-9_.-]{0,30}[a-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s
)


@st.composite
def _element(draw: st.DrawFn) -> str:
    base = draw(_ID)
    kind = draw(st.sampled_from(["plain", "dot", "prefix", "suffix", "middle"]))
    if kind == "dot":
        return "." + base
    if kind == "prefix":
        return base + "*"
    if kind == "suffix":
        return "*" + base
    if kind == "middle" and len(base) > 1:
        return base[0] + "*" + base[1:]
    return base


_EXPRESSIONS = st.one_of(
    st.just(("_all",)),
    st.just(("*",)),
    st.lists(_element(), min_size=1, max_size=4, unique=True).map(tuple),
)
_CLUSTERS = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
_REASONS = st.text(min_size=1, max_size=500).filter(lambda s: bool(s.strip()))


@st.composite
def _stop_and_text(draw: st.DrawFn) -> tuple[StopRequest, str]:
    ids = draw(_EXPRESSIONS)
    req = StopRequest(
        ids=ids,
        force=draw(st.booleans()),
        finish_pending_work=draw(st.booleans()),
        allow_no_match=draw(st.booleans()),
        cluster=draw(st.none() | _CLUSTERS),
        reason=draw(st.none() | _REASONS),
    )
    words = [",".join(ids)]
    if req.force:
        words.append("--force")
    if req.finish_pending_work:
        words.append("--finish-pending-work")
    if not req.allow_no_match:
        words.append("--no-allow-no-match")
    elif draw(st.booleans()):
        words.append("--allow-no-match")
    if req.cluster is not None:
        eq = draw(st.booleans())
        words.append(f"--cluster={req.cluster}" if eq else f"--cluster {req.cluster}")
    if req.reason is not None:
        words.append(f"--reason={shlex.quote(req.reason)}")
    order = draw(st.permutations(words))
    if order == ["help"]:
        order = [*order, "--allow-no-match"]
    return req, " ".join(order)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stop_and_text())
def test_valid_requests_round_trip(case: tuple[StopRequest, str]) -> None:
    req, text = case
    assert parse(STOP, text) == req
    assert parse_stop(req.as_text()) == req


@pytest.mark.parametrize("flag", ["--reason", "--cluster"])
@pytest.mark.parametrize("help_flag", ["--help", "-h"])
def test_a_help_flag_in_a_value_slot_is_a_missing_value_not_help(flag: str, help_flag: str) -> None:
    # Found by hypothesis: `--reason --help` showed help, silently dropping the command.
    got = parse(STOP, f"x {flag} {help_flag}")
    assert isinstance(got, UsageError)
    assert f"needs a value but got the flag `{help_flag}`" in got.message
    assert isinstance(parse(STOP, f"x {flag} v {help_flag}"), HelpRequest)


@settings(max_examples=200, deadline=None)
@given(_REASONS)
@example("--help")
@example("-h")
def test_any_reason_survives_shell_quoting(reason: str) -> None:
    req = StopRequest(ids=("x",), reason=reason)
    assert parse_stop(req.as_text()) == req
    spaced = parse_stop(f"x --reason {shlex.quote(reason)}")
    if isinstance(spaced, StopRequest):
        assert spaced.reason == reason
    else:  # only a reason that looks like a flag needs the --reason= form
        assert isinstance(spaced, UsageError) and reason.startswith("-")


_NASTY = st.lists(
    st.sampled_from(
        [
            *"ab-_.*,=?&#%/\\ \t\n'\"<>@!|:",
            *["--force", "--cluster", "--reason", "-h", "help", "_all", "<@U1>", "A"],
            *["\u201c", "\u201d", "\u2018", "\u2019", "\u2014", "\u00a0", "\x00", "é", "\u03d2"],
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([STOP, DEPS, "/other", ""]), st.one_of(st.text(), _NASTY))
def test_any_text_returns_a_result(command: str, text: str) -> None:
    result = parse(command, text)
    assert isinstance(result, StopRequest | ListRequest | HelpRequest | UsageError)
    if isinstance(result, UsageError):
        assert result.message
        assert not result.message.startswith("could not read")  # the safety net stayed unused
    if isinstance(result, StopRequest):
        assert parse_stop(result.as_text()) == result
        assert all(validate_id(i) is None for i in result.ids)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_validate_id_never_raises(token: str) -> None:
    problem = validate_id(token)
    assert problem is None or isinstance(problem, str)


# --------------------------------------------------------------------------- /ml-start, freeze


def test_start_with_every_flag() -> None:
    result = parse(
        "/ml-start",
        ".elser_model_2 --deployment-id elser-prod --allocations 2 --threads 4 "
        '--priority normal --cluster prod --reason "back after INC-1"',
    )
    assert result == StartRequest(
        model_id=".elser_model_2",
        deployment_id="elser-prod",
        allocations=2,
        threads=4,
        priority="normal",
        cluster="prod",
        reason="back after INC-1",
    )
    assert isinstance(result, StartRequest) and result.target_id == "elser-prod"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Usage"),
        ("elser-*", "one exact model id"),
        ("a,b", "one exact model id"),
        ("m --threads 3", "power of 2"),
        ("m --allocations 0", "whole number from 1"),
        ("m --allocations two", "whole number from 1"),
        ("m --priority high", "`normal` or `low`"),
        (
            "m --priority low --allocations 2",
            "[number_of_allocations] must be 1 when [priority] is low",
        ),
        (
            "m --priority low --threads 2",
            "[threads_per_allocation] must be 1 when [priority] is low",
        ),
        ("m --force", "unknown flag"),
        ("m n", "more than one"),
    ],
)
def test_start_usage_errors(text: str, fragment: str) -> None:
    result = parse("/ml-start", text)
    if fragment == "Usage":
        assert isinstance(result, HelpRequest)
        return
    assert isinstance(result, UsageError), result
    assert fragment in result.message


def test_freeze_and_unfreeze() -> None:
    assert parse("/ml-stop", "freeze") == FreezeRequest(freeze=True)
    assert parse("/ml-stop", 'freeze --reason "INC-9 hands off"') == FreezeRequest(
        freeze=True, reason="INC-9 hands off"
    )
    assert parse("/ml-stop", "unfreeze") == FreezeRequest(freeze=False)
    result = parse("/ml-stop", "freeze --force")
    assert isinstance(result, UsageError) and "only `--reason" in result.message


# --------------------------------------------------------------------------- bounds


def test_text_at_the_limit_is_read_and_one_more_is_refused() -> None:
    at_limit = "x --reason " + "r" * (MAX_TEXT_LENGTH - len("x --reason "))
    assert len(at_limit) == MAX_TEXT_LENGTH
    # Read to the end: the over-long reason is what is refused, not the text.
    assert error(at_limit).startswith("the reason is")
    assert error(at_limit + "r") == (
        f"the command text is 4,001 characters long; at most {MAX_TEXT_LENGTH:,} are accepted"
    )


def test_the_longest_legal_command_fits_in_the_text_limit() -> None:
    ids = ",".join(f"{i:02d}" + "d" * (MAX_ID_LENGTH - 2) for i in range(MAX_IDS))
    text = f'{ids} --force --finish-pending-work --no-allow-no-match --cluster prod-eu --reason "'
    text += "r" * MAX_REASON_LENGTH + '"'
    assert len(text) <= MAX_TEXT_LENGTH
    assert len(stop(text).ids) == MAX_IDS


@pytest.mark.parametrize("command", [STOP, DEPS, "/ml-start", "/ml-audit"])
def test_every_command_refuses_text_over_the_limit(command: str) -> None:
    result = parse(command, "x" * (MAX_TEXT_LENGTH + 1))
    assert isinstance(result, UsageError)
    assert f"at most {MAX_TEXT_LENGTH:,} are accepted" in result.message


def test_a_megabyte_is_refused_before_it_is_tokenized(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_tokenizing(*_: object) -> None:
        raise AssertionError("the text was tokenized")

    # Patched where the parsers look them up: the tokenizer and the id-list reader.
    monkeypatch.setattr(commands.scan, "split_words", no_tokenizing)
    monkeypatch.setattr(commands.stop, "parse_expression", no_tokenizing)
    text = ",".join(f"d{i}" for i in range(200_000))[:1_000_000]
    assert error(text) == (
        f"the command text is 1,000,000 characters long; at most {MAX_TEXT_LENGTH:,} are accepted"
    )


def test_a_list_of_max_ids_is_read_and_one_more_is_refused() -> None:
    ids = [f"d{i}" for i in range(MAX_IDS + 1)]
    assert stop(",".join(ids[:MAX_IDS])).ids == tuple(ids[:MAX_IDS])
    assert error(",".join(ids)) == f"the list has 51 ids; give at most {MAX_IDS} at a time"
    assert validate_id(",".join(ids)) == f"the list has 51 ids; give at most {MAX_IDS} at a time"
    assert error(",".join(ids), DEPS).endswith(f"give at most {MAX_IDS} at a time")


def test_duplicates_count_toward_the_list_limit_and_keep_first_order() -> None:
    assert stop(",".join(["b", "a"] * (MAX_IDS // 2))).ids == ("b", "a")
    assert "at most 50" in error(",".join(["a"] * (MAX_IDS + 1)))


def test_an_id_one_over_the_length_limit_names_the_limit() -> None:
    assert error("d" * (MAX_ID_LENGTH + 1)).endswith(
        f"is {MAX_ID_LENGTH + 1} characters long; deployment ids are at most {MAX_ID_LENGTH}"
    )


def test_messages_quote_at_most_a_short_part_of_a_long_token() -> None:
    message = error("D" * 3000)
    assert len(message) < 300 and "…" in message


_REQUESTS = (
    StopRequest,
    ScaleRequest,
    StatusRequest,
    ListRequest,
    StartRequest,
    AuditRequest,
    FreezeRequest,
    HelpRequest,
    UsageError,
)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([*COMMANDS, "/other", ""]),
    st.one_of(st.text(), st.text(min_size=MAX_TEXT_LENGTH - 5, max_size=MAX_TEXT_LENGTH + 5)),
)
def test_parse_never_raises_and_returns_a_typed_request(command: str, text: str) -> None:
    result = parse(command, text)
    assert isinstance(result, _REQUESTS)
    if isinstance(result, UsageError):
        assert result.message and not result.message.startswith("could not read")


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("/ml-scale", "ner-prod --allocations \uff13"),  # FULLWIDTH DIGIT THREE
        ("/ml-start", "m --allocations \uff13"),
        ("/ml-start", "m --threads \u0662"),  # ARABIC-INDIC DIGIT TWO
        ("/ml-audit", "--since \u0661\u0660m"),
    ],
)
def test_numbers_are_ascii_digits_only(command: str, text: str) -> None:
    # Python's int() reads these as 3, 2 and 10; a command takes what people type: 0-9.
    assert isinstance(parse(command, text), UsageError)
