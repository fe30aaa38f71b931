// socketiwa JS adapter: what Python in Pyodide calls to reach Direct Sockets.
//
// Every call moves a whole batch: received datagrams are packed into one Uint8Array, so Python
// crosses the FFI once per batch and copies the bytes once (JsProxy.to_bytes), never per field.
// Packed UDP message (big-endian): u32 length, u16 port, u8 address length, address (ASCII), data.
// Options arrive as one JSON string for the same reason.
//
// The page (iwa-shell loader, or bridge/node/register.mjs under Node) does:
//   globalThis.socketiwaBridge = createBridge();

const UDP_HEAD = 7;
const DEFAULT_MAX_QUEUE = 1024;        // datagrams held before we stop reading (backpressure)
const TCP_HIGH_WATER = 1 << 20;        // bytes held before we stop reading
const TCP_MAX_READ = 4 << 20;          // largest single read() handed to Python

const asciiEncode = (s, out, pos) => {
  for (let i = 0; i < s.length; i++) out[pos + i] = s.charCodeAt(i);
};
const asciiDecode = (u8, pos, len) => String.fromCharCode.apply(null, u8.subarray(pos, pos + len));

function endpoints(info) {
  return JSON.stringify({
    local_address: info.localAddress ?? '', local_port: info.localPort ?? 0,
    remote_address: info.remoteAddress ?? null, remote_port: info.remotePort ?? null,
  });
}

// A queue that a single pump fills and Python drains, with a wake-up for a waiting reader.
class Inbox {
  constructor() { this.items = []; this.size = 0; this.done = false; this.error = null; this.waiter = null; this.room = null; }
  push(item, size) { this.items.push(item); this.size += size; this.wake(); }
  finish(error = null) { this.done = true; this.error = error; this.wake(); if (this.room) { this.room(); this.room = null; } }
  wake() { if (this.waiter) { const w = this.waiter; this.waiter = null; w(); } }
  waitForData() { return new Promise((resolve) => { this.waiter = resolve; }); }
  waitForRoom() { return new Promise((resolve) => { this.room = resolve; }); }
  // The stream's end: its error once (then plain end), so a reader sees the failure exactly once.
  takeEnd() { const e = this.error; this.error = null; return e ? Promise.reject(e) : Promise.resolve(undefined); }
  drained() { this.items = []; this.size = 0; if (this.room) { const r = this.room; this.room = null; r(); } }
}

class UdpHandle {
  constructor(socket, info, maxQueue) {
    this.socket = socket;
    this.info = info;
    this.infoJson = endpoints(info);
    this.connected = info.remoteAddress !== undefined && info.remoteAddress !== null;
    this.reader = info.readable.getReader();
    this.writer = info.writable.getWriter();
    this.inbox = new Inbox();
    this.maxQueue = maxQueue;
    this.sendError = null;
    this.pump();
  }

  async pump() {
    const inbox = this.inbox;
    try {
      for (;;) {
        if (inbox.items.length >= this.maxQueue) await inbox.waitForRoom();
        if (inbox.done) return;
        const { value, done } = await this.reader.read();
        if (done) break;
        const data = value.data instanceof Uint8Array ? value.data : new Uint8Array(value.data);
        const addr = value.remoteAddress ?? this.info.remoteAddress ?? '';
        const port = value.remotePort ?? this.info.remotePort ?? 0;
        inbox.push([data, addr, port], data.byteLength + UDP_HEAD + addr.length);
      }
      inbox.finish();
    } catch (e) {
      inbox.finish(e);
    }
  }

  // Resolves to every datagram queued so far, packed; undefined once the socket is closed.
  // (undefined, not null: Pyodide maps undefined to None but null to pyodide.ffi.jsnull.)
  recv() {
    const inbox = this.inbox;
    if (inbox.items.length) return Promise.resolve(this.pack());
    if (inbox.done) return inbox.takeEnd();
    return inbox.waitForData().then(() => this.recv());
  }

  pack() {
    const { items, size } = this.inbox;
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let pos = 0;
    for (const [data, addr, port] of items) {
      view.setUint32(pos, data.byteLength);
      view.setUint16(pos + 4, port);
      out[pos + 6] = addr.length;
      asciiEncode(addr, out, pos + UDP_HEAD);
      pos += UDP_HEAD + addr.length;
      out.set(data, pos);
      pos += data.byteLength;
    }
    this.inbox.drained();
    return out;
  }

  // One packed batch of outgoing datagrams. Returns undefined, or a promise when the writable is
  // full (Python awaits it: backpressure).
  send(batch) {
    if (this.sendError) { const e = this.sendError; this.sendError = null; throw e; }
    const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    let pos = 0;
    let last = null;
    while (pos < batch.byteLength) {
      const len = view.getUint32(pos);
      const port = view.getUint16(pos + 4);
      const alen = batch[pos + 6];
      const msg = { data: batch.subarray(pos + UDP_HEAD + alen, pos + UDP_HEAD + alen + len) };
      if (alen) { msg.remoteAddress = asciiDecode(batch, pos + UDP_HEAD, alen); msg.remotePort = port; }
      pos += UDP_HEAD + alen + len;
      last = this.writer.write(msg);
      last.catch((e) => { this.sendError = e; });
    }
    return this.writer.desiredSize > 0 ? undefined : this.writer.ready;
  }

