"""Chromium's own network clients (WebTransport, fetch over HTTP/3, WebSocket over HTTP/3) as
peers for socketiwa's servers: headless Chromium 156 driven over DevTools (the launch and CDP
pieces of socketiwa._app.chromium), a plain page served over http on loopback, and the in-page
probes below. Recipes: ../shared/research/interop/NOTES.md."""
from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from socketiwa._app.chromium import close_chromium, launch_chromium, serve_dir


def make_browser_cert(days: int = 10) -> dict:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1/localhost that Chromium accepts by
    hash: ``serverCertificateHashes`` needs ECDSA and a validity under 14 days. Returns the PEMs,
    the SHA-256 of the DER (for WebTransport) and of the SPKI (for
    --ignore-certificate-errors-spki-list), both base64."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return {
        "cert": cert.public_bytes(serialization.Encoding.PEM),
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
        "der_sha256_b64": base64.b64encode(hashlib.sha256(der).digest()).decode(),
        "spki_sha256_b64": base64.b64encode(hashlib.sha256(spki).digest()).decode(),
    }


def force_quic_flags(port: int, spki_b64: str, host: str = "127.0.0.1") -> list[str]:
    """Flags that make Chromium speak HTTP/3 to host:port at once and trust the self-signed
    certificate there (both needed: NOTES.md)."""
    return [f"--origin-to-force-quic-on={host}:{port}", f"--ignore-certificate-errors-spki-list={spki_b64}"]


