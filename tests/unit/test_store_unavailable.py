"""Both store backends turn a backend outage into the port's `StoreUnavailable`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.store_sqlite import SQLiteStore
from bot.core.errors import StoreUnavailable


async def test_sqlite_operational_error_is_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    # A real SQLite refusal (as a full or read-only disk gives): writes fail, reads work.
    store._db.execute("PRAGMA query_only=ON")
    with pytest.raises(StoreUnavailable) as caught:
        await store.set_flag("freeze", {"by": "U0"})
    assert caught.value.message == "cannot reach the state store; nothing was done"
    assert await store.get_flag("freeze") is None
    store._db.execute("PRAGMA query_only=OFF")
    await store.close()
