// The stress profiles written directly against Direct Sockets in JavaScript: the baseline the
// same profiles in Python (bench/stress/cases.py) are compared with, in the same IWA page.
// This is the lean code a JS developer would write: one read loop per socket, writes not
// awaited one by one (only `writer.ready` when the stream says it is full), no per-packet timers,
// no Promise.race. Packets, schedules and returned fields are those of cases.py.
const HEAD = 16;              // flow u32, seq u32, send time f64 (ms, performance.now)
const BIN_MS = 100;
const ABORT_FLOWS = 5000;     // chaos: aborted TCP connections' flow ids start this far above the base
const GRACE = 0.3;            // s after a flow's last send within which an echo is on time, not late
const BUFFER = 4 << 20;
const MAX_QUEUED = 1024;      // datagrams queued in a UDP writable before the sender waits
const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A zero-delay yield without setTimeout's 4 ms clamp on nested timers.
const yieldTask = () => (globalThis.scheduler?.yield ? scheduler.yield() : sleep(0));

class Rng {            // mulberry32, the same sequence as cases.py's Rng
  constructor(seed) { this.state = seed >>> 0; }
  random() {
    this.state = (this.state + 0x6D2B79F5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo, hi) { return lo + Math.floor(this.random() * (hi - lo + 1)); }
}

function packet(flow, seq, size) {
  const buf = new Uint8Array(size);
  buf.fill(seq & 0xff, HEAD);
  const v = new DataView(buf.buffer);
  v.setUint32(0, flow >>> 0);
  v.setUint32(4, seq);
  v.setFloat64(8, now());
  return buf;
}

function bump(bins, start, t) {
  const i = Math.floor((t - start) / BIN_MS);
  while (bins.length <= i) bins.push(0);
  bins[i]++;
}

const WINDOW = 1 << 20;        // sequence numbers a SeqWindow tracks below the highest seen
const MISSING_RUNS = 20;

// Which sequence numbers arrived, in bounded memory (cases.py's SeqWindow): one bit each over a
// window ending at the highest seen, grown by doubling up to `window` bits, then sliding;
// numbers sliding out unseen are recorded as missing. Below the window: `stale`.
class SeqWindow {
  constructor(window = WINDOW) {
    this.window = window; this.cap = 64; this.bits = new Uint8Array(this.cap >> 3);
    this.base = 0; this.count = 0; this.stale = 0; this.slidMissing = 0; this.runs = [];
  }
  has(seq) {
    if (seq < this.base || seq >= this.base + this.cap) return false;
    const i = seq & (this.cap - 1);
    return (this.bits[i >> 3] & (1 << (i & 7))) !== 0;
  }
  add(seq) {             // 1: new, 0: a duplicate, -1: stale
    if (seq < this.base) { this.stale++; return -1; }
    if (seq >= this.base + this.cap) {
      if (this.cap < this.window) {          // still linear from 0: grow in place
        let cap = this.cap;
        while (cap <= seq && cap < this.window) cap *= 2;
        const bits = new Uint8Array(cap >> 3);
        bits.set(this.bits);
        this.bits = bits; this.cap = cap;
      }
      if (seq >= this.base + this.cap) this.slide(seq - this.cap + 1);
    }
    const i = seq & (this.cap - 1), mask = 1 << (i & 7);
    if (this.bits[i >> 3] & mask) return 0;
    this.bits[i >> 3] |= mask;
    this.count++;
    return 1;
  }
  slide(newBase) {
    const bits = this.bits, cap = this.cap, end = Math.min(newBase, this.base + cap);
    let seq = this.base;
    while (seq < end) {
      const i = seq & (cap - 1);
      if ((i & 7) === 0 && seq + 8 <= end && bits[i >> 3] === 0xff) { bits[i >> 3] = 0; seq += 8; continue; }
      const mask = 1 << (i & 7);
      if (bits[i >> 3] & mask) bits[i >> 3] &= ~mask; else this.noteMissing(seq, seq);
      seq++;
    }
    if (newBase > end) this.noteMissing(end, newBase - 1);
    this.base = newBase;
  }
  noteMissing(first, last) {
    this.slidMissing += last - first + 1;
    const runs = this.runs;
    if (runs.length && runs[runs.length - 1][1] === first - 1) runs[runs.length - 1][1] = last;
    else if (runs.length < MISSING_RUNS) runs.push([first, last]);
  }
  missing(sent) {
    const out = this.runs.map((r) => [...r]);
    let seq = this.base;
    while (seq < sent && out.length <= MISSING_RUNS) {
      const i = seq & (this.cap - 1);
      if ((i & 7) === 0 && seq + 8 <= Math.min(sent, this.base + this.cap) && this.bits[i >> 3] === 0xff) { seq += 8; continue; }
      if (!this.has(seq)) {
        if (out.length && out[out.length - 1][1] === seq - 1) out[out.length - 1][1] = seq;
        else if (out.length < MISSING_RUNS) out.push([seq, seq]);
        else break;
      }
      seq++;
    }
    return out;
  }
}

// Round trips in cases.py's RttHist buckets: exact below 128 us, then 64 per octave.
const HIST_BUCKETS = 64 * 27;
function histBucket(us) {
  if (us < 128) return Math.max(us, 0);
  us = Math.min(us, 2 ** 31 - 1);
  const e = 31 - Math.clz32(us);
  return 64 * (e - 5) + (us >>> (e - 6)) - 64;
}
function histLower(b) {
  if (b < 128) return b;
  const e = Math.floor(b / 64) + 5;
  return ((b % 64) + 64) * 2 ** (e - 6);
}
class RttHist {
  constructor() { this.counts = new Float64Array(HIST_BUCKETS); this.n = 0; this.min = null; this.max = null; }
  add(us) {
    this.counts[histBucket(us)]++; this.n++;
    if (this.min === null || us < this.min) this.min = us;
    if (this.max === null || us > this.max) this.max = us;
  }
  merge(o) {
    for (let i = 0; i < HIST_BUCKETS; i++) this.counts[i] += o.counts[i];
    this.n += o.n;
    for (const v of [o.min, o.max]) {
      if (v === null) continue;
      this.min = this.min === null ? v : Math.min(this.min, v);
      this.max = this.max === null ? v : Math.max(this.max, v);
    }
  }
  asObject() {
    const hist = [];
    for (let i = 0; i < HIST_BUCKETS; i++) if (this.counts[i]) hist.push([histLower(i), this.counts[i]]);
    return { rtt_hist: hist, rtt_min_us: this.min, rtt_max_us: this.max };
  }
}

// What came back on one flow (cases.py's Tally), in memory that does not grow per packet.
class Tally {
  constructor(flow, start) {
    this.flow = flow >>> 0; this.start = start; this.seen = new SeqWindow();
    this.duplicated = 0; this.out_of_order = 0; this.corrupt = 0; this.late = 0; this.maxSeq = -1;
    this.rtt = new RttHist(); this.recv_bins = []; this.lastRx = start; this.lateAfter = Infinity;
    this.segmentStarts = []; this.segmentCounts = [];
  }
  get received() { return this.seen.count; }
  addSegment(firstSeq) { this.segmentStarts.push(firstSeq); this.segmentCounts.push(0); return this.segmentStarts.length - 1; }
  add(data) {
    const t = now();
    this.lastRx = t;
    if (data.byteLength < HEAD) { this.corrupt++; return; }
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const flow = v.getUint32(0), seq = v.getUint32(4), sentAt = v.getFloat64(8);
    let ok = flow === this.flow;
    for (let i = HEAD; ok && i < data.byteLength; i++) ok = data[i] === (seq & 0xff);
    if (!ok) { this.corrupt++; return; }
    const fresh = this.seen.add(seq);
    if (fresh <= 0) { if (fresh === 0) this.duplicated++; return; }
    if (seq < this.maxSeq) this.out_of_order++; else this.maxSeq = seq;
    if (t > this.lateAfter) this.late++;
    for (let k = this.segmentStarts.length - 1; k >= 0; k--) {
      if (this.segmentStarts[k] <= seq) { this.segmentCounts[k]++; break; }
    }
    this.rtt.add(Math.round((t - sentAt) * 1000));
    bump(this.recv_bins, this.start, t);
  }
  result(sent, sentBins, sendEnd) {
    return { flow: this.flow, sent, received: this.received, missing: this.seen.missing(sent), duplicated: this.duplicated,
      out_of_order: this.out_of_order, corrupt: this.corrupt, stale: this.seen.stale, late: this.late,
      send_seconds: (sendEnd - this.start) / 1000,
      seconds: (Math.max(this.lastRx, sendEnd) - this.start) / 1000,
      ...this.rtt.asObject(), sent_bins: sentBins, recv_bins: this.recv_bins };
  }
}

// One socket with a read loop feeding the tally. send() applies the stream's backpressure only.
async function open(transport, host, port, tally) {
  if (transport === 'udp') {
    const socket = new UDPSocket({ remoteAddress: host, remotePort: port,
      receiveBufferSize: BUFFER, sendBufferSize: BUFFER });
    const { readable, writable } = await socket.opened;
    const reader = readable.getReader(), writer = writable.getWriter();
    const loop = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        tally.add(value.data);
      }
    })().catch(() => {});
    return {
      // Not awaited per datagram (each write settles in a task of its own): the stream queues
      // them. flush(), at each yield or tick, waits only while more than MAX_QUEUED datagrams
      // are queued (the stream's own high-water mark is one datagram, which would make every
      // send wait for a task).
      send(data) { writer.write({ data }).catch(() => {}); },
      async flush() { while (writer.desiredSize < -MAX_QUEUED) await writer.ready; },
      async close() { await reader.cancel().catch(() => {}); await loop; writer.releaseLock(); reader.releaseLock(); await socket.close().catch(() => {}); },
    };
  }
  const socket = new TCPSocket(host, port, { noDelay: true });
  const { readable, writable } = await socket.opened;
  const reader = readable.getReader(), writer = writable.getWriter();
  const state = { ended: false, error: null };
  const loop = (async () => {       // u32 length-prefixed messages
    let buf = new Uint8Array(0);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const merged = new Uint8Array(buf.length + value.length);
      merged.set(buf); merged.set(value, buf.length);
      let pos = 0;
      while (merged.length - pos >= 4) {
        const len = new DataView(merged.buffer, pos).getUint32(0);
        if (merged.length - pos - 4 < len) break;
        tally.add(merged.subarray(pos + 4, pos + 4 + len));
        pos += 4 + len;
      }
      buf = merged.slice(pos);
    }
  })().catch((e) => { state.error = e; }).finally(() => { state.ended = true; });
  return {
    state,
    async flush() { if (writer.desiredSize <= 0) await writer.ready; },
    async send(data) {
      const frame = new Uint8Array(4 + data.length);
      new DataView(frame.buffer).setUint32(0, data.length);
      frame.set(data, 4);
      if (writer.desiredSize <= 0) await writer.ready;
      return writer.write(frame);
    },
    async close() {
      await writer.close().catch(() => {});
      await reader.cancel().catch(() => {});
      await loop;
      writer.releaseLock(); reader.releaseLock();
      await socket.close().catch(() => {});
    },
    async abort() {
      await writer.abort().catch(() => {});
      await reader.cancel().catch(() => {});
      await loop;
      writer.releaseLock(); reader.releaseLock();
      await socket.close().catch(() => {});
    },
  };
}

