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

class TcpHandle {
  constructor(socket, info) {
    this.socket = socket;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
    this.writer = info.writable.getWriter();
    this.inbox = new Inbox();
    this.writeError = null;
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

  // Returns undefined, or a promise while the writable is full (backpressure).
  write(bytes) {
    if (this.writeError) throw this.writeError;
    this.writer.write(bytes).catch((e) => { this.writeError = e; });
    return this.writer.desiredSize > 0 ? undefined : this.writer.ready;
  }

  async close() {
    // Flush and half-close our side, then release the streams so close() is allowed.
    try { await this.writer.close(); } catch { /* peer already gone */ }
    this.writer.releaseLock();
    this.inbox.finish();
    try { await this.reader.cancel(); } catch { /* already errored */ }
    this.reader.releaseLock();
    try { await this.socket.close(); } catch { /* already closed */ }
  }
}

class ServerHandle {
  constructor(server, info) {
    this.server = server;
    this.info = info;
    this.infoJson = endpoints(info);
    this.reader = info.readable.getReader();
  }

  // Next accepted connection as a TcpHandle, or undefined once the server is closed.
  async accept() {
    const { value, done } = await this.reader.read();
    if (done) return undefined;
    const info = await value.opened;
    return new TcpHandle(value, info);
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
      const info = await socket.opened;
      return new TcpHandle(socket, info);
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
      return new ServerHandle(server, info);
    },
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
