// socketiwa JS adapter: what Python in Pyodide calls to reach Direct Sockets.
//
// The push protocol (issue 9). JS owns every socket's receive loop ("pump") and calls ONE
// long-lived Python function per socket, created when Python starts the socket and destroyed when
// it ends: sink(kind, a, b) with plain ints, never a promise Python has to await.
//   EV_DATA   a = datagrams (UDP) or bytes (TCP), b = bytes used in the receive buffer
//   EV_EOF    the readable ended (TCP: the peer's FIN)
//   EV_ERROR  the readable failed; the error is handle.errorName / handle.errorMessage
//   EV_RESUME_WRITING  queued sends drained below the low-water mark
//   EV_WRITE_ERROR     a send failed after it was queued (same error fields)
//   EV_ACCEPT a = the accepted connection's TcpHandle (servers only)
// Bytes never cross as JS objects: Python owns two bytearrays in wasm memory (attachMemory), a
// receive buffer the pumps fill before calling the sink (UDP: a batch of every datagram already
// queued, each `u32 length, u16 port, u8 address length, address (ASCII), data`, little-endian;
// the address is empty on connected sockets) and a send region Python fills before calling
// sendFrom/sendTo/writeFrom, which copy it out and write without Python awaiting anything.
// Views of wasm memory are re-read after the heap grows (PyMemory). Backpressure: sends return 1
// when the queue passed its high-water mark (Python then pauses its writer) and EV_RESUME_WRITING
// follows; pause()/resume() stop and restart a pump. A sink that throws never stops a pump.
//
// The page (iwa-shell loader, or bridge/register-adapter.mjs under Node) does:
//   globalThis.socketiwaBridge = createBridge();

export const EV_DATA = 0;
export const EV_EOF = 1;
export const EV_ERROR = 2;
export const EV_RESUME_WRITING = 3;
export const EV_WRITE_ERROR = 4;
export const EV_ACCEPT = 5;

export const UDP_HEAD = 7;
const UDP_MAX_BATCH = 256;             // datagrams per sink call
const UDP_WRITE_HIGH_WATER = 256 << 10; // bytes sent but not yet taken by the socket: pause Python
const UDP_WRITE_LOW_WATER = 64 << 10;   // ... and resume it below this
const PUMP_BUDGET_MS = 8;              // a pump that never waits yields a task after this long

const nextTask = (ms = 0) => new Promise((resolve) => { setTimeout(resolve, ms); });
const ignore = () => {};

// A new task without setTimeout's clamping (nested timeouts wait >= 4 ms in browsers): a
// MessageChannel message in the page, setImmediate under Node.
const yieldTask = (() => {
  if (typeof setImmediate === 'function') return () => new Promise((resolve) => { setImmediate(resolve); });
  if (typeof MessageChannel === 'function') {
    const channel = new MessageChannel();
    const waiting = [];
    channel.port1.onmessage = () => { const resolve = waiting.shift(); if (resolve) resolve(); };
    return () => new Promise((resolve) => { waiting.push(resolve); channel.port2.postMessage(0); });
  }
  return () => nextTask();
})();

// Python-owned bytes in wasm memory, seen through a PyProxy of a bytearray. The Uint8Array view
// is detached when the wasm heap grows (its byteLength becomes 0): take a fresh one then. The
// bytearray cannot move while the buffer is held (Python forbids resizing an exported buffer).
export class PyMemory {
  constructor(proxy) {
    this.proxy = proxy;
    this.buffer = proxy.getBuffer('u8');
    this.view = this.buffer.data;
    this.refreshes = 0;
  }

  bytes() {
    if (this.view.byteLength === 0) this.refresh();
    return this.view;
  }

  refresh() {
    try { this.buffer.release(); } catch { /* the old view is gone already */ }
    this.buffer = this.proxy.getBuffer('u8');
    this.view = this.buffer.data;
    this.refreshes++;
  }

  release() {
    try { this.buffer.release(); } catch { /* released */ }
  }
}

// Resolves to the read result if `p` had already settled (the stream had a chunk queued), else
// to null, after two microtask ticks and no task: lets a pump batch what is already there.
function settledNow(p) {
  let out = null;
  p.then((v) => { out = v; }, ignore);
  return Promise.resolve().then(() => out);
}