// Wait until the line goes quiet: 'done' (all back), 'idle' (nothing for idleS: the rest never
// arrived) or 'limit' (still coming at limitS: the rest is unresolved, not known lost).
async function drain(tally, expected, sendEnd, idleS, limitS) {
  const giveUp = sendEnd + limitS * 1000;
  while (tally.received < expected) {
    const t = now();
    if (t > giveUp) return 'limit';
    if (t - Math.max(tally.lastRx, sendEnd) > idleS * 1000) return 'idle';
    await sleep(10);
  }
  return 'done';
}

// cases.py's _ending: lost only when the line went quiet, unresolved when the wait hit its limit.
function ending(out, how) {
  const missing = (out.expected_back ?? out.sent) - out.received;
  return { ...out, drain: how, unresolved: how === 'limit' ? missing : 0, lost: how === 'limit' ? 0 : missing };
}

async function burst(host, port, flow, { transport = 'udp', count = 50000, size = 64,
  idle = 1.0, limit = 60.0, yield_every = 64, echo_every = 16, grace = GRACE } = {}) {
  let expected = count;
  if (transport === 'udp') { flow = (flow | (echo_every << 24)) >>> 0; expected = Math.ceil(count / echo_every); }
  const tally = new Tally(flow, now());
  const sock = await open(transport, host, port, tally);
  const start = tally.start = now();
  const sentBins = [];
  for (let seq = 0; seq < count; seq++) {
    // TCP: writes are not awaited one by one (the stream queues them), as a JS app would write.
    sock.send(packet(flow, seq, size));
    bump(sentBins, start, now());
    if (seq % yield_every === yield_every - 1) { await sock.flush(); await yieldTask(); }
  }
  const sendEnd = now();
  tally.lateAfter = sendEnd + grace * 1000;
  const how = await drain(tally, expected, sendEnd, transport === 'udp' ? idle : Math.max(idle, 5), limit);
  await sock.close();
  return ending({ ...tally.result(count, sentBins, sendEnd), expected_back: expected }, how);
}

