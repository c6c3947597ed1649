""" "Did you mean …?" for ids: the nearest known ones to a typo (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.75  # `ner-prdo` → `ner-prod` (0.88); unrelated ids of one family stay out


def nearest(word: str, known: Iterable[str], n: int = 3) -> tuple[str, ...]:
    """Up to `n` known ids closest to `word`, best first (none for a wildcard or `_all`)."""
    if "*" in word or word == "_all":
        return ()
    candidates = sorted({k for k in known if k != word})
    return tuple(difflib.get_close_matches(word, candidates, n=n, cutoff=CUTOFF))
