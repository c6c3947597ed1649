"""The pure rules for how far a mapping read reached, and the privilege cache's expiry."""

from __future__ import annotations

from bot.adapters.elasticsearch.privileges import TtlCache
from bot.core.impact import (
    NO_INDEX_VISIBLE,
    SOME_INDICES_VISIBLE,
    ClusterFacts,
    Endpoint,
    Impact,
    MappingScan,
    SemanticField,
    impact_of,
    mapping_coverage,
)

FIELD = SemanticField("docs", "body", "ep")
SCAN = MappingScan((FIELD,), indices=1)


def test_every_index_visible_trusts_the_fields() -> None:
    assert mapping_coverage(SCAN, True).fields == (FIELD,)
    assert mapping_coverage(SCAN, True).partial == mapping_coverage(SCAN, True).unknown == ()


def test_some_indices_visible_is_partial_and_keeps_what_was_seen() -> None:
    got = mapping_coverage(SCAN, False)
    assert got.fields == (FIELD,) and got.partial == (SOME_INDICES_VISIBLE,) and not got.unknown


def test_no_index_visible_is_unknown_not_nothing() -> None:
    got = mapping_coverage(MappingScan((), indices=0), False)
    assert got.fields is None and got.unknown == (NO_INDEX_VISIBLE,) and not got.partial


def test_an_unchecked_privilege_is_partial_with_its_reason() -> None:
    got = mapping_coverage(SCAN, "could not check (500: boom)")
    assert got.partial == ("semantic_text usage: could not check (500: boom)",)


def test_a_failed_mapping_read_stays_unknown_whatever_the_privileges() -> None:
    assert mapping_coverage("could not read index mappings (500: x)", True).unknown == (
        "could not read index mappings (500: x)",
    )


def test_partial_reaches_the_impact_and_survives_json() -> None:
    endpoint = Endpoint("d", "d", "m", "sparse_embedding", created=True)
    facts = ClusterFacts(endpoints=(endpoint,), fields=(), partial=(SOME_INDICES_VISIBLE,))
    impact = impact_of("d", "m", facts)
    assert impact.partial == (SOME_INDICES_VISIBLE,) and not impact.empty
    assert Impact.from_json(impact.to_json()) == impact
    assert Impact.from_json({}).partial == ()  # stored before the field existed


def test_mapping_notes_stay_off_a_deployment_no_endpoint_uses() -> None:
    # semantic_text reaches a deployment only through an endpoint; none here, all read.
    facts = ClusterFacts(
        fields=None, partial=(SOME_INDICES_VISIBLE,), mapping_unknown=(NO_INDEX_VISIBLE,)
    )
    assert impact_of("d", "m", facts).partial == ()
    assert impact_of("d", "m", facts).unknown == ()
    # Endpoints unreadable: an endpoint may use it, so the notes stay.
    unread = ClusterFacts(endpoints=None, fields=None, mapping_unknown=(NO_INDEX_VISIBLE,))
    assert impact_of("d", "m", unread).unknown == (NO_INDEX_VISIBLE,)


def test_the_cache_forgets_after_its_ttl() -> None:
    now = [0.0]
    cache: TtlCache[str | None, bool] = TtlCache(300.0, clock=lambda: now[0])
    cache.put(None, False)
    now[0] = 299.0
    assert cache.get(None) is False
    now[0] = 300.0
    assert cache.get(None) is None
