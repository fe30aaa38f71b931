// The UDP benchmark cases written directly against Direct Sockets in JavaScript, as a plain-JS
// app would, as fast as plain JS goes: the baseline that Python-in-the-IWA is compared with
// (bench_transport.py --runtimes iwa-js). Each function returns the same fields as
// bench/transport_cases.py.
// The lean loop a JS developer writes: await read(), write the next one without awaiting it.
// No per-packet timer: one interval watchdog cancels the reader if nothing arrived for 500 ms
// (a lost datagram), so the loop itself pays nothing for the loss check.
export async function udp_echo_rate(host, port, { window = 32, seconds = 2.0, size = 64 } = {}) {
  const s = new UDPSocket({ remoteAddress: host, remotePort: port });
  const info = await s.opened;
  const w = info.writable.getWriter();
  const r = info.readable.getReader();
  const msg = { data: new Uint8Array(size).fill(120) };
  let sent = 0, received = 0;
  for (let i = 0; i < window; i++) { w.write(msg); sent++; }
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let last = start;
  const watchdog = setInterval(() => { if (performance.now() - last > 500) r.cancel().catch(() => {}); }, 100);
  for (;;) {
    const { done } = await r.read();
    if (done) break;                 // cancelled by the watchdog: a lost datagram
    received++;
    last = performance.now();
    if (last < deadline) { w.write(msg); sent++; } else if (received >= sent) break;
  }
  clearInterval(watchdog);
  r.releaseLock(); w.releaseLock();
  await s.close().catch(() => {});
  const elapsed = (last - start) / 1000;
  return { window, sent, received, lost: sent - received, seconds: +elapsed.toFixed(3),
    round_trips_per_s: elapsed ? Math.round(received / elapsed) : 0 };
}

// transport_cases.py's udp_constant_rate: after the last send, wait until no echo came for
// `quiet` s (`max_wait` s at most); late = back more than `grace` s after the last send, lost =
// never back once the line went quiet, unresolved = still missing when max_wait ran out.
export async function udp_constant_rate(host, port, { rate = 2000, seconds = 2.0, size = 64,
  grace = 0.3, quiet = 1.0, max_wait = 30.0 } = {}) {
  const s = new UDPSocket({ remoteAddress: host, remotePort: port });
  const info = await s.opened;
  const w = info.writable.getWriter();
  const r = info.readable.getReader();
  const sentAt = new Map();
  const rtts = [];
  let lastRx = 0, lateAfter = Infinity, late = 0;
  const reader = (async () => {
    for (;;) {
      const { value, done } = await r.read().catch(() => ({ done: true }));
      if (done) break;
      const t = lastRx = performance.now();
      const i = new DataView(value.data.buffer, value.data.byteOffset).getUint32(0);
      const t0 = sentAt.get(i);
      if (t0 !== undefined) {
        sentAt.delete(i); rtts.push(t - t0);
        if (t > lateAfter) late++;
      }
    }
  })();
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < seconds * 1000) {
    const due = start + (n * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    const data = new Uint8Array(size);
    new DataView(data.buffer).setUint32(0, n);
    sentAt.set(n, performance.now());
    w.write({ data });
    n++;
  }
  const sendEnd = performance.now();
  lateAfter = sendEnd + grace * 1000;
  let drain = 'done';
  while (sentAt.size) {
    const t = performance.now();
    if (t - sendEnd > max_wait * 1000) { drain = 'limit'; break; }
    if (t - Math.max(lastRx, sendEnd) > quiet * 1000) { drain = 'quiet'; break; }
    await new Promise((res) => setTimeout(res, 10));
  }
  const waited = (performance.now() - sendEnd) / 1000;
  await r.cancel().catch(() => {});
  await reader;
  r.releaseLock(); w.releaseLock();
  await s.close().catch(() => {});
  rtts.sort((a, b) => a - b);
  const missing = n - rtts.length;
  return { rate, sent: n, received: rtts.length,
    median_rtt_us: rtts.length ? Math.round(rtts[rtts.length >> 1] * 1000) : null,
    late, lost: drain === 'limit' ? 0 : missing, unresolved: drain === 'limit' ? missing : 0, drain,
    waited_s: +waited.toFixed(3) };
}
