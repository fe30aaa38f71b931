"""TLS 1.3 session tickets and 0-RTT over HTTP/3 (socketiwa.h3.tickets) on every runtime: a
returning client resumes and its early GET is acted on as 0-RTT; an early POST is answered
425 and sent again after the handshake; a replayed, an expired and a foreign ticket all fall
back to a full handshake."""
import pytest
from runtimes import everywhere

import quic_peers

H3_PACKAGES = ("socketiwa", "aioquic")


@pytest.fixture(scope="module")
def certs():
    return quic_peers.make_certs()


@everywhere(timeout=120, packages=H3_PACKAGES)
async def test_h3_resumption_and_0rtt(selenium, certs):
    import asyncio
    import datetime
    import time
    from socketiwa import h3

    seen = []

    async def app(scope, receive, send):
        early = scope["extensions"]["socketiwa.h3"]["early_data"]
        seen.append((scope["method"], scope["path"], early))
        more = True
        while more:
            more = (await receive())["more_body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{scope['path']} early={early}".encode()})

    server_tickets = h3.ServerTicketStore()
    config = h3.server_configuration(certs["cert"], certs["key"])
    server = await h3.serve("127.0.0.1", 0, configuration=config, app=app, tickets=server_tickets)
    other_server = await h3.serve("127.0.0.1", 0, configuration=config, app=app,
                                  tickets=h3.ServerTicketStore())
    client_config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
    key = f"localhost:{server.port}"

    async def visit(port, tickets, path="/x"):
        """One connection: GET path at once; returns (body, handshake event, ms to the body)."""
        start = time.perf_counter()
        async with h3.connect("127.0.0.1", port, configuration=client_config, tickets=tickets) as c:
            kept = tickets.count(f"localhost:{port}")      # the one resuming now is taken out
            body = await (await c.get(path)).read()
            ms = (time.perf_counter() - start) * 1000
            await c.wait_connected()
            for _ in range(500):        # the server's NewSessionTicket follows the handshake
                if tickets.count(f"localhost:{port}") > kept:
                    break
                await asyncio.sleep(0.01)
            return body, c.handshake, ms

    try:
        tickets = h3.ClientTicketStore()
        body, hs, full_ms = await visit(server.port, tickets, "/first")
        assert body == b"/first early=False" and not hs.session_resumed
        assert tickets.count(key) >= 1 and server_tickets.issued >= 1

        # the returning client: resumed, and its GET was 0-RTT data the server acted on
        body, hs, early_ms = await visit(server.port, tickets, "/again")
        assert hs.session_resumed and hs.early_data_accepted
        assert body == b"/again early=True"

        # an unsafe method in 0-RTT: 425 Too Early, then sent again after the handshake
        async with h3.connect("127.0.0.1", server.port, configuration=client_config, tickets=tickets) as c:
            assert c.in_early_data
            r = await c.request("POST", "/post", body=b"payload")
            assert (r.status, await r.read()) == (200, b"/post early=False")
            assert c.handshake.session_resumed
        assert ("POST", "/post", True) not in seen and ("POST", "/post", False) in seen

        # a replayed ticket (the same one offered twice): the second finds nothing to resume
        ticket = tickets.take(key)
        first, replay = h3.ClientTicketStore(), h3.ClientTicketStore()
        first.add(key, ticket)
        replay.add(key, ticket)
        unknown = server_tickets.unknown
        body, hs, _ = await visit(server.port, first, "/ticket-once")
        assert hs.session_resumed and body == b"/ticket-once early=True"
        body, hs, _ = await visit(server.port, replay, "/ticket-replayed")
        assert not hs.session_resumed and not hs.early_data_accepted
        assert body == b"/ticket-replayed early=False"    # acted on only after a full handshake
        assert server_tickets.unknown == unknown + 1

        # a ticket the server holds as expired: full handshake
        for stored in list(server_tickets._tickets.values()):
            stored.not_valid_after = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
        body, hs, _ = await visit(server.port, tickets, "/expired")
        assert not hs.session_resumed and body == b"/expired early=False"

        # a ticket from another server: full handshake there
        assert tickets.count(key) >= 1
        foreign = h3.ClientTicketStore()
        foreign.add(f"localhost:{other_server.port}", tickets.take(key))
        body, hs, _ = await visit(other_server.port, foreign, "/foreign")
        assert not hs.session_resumed and body == b"/foreign early=False"

        # tickets survive a round trip through their stored form
        restored = h3.ClientTicketStore()
        restored.load(tickets.dump())
        assert restored.count(key) == tickets.count(key)
        if restored.count(key):
            _, hs, _ = await visit(server.port, restored, "/restored")
            assert hs.session_resumed
        print(f"first GET: full handshake {full_ms:.1f} ms, resumed with 0-RTT {early_ms:.1f} ms")
    finally:
        await server.aclose()
        await other_server.aclose()


