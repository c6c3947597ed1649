"""Run an Emulator on a background event loop, for synchronous tests and tools."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from types import TracebackType
from typing import TypeVar

from bot.emulator.server import Emulator

T = TypeVar("T")


class ThreadedEmulator:
    """Starts `emulator` in a daemon thread's loop; use as a context manager."""

    def __init__(self, emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="es-emulator"
        )

    def start(self) -> str:
        """Start the loop thread and the server; returns the base URL."""
        self._thread.start()
        self.url = self.run(self.emulator.start(self.host, self.port))
        return self.url

    def run(self, coro: Awaitable[T], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""

        async def wrapper() -> T:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(timeout)

    def close(self) -> None:
        """Stop the server and the loop thread."""
        if self._thread.is_alive():
            self.run(self.emulator.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> ThreadedEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