async function paced(host, port, flow, steps, { transport = 'udp', size = 64, idle = 1.0,
  stop_loss = null, min_achieved = 0.8, grace = GRACE, tick = 0.001, limit = 30 } = {}) {
  const tally = new Tally(flow, now());
  const sock = await open(transport, host, port, tally);
  const start = tally.start = now();
  const sentBins = [];
  const stepResults = [];
  let seq = 0;
  for (const [rate, seconds] of steps) {
    const first = seq;
    const segment = tally.addSegment(first);
    const stepStart = now();
    const target = Math.max(1, Math.floor(rate * seconds));
    for (;;) {
      const elapsed = (now() - stepStart) / 1000;
      // The last tick may overshoot the step: top up to the step's count before leaving,
      // unless the sender is far behind (more than a tenth short: it cannot keep up, and a
      // catch-up burst would hide that).
      let due = Math.min(target, Math.floor(rate * elapsed) + 1);
      if (elapsed >= seconds) due = target - (seq - first) <= Math.floor(target / 10) ? target : seq - first;
      while (seq - first < due) {
        sock.send(packet(flow, seq, size));
        bump(sentBins, start, now());
        seq++;
      }
      if (elapsed >= seconds) break;
      await sock.flush();
      await sleep(tick * 1000);
    }
    const stepSeconds = (now() - stepStart) / 1000;
    const step = { rate, seconds: stepSeconds, sent: seq - first, achieved_rate: Math.round((seq - first) / stepSeconds) };
    stepResults.push(step);
    if (stop_loss !== null) {
      await sleep(grace * 1000);
      step.on_time = tally.segmentCounts[segment];
      const lost = 1 - step.on_time / Math.max(1, step.sent);
      if (lost > stop_loss || step.achieved_rate < min_achieved * rate) break;
    }
  }
  const sendEnd = now();
  tally.lateAfter = sendEnd + grace * 1000;
  const how = await drain(tally, seq, sendEnd, transport === 'udp' ? idle : Math.max(idle, 5), limit);
  stepResults.forEach((s, i) => { s.received = tally.segmentCounts[i]; });
  await sock.close();
  return ending({ ...tally.result(seq, sentBins, sendEnd), steps: stepResults }, how);
}

