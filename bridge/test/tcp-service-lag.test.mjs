// A network service that does not run for a while (a loaded machine): Chromium 156 drops a
// write that starts on a full pipe, and a pipe nobody drains stays full. The harness models the
// lag (harness.setTiming({ serviceLagMs })); the adapter may not lose a byte under it.
// Found by tests/test_stress.py::test_stress_burst_tcp[iwa] at load 15-23, reproduced in the
// IWA by pausing Chromium's network-service process 20 ms at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import { TCPSocket, harness, install, TCP_PIPE_BYTES } from '../node/direct-sockets.mjs';
import { createBridge } from '../adapter.mjs';

install(globalThis);

const sleep = (ms) => new Promise((res) => { setTimeout(res, ms); });

// A TCP sink hashing what arrives; `got()` is what it has so far.
async function sink() {
  const h = crypto.createHash('sha256');
  let n = 0;
  const srv = net.createServer((c) => c.on('data', (d) => { h.update(d); n += d.length; }));
  await new Promise((res) => srv.listen(0, '127.0.0.1', res));
  return {
    port: srv.address().port,
    n: () => n,
    sha: () => h.copy().digest('hex'),
    async waitFor(total, ms = 3000) {
      for (let t = 0; t < ms && n < total; t += 10) await sleep(10);
      return n;
    },
    close: () => srv.close(),
  };
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function withLag(ms, fn) {
  const saved = harness.timing();
  harness.setTiming({ serviceLagMs: ms });
  try { return await fn(); } finally { harness.setTiming(saved); }
}

test('harness: a lagging network service leaves the pipe full, and a write started then is dropped', () => withLag(30, async () => {
  const s = await sink();
  const sock = new TCPSocket('127.0.0.1', s.port, { noDelay: true });
  const { writable } = await sock.opened;
  const w = writable.getWriter();
  const dropped = harness.tcpStats.dropped;
  const half = TCP_PIPE_BYTES / 2;
  await w.write(new Uint8Array(half));
  await sleep(3);                      // quiet, but the service has not run yet
  await w.write(new Uint8Array(half)); // fits exactly: the pipe is full
  await sleep(3);
  await w.write(new Uint8Array(100));  // resolves, yet never arrives
  assert.equal(await s.waitFor(TCP_PIPE_BYTES + 100, 500), TCP_PIPE_BYTES);
  assert.equal(harness.tcpStats.dropped - dropped, 1);
  w.releaseLock();
  await sock.close();
  s.close();
}));

test('adapter: sends after quiet periods lose nothing while the network service lags', () => withLag(30, async () => {
  // The adapter used to assume a pipe drained after 2 ms without writes: 40,000 + 32,768 bytes
  // went out as 32,768 + 32,768 (exactly full) + 7,232 (dropped).
  const bridge = createBridge(globalThis);
  const s = await sink();
  const h = await bridge.openTcp('127.0.0.1', s.port, '{"no_delay": true}');
  const data = crypto.randomBytes(40000 + 32768);
  const dropped = harness.tcpStats.dropped;
  h.write(data.subarray(0, 40000));
  h.write(data.subarray(40000));
  assert.equal(await s.waitFor(data.length), data.length);
  assert.equal(s.sha(), sha(data));
  const stats = JSON.parse(h.writeStats());
  assert.equal(stats.retries, harness.tcpStats.dropped - dropped);   // every drop was resent
  await h.close();
  s.close();
}));

test('adapter: a burst of small messages in batches (the stress case) arrives whole at every lag', async () => {
  const bridge = createBridge(globalThis);
  for (const [lagMs, batch, gapMs] of [[5, 64, 1], [20, 64, 3], [30, 121, 2], [30, 150, 3], [60, 200, 5]]) {
    await withLag(lagMs, async () => {
      const s = await sink();
      const h = await bridge.openTcp('127.0.0.1', s.port, '{"no_delay": true}');
      const data = crypto.randomBytes(2000 * 270);
      const dropped = harness.tcpStats.dropped;
      for (let i = 0; i < 2000; i++) {
        const room = h.write(data.subarray(i * 270, (i + 1) * 270));
        if (room) await room;
        if (i % batch === batch - 1) await sleep(gapMs);
      }
      const label = `lag ${lagMs} ms, batches of ${batch}, ${gapMs} ms apart`;
      assert.equal(await s.waitFor(data.length), data.length, label);
      assert.equal(s.sha(), sha(data), label);
      assert.equal(JSON.parse(h.writeStats()).retries, harness.tcpStats.dropped - dropped, label);
      await h.close();
      s.close();
    });
  }
});