class Browser:
    """One headless Chromium and a plain http page origin on loopback to run probes from."""

    def __init__(self, flags: list[str] = ()):
        self._tmp = Path(tempfile.mkdtemp(prefix="socketiwa-chromium-"))
        site = self._tmp / "site"
        site.mkdir()
        (site / "blank.html").write_text("<!doctype html><title>socketiwa probe</title>")
        self.http, port = serve_dir(site)
        self.page_url = f"http://127.0.0.1:{port}/blank.html"
        self.cdp = launch_chromium(self._tmp / "chromium", flags=["--disable-component-update", *flags])

    def open(self, url: str | None = None, timeout: float = 20) -> str:
        """A new tab at url (default the blank http page), loaded. Returns its CDP session."""
        url = url or self.page_url
        _, session = self.cdp.open_page(url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:  # a new tab is a complete about:blank before it navigates: check both
                state = self.cdp.evaluate(session, "[location.href, document.readyState]", timeout=5)
                if state == [url, "complete"]:
                    return session
            except Exception:
                pass  # still navigating
            time.sleep(0.05)
        raise TimeoutError(f"page {url} did not load within {timeout} s")

    def run(self, session: str, function_source: str, *args, timeout: float = 60):
        """Call an async JS function (given as source) with JSON arguments in the page."""
        expr = f"({function_source})({', '.join(json.dumps(a) for a in args)})"
        return self.cdp.evaluate(session, expr, timeout=timeout)

    @property
    def console(self) -> list[str]:
        return self.cdp.console

    def close(self) -> None:
        close_chromium(self.cdp)
        self.http.shutdown()
        import shutil
        shutil.rmtree(self._tmp, ignore_errors=True)


@contextlib.contextmanager
def browser(flags: list[str] = ()):
    b = Browser(flags)
    try:
        yield b
    finally:
        b.close()


# An in-page WebTransport client exercising a server that behaves as tests/test_webtransport_
# chromium.py's handler: on accept it opens a uni stream "server-uni-hello" and a bidi stream
# "server-bidi-hello"; echoes datagrams ("echo:" prefix); echoes bidi streams; answers a uni
# stream with a new uni stream "uni-echo:<data>"; resets a bidi stream that says "reset-me" with
# code 42; closes the session (4242, "server-bye") on the datagram "close-me".
WEBTRANSPORT_PROBE = r"""
async (url, hashB64, nDatagrams) => {
  const out = {steps: []};
  const enc = new TextEncoder(), dec = new TextDecoder();
  const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
      setTimeout(() => rej(new Error('timeout: ' + what)), ms))]);
  const readAll = async (readable) => {
    const r = readable.getReader(); let s = '';
    for (;;) { const {value, done} = await within(r.read(), 5000, 'read');
               if (done) return s; s += dec.decode(value, {stream: true}); }
  };
  const closeInfo = (i) => ({closeCode: i.closeCode, reason: i.reason});
  const hash = Uint8Array.from(atob(hashB64), c => c.charCodeAt(0));
  const options = {serverCertificateHashes: [{algorithm: 'sha-256', value: hash}]};
  try {
    const t0 = performance.now();
    const wt = new WebTransport(url, options);
    await within(wt.ready, 10000, 'ready');
    out.readyMs = performance.now() - t0;
    out.steps.push('ready');
    const uni = wt.incomingUnidirectionalStreams.getReader();
    const bidi = wt.incomingBidirectionalStreams.getReader();
    out.serverUni = await readAll((await within(uni.read(), 5000, 'incoming uni')).value);
    out.serverBidi = await readAll((await within(bidi.read(), 5000, 'incoming bidi')).value.readable);
    out.steps.push('server streams');

    const dw = wt.datagrams.writable.getWriter(), dr = wt.datagrams.readable.getReader();
    out.maxDatagramSize = wt.datagrams.maxDatagramSize;
    let echoed = 0; const rtts = [];
    for (let i = 0; i < nDatagrams; i++) {
      const s = performance.now();
      await dw.write(enc.encode('dg-' + i));
      try {
        const {value} = await within(dr.read(), 2000, 'datagram');
        if (dec.decode(value) === 'echo:dg-' + i) echoed++;
        rtts.push(performance.now() - s);
      } catch (e) { out.steps.push('datagram ' + i + ' lost'); }
    }
    rtts.sort((a, b) => a - b);
    out.datagramsEchoed = echoed;
    out.datagramRttMedianMs = rtts[rtts.length >> 1];
    dw.releaseLock(); dr.releaseLock();

    const payload = 'b'.repeat(100000);
    const bs = await wt.createBidirectionalStream();
    const bw = bs.writable.getWriter();
    await bw.write(enc.encode(payload)); await bw.close();
    out.bidiEchoOk = (await readAll(bs.readable)) === payload;
    out.steps.push('bidi');

    const us = await wt.createUnidirectionalStream();
    const uw = us.getWriter(); await uw.write(enc.encode('hello uni')); await uw.close();
    out.uniEcho = await readAll((await within(uni.read(), 5000, 'uni echo')).value);
    out.steps.push('uni');

    const rs = await wt.createBidirectionalStream();
    const rw = rs.writable.getWriter(); await rw.write(enc.encode('reset-me')); await rw.close();
    try { await readAll(rs.readable); out.serverReset = 'not reset'; }
    catch (e) { out.serverReset = {name: e.name, streamErrorCode: e.streamErrorCode}; }
    out.steps.push('server reset');

    const as = await wt.createBidirectionalStream();
    const aw = as.writable.getWriter(); await aw.write(enc.encode('abort-me'));
    await aw.abort(new WebTransportError({message: 'client abort', streamErrorCode: 9}));
    out.steps.push('client reset');

    await new Promise(r => setTimeout(r, 100));
    wt.close({closeCode: 4000, reason: 'client-bye'});
    out.clientClose = closeInfo(await within(wt.closed, 5000, 'closed'));

    const wt2 = new WebTransport(url, options);
    await within(wt2.ready, 10000, 'ready 2');
    const w2 = wt2.datagrams.writable.getWriter(); await w2.write(enc.encode('close-me'));
    out.serverClose = closeInfo(await within(wt2.closed, 5000, 'closed 2'));

    // several sessions open at once (each its own connection: pooling cannot be combined
    // with serverCertificateHashes)
    const many = [0, 1, 2].map(i => new WebTransport(url + '?n=' + i, options));
    await within(Promise.all(many.map(w => w.ready)), 10000, 'ready many');
    out.manyEchoes = await Promise.all(many.map(async (w, i) => {
      const dw = w.datagrams.writable.getWriter(), dr = w.datagrams.readable.getReader();
      await dw.write(enc.encode('many-' + i));
      return dec.decode((await within(dr.read(), 3000, 'many datagram')).value);
    }));
    many.forEach((w, i) => w.close({closeCode: 100 + i, reason: 'many-' + i}));
    out.manyClosed = (await Promise.all(many.map(w => within(w.closed, 5000, 'closed many')))).map(closeInfo);
  } catch (e) {
    out.error = `${e && e.name}: ${e && e.message}` + (e && e.source ? ' source=' + e.source : '');
  }
  return out;
}
"""


# fetch and navigation over HTTP/3 (tests/test_h3_chromium.py's site: /bytes?n=, /echo, /hello/*)
FETCH_PROBE = r"""
async (base) => {
  const out = {};
  const entry = (url) => performance.getEntriesByName(url)[0];
  const nav = performance.getEntriesByType('navigation')[0];
  out.navigationProtocol = nav && nav.nextHopProtocol;
  out.title = document.title;
  // a body of 2 MB, by content and protocol
  let url = base + '/bytes?n=2000000';
  let t = performance.now();
  let r = await fetch(url, {cache: 'no-store'});
  const buf = new Uint8Array(await r.arrayBuffer());
  out.bytes = {status: r.status, length: buf.length, ms: performance.now() - t,
               protocol: entry(url).nextHopProtocol,
               digest: Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', buf)))
                 .map(b => b.toString(16).padStart(2, '0')).join('')};
  // an upload, echoed, with a request header the app answers
  url = base + '/echo';
  r = await fetch(url, {method: 'POST', body: 'x'.repeat(300000), headers: {'x-probe': 'yes'}});
  const text = await r.text();
  out.echo = {status: r.status, length: text.length, ok: text === 'x'.repeat(300000),
              probe: r.headers.get('x-probe-seen'), protocol: entry(url).nextHopProtocol};
  // many at once
  const urls = Array.from({length: 10}, (_, i) => base + '/hello/' + i);
  const texts = await Promise.all(urls.map(u => fetch(u).then(r => r.text())));
  out.parallel = {ok: texts.every((x, i) => x === 'hello /hello/' + i),
                  protocols: [...new Set(urls.map(u => entry(u).nextHopProtocol))]};
  // an error status passes through
  r = await fetch(base + '/missing');
  out.missing = r.status;
  return out;
}
"""


# resumption: a fetch, a /close-conn the server answers and then closes the connection after,
# and a fetch on the next connection (which Chromium opens with a ticket and 0-RTT)
RESUME_PROBE = r"""
async (base) => {
  const get = async (path) => {
    const url = base + path + '?' + Math.random();
    const t = performance.now(); const r = await fetch(url, {cache: 'no-store'}); const text = await r.text();
    return {status: r.status, text, ms: performance.now() - t,
            protocol: performance.getEntriesByName(url)[0].nextHopProtocol};
  };
  const out = {first: await get('/hello/first')};
  out.close = await get('/close-conn');
  await new Promise(r => setTimeout(r, 800));      // the server has closed the connection
  out.resumed = await get('/hello/resumed');
  return out;
}
"""


# WebSocket over HTTP/3 against an echo that upper-cases text, returns binary, and closes with
# (4001, "server-bye") on "close-me"
WS_PROBE = r"""
async (base, url) => {
  const out = {};
  const within = (p, ms, what) => Promise.race([p, new Promise((_, rej) =>
      setTimeout(() => rej(new Error('timeout: ' + what)), ms))]);
  const r = await fetch(base + '/warm', {mode: 'no-cors', credentials: 'include'});
  await r.arrayBuffer();
  out.warm = r.type;
  const open = (u) => new Promise((res, rej) => {
    const ws = new WebSocket(u); ws.binaryType = 'arraybuffer';
    ws.onopen = () => res(ws);
    ws.onclose = (e) => rej(new Error('closed before open: ' + e.code));
  });
  const next = (ws) => new Promise((res) => { ws.onmessage = (e) => res(e.data); });
  try {
    const t0 = performance.now();
    const ws = await within(open(url), 8000, 'open');
    out.openMs = performance.now() - t0;
    out.protocol = ws.protocol;
    const rtts = [];
    for (let i = 0; i < 10; i++) {
      const s = performance.now(); const got = next(ws); ws.send('m' + i);
      if (await within(got, 3000, 'echo') !== 'M' + i) out.mismatch = i;
      rtts.push(performance.now() - s);
    }
    rtts.sort((a, b) => a - b); out.echoRttMedianMs = rtts[5];
    const big = 'z'.repeat(200000);          // Chromium fragments large messages
    let got = next(ws); ws.send(big); out.bigOk = (await within(got, 5000, 'big')) === big.toUpperCase();
    got = next(ws); ws.send(new Uint8Array([1, 2, 3, 250]));
    out.binary = Array.from(new Uint8Array(await within(got, 3000, 'binary')));
    out.clientClose = await within(new Promise((res) => {
      ws.onclose = (e) => res({code: e.code, reason: e.reason, wasClean: e.wasClean});
      ws.close(4000, 'client-bye'); }), 5000, 'close');
    const ws2 = await within(open(url), 8000, 'open 2');
    out.serverClose = await within(new Promise((res) => {
      ws2.onclose = (e) => res({code: e.code, reason: e.reason, wasClean: e.wasClean});
      ws2.send('close-me'); }), 5000, 'server close');
  } catch (e) { out.error = String(e); }
  return out;
}
"""