function endpoints(info) {
  return JSON.stringify({
    local_address: info.localAddress ?? '', local_port: info.localPort ?? 0,
    remote_address: info.remoteAddress ?? null, remote_port: info.remotePort ?? null,
  });
}

// What every handle with a pump shares: the sink, pausing, the time budget, the error fields.
class Pumped {
  constructor(mem) {
    this.mem = mem;             // { recv: PyMemory, send: PyMemory } shared by all sockets
    this.sink = null;
    this.paused = false;
    this.resumeWaiter = null;
    this.errorName = '';
    this.errorMessage = '';
    this.sinkErrors = 0;
    this.busySince = 0;
    this.pending = null;          // the read in flight (pump, deliver)
    this.ended = false;           // the readable finished (EOF, error, or we cancelled it)
  }

  // The socket's Python function, given once when Python takes the socket (before start, so
  // write-side events reach it even while nothing is read).
  attach(sink) {
    if (this.sink || this.detached) throw new Error('socket already attached');
    this.sink = sink;
  }

  // Start the pump (once). `sink` may be given here instead of attach().
  start(sink) {
    if (this.started) throw new Error('socket already started');
    if (sink) this.attach(sink);
    if (!this.sink) throw new Error('start() before attach()');
    this.started = true;
    this.busySince = performance.now();
    this.pump();
  }

  pause() { this.paused = true; }
  resume() {
    this.paused = false;
    if (this.resumeWaiter) { const r = this.resumeWaiter; this.resumeWaiter = null; r(); }
  }

  async waitWhilePaused() {
    while (this.paused && this.sink) await new Promise((r) => { this.resumeWaiter = r; });
  }

  // Drop the sink: nothing is called after this (close, abort, or the end was reported).
  detach() {
    this.sink = null;
    this.detached = true;
    this.resume();
  }

  call(kind, a = 0, b = 0) {
    const sink = this.sink;
    if (!sink) return;
    try {
      sink(kind, a, b);
    } catch (e) {
      // Python reports its own callbacks' errors to the loop's exception handler; this is only
      // a failure of the call itself. Count it, say it, keep pumping.
      this.sinkErrors++;
      console.error('socketiwa: socket callback failed', e);
    }
  }

  fail(kind, e) {
    this.errorName = (e && e.name) || 'Error';
    this.errorMessage = (e && e.message) || String(e);
    this.call(kind);
  }

  // A pump that keeps finding data already queued runs only microtasks; after PUMP_BUDGET_MS
  // of that it gives the page a task (rendering, input, other sockets).
  async budget(waited) {
    const now = performance.now();
    if (waited) { this.busySince = now; return; }
    if (now - this.busySince > PUMP_BUDGET_MS) {
      await yieldTask();
      this.busySince = performance.now();
    }
  }

  // The next read result, and whether the pump had to wait for it (a task boundary).
  async next(pending) {
    const r = await settledNow(pending);
    if (r !== null) return [r, false];
    return [await pending, true];
  }

  // The receive loop of a socket with a readable (UDP, TCP): wait while paused, take the next
  // read, hand it and whatever else already arrived to Python (deliver(), per kind), give the
  // page a task when the budget says so; EOF or the error is reported once at the end.
  // this.pending is the read in flight (deliver() starts the next one).
  async pump() {
    try {
      this.pending = this.reader.read();
      for (;;) {
        if (this.paused) await this.waitWhilePaused();
        if (!this.sink) return;
        const [r, waited] = await this.next(this.pending);
        if (r.done) break;
        if (this.paused) await this.waitWhilePaused();   // paused while this read was pending
        if (!this.sink) return;
        if (!await this.deliver(r)) return;              // detached during the delivery
        await this.budget(waited);
      }
      this.ended = true;
      this.call(EV_EOF);
    } catch (e) {
      this.ended = true;
      if (this.sink) this.fail(EV_ERROR, e);
    }
  }
}

