// The adapter's push pumps (bridge/adapter.mjs) against the Node Direct Sockets harness, with a
// stand-in for Pyodide's side: a WebAssembly.Memory holds the "Python" receive buffer and send
// region, seen through objects shaped like PyProxy.getBuffer(), and the sink decodes them the way
// pkg/socketiwa/backends/directsockets.py does. Real sockets on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { install } from '../node/direct-sockets.mjs';
import { createBridge, EV_DATA, EV_EOF, EV_RESUME_WRITING, UDP_HEAD } from '../adapter.mjs';

install(globalThis);

const RECV = 256 * 1024;
const SEND = 64 * 1024;

// "Python's" memory: recv at 0, send after it, in a wasm memory that tests can grow.
function fakePython() {
  const memory = new WebAssembly.Memory({ initial: 8, maximum: 4096 });   // 512 KiB pages
  const region = (offset, length) => ({
    getBuffer() { return { data: new Uint8Array(memory.buffer, offset, length), release() {} }; },
  });
  const bridge = createBridge(globalThis);
  bridge.attachMemory(region(0, RECV), region(RECV, SEND));
  const recv = () => new Uint8Array(memory.buffer, 0, RECV);
  const send = () => new Uint8Array(memory.buffer, RECV, SEND);
  return { memory, bridge, recv, send };
}

// A sink decoding UDP deliveries as directsockets.py does.
function udpSink(py, onCall = () => {}) {
  const got = [];
  const calls = [];
  const sink = (kind, a, b) => {
    calls.push([kind, a, b]);
    onCall(kind, a, b);
    if (kind !== EV_DATA) return;
    const u8 = py.recv();
    const view = new DataView(u8.buffer, u8.byteOffset);
    let pos = 0;
    for (let i = 0; i < a; i++) {
      const len = view.getUint32(pos, true);
      const port = view.getUint16(pos + 4, true);
      const alen = u8[pos + 6];
      pos += UDP_HEAD;
      const address = String.fromCharCode(...u8.subarray(pos, pos + alen));
      pos += alen;
      got.push({ data: Buffer.from(u8.subarray(pos, pos + len)).toString(), address, port });
      pos += len;
    }
    assert.equal(pos, b);
  };
  return { sink, got, calls };
}

function udpEcho() {
  const s = dgram.createSocket('udp4');
  s.echoed = 0;
  s.on('message', (m, r) => s.send(m, r.port, r.address, () => { s.echoed++; }));
  return new Promise((res) => s.bind(0, '127.0.0.1', () => res(s)));
}