  async close() {
    this.inbox.finish();
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

const nextTask = (ms = 0) => new Promise((resolve) => { setTimeout(resolve, ms); });

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

class TcpHandle {
  constructor(socket, info, pipeBytes) {
    this.socket = socket;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
    this.writer = info.writable.getWriter();
    this.sender = new TcpSender(this.writer, pipeBytes);
    this.inbox = new Inbox();
    this.pump();
  }

  async pump() {
    const inbox = this.inbox;
    try {
      for (;;) {
        if (inbox.size >= TCP_HIGH_WATER) await inbox.waitForRoom();
        if (inbox.done) return;
        const { value, done } = await this.reader.read();
        if (done) break;
        inbox.push(value, value.byteLength);
      }
      inbox.finish();
    } catch (e) {
      inbox.finish(e);
    }
  }

  // Resolves to the bytes received so far (one Uint8Array), or undefined at end of stream.
  read() {
    const inbox = this.inbox;
    if (inbox.items.length) {
      if (inbox.items.length === 1) { const only = inbox.items[0]; inbox.drained(); return Promise.resolve(only); }
      let total = 0;
      let n = 0;
      while (n < inbox.items.length && total < TCP_MAX_READ) total += inbox.items[n++].byteLength;
      const out = new Uint8Array(total);
      let pos = 0;
      for (let i = 0; i < n; i++) { out.set(inbox.items[i], pos); pos += inbox.items[i].byteLength; }
      const rest = inbox.items.slice(n);
      inbox.drained();
      for (const c of rest) { inbox.items.push(c); inbox.size += c.byteLength; }
      return Promise.resolve(out);
    }
    if (inbox.done) return inbox.takeEnd();
    return inbox.waitForData().then(() => this.read());
  }

  // Returns undefined, or a promise while too much is queued (backpressure). Throws once a write
  // has failed (connection reset).
  write(bytes) {
    return this.sender.write(bytes);
  }

  writeStats() { return JSON.stringify(this.sender.stats); }

  // Close now without flushing (TCPSocket.close timeout / abort): unsent data is discarded and a
  // write() waiting for room rejects. Returns at once; the teardown finishes in the background.
  abort() {
    const error = new Error('connection aborted');
    error.name = 'AbortError';
    this.sender.fail(error);
    this.inbox.finish();
    (async () => {
      try { await this.writer.abort(error); } catch { /* already errored */ }
      this.writer.releaseLock();
      try { await this.reader.cancel(); } catch { /* already errored */ }
      this.reader.releaseLock();
      try { await this.socket.close(); } catch { /* already closed */ }
    })();
  }

  async close() {
    // Every queued byte into the pipe, then time for the pipe to drain before the socket goes:
    // Chromium destroys what is still in the pipe, and closing the writable sends no FIN.
    let flushError = null;
    try { await this.sender.flush(); } catch (e) { flushError = e; }
    try { await this.writer.close(); } catch { /* peer already gone */ }
    this.writer.releaseLock();
    const linger = this.sender.lastWriteAt + TCP_CLOSE_LINGER_MS - performance.now();
    if (!flushError && linger > 0 && !this.inbox.done) await nextTask(linger);
    this.inbox.finish();
    try { await this.reader.cancel(); } catch { /* already errored */ }
    this.reader.releaseLock();
    try { await this.socket.close(); } catch { /* already closed */ }
    if (flushError) throw flushError;
  }
}

class ServerHandle {
  constructor(server, info, g) {
    this.server = server;
    this.g = g;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
  }

  // Next accepted connection as a TcpHandle, or undefined once the server is closed.
  async accept() {
    const { value, done } = await this.reader.read();
    if (done) return undefined;
    const info = await value.opened;
    return new TcpHandle(value, info, await tcpPipeBytes(this.g));
  }

  async close() {
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
  return {
    version: 1,
    async openUdp(optionsJson, maxQueue) {
      const Udp = need('UDPSocket');
      const socket = new Udp(translate(optionsJson, UDP_OPTION_NAMES));
      const info = await socket.opened;
      return new UdpHandle(socket, info, maxQueue || DEFAULT_MAX_QUEUE);
    },
    async openTcp(host, port, optionsJson) {
      const Tcp = need('TCPSocket');
      const socket = new Tcp(host, port, translate(optionsJson, TCP_OPTION_NAMES));
      const [info, pipeBytes] = await Promise.all([socket.opened, tcpPipeBytes(g)]);
      return new TcpHandle(socket, info, pipeBytes);
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
      return new ServerHandle(server, info, g);
    },
    // The measured TCP data-pipe size (bytes), measuring it on first use.
    tcpPipeBytes() { return tcpPipeBytes(g); },
    async permissions() {
      return JSON.stringify(await permissionState(g));
    },
    // For socketiwa's batched WebLoop scheduling (pkg/socketiwa/_webloop.py): a zero-argument
    // function that queues `fn` as a microtask. Lives here because the IWA's CSP forbids
    // creating JS functions from Python strings.
    microtaskScheduler(fn) {
      return () => queueMicrotask(() => fn());
    },
  };
}
