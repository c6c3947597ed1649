"""Load benchmark of `ml-chatops serve` against a bare Bolt app: run `python -m bench`.

Importing the package puts the repository's `tests/` folder on `sys.path`, so the bench
reuses the Slack stand-in and the signed driver from `tests/support` (`support.*`).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

_TESTS = str(REPO / "tests")
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