class UdpHandle extends Pumped {
  constructor(socket, info, mem) {
    super(mem);
    this.socket = socket;
    this.info = info;
    this.infoJson = endpoints(info);
    this.connected = info.remoteAddress !== undefined && info.remoteAddress !== null;
    this.reader = info.readable.getReader();
    this.writer = info.writable.getWriter();
    this.writeError = null;
    this.writePaused = false;
    this.pendingBytes = 0;        // sent, not yet taken by the socket
    this.inflight = [];           // their sizes, oldest first (writes settle in order)
    this.inflightHead = 0;
    this.onSent = () => this.settled();
    this.onSendFailed = (e) => {
      this.settled();
      if (!this.writeError) { this.writeError = e; this.fail(EV_WRITE_ERROR, e); }
    };
  }

  // One read result, and every datagram already queued behind it, into Python's receive buffer
  // and to Python in one call. Returns false if the socket was detached meanwhile.
  async deliver(r) {
    const recv = this.mem.recv;
    let u8 = recv.bytes();
    let count = 0;
    let pos = 0;
    for (;;) {
      const v = r.value;
      const data = v.data instanceof Uint8Array ? v.data : new Uint8Array(v.data);
      const addr = this.connected ? '' : (v.remoteAddress ?? '');
      const need = UDP_HEAD + addr.length + data.byteLength;
      if (pos + need > u8.byteLength) {   // buffer full: hand over what it holds first
        this.call(EV_DATA, count, pos);
        count = 0;
        pos = 0;
        u8 = recv.bytes();                 // the call may have grown the heap
      }
      const n = data.byteLength;
      u8[pos] = n & 0xff; u8[pos + 1] = (n >>> 8) & 0xff; u8[pos + 2] = (n >>> 16) & 0xff; u8[pos + 3] = n >>> 24;
      const port = this.connected ? 0 : (v.remotePort ?? 0);
      u8[pos + 4] = port & 0xff; u8[pos + 5] = port >>> 8;
      u8[pos + 6] = addr.length;
      pos += UDP_HEAD;
      for (let i = 0; i < addr.length; i++) u8[pos + i] = addr.charCodeAt(i);
      pos += addr.length;
      u8.set(data, pos);
      pos += n;
      count++;
      this.pending = this.reader.read();
      if (count >= UDP_MAX_BATCH) break;
      r = await settledNow(this.pending);  // more already queued? same batch
      if (r === null || r.done) break;
      if (!this.sink) return false;
      u8 = recv.bytes();
    }
    this.call(EV_DATA, count, pos);
    return true;
  }

  settled() {
    this.pendingBytes -= this.inflight[this.inflightHead++];
    if (this.inflightHead >= 1024 && this.inflightHead * 2 >= this.inflight.length) {
      this.inflight = this.inflight.slice(this.inflightHead);
      this.inflightHead = 0;
    }
    if (this.writePaused && this.pendingBytes <= UDP_WRITE_LOW_WATER) {
      this.writePaused = false;
      this.call(EV_RESUME_WRITING);
    }
  }

  write(msg, n) {
    if (this.writeError) throw this.writeError;
    this.writer.write(msg).then(this.onSent, this.onSendFailed);
    this.inflight.push(n);
    this.pendingBytes += n;
    if (!this.writePaused && this.pendingBytes >= UDP_WRITE_HIGH_WATER && !(this.writer.desiredSize > 0)) {
      this.writePaused = true;
      return 1;
    }
    return 0;
  }

  // Send the first n bytes of Python's send region (connected socket). Returns 1 when Python
  // should pause writing (EV_RESUME_WRITING follows), else 0. Throws once a send has failed.
  sendFrom(n) {
    return this.write({ data: this.mem.send.bytes().slice(0, n) }, n);
  }

  sendTo(n, address, port) {
    return this.write({ data: this.mem.send.bytes().slice(0, n), remoteAddress: address, remotePort: port }, n);
  }

  async close() {
    this.detach();
    try { await this.reader.cancel(); } catch { /* already errored */ }
    this.reader.releaseLock();
    try { await this.writer.close(); } catch { /* already errored */ }
    this.writer.releaseLock();
    await this.socket.close();
  }

