"""TLS 1.3 session tickets for QUIC (any aioquic connection; h3.serve/h3.connect take them as
``tickets=``): a returning client resumes without certificate work and may send 0-RTT data.

* ``ServerTicketStore``: the tickets a server issued. Each is good for ONE resumption: fetching
  removes it, so a replayed ClientHello (an attacker resending the client's first flight) finds
  no ticket, gets a full handshake and its 0-RTT data is refused. Bounded (oldest evicted).
* ``ClientTicketStore``: tickets a client received, per server, newest first, each used once
  (RFC 8446 appendix C.4). ``dump()``/``load()`` give JSON-able data for persistence;
  ``save=`` is called after every change (in the IWA: ``await IndexedDBTicketStorage.open()``
  keeps them across page reloads).

Which requests may be early data: the HTTP/3 server acts on GET, HEAD and OPTIONS that arrive
in 0-RTT (``scope["extensions"]["socketiwa.h3"]["early_data"]`` is True for them) and answers
every other method, and Extended CONNECT, with 425 Too Early (RFC 8470): the client sends it
again after the handshake, when a replay is no longer possible. Safe methods must stay free of
side effects for this to be safe: an attacker may replay them within the ticket's single use.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import datetime
import json
from typing import Any, Callable

from aioquic.tls import CipherSuite, SessionTicket

SAFE_EARLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def ticket_to_dict(ticket: SessionTicket) -> dict[str, Any]:
    """A JSON-able form of a ticket (it holds the resumption secret: store it as a secret)."""
    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()
    return {"age_add": ticket.age_add, "cipher_suite": int(ticket.cipher_suite),
            "not_valid_after": ticket.not_valid_after.timestamp(),
            "not_valid_before": ticket.not_valid_before.timestamp(),
            "resumption_secret": b64(ticket.resumption_secret), "server_name": ticket.server_name,
            "ticket": b64(ticket.ticket), "max_early_data_size": ticket.max_early_data_size,
            "other_extensions": [[t, b64(v)] for t, v in ticket.other_extensions]}


def ticket_from_dict(d: dict[str, Any]) -> SessionTicket:
    """The SessionTicket of a ``ticket_to_dict`` result."""
    utc = datetime.timezone.utc
    return SessionTicket(
        age_add=int(d["age_add"]), cipher_suite=CipherSuite(int(d["cipher_suite"])),
        not_valid_after=datetime.datetime.fromtimestamp(d["not_valid_after"], utc),
        not_valid_before=datetime.datetime.fromtimestamp(d["not_valid_before"], utc),
        resumption_secret=base64.b64decode(d["resumption_secret"]), server_name=d["server_name"],
        ticket=base64.b64decode(d["ticket"]), max_early_data_size=d.get("max_early_data_size"),
        other_extensions=[(int(t), base64.b64decode(v)) for t, v in d.get("other_extensions", [])])


class ServerTicketStore:
    """Pass to ``h3.serve(..., tickets=store)`` (or aioquic's serve as
    ``session_ticket_fetcher=store.fetch, session_ticket_handler=store.add``)."""

    def __init__(self, max_tickets: int = 10000):
        self._tickets: collections.OrderedDict[bytes, SessionTicket] = collections.OrderedDict()
        self.max_tickets = max_tickets
        self.issued = 0
        self.resumed = 0
        self.unknown = 0      # presented tickets we do not have: foreign, replayed or evicted

    def add(self, ticket: SessionTicket) -> None:
        """Keep a ticket the server issued (aioquic's ``session_ticket_handler``)."""
        self._tickets[ticket.ticket] = ticket
        self.issued += 1
        while len(self._tickets) > self.max_tickets:
            self._tickets.popitem(last=False)

    def fetch(self, label: bytes) -> SessionTicket | None:
        """The ticket for ``label``, removed (single use), or None if unknown or expired
        (aioquic's ``session_ticket_fetcher``)."""
        ticket = self._tickets.pop(label, None)   # single use: see the module docstring
        if ticket is None or not ticket.is_valid:
            self.unknown += 1
            return None
        self.resumed += 1
        return ticket

    def __len__(self) -> int:
        return len(self._tickets)


class ClientTicketStore:
    """Pass to ``h3.connect(..., tickets=store)``; keyed by ``host:port``."""

    def __init__(self, max_per_server: int = 4, save: Callable[[list[Any]], object] | None = None):
        self._tickets: dict[str, list[SessionTicket]] = {}
        self.max_per_server = max_per_server
        self.save = save

    def _changed(self) -> None:
        if self.save is not None:
            self.save(self.dump())

    def add(self, key: str, ticket: SessionTicket) -> None:
        """Keep ``ticket`` for server ``key`` (newest first, at most ``max_per_server``)."""
        tickets = self._tickets.setdefault(key, [])
        tickets.insert(0, ticket)
        del tickets[self.max_per_server:]
        self._changed()

    def handler_for(self, key: str) -> Callable[[SessionTicket], None]:
        """A session-ticket handler for aioquic that stores tickets under ``key``."""
        return lambda ticket: self.add(key, ticket)

    def take(self, key: str) -> SessionTicket | None:
        """The newest still-valid ticket for ``key``, removed (a ticket resumes once)."""
        tickets = self._tickets.get(key, [])
        while tickets:
            ticket = tickets.pop(0)
            if ticket.is_valid:
                self._changed()
                return ticket
        self._changed()
        return None

    def count(self, key: str) -> int:
        """How many tickets are kept for ``key``."""
        return len(self._tickets.get(key, []))

    def dump(self) -> list[Any]:
        """Every ticket as JSON-able data (holds resumption secrets: store it as a secret)."""
        return [[key, ticket_to_dict(t)] for key, tickets in self._tickets.items() for t in tickets]

    def load(self, data: list[Any]) -> None:
        """Add the still-valid tickets of ``dump()`` output."""
        for key, d in data:
            ticket = ticket_from_dict(d)
            if ticket.is_valid:
                self._tickets.setdefault(key, []).append(ticket)


async def _settled(request: Any) -> Any:
    """The result of a JS IDBRequest, or OSError when it fails."""
    from pyodide.ffi import create_once_callable

    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def succeeded(event: Any) -> None:
        if not future.done():
            future.set_result(request.result)

    def failed(event: Any) -> None:
        if not future.done():
            future.set_exception(OSError(f"IndexedDB: {request.error}"))
    request.onsuccess = create_once_callable(succeeded)
    request.onerror = create_once_callable(failed)
    return await future


class IndexedDBTicketStorage:
    """Keeps a ClientTicketStore in the browser's IndexedDB (Pyodide in a page, e.g. the IWA),
    so tickets survive page reloads:

        storage = await IndexedDBTicketStorage.open()
        tickets = ClientTicketStore(save=storage.save)
        tickets.load(await storage.read())
    """

    def __init__(self, db: Any, name: str):
        self._db = db   # a JS IDBDatabase
        self.name = name
        self._pending: asyncio.Future[None] | None = None

    @classmethod
    async def open(cls, database: str = "socketiwa-tickets", name: str = "client") -> "IndexedDBTicketStorage":
        """Open (creating it on first use) the IndexedDB database that holds the tickets."""
        from js import indexedDB
        from pyodide.ffi import create_once_callable

        request = indexedDB.open(database, 1)

        def upgrade(event: Any) -> None:
            request.result.createObjectStore("tickets")
        request.onupgradeneeded = create_once_callable(upgrade)
        return cls(await _settled(request), name)

    async def _request(self, mode: str, action: Callable[[Any], Any]) -> Any:
        store = self._db.transaction("tickets", mode).objectStore("tickets")
        return await _settled(action(store))

    async def read(self) -> list[Any]:
        """The stored tickets (``ClientTicketStore.load`` input); [] when none are stored."""
        raw = await self._request("readonly", lambda store: store.get(self.name))
        return json.loads(raw) if isinstance(raw, str) else []

    async def write(self, data: list[Any]) -> None:
        """Store ``data`` (``ClientTicketStore.dump`` output)."""
        text = json.dumps(data)
        await self._request("readwrite", lambda store: store.put(text, self.name))

    def save(self, data: list[Any]) -> None:
        """For ``ClientTicketStore(save=...)``: writes in the background (stores call it
        synchronously from inside the TLS handshake)."""
        self._pending = asyncio.ensure_future(self.write(data))

    async def flush(self) -> None:
        """Wait for the background write of the last ``save``."""
        if self._pending is not None:
            await self._pending


__all__ = ["ServerTicketStore", "ClientTicketStore", "IndexedDBTicketStorage", "ticket_to_dict",
           "ticket_from_dict", "SAFE_EARLY_METHODS"]
