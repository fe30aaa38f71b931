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