  controller() {
    const mc = this.info.multicastController;
    if (!mc) {
      const e = new Error('this socket has no multicastController (needs bound mode and the direct-sockets-multicast policy)');
      e.name = 'NotSupportedError';
      throw e;
    }
    return mc;
  }
  join(group) { return this.controller().joinGroup(group); }
  leave(group) { return this.controller().leaveGroup(group); }
  joined() {
    const mc = this.info.multicastController;
    return JSON.stringify(mc ? Array.from(mc.joinedGroups) : []);
  }
}

// ---- TCP sends that survive Chromium 156's write loss (docs/chromium-tcp-write-loss.md)
// A TCPSocket write() that starts while its data pipe is exactly full is dropped by Chromium and
// its promise resolves anyway. A write LARGER than the pipe can only finish after the pipe drained
// (a task later), so if such a write settles before any task ran it was dropped, whole, and
// writing it again is exact. So: queue what Python sends, coalesce it, and write it in pieces
// larger than the pipe, checking each; a batch smaller than the pipe goes out unchecked only
// while it cannot fill the pipe (TcpSender.pump). The pipe size is measured once per page
// (measureTcpPipe) instead of trusted.
const DEFAULT_TCP_PIPE_BYTES = 64 * 1024;   // Chromium 156's TCPSocket data pipe (measured)
const TCP_WRITE_HIGH_WATER = 2 << 20;       // queued bytes before Python's write() waits
const TCP_CLOSE_LINGER_MS = 250;            // time after the last write for the pipe to drain
const TCP_QUIET_MS = 2;                     // no writes for this long: the pipe had time to drain
const tcpPipe = { bytes: DEFAULT_TCP_PIPE_BYTES, measured: false, probe: null };


// Writes `chunk`; resolves to true when the write settled before any task could run (it fitted in
// the pipe, or was dropped), false when it had to wait for the pipe. Rejects if the write failed.
async function writeSettlesWithoutTask(writer, chunk) {
  let settled = false;
  let failed = null;
  const p = writer.write(chunk).then(() => { settled = true; }, (e) => { settled = true; failed = e; });
  // Only microtasks run inside this loop: no task, so the network service cannot drain the pipe.
  for (let i = 0; i < 200 && !settled; i++) await null;
  const sync = settled;
  await p;
  if (failed) throw failed;
  return sync;
}

// One-time measurement: the largest write that an empty pipe takes without waiting. Loops a
// TCPSocket back to our own TCPServerSocket on 127.0.0.1 and binary-searches the size, reading
// every probe to the end so the pipe is empty before the next one.
export async function measureTcpPipe(g = globalThis, limit = 64 << 20) {
  const server = new g.TCPServerSocket('127.0.0.1');
  const { localPort, readable: accepted } = await server.opened;
  const client = new g.TCPSocket('127.0.0.1', localPort, { noDelay: true });
  const acceptReader = accepted.getReader();
  const [{ writable }, { value: peerSocket }] = await Promise.all([client.opened, acceptReader.read()]);
  const peer = await peerSocket.opened;
  const reader = peer.readable.getReader();
  const writer = writable.getWriter();
  const readBytes = async (n) => {
    for (let got = 0; got < n;) {
      const { value, done } = await reader.read();
      if (done) throw new Error('pipe probe: connection ended');
      got += value.byteLength;
    }
  };
  const fits = async (n) => {
    const arrived = readBytes(n);   // read while writing: a large probe needs the peer to read
    const sync = await writeSettlesWithoutTask(writer, new Uint8Array(n));
    await arrived;
    return sync;
  };
  try {
    let lo = 1024;     // fits without waiting
    let hi = 1 << 20;  // must be shown not to
    if (!await fits(lo)) throw new Error('pipe probe: even 1 KiB waits');
    while (await fits(hi)) {
      lo = hi;
      hi *= 2;
      if (hi > limit) throw new Error(`pipe probe: ${lo} bytes fit without waiting`);
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (await fits(mid)) lo = mid; else hi = mid;
    }
    return lo;
  } finally {
    for (const step of [() => writer.close(), () => writer.releaseLock(), () => reader.cancel(),
      () => reader.releaseLock(), () => acceptReader.cancel(), () => acceptReader.releaseLock(),
      () => client.close(), () => peerSocket.close(), () => server.close()]) {
      try { await step(); } catch { /* best effort */ }
    }
  }
}