@everywhere(timeout=120, packages=H3_PACKAGES, only=("iwa",))
async def test_h3_tickets_kept_in_indexeddb(selenium, certs):
    """In the IWA the client's tickets live in IndexedDB: a store opened afresh (as after a
    page reload) loads them and resumes with 0-RTT."""
    import asyncio
    from socketiwa import h3
    from socketiwa.h3.tickets import IndexedDBTicketStorage

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body",
                    "body": str(scope["extensions"]["socketiwa.h3"]["early_data"]).encode()})

    server = await h3.serve("127.0.0.1", 0, app=app, tickets=h3.ServerTicketStore(),
                            configuration=h3.server_configuration(certs["cert"], certs["key"]))
    client_config = h3.client_configuration(cadata=certs["ca"], server_name="localhost")
    try:
        storage = await IndexedDBTicketStorage.open(database="socketiwa-test-tickets")
        await storage.write([])
        tickets = h3.ClientTicketStore(save=storage.save)
        async with h3.connect("127.0.0.1", server.port, configuration=client_config, tickets=tickets) as c:
            assert await (await c.get("/")).read() == b"False"
            await asyncio.sleep(0.1)
        await storage.flush()
        assert tickets.count(f"localhost:{server.port}") >= 1

        # a new storage object and store, nothing shared in Python with the first
        reopened = await IndexedDBTicketStorage.open(database="socketiwa-test-tickets")
        fresh = h3.ClientTicketStore(save=reopened.save)
        fresh.load(await reopened.read())
        assert fresh.count(f"localhost:{server.port}") == tickets.count(f"localhost:{server.port}")
        async with h3.connect("127.0.0.1", server.port, configuration=client_config, tickets=fresh) as c:
            assert await (await c.get("/")).read() == b"True"     # 0-RTT with the stored ticket
            await c.wait_connected()
            assert c.handshake.session_resumed
    finally:
        await server.aclose()


# ------------------------------------------------------------------ a real page reload (IWA)

RETURNING_CLIENT = '''
import asyncio, json
from socketiwa import h3
from socketiwa.h3.tickets import IndexedDBTicketStorage

storage = await IndexedDBTicketStorage.open()          # the default database of an app
if {forget!r}:
    await storage.write([])
tickets = h3.ClientTicketStore(save=storage.save)
tickets.load(await storage.read())
loaded = tickets.count({key!r})
config = h3.client_configuration(cadata={ca!r}.encode(), server_name="localhost")
async with h3.connect("127.0.0.1", {port}, configuration=config, tickets=tickets) as c:
    sent_early = c.in_early_data                       # the GET below goes out as 0-RTT data
    body = (await (await c.get({path!r})).read()).decode()
    await c.wait_connected()
    for _ in range(500):                               # the server's NewSessionTicket follows
        if tickets.count({key!r}):
            break
        await asyncio.sleep(0.01)
await storage.flush()                                  # in IndexedDB before the page goes
json.dumps(dict(loaded=loaded, sent_early=sent_early, body=body, resumed=c.handshake.session_resumed,
                early_data_accepted=c.handshake.early_data_accepted, kept=tickets.count({key!r})))
'''