// ---------------------------------------------------------------- chaos (cases.py's Chaos)
async function chaos(host, ports, flowBase, { seconds = 10, seed = 1, max_tasks = 8 } = {}) {
  const rng = new Rng(seed);
  const start = now();
  let nextFlow = flowBase, nextAbortFlow = flowBase + ABORT_FLOWS;   // cases.py's Chaos
  const udp = { flows: [], sent: 0, received: 0, duplicated: 0, out_of_order: 0, corrupt: 0,
    late: 0, lost: 0, unresolved: 0 };
  const tcp = { connections: 0, messages_sent: 0, messages_back: 0, bytes_sent: 0, lost: 0,
    unresolved: 0, late: 0, duplicated: 0, out_of_order: 0, corrupt: 0, aborted: 0,
    aborted_sent: 0, aborted_unanswered: 0, unfinished_idle: 0, unfinished_limit: 0 };
  const vanish = { connections: 0, ended_by_peer: 0, typed_send_errors: 0 };
  const refused = { attempts: 0, typed_errors: 0 };
  const blackhole = { sockets: 0, sent: 0, received: 0 };
  const rtt = new RttHist(), recvBins = [], sentBins = [], unexpected = [];
  let actions = 0;
  const merge = (t) => {
    rtt.merge(t.rtt);
    while (recvBins.length < t.recv_bins.length) recvBins.push(0);
    t.recv_bins.forEach((n, i) => { recvBins[i] += n; });
  };

  async function udpFlow(r) {
    const flow = nextFlow++;
    const count = r.int(10, 400), size = r.int(HEAD, 1400), rate = r.int(500, 20000);
    const tally = new Tally(flow, start);
    const sock = await open('udp', host, ports.udp, tally);
    const t0 = now();
    for (let seq = 0; seq < count; seq++) {
      const wait = t0 + (seq * 1000) / rate - now();
      if (wait > 1) await sleep(wait);
      sock.send(packet(flow, seq, size));
      bump(sentBins, start, now());
      if (seq % 64 === 63) await sock.flush();
    }
    const sendEnd = now();
    tally.lateAfter = sendEnd + GRACE * 1000;
    const how = await drain(tally, count, sendEnd, 0.5, 5);
    await sock.close();
    udp.flows.push(flow); udp.sent += count;
    udp[how === 'limit' ? 'unresolved' : 'lost'] += count - tally.received;
    for (const k of ['received', 'duplicated', 'out_of_order', 'corrupt', 'late']) udp[k] += tally[k];
    merge(tally);
  }

  async function tcpConn(r) {
    const count = r.int(1, 200);
    const abortAfter = r.random() < 0.2 ? r.int(0, count) : null;
    const flow = abortAfter === null ? nextFlow++ : nextAbortFlow++;
    const tally = new Tally(flow, start);
    const conn = await open('tcp', host, ports.tcp, tally);
    tcp.connections++;
    let sent = 0;
    for (let seq = 0; seq < count; seq++) {
      if (seq === abortAfter) break;
      const size = r.int(HEAD, 16384);
      conn.send(packet(flow, seq, size)).catch(() => {});
      bump(sentBins, start, now());
      tcp.bytes_sent += size; sent++;
      if (r.random() < 0.1) await sleep(r.random() * 10);
    }
    if (abortAfter !== null) {
      await conn.abort();
      tcp.aborted++; tcp.aborted_sent += sent; tcp.aborted_unanswered += sent - tally.received;
    } else {
      const sendEnd = now();
      tally.lateAfter = sendEnd + GRACE * 1000;
      const ended = await drain(tally, sent, sendEnd, 5, 20);
      await conn.close();
      tcp[ended === 'limit' ? 'unresolved' : 'lost'] += sent - tally.received;
      if (ended !== 'done') tcp[`unfinished_${ended}`]++;
    }
    tcp.messages_sent += sent; tcp.messages_back += tally.received;
    for (const k of ['duplicated', 'out_of_order', 'corrupt', 'late']) tcp[k] += tally[k];
    merge(tally);
  }

  async function vanishingPeer(r) {
    const flow = nextFlow++;
    const tally = new Tally(flow, start);
    const conn = await open('tcp', host, ports.vanish, tally);
    vanish.connections++;
    const giveUp = now() + 10000;
    let seq = 0;
    while (!conn.state.ended && now() < giveUp) {
      try { await conn.send(packet(flow, seq++, r.int(HEAD, 4096))); } catch { vanish.typed_send_errors++; break; }
      await sleep(2);
    }
    const endBy = now() + 5000;
    while (!conn.state.ended && now() < endBy) await sleep(10);
    if (conn.state.ended) vanish.ended_by_peer++;
    else unexpected.push(`vanish flow ${flow}: the read loop did not end within 5 s of the reset`);
    await conn.abort();
  }

  async function refusedConnect() {
    refused.attempts++;
    const socket = new TCPSocket(host, ports.closed);
    try { await socket.opened; } catch (e) { if (e.name === 'NetworkError') refused.typed_errors++; else unexpected.push(`refused: ${e.name}`); return; }
    await socket.close();
    unexpected.push('connect to a closed port succeeded');
  }

  async function blackholeUdp(r) {
    const tally = new Tally(0, start);
    const sock = await open('udp', host, ports.udp_blackhole, tally);
    blackhole.sockets++;
    const n = r.int(1, 100);
    for (let seq = 0; seq < n; seq++) { sock.send(packet(0, seq, r.int(HEAD, 1400))); blackhole.sent++; }
    await sleep(50);
    await sock.close();
    blackhole.received += tally.received + tally.corrupt;
  }

  const kinds = [['udp', udpFlow, 4], ['tcp', tcpConn, 3], ['vanish', vanishingPeer, 1],
    ['refused', refusedConnect, 1], ['blackhole', blackholeUdp, 1]];
  const total = kinds.reduce((a, k) => a + k[2], 0);
  let tasks = new Set();
  const deadline = start + seconds * 1000;
  while (now() < deadline) {
    let pick = rng.random() * total;
    let chosen = kinds[kinds.length - 1];
    for (const k of kinds) { pick -= k[2]; if (pick < 0) { chosen = k; break; } }
    actions++;
    const sub = new Rng(rng.int(0, 2 ** 32 - 1));
    const task = chosen[1](sub).catch((e) => unexpected.push(`${chosen[0]}: ${e && e.name}: ${e && e.message}`));
    const entry = task.then(() => tasks.delete(entry));
    tasks.add(entry);
    if (tasks.size >= max_tasks) await Promise.race(tasks);   // bounded concurrency (not per packet)
    await sleep(rng.random() * 50);
  }
  const all = Promise.all(tasks).then(() => true);
  const finished = await Promise.race([all, sleep(40000).then(() => false)]);
  if (!finished) unexpected.push('an action still running 40 s after the end');
  return { seconds: (now() - start) / 1000, udp, tcp, vanish, refused, blackhole,
    actions, unexpected, sent: udp.sent + tcp.messages_sent,
    received: udp.received + tcp.messages_back, flow_range: [flowBase, nextFlow],
    aborted_flow_range: [flowBase + ABORT_FLOWS, nextAbortFlow],
    ...rtt.asObject(), sent_bins: sentBins, recv_bins: recvBins };
}

globalThis.__stress = { burst, paced, chaos, Rng, SeqWindow, RttHist, histBucket, histLower };