function tcpPipeBytes(g) {
  if (tcpPipe.measured) return Promise.resolve(tcpPipe.bytes);
  if (!tcpPipe.probe) {
    tcpPipe.probe = measureTcpPipe(g).then((n) => { tcpPipe.bytes = n; tcpPipe.measured = true; return n; },
      () => tcpPipe.bytes);   // no loopback permission or no server socket: keep the default
  }
  return tcpPipe.probe;
}

class TcpSender {
  constructor(writer, pipeBytes) {
    this.writer = writer;
    this.pipeBytes = pipeBytes;
    this.piece = Math.max((1 << 20) + 3 * 1024, 4 * pipeBytes + 3 * 1024);   // not a multiple of the pipe
    this.queue = [];
    this.queued = 0;
    this.pumping = null;
    this.roomWaiters = [];
    this.error = null;
    this.uncheckedBudget = pipeBytes >> 1;
    this.everWritten = 0;
    this.lastWriteAt = 0;
    this.stats = { writes: 0, checked: 0, retries: 0, unchecked: 0, bytes: 0, pipeBytes };
  }

  // Returns undefined, or a promise while more than TCP_WRITE_HIGH_WATER bytes wait (backpressure).
  write(bytes) {
    if (this.error) throw this.error;
    if (bytes.byteLength === 0) return undefined;
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    if (!this.pumping) this.pumping = this.pump();
    if (this.queued < TCP_WRITE_HIGH_WATER) return undefined;
    return new Promise((resolve, reject) => { this.roomWaiters.push([resolve, reject]); });
  }

  wakeWriters() {
    if (this.queued >= TCP_WRITE_HIGH_WATER && !this.error) return;
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const [resolve, reject] of waiters) (this.error ? reject(this.error) : resolve());
  }

  takeAll() { return this.take(this.queued); }

  // The first `n` queued bytes as one array (splitting a chunk if needed).
  take(n) {
    let data;
    if (this.queue[0].byteLength === n) {
      data = this.queue.shift();
    } else {
      data = new Uint8Array(n);
      for (let pos = 0; pos < n;) {
        const c = this.queue[0];
        const k = Math.min(c.byteLength, n - pos);
        data.set(k === c.byteLength ? c : c.subarray(0, k), pos);
        if (k === c.byteLength) this.queue.shift(); else this.queue[0] = c.subarray(k);
        pos += k;
      }
    }
    this.queued -= n;
    this.wakeWriters();
    return data;
  }

  async pump() {
    try {
      while (this.queued) {
        if (this.queued > this.pipeBytes) {
          await this.writeChecked(this.takeAll());
          continue;
        }
        // A batch the pipe could hold cannot be checked: a dropped one settles just like one
        // that fitted. Only write it when the pipe cannot be full: at most half a pipe of
        // unchecked bytes per quiet period (no write for TCP_QUIET_MS, time for the network
        // service to drain), none right after a checked write (it may have filled the pipe).
        // Otherwise wait: more data may come and make the batch checkable. After a quiet period
        // a batch larger than the budget goes out a budget's worth at a time.
        const quiet = performance.now() - this.lastWriteAt >= TCP_QUIET_MS;
        if (quiet) this.uncheckedBudget = this.pipeBytes >> 1;
        if (this.queued > this.uncheckedBudget && !quiet) {
          await nextTask();
          continue;
        }
        const data = this.take(Math.min(this.queued, this.uncheckedBudget));
        this.uncheckedBudget -= data.byteLength;
        await this.writeUnchecked(data);
      }
    } catch (e) {
      this.error = e;
      this.queue = [];
      this.queued = 0;
    } finally {
      this.pumping = null;
      this.wakeWriters();
    }
  }

  async writeUnchecked(data) {
    this.stats.writes++;
    this.stats.unchecked++;
    if (!await writeSettlesWithoutTask(this.writer, data)) this.uncheckedBudget = 0;   // it filled the pipe
    this.everWritten += data.byteLength;
    this.stats.bytes += data.byteLength;
    this.lastWriteAt = performance.now();
  }

  async writeChecked(data) {
    const n = data.byteLength;
    for (let off = 0; off < n;) {
      let end = Math.min(off + this.piece, n);
      if (n - end <= this.pipeBytes) end = n;   // never leave a tail the pipe could take unchecked
      const piece = data.subarray(off, end);
      for (let delay = 0; ; delay = Math.min(delay * 2 + 1, 50)) {
        const emptyPipe = this.everWritten === 0;
        this.stats.writes++;
        this.stats.checked++;
        if (!await writeSettlesWithoutTask(this.writer, piece)) break;
        if (emptyPipe) {
          // An empty pipe took the whole piece: the pipe is larger than measured. Nothing was
          // lost, but every later check would be wrong: learn the size before going on.
          this.learnPipeBytes(piece.byteLength);
          break;
        }
        this.stats.retries++;   // dropped by Chromium: nothing of it was written
        await nextTask(delay);
      }
      this.everWritten += piece.byteLength;
      this.stats.bytes += piece.byteLength;
      off = end;
    }
    this.uncheckedBudget = 0;   // the last piece may have left the pipe full
    this.lastWriteAt = performance.now();
  }

  learnPipeBytes(atLeast) {
    console.warn(`socketiwa: TCP pipe holds at least ${atLeast} bytes (assumed ${this.pipeBytes}); adapting`);
    tcpPipe.bytes = Math.max(tcpPipe.bytes, atLeast);
    this.pipeBytes = tcpPipe.bytes;
    this.piece = Math.max(this.piece, 4 * this.pipeBytes + 3 * 1024);
    this.stats.pipeBytes = this.pipeBytes;
  }

  async flush() {
    while (this.pumping) await this.pumping;
    if (this.error) throw this.error;
  }

  // Abort: nothing more is written; queued bytes are discarded and waiting writers fail.
  fail(error) {
    if (!this.error) this.error = error;
    this.queue = [];
    this.queued = 0;
    this.wakeWriters();
  }
}

