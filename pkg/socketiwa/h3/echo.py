"""A complete small WebTransport application: an echo server handler, used by the tests (with
Chromium's WebTransport client as the peer), benchmarks and as a pattern for your own.

On accept it opens a unidirectional stream saying ``server-uni-hello`` and a bidirectional one
saying ``server-bidi-hello``. Then it echoes datagrams (prefixed ``echo:``) and bidirectional
streams; answers each unidirectional stream with a new one, ``uni-echo:<data>``; resets a
bidirectional stream whose data is ``reset-me`` with code 42; closes the session with
``(4242, "server-bye")`` on the datagram ``close-me``. Paths not starting with ``/wt`` get 404.
"""
from __future__ import annotations

import asyncio
from typing import Any

from ._protocol import StreamResetError, header_value
from .webtransport import WebTransportSession, WebTransportStream


class WebTransportEcho:
    """``server = await h3.serve(..., webtransport=WebTransportEcho())``; ``sessions``,
    ``closes`` and ``client_resets`` record what happened, for tests."""

    def __init__(self, prefix: str = "/wt"):
        self.prefix = prefix
        self.sessions: list[dict[str, Any]] = []
        self.closes: list[dict[str, Any]] = []
        self.client_resets: list[int] = []
        self.connections: set[int] = set()

    async def __call__(self, session: WebTransportSession) -> None:
        self.sessions.append({"path": session.path, "origin": session.origin,
                              "draft": header_value(session.request_headers, "sec-webtransport-http3-draft02"),
                              "peer_settings": dict(session.protocol.peer_settings or {})})
        self.connections.add(id(session.protocol))
        if not session.path.startswith(self.prefix):
            return await session.reject(404)
        await session.accept()
        tasks = [asyncio.ensure_future(f(session)) for f in (self._datagrams, self._bidi, self._uni)]
        try:
            await (await session.create_unidirectional_stream()).write(b"server-uni-hello", end=True)
            await (await session.create_bidirectional_stream()).write(b"server-bidi-hello", end=True)
            info = await session.wait_closed()
            self.closes.append({"path": session.path, "info": info, "by_peer": session.closed_by_peer,
                                "ignored_capsules": list(session.ignored_capsules)})
        finally:
            for t in tasks:
                t.cancel()

    async def _datagrams(self, session: WebTransportSession) -> None:
        while True:
            data = await session.receive_datagram()
            if data == b"close-me":
                await session.close(4242, "server-bye")
                return
            session.send_datagram(b"echo:" + data)

    async def _bidi(self, session: WebTransportSession) -> None:
        while True:
            stream = await session.accept_bidirectional_stream()
            asyncio.ensure_future(self._echo_stream(stream))

    async def _echo_stream(self, stream: WebTransportStream) -> None:
        try:
            data = await stream.read_all()
        except StreamResetError as exc:   # the client aborted its stream
            self.client_resets.append(exc.code)
            return
        if data == b"reset-me":
            stream.reset(42)
        else:
            await stream.write(data, end=True)

    async def _uni(self, session: WebTransportSession) -> None:
        while True:
            stream = await session.accept_unidirectional_stream()
            try:
                data = await stream.read_all()
            except StreamResetError as exc:
                self.client_resets.append(exc.code)
                continue
            await (await session.create_unidirectional_stream()).write(b"uni-echo:" + data, end=True)


__all__ = ["WebTransportEcho"]