const until = async (cond, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

function sendText(py, h, text, address, port) {
  const bytes = Buffer.from(text);
  py.send().set(bytes);
  return address ? h.sendTo(bytes.length, address, port) : h.sendFrom(bytes.length);
}

test('UDP pump: every datagram in order, several per call when they are already queued', async () => {
  const echo = await udpEcho();
  const py = fakePython();
  const h = await py.bridge.openUdp(JSON.stringify({ remote_address: '127.0.0.1', remote_port: echo.address().port }));
  const { sink, got, calls } = udpSink(py);
  h.start(sink);
  h.pause();
  for (let i = 0; i < 40; i++) sendText(py, h, `m${i}`);
  // All echoed (counted, not a fixed sleep: under load 200 ms was not enough), then a moment to
  // reach the harness's readable.
  await until(() => echo.echoed === 40);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(got.length, 0, 'nothing is delivered while paused');
  h.resume();
  await until(() => got.length === 40);
  assert.deepEqual(got.map((g) => g.data), Array.from({ length: 40 }, (_, i) => `m${i}`));
  assert.ok(got.every((g) => g.address === '' && g.port === 0), 'connected: no address per datagram');
  const dataCalls = calls.filter(([k]) => k === EV_DATA);
  assert.ok(dataCalls.length < 10, `batched: ${dataCalls.length} calls for 40 datagrams`);
  await h.close();
  const before = calls.length;
  echo.send(Buffer.from('late'), h.info.localPort, '127.0.0.1');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(calls.length, before, 'no call after close');
  assert.equal(h.sink, null, 'the handle no longer holds the Python function');
  echo.close();
});

test('UDP pump: bound sockets get the sender; a throwing sink does not stop the pump', async () => {
  const echo = await udpEcho();
  const py = fakePython();
  const h = await py.bridge.openUdp(JSON.stringify({ local_address: '127.0.0.1' }));
  let first = true;
  const { sink, got } = udpSink(py, (kind) => {
    if (kind === EV_DATA && first) { first = false; throw new Error('sink bug'); }
  });
  const errors = [];
  const origError = console.error;
  console.error = (...a) => errors.push(a);
  try {
    h.start(sink);
    sendText(py, h, 'a', '127.0.0.1', echo.address().port);
    await until(() => h.sinkErrors === 1);
    sendText(py, h, 'b', '127.0.0.1', echo.address().port);
    await until(() => got.length === 1);
  } finally {
    console.error = origError;
  }
  assert.equal(errors.length, 1);
  // The call that threw lost its own datagram (the sink never decoded it); the next one arrives.
  assert.deepEqual(got.map((g) => [g.data, g.address, g.port]), [['b', '127.0.0.1', echo.address().port]]);
  await h.close();
  echo.close();
});

test('UDP pump: deliveries stay right after the wasm heap grows during a call', async () => {
  const echo = await udpEcho();
  const py = fakePython();
  const h = await py.bridge.openUdp(JSON.stringify({ remote_address: '127.0.0.1', remote_port: echo.address().port }));
  const { sink, got } = udpSink(py, (kind) => { if (kind === EV_DATA) py.memory.grow(16); });
  h.start(sink);
  for (let i = 0; i < 5; i++) {
    sendText(py, h, `g${i}`);   // the send region view is re-read too
    await until(() => got.length === i + 1);
  }
  assert.deepEqual(got.map((g) => g.data), ['g0', 'g1', 'g2', 'g3', 'g4']);
  assert.ok(py.bridge.memoryRefreshes() >= 8, `views re-read: ${py.bridge.memoryRefreshes()}`);
  await h.close();
  echo.close();
});

test('TCP pump: 8 MB both ways through Python memory, backpressure, EOF, nothing lost', async () => {
  const received = [];
  let serverSide;
  const srv = net.createServer((c) => {
    serverSide = c;
    c.pause();                       // reads nothing at first: our writes must pause
    c.on('data', (d) => received.push(d));
  });
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  const py = fakePython();
  const h = await py.bridge.openTcp('127.0.0.1', srv.address().port, '{}');
  const events = [];
  const incoming = [];
  h.start((kind, a) => {
    events.push(kind);
    if (kind === EV_DATA) incoming.push(Buffer.from(py.recv().subarray(0, a)));
  });
  const data = crypto.randomBytes(8 << 20);
  let paused = 0;
  for (let i = 0; i < data.length; i += 1000) {
    const piece = data.subarray(i, i + 1000);
    py.send().set(piece);
    if (h.writeFrom(piece.length)) paused++;
  }
  assert.ok(paused > 0, 'writeFrom said to pause');
  await until(() => serverSide);
  serverSide.resume();
  await until(() => events.includes(EV_RESUME_WRITING), 20000);
  await until(() => received.reduce((n, d) => n + d.length, 0) >= data.length, 30000);
  assert.ok(Buffer.concat(received).equals(data));
  // The other way, then the peer's FIN.
  const back = crypto.randomBytes(8 << 20);
  serverSide.end(back);
  await until(() => events.includes(EV_EOF), 20000);
  assert.ok(Buffer.concat(incoming).equals(back));
  assert.equal(events.indexOf(EV_EOF), events.length - 1, 'EOF comes last');
  await h.close();
  srv.close();
});