def _wait_shell_ready(cdp, session, timeout: float = 90) -> None:
    import time
    from socketiwa._app.chromium import IwaError
    deadline = time.monotonic() + timeout
    phase = None
    while time.monotonic() < deadline:
        try:
            phase = cdp.evaluate(session, "window.socketiwaShell ? socketiwaShell.state.phase : 'no-shell'", 5)
        except IwaError:
            phase = "navigating"      # the page is between documents
        if phase == "ready":
            return
        assert phase != "error", cdp.evaluate(session, "socketiwaShell.state.error", 5)
        time.sleep(0.1)
    raise AssertionError(f"the reloaded IWA page was not ready in {timeout} s (phase {phase!r})")


def test_iwa_page_reload_resumes_with_the_ticket_in_indexeddb(runtime_env, certs):
    """The returning visitor: a page of the IWA connects to an HTTP/3 server (CPython, socketiwa)
    and keeps its tickets in IndexedDB; the page is RELOADED (a new document and a new Pyodide:
    nothing survives in memory) and its first GET resumes and rides 0-RTT, which the server
    acts on as early data; then a brand-new tab of the same app does the same with the ticket
    the reloaded page stored."""
    import json
    import time
    from socketiwa import h3
    if runtime_env.name != "iwa":
        pytest.skip("a page reload exists only in the browser")
    runner = runtime_env.runner
    seen = []

    async def app(scope, receive, send):
        early = scope["extensions"]["socketiwa.h3"]["early_data"]
        seen.append((scope["path"], early))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": f"{scope['path']} early={early}".encode()})

    lt = quic_peers.LoopThread()
    server_tickets = h3.ServerTicketStore()

    async def start():
        return await h3.serve("127.0.0.1", 0, app=app, tickets=server_tickets,
                              configuration=h3.server_configuration(certs["cert"], certs["key"]))
    server = lt.run(start())
    key = f"localhost:{server.port}"
    url = f"{runner.origin}/index.html?mode=test"
    cdp = runner.cdp
    pages = []

    def visit(session, path, forget=False):
        code = RETURNING_CLIENT.format(forget=forget, key=key, ca=certs["ca"].decode(), port=server.port,
                                       path=path)
        # aioquic comes in through socketiwa.h3, which loadPackagesFromImports does not see
        return json.loads(cdp.evaluate(session, "socketiwaShell.pyodide.loadPackage('aioquic')"
                                       f".then(() => socketiwaShell.run({json.dumps(code)}))", 90))

    try:
        target, session = cdp.open_page(url)
        pages.append(target)
        _wait_shell_ready(cdp, session)
        first = visit(session, "/first", forget=True)
        assert first == {"loaded": 0, "sent_early": False, "body": "/first early=False", "resumed": False,
                         "early_data_accepted": False, "kept": first["kept"]}, first
        assert first["kept"] >= 1 and server_tickets.issued >= 1

        # a real reload: the document, its Pyodide and every Python object are gone
        cdp.evaluate(session, "window.beforeReload = true")
        cdp.send("Page.reload", {"ignoreCache": True}, session=session)
        time.sleep(0.5)
        _wait_shell_ready(cdp, session)
        assert cdp.evaluate(session, "typeof window.beforeReload") == "undefined"
        resumed = visit(session, "/after-reload")
        assert resumed["loaded"] == first["kept"]          # read back from IndexedDB
        assert resumed["sent_early"] and resumed["resumed"] and resumed["early_data_accepted"], resumed
        assert resumed["body"] == "/after-reload early=True"
        assert ("/after-reload", True) in seen              # the server acted on it as 0-RTT

        # another tab of the same app (same origin, same IndexedDB), opened afresh
        target2, session2 = cdp.open_page(url)
        pages.append(target2)
        _wait_shell_ready(cdp, session2)
        other = visit(session2, "/new-tab")
        assert other["loaded"] >= 1 and other["resumed"] and other["early_data_accepted"], other
        assert ("/new-tab", True) in seen
        assert seen[0] == ("/first", False) and server_tickets.resumed >= 2
    finally:
        for target in pages:
            try:
                cdp.send("Target.closeTarget", {"targetId": target})
            except Exception:
                pass
        lt.run(server.aclose())
        lt.stop()