class TcpHandle extends Pumped {
  constructor(socket, info, pipeBytes, mem) {
    super(mem);
    this.socket = socket;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
    this.writer = info.writable.getWriter();
    this.sender = new TcpSender(this.writer, pipeBytes);
    this.writePaused = false;
    this.ended = false;           // the readable finished (EOF, error, or we cancelled it)
  }

  // One read result, and the chunks already queued behind it, into Python's receive buffer (a
  // full buffer goes to Python and filling starts again). Returns false if detached meanwhile.
  async deliver(r) {
    const recv = this.mem.recv;
    let u8 = recv.bytes();
    let pos = 0;
    for (;;) {
      const chunk = r.value;
      for (let off = 0; off < chunk.byteLength;) {
        if (pos === u8.byteLength) {        // buffer full: hand it over, then go on
          this.call(EV_DATA, pos, pos);
          pos = 0;
          u8 = recv.bytes();
          if (!this.sink) return false;
        }
        const k = Math.min(chunk.byteLength - off, u8.byteLength - pos);
        u8.set(k === chunk.byteLength ? chunk : chunk.subarray(off, off + k), pos);
        pos += k;
        off += k;
      }
      this.pending = this.reader.read();
      if (this.paused) break;
      r = await settledNow(this.pending);
      if (r === null || r.done) break;
      if (!this.sink) return false;
      u8 = recv.bytes();
    }
    if (pos) this.call(EV_DATA, pos, pos);
    return true;
  }

  // JS callers (tests, the pipe probe): returns undefined, or a promise while too much is queued.
  // Throws once a write has failed (connection reset).
  write(bytes) {
    return this.sender.write(bytes);
  }

  // Python's write: the first n bytes of its send region, or a Uint8Array it made for a large
  // write. Returns 1 when Python should pause writing (EV_RESUME_WRITING follows), else 0.
  writeFrom(n) { return this.queue(this.mem.send.bytes().slice(0, n)); }
  writeArray(bytes) { return this.queue(bytes); }

  queue(bytes) {
    const room = this.sender.write(bytes);
    if (!room) return 0;
    if (this.writePaused) { room.then(ignore, ignore); return 1; }
    this.writePaused = true;
    room.then(() => { this.writePaused = false; this.call(EV_RESUME_WRITING); },
      (e) => { this.writePaused = false; this.fail(EV_WRITE_ERROR, e); });
    return 1;
  }

