"""An asyncio event loop in a daemon thread, so synchronous tests can host aiohttp servers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

# Servers stop quickly in tests: nothing in flight is worth waiting a minute for.
_SHUTDOWN_TIMEOUT = 2.0


class BackgroundLoop:
    """Runs an event loop in a daemon thread; runs coroutines on it and serves aiohttp apps."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runners: dict[str, web.AppRunner] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop; raises if `start()` was not called."""
        if self._loop is None:
            raise RuntimeError("BackgroundLoop is not started")
        return self._loop

    def start(self) -> BackgroundLoop:
        """Start the loop thread and wait until the loop runs."""
        if self._loop is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=self._run_forever, args=(loop, ready), name="bg-loop", daemon=True
        )
        thread.start()
        ready.wait(timeout=10)
        self._loop, self._thread = loop, thread
        return self

    @staticmethod
    def _run_forever(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the loop and return its result (or raise its exception)."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

    def serve(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve `app` on a (free, by default) port; return its base URL `http://host:port`."""
        runner = self.run(self._start_site(app, host, port))
        bound_host, bound_port = runner.addresses[0][:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host  # IPv6 literal
        url = f"http://{shown}:{bound_port}"
        self._runners[url] = runner
        return url

    @staticmethod
    async def _start_site(app: web.Application, host: str, port: int) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner

    def stop(self, url: str) -> None:
        """Stop the server that `serve()` started at `url` (no-op if unknown)."""
        runner = self._runners.pop(url, None)
        if runner is not None and self._loop is not None:
            self.run(runner.cleanup())

    def stop_all(self) -> None:
        """Stop every server started by `serve()`."""
        for url in list(self._runners):
            self.stop(url)

    def close(self) -> None:
        """Stop all servers, cancel leftover tasks, stop the loop and join its thread."""
        if self._loop is None:
            return
        self.stop_all()
        self.run(_cancel_other_tasks())
        loop, thread = self._loop, self._thread
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> BackgroundLoop:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _cancel_other_tasks() -> None:
    """Cancel tasks still pending (e.g. Bolt listeners after ack) so the loop closes quietly."""
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
