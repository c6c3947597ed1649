"""`python -m bot.emulator`: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from bot.emulator.demo import demo_state
from bot.emulator.loader import load_state
from bot.emulator.server import Emulator
from bot.emulator.state import ClusterState


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.emulator", description="Elasticsearch ML API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument(
        "--auth", metavar="USER:PASSWORD", help="enable security with this superuser"
    )
    parser.add_argument("--data", metavar="FILE", help="load cluster state from YAML or JSON")
    parser.add_argument("--demo", action="store_true", help="load the built-in demo state")
    parser.add_argument("--version", default="9.1.0", help="Elasticsearch version to report")
    parser.add_argument(
        "--placement-seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="start one new allocation every S seconds after an _update (default: at once)",
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    """Start the emulator and wait for SIGINT/SIGTERM."""
    state = ClusterState()
    if args.demo:
        state = demo_state()
    if args.data:
        state = load_state(args.data)
    auth = None
    if args.auth:
        user, _, password = args.auth.partition(":")
        auth = (user, password)
    emulator = Emulator(state, auth=auth, version=args.version)
    if args.placement_seconds > 0:
        emulator.placement.configure("timed", seconds=args.placement_seconds)
    url = await emulator.start(args.host, args.port)
    print(f"Elasticsearch ML emulator {args.version} listening on {url}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, done.set)
    await done.wait()
    await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