  queuedBytes() { return this.sender.queued; }

  writeStats() { return JSON.stringify(this.sender.stats); }

  // Close now without flushing (TCPSocket.close timeout / abort): unsent data is discarded and a
  // write() waiting for room rejects. Returns at once; the teardown finishes in the background.
  abort() {
    this.detach();
    const error = new Error('connection aborted');
    error.name = 'AbortError';
    this.sender.fail(error);
    (async () => {
      try { await this.writer.abort(error); } catch { /* already errored */ }
      this.writer.releaseLock();
      try { await this.reader.cancel(); } catch { /* already errored */ }
      this.reader.releaseLock();
      try { await this.socket.close(); } catch { /* already closed */ }
    })();
  }

  async close() {
    // No more calls into Python; every queued byte into the pipe, then time for the pipe to
    // drain before the socket goes: Chromium destroys what is still in the pipe, and closing the
    // writable sends no FIN.
    this.detach();
    let flushError = null;
    try { await this.sender.flush(); } catch (e) { flushError = e; }
    try { await this.writer.close(); } catch { /* peer already gone */ }
    this.writer.releaseLock();
    const linger = this.sender.lastWriteAt + TCP_CLOSE_LINGER_MS - performance.now();
    if (!flushError && linger > 0 && !this.ended) await this.lingerUnlessEnded(linger);
    try { await this.reader.cancel(); } catch { /* already errored */ }
    this.reader.releaseLock();
    try { await this.socket.close(); } catch { /* already closed */ }
    if (flushError) throw flushError;
  }

  // Wait `ms`, or less if the peer ends the stream first (nothing more can drain then). The
  // pump may be running (it watches the readable) or not (never started, or stopped): read
  // here only when no pump holds a read.
  async lingerUnlessEnded(ms) {
    if (this.started) { await nextTask(ms); return; }
    const timer = nextTask(ms).then(() => 'timeout');
    for (;;) {
      const r = await Promise.race([timer, this.reader.read().catch(() => ({ done: true }))]);
      if (r === 'timeout' || r.done) return;
    }
  }
}

class ServerHandle extends Pumped {
  constructor(server, info, g, mem) {
    super(mem);
    this.server = server;
    this.g = g;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
  }

  // Accepts while started and not paused; each connection goes to the sink as EV_ACCEPT with
  // its TcpHandle (not yet started: its owner starts it).
  async pump() {
    try {
      for (;;) {
        await this.waitWhilePaused();
        if (!this.sink) return;
        const { value, done } = await this.reader.read();
        if (done) break;
        let handle;
        try {
          const info = await value.opened;
          handle = new TcpHandle(value, info, await tcpPipeBytes(this.g), this.mem);
        } catch {
          continue;   // the client went away before it was accepted
        }
        if (!this.sink) { handle.abort(); return; }
        this.call(EV_ACCEPT, handle);
      }
      this.call(EV_EOF);
    } catch (e) {
      if (this.sink) this.fail(EV_ERROR, e);
    }
  }

  async close() {
    this.detach();
    try { await this.reader.cancel(); } catch { /* already errored */ }
    this.reader.releaseLock();
    await this.server.close();
  }
}

const UDP_OPTION_NAMES = {
  local_address: 'localAddress', local_port: 'localPort', remote_address: 'remoteAddress',
  remote_port: 'remotePort', send_buffer_size: 'sendBufferSize', receive_buffer_size: 'receiveBufferSize',
  dns_query_type: 'dnsQueryType', ipv6_only: 'ipv6Only', multicast_time_to_live: 'multicastTimeToLive',
  multicast_loopback: 'multicastLoopback', multicast_allow_address_sharing: 'multicastAllowAddressSharing',
};
const TCP_OPTION_NAMES = {
  no_delay: 'noDelay', keep_alive_delay: 'keepAliveDelay', send_buffer_size: 'sendBufferSize',
  receive_buffer_size: 'receiveBufferSize', dns_query_type: 'dnsQueryType',
};

