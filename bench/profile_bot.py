"""`ml-chatops serve` under cProfile, switched on and off by signals (used by `--profile`).

`python bench/profile_bot.py OUT.prof` runs the bot exactly as `ml-chatops serve` does; the
profiler starts on SIGUSR1 (after warm-up, so start-up and imports stay out) and stops on
SIGUSR2, which also writes the stats to OUT.prof. Only the main thread (the event loop, where
the bot's work runs) is profiled, on its CPU clock (`time.thread_time`): time the loop
sleeps in `epoll` or loses to other processes on the shared cores is not counted.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import time
from types import FrameType


def main() -> int:
    """Install the signal handlers, then serve."""
    out = sys.argv[1]
    profiler = cProfile.Profile(time.thread_time)

    def start(_signum: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out + ".tmp")
        os.replace(out + ".tmp", out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from bot.cli import main as cli_main

    return cli_main(["serve"])


if __name__ == "__main__":
    sys.exit(main())
