"""`filter_path` semantics (bot/emulator/filtering.py), case by case as ES's own filtering tests.

The expectations restate AbstractFilteringTestCase, AbstractXContentFilteringTestCase and
FilterPathTests of elastic/elasticsearch (libs/x-content) on samples of our own.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulator.filtering import filter_body

BOOK: dict[str, Any] = {
    "title": "A book",
    "pages": 456,
    "price": 27.99,
    "tags": ["search", "java"],
    "authors": [
        {"name": "John Doe", "lastname": "Doe", "firstname": "John"},
        {"name": "William Smith", "lastname": "Smith", "firstname": "William"},
    ],
    "properties": {
        "weight": 0.8,
        "language": {"en": {"lang": "English", "name": "Eng"}, "fr": {"name": "Fra"}},
        "distributors": [{"name": "D1", "addresses": [{"street": "S1", "name": "A1"}]}],
    },
}


def f(body: Any, filter_path: str | None) -> Any:
    return filter_body(body, filter_path)


@pytest.mark.parametrize("path", [None, "", " , ", "*", "**", "-xyz", "title,*"])
def test_no_filtering(path: str | None) -> None:
    assert f(BOOK, path) == BOOK


@pytest.mark.parametrize("path", ["xyz", "-*", "-**", "title.x", "**.nothing"])
def test_no_match_is_an_empty_object(path: str) -> None:
    assert f(BOOK, path) == {}


def test_fields_and_partial_name_wildcards() -> None:
    assert f(BOOK, "title") == {"title": "A book"}
    assert f(BOOK, "title, pages") == {"title": "A book", "pages": 456}
    assert f(BOOK, "pr*") == {"price": 27.99, "properties": BOOK["properties"]}
    assert f(BOOK, "*ge*") == {"pages": 456}
    assert set(f(BOOK, "-pr*")) == {"title", "pages", "tags", "authors"}


def test_arrays_are_traversed_transparently() -> None:
    assert f(BOOK, "tags") == {"tags": ["search", "java"]}
    assert f(BOOK, "authors.lastname") == {"authors": [{"lastname": "Doe"}, {"lastname": "Smith"}]}
    assert f(BOOK, "authors.l*") == f(BOOK, "authors.lastname")
    assert f(BOOK, "authors.*name") == {"authors": BOOK["authors"]}
    assert f(BOOK, "-authors.lastname")["authors"][0] == {"name": "John Doe", "firstname": "John"}


def test_array_items_that_lose_everything_are_dropped() -> None:
    tags = {"tags": [{"lastname": "lorem"}, {"firstname": "ipsum"}]}
    assert f(tags, "t*.firstname") == {"tags": [{"firstname": "ipsum"}]}
    assert f(tags, "-t*.lastname") == {"tags": [{"firstname": "ipsum"}]}
    # Scalars under a partial include are dropped, the emptied array with them ...
    assert f({"tags": ["a", "b"]}, "tags.x") == {}
    # ... and kept under a partial exclude.
    assert f({"tags": ["a", "b"]}, "-tags.x") == {"tags": ["a", "b"]}
    assert f(BOOK, "-authors.*")["tags"] == BOOK["tags"]
    assert "authors" not in f(BOOK, "-authors.*")


def test_double_wildcard_any_depth_but_not_the_root_field() -> None:
    names = f(BOOK, "**.name")
    assert names == {
        "authors": [{"name": "John Doe"}, {"name": "William Smith"}],
        "properties": {
            "language": {"en": {"name": "Eng"}, "fr": {"name": "Fra"}},
            "distributors": [{"name": "D1", "addresses": [{"name": "A1"}]}],
        },
    }
    # FilterPathTests.testStartsWithDoubleWildcardFilterPath: `**` needs one level first.
    assert f({"name": "top", "a": {"name": "x"}}, "**.name") == {"a": {"name": "x"}}
    assert f(BOOK, "properties.*.en.**.name") == {}
    assert f(BOOK, "properties.**.en.name") == {"properties": {"language": {"en": {"name": "Eng"}}}}
    # `properties.distributors` is one level too close for `properties.**.distributors`.
    assert f(BOOK, "properties.**.distributors.name") == {}
    deeper = {"p": {"en": {"d": [{"name": "D1", "x": 1}]}, "d": [{"name": "D0"}]}}
    assert f(deeper, "p.**.d.name") == {"p": {"en": {"d": [{"name": "D1"}]}}}


def test_emptied_objects_vanish_whole_empty_objects_stay() -> None:
    sample = {"foo": {"bar": "test"}}
    assert f(sample, "foo.bar") == sample
    assert f(sample, "-foo.baz") == sample
    assert f(sample, "foo,-foo.baz") == sample
    assert f(sample, "-foo.bar") == {}
    assert f(sample, "foo,-foo.b*") == {}
    empty = {"foo": {}}
    assert f(empty, "foo") == empty
    assert f(empty, "-bar") == empty
    assert f(empty, "f*,-baz") == empty
    assert f(empty, "-foo") == {}
    assert f(empty, "bar") == {}
    assert f(empty, "f*,-foo") == {}


def test_includes_then_excludes() -> None:
    assert f(BOOK, "p*,-properties") == {"pages": 456, "price": 27.99}
    both = f(BOOK, "tags,authors,-authors.name")
    assert both == {
        "tags": BOOK["tags"],
        "authors": [{k: v for k, v in a.items() if k != "name"} for a in BOOK["authors"]],
    }
    assert f(BOOK, "**.distributors,-**.distributors") == {}
    assert f(BOOK, "**.language,properties.weight,-**.distributors") == {
        "properties": {"weight": 0.8, "language": BOOK["properties"]["language"]}
    }


def test_dotted_field_names_are_not_split_but_escapes_match_them() -> None:
    sample = {"foo.bar": "test", "w": {"0.t": 1}}
    assert f(sample, "foo.bar") == {}
    assert f(sample, "foo\\.bar") == {"foo.bar": "test"}
    assert f(sample, "-foo.bar") == sample
    assert f(sample, "f*r") == {"foo.bar": "test"}
    assert f(sample, "w.0\\.t") == {"w": {"0.t": 1}}


def test_a_shorter_path_wins_over_a_longer_one() -> None:
    sample = {"a": {"b": 1, "c": 2}}
    assert f(sample, "a.b,a") == sample
    assert f(sample, "a,a.b") == sample


def test_glob_only_knows_star() -> None:
    sample = {"a?c": 1, "abc": 2, "[x]": 3, "x": 4}
    assert f(sample, "a?c") == {"a?c": 1}
    assert f(sample, "[x]") == {"[x]": 3}
    assert f(sample, "*c") == {"a?c": 1, "abc": 2}
    assert f(sample, "a**c") == {"a?c": 1, "abc": 2}


def test_null_values_are_scalars() -> None:
    sample = {"a": None, "b": {"c": None}}
    assert f(sample, "a,b.c") == sample
    assert f(sample, "b.x") == {}
    assert f(sample, "-b.x") == sample
