"""The command line the QUIC examples share: no argument runs the example's demo (its server
and a client in one process); ``serve [--port P]`` runs its server until Ctrl-C (or SIGTERM
from ``socketiwa run``)."""
from __future__ import annotations

import argparse
import asyncio
from typing import Any, Awaitable, Callable


def main(argv: list[str], prog: str, doc: str, demo: Callable[[], Awaitable[None]],
         serve: Callable[[int], Awaitable[Any]] | None = None) -> int:
    """Parse ``argv`` and run ``demo()``, or ``serve(port)``: it starts the server, prints how
    to reach it and returns it; the server is closed when the program is stopped."""
    ap = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    ap.add_argument("mode", nargs="?", choices=["demo", "serve"] if serve else ["demo"], default="demo")
    if serve:
        ap.add_argument("--port", type=int, default=4433)
    args = ap.parse_args(argv)

    async def serve_until_stopped() -> None:
        server = await serve(args.port)
        try:
            await asyncio.Event().wait()
        finally:
            await server.aclose()
    asyncio.run(serve_until_stopped() if args.mode == "serve" else demo())
    return 0