function translate(optionsJson, names) {
  const out = {};
  for (const [k, v] of Object.entries(JSON.parse(optionsJson))) {
    // Chromium rejects localPort 0 ("leave this field unassigned"): omit it for "any port".
    if (k === 'local_port' && v === 0) continue;
    if (v !== null && v !== undefined && names[k]) out[names[k]] = v;
  }
  return out;
}

async function permissionState(g) {
  const harness = g.directSocketsHarness;
  if (harness && typeof harness.permissionState === 'function') return harness.permissionState();
  const policy = g.document && g.document.featurePolicy;
  const allows = (f) => (policy ? policy.allowsFeature(f) : typeof g.TCPSocket === 'function');
  const query = async (name) => {
    try { return (await g.navigator.permissions.query({ name })).state; } catch { return 'unsupported'; }
  };
  return {
    directSockets: allows('direct-sockets') && typeof g.TCPSocket === 'function',
    directSocketsMulticast: allows('direct-sockets-multicast'),
    localNetwork: await query('local-network'),
    loopbackNetwork: await query('loopback-network'),
  };
}

export function createBridge(g = globalThis) {
  const need = (name) => {
    if (typeof g[name] !== 'function') {
      const e = new Error(`${name} is not available here (Direct Sockets needs an Isolated Web App with the direct-sockets permissions policy)`);
      e.name = 'NotAllowedError';
      throw e;
    }
    return g[name];
  };
  // Python's receive buffer and send region (attachMemory), shared by every socket: Python
  // copies a delivery out before its sink returns, and JS copies a send out before sendFrom
  // returns, so one of each serves all sockets.
  const mem = { recv: null, send: null };
  const requireMemory = () => {
    if (!mem.recv) throw new Error('socketiwa: attachMemory() was not called');
    return mem;
  };
  return {
    version: 2,
    // recvProxy / sendProxy: PyProxies of Python bytearrays (kept alive by Python).
    attachMemory(recvProxy, sendProxy) {
      if (mem.recv) { mem.recv.release(); mem.send.release(); }
      mem.recv = new PyMemory(recvProxy);
      mem.send = new PyMemory(sendProxy);
    },
    memoryRefreshes() { return mem.recv ? mem.recv.refreshes + mem.send.refreshes : 0; },
    async openUdp(optionsJson) {
      const Udp = need('UDPSocket');
      requireMemory();
      const socket = new Udp(translate(optionsJson, UDP_OPTION_NAMES));
      const info = await socket.opened;
      return new UdpHandle(socket, info, mem);
    },
    async openTcp(host, port, optionsJson) {
      const Tcp = need('TCPSocket');
      const socket = new Tcp(host, port, translate(optionsJson, TCP_OPTION_NAMES));
      const [info, pipeBytes] = await Promise.all([socket.opened, tcpPipeBytes(g)]);
      return new TcpHandle(socket, info, pipeBytes, mem);
    },
    async openTcpServer(host, optionsJson) {
      const Server = need('TCPServerSocket');
      const o = JSON.parse(optionsJson);
      const opts = {};
      if (o.local_port) opts.localPort = o.local_port;
      if (o.backlog) opts.backlog = o.backlog;
      if (o.ipv6_only !== null && o.ipv6_only !== undefined) opts.ipv6Only = o.ipv6_only;
      const server = new Server(host, opts);
      const info = await server.opened;
      return new ServerHandle(server, info, g, mem);
    },
    // The measured TCP data-pipe size (bytes), measuring it on first use.
    tcpPipeBytes() { return tcpPipeBytes(g); },
    async permissions() {
      return JSON.stringify(await permissionState(g));
    },
    // For socketiwa's WebLoop scheduling (pkg/socketiwa/_webloop.py): a zero-argument function
    // that queues `fn` as a microtask, and one-timer helpers. They live here because the IWA's
    // CSP forbids creating JS functions from Python strings.
    microtaskScheduler(fn) {
      return () => queueMicrotask(() => fn());
    },
    // One re-armable timer calling `fn` (a long-lived proxy): arm(ms) replaces any earlier arming.
    timer(fn) {
      let id = null;
      const fire = () => { id = null; fn(); };
      return {
        arm(ms) { if (id !== null) clearTimeout(id); id = setTimeout(fire, ms); },
        cancel() { if (id !== null) clearTimeout(id); id = null; },
      };
    },
  };
}
