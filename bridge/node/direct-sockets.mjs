// A Node.js implementation of the Direct Sockets API (WICG Direct Sockets; Chromium's
// third_party/blink/renderer/modules/direct_sockets), so socketiwa's Pyodide tests run outside
// Chrome. It follows Chromium's shapes and error kinds; where Chromium's exact behaviour is not
// yet confirmed by the IWA tests the comment says so. Real sockets only (node:net, node:dgram).
import dgram from 'node:dgram';
import net from 'node:net';

const MAX_UDP = 65507;
const TCP_READ_HWM = 4;          // queued chunks before the OS socket is paused (backpressure)
const UDP_READ_HWM = 64;         // queued datagrams before reading pauses

// ---- permissions: what the page's policy and the user allow (tests flip these)
const permissions = { directSockets: true, directSocketsMulticast: true, localNetwork: true, loopbackNetwork: true };

export const harness = {
  setPermissions(p) { Object.assign(permissions, p); },
  permissionState() {
    return {
      directSockets: permissions.directSockets,
      directSocketsMulticast: permissions.directSocketsMulticast,
      localNetwork: permissions.localNetwork ? 'granted' : 'denied',
      loopbackNetwork: permissions.loopbackNetwork ? 'granted' : 'denied',
    };
  },
};

const domError = (name, message) => new DOMException(message, name);
const networkError = (detail) => domError('NetworkError', detail ? `Network error: ${detail}` : 'Network error.');

function requirePolicy(className) {
  // Chromium 156 (IWA tests): the constructor throws synchronously, with the bindings' prefix.
  if (!permissions.directSockets) {
    throw domError('NotAllowedError', `Failed to construct '${className}': Permissions-Policy: direct-sockets are disabled.`);
  }
}

function isLoopback(addr) {
  return addr === 'localhost' || addr === '::1' || /^127\./.test(addr) || /^::ffff:127\./i.test(addr);
}

function checkNetworkPermission(addr) {
  // Local Network Access: loopback targets need loopback-network, other local ones local-network.
  // Chromium 156 (IWA tests) rejects `opened` with InvalidAccessError and this message.
  if (isLoopback(addr) ? !permissions.loopbackNetwork : !permissions.localNetwork) {
    throw domError('InvalidAccessError', 'Access to local network is blocked.');
  }
}

function checkPort(value, name) {
  if (value === undefined) return;
  // Chromium 156, seen in the IWA tests: 0 is refused for local ports too.
  if (value === 0 && name === 'localPort') {
    throw new TypeError('localPort must be greater than zero. Leave this field unassigned to allow the OS to pick a port on its own.');
  }
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new TypeError(`${name} must be an integer in range [1, 65535].`);
  }
}

function checkCommon(o) {
  for (const k of ['sendBufferSize', 'receiveBufferSize']) {
    if (o[k] !== undefined && !(Number.isInteger(o[k]) && o[k] > 0)) throw new TypeError(`${k} must be greater than zero.`);
  }
  if (o.dnsQueryType !== undefined && !['ipv4', 'ipv6'].includes(o.dnsQueryType)) {
    throw new TypeError(`The provided value '${o.dnsQueryType}' is not a valid enum value of type SocketDnsQueryType.`);
  }
}

const toBytes = (chunk) => {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new TypeError('The provided value is not of type \'(ArrayBuffer or ArrayBufferView)\'.');
};

const family = (addr) => (net.isIPv6(addr) ? 6 : 4);

// ---------------------------------------------------------------------------------- TCP
// Chromium's TCPSocket hands written bytes to the network service through a Mojo data pipe of
// 64 KiB; the service moves them into the OS socket as it accepts them. Chromium 156 has two
// defects there that we reproduce (measured: ../shared/research/tcp-write-loss, docs/chromium-tcp-write-loss.md):
//  - tcpWriteDrop: a write() that starts while the pipe is exactly full is dropped and its promise
//    resolves anyway (DataPipe SHOULD_WAIT taken as "all written").
//  - tcpCloseLoss: when both streams are closed the socket is destroyed with whatever is still in
//    the pipe; closing the writable alone sends no FIN.
// Both are on by default; directSocketsHarness.setDefects({tcpWriteDrop: false, ...}) turns them off.
export const TCP_PIPE_BYTES = 64 * 1024;
const defects = { tcpWriteDrop: true, tcpCloseLoss: true };
harness.setDefects = (d) => Object.assign(defects, d);
harness.defects = () => ({ ...defects });
harness.tcpStats = { dropped: 0, droppedBytes: 0, closeLostBytes: 0 };
// The network service is another process: on a loaded machine it may not run for a while, and
// the pipe is not drained meanwhile (the IWA stress test lost a write at load 15-23 that way).
// serviceLagMs > 0 makes each drain of the pipe wait that long (a timer, not the next task).
const timing = { serviceLagMs: 0 };
harness.setTiming = (t) => Object.assign(timing, t);
harness.timing = () => ({ ...timing });

// The page side of the data pipe plus the network service's pump into the OS socket.
class SendPipe {
  constructor(sock, capacity = TCP_PIPE_BYTES) {
    this.sock = sock;
    this.capacity = capacity;
    this.chunks = [];
    this.fill = 0;
    this.spaceWaiters = [];
    this.pumpScheduled = false;
    this.destroyed = false;
    sock.on('drain', () => this.schedulePump());
  }

  free() { return this.capacity - this.fill; }

  // Writes what fits (Mojo's partial write); returns the number of bytes taken.
  put(bytes) {
    const n = Math.min(this.free(), bytes.byteLength);
    if (n > 0) {
      // Copy: the page may reuse its buffer once the write resolves.
      this.chunks.push(bytes.slice(0, n));
      this.fill += n;
      this.schedulePump();
    }
    return n;
  }

  waitForSpace() { return new Promise((resolve) => this.spaceWaiters.push(resolve)); }

  // The network service runs in another process: it drains the pipe in a later task, only as
  // fast as the OS socket takes the bytes (Node buffers above its high-water mark: stop there).
  schedulePump() {
    if (this.pumpScheduled || this.destroyed) return;
    this.pumpScheduled = true;
    const later = timing.serviceLagMs > 0 ? (fn) => setTimeout(fn, timing.serviceLagMs) : setImmediate;
    later(() => {
      this.pumpScheduled = false;
      if (this.destroyed) return;
      while (this.chunks.length && !this.sock.writableNeedDrain && !this.sock.destroyed) {
        const c = this.chunks.shift();
        this.fill -= c.byteLength;
        this.sock.write(c);
      }
      if (this.spaceWaiters.length && this.free() > 0) {
        const waiters = this.spaceWaiters;
        this.spaceWaiters = [];
        for (const w of waiters) w();
      }
      if (this.onEmpty && this.fill === 0) this.onEmpty();
    });
  }

  whenEmpty(fn) {
    if (this.fill === 0) fn();
    else { this.onEmpty = () => { this.onEmpty = null; fn(); }; this.schedulePump(); }
  }

  // Chromium destroys the network socket: bytes the OS already has still go out with the FIN;
  // bytes left in the pipe are lost (tcpCloseLoss) or, with the defect off, delivered first.
  endSocket() {
    const end = () => { this.discard(); if (!this.sock.destroyed) this.sock.end(); };
    if (defects.tcpCloseLoss) end(); else this.whenEmpty(end);
  }

  // The pipe's content never reaches the OS socket.
  discard() {
    this.destroyed = true;
    harness.tcpStats.closeLostBytes += this.fill;
    this.chunks = [];
    this.fill = 0;
    for (const w of this.spaceWaiters) w();
    this.spaceWaiters = [];
  }
}

function tcpStreams(sock, onBothClosed) {
  let readableDone = false;
  let writableDone = false;
  let finished = false;
  const pipe = new SendPipe(sock);
  // Both streams closed: Chromium destroys the network socket. Bytes the OS already has still go
  // out (with the FIN); bytes left in the pipe are lost unless the defect is switched off.
  const finish = () => {
    if (finished) return;
    finished = true;
    pipe.endSocket();
    onBothClosed();
  };
  const settle = () => { if (readableDone && writableDone) finish(); };
  let controller;
  const readable = new ReadableStream({
    start(c) { controller = c; },
    pull() { sock.resume(); },
    cancel() { readableDone = true; settle(); },
  }, { highWaterMark: TCP_READ_HWM });
  sock.on('data', (d) => {
    // After the readable is cancelled Chromium discards what still arrives (the writable may
    // still be open); enqueueing into the closed controller would throw out of Node's socket.
    if (readableDone) return;
    controller.enqueue(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    if (controller.desiredSize <= 0) sock.pause();
  });
  sock.on('end', () => { if (!readableDone) { readableDone = true; try { controller.close(); } catch { /* cancelled */ } settle(); } });
  sock.on('error', (e) => {
    if (!readableDone) { readableDone = true; try { controller.error(networkError(e.code)); } catch { /* cancelled */ } }
    pipe.discard();
  });
  sock.on('close', () => { if (!readableDone) { readableDone = true; try { controller.close(); } catch { /* errored */ } } pipe.discard(); settle(); });
  const writable = new WritableStream({
    write(chunk) {
      const bytes = toBytes(chunk);
      if (sock.destroyed || pipe.destroyed) return Promise.reject(networkError('socket closed'));
      if (bytes.byteLength === 0) return undefined;
      if (pipe.free() === 0 && defects.tcpWriteDrop) {
        harness.tcpStats.dropped += 1;
        harness.tcpStats.droppedBytes += bytes.byteLength;
        return undefined;   // resolved: the bytes are gone (Chromium 156)
      }
      let off = pipe.put(bytes);
      if (off === bytes.byteLength) return undefined;   // all fitted: settles without a task, as in Chromium
      return (async () => {
        while (off < bytes.byteLength) {
          await pipe.waitForSpace();
          if (pipe.destroyed) throw networkError('socket closed');
          off += pipe.put(bytes.subarray(off));
        }
      })();
    },
    // Closing the writable closes the page side of the pipe only: no FIN (Chromium 156).
    close() {
      writableDone = true;
      if (!defects.tcpCloseLoss) pipe.whenEmpty(() => { if (!sock.destroyed) sock.end(); });   // a real half-close
      settle();
    },
    abort() { writableDone = true; pipe.discard(); sock.destroy(); settle(); },
  }, { highWaterMark: 1 });
  return { readable, writable, pipe };
}

class SocketBase {
  constructor() {
    this.opened = new Promise((res, rej) => { this._resolveOpened = res; this._rejectOpened = rej; });
    this.closed = new Promise((res, rej) => { this._resolveClosed = res; this._rejectClosed = rej; });
    this.opened.catch(() => {});
    this.closed.catch(() => {});
    this._info = null;
  }

  _failOpen(err) {
    this._rejectOpened(err);
    this._rejectClosed(err);
  }

  _lockedStreams() {
    const i = this._info;
    return i && ((i.readable && i.readable.locked) || (i.writable && i.writable.locked));
  }
}

export class TCPSocket extends SocketBase {
  constructor(remoteAddress, remotePort, options = {}) {
    super();
    requirePolicy('TCPSocket');
    if (typeof remoteAddress !== 'string' || !remoteAddress) throw new TypeError('remoteAddress must be a non-empty string.');
    checkPort(remotePort, 'remotePort');
    if (remotePort === undefined) throw new TypeError('remotePort is required.');
    checkCommon(options);
    if (options.keepAliveDelay !== undefined && options.keepAliveDelay < 1000) {
      throw new TypeError('keepAliveDelay must be no less than 1,000 milliseconds.');
    }
    this._options = options;
    queueMicrotask(() => this._connect(remoteAddress, remotePort));
  }

  _connect(host, port) {
    try { checkNetworkPermission(host); } catch (e) { this._failOpen(e); return; }
    const o = this._options;
    // allowHalfOpen: a peer's FIN ends our readable only; the writable stays open, as in Chromium.
    const sock = net.connect({ host, port, allowHalfOpen: true, family: o.dnsQueryType === 'ipv6' ? 6 : o.dnsQueryType === 'ipv4' ? 4 : 0,
      noDelay: !!o.noDelay, keepAlive: o.keepAliveDelay !== undefined, keepAliveInitialDelay: o.keepAliveDelay || 0 });
    sock.once('error', (e) => this._failOpen(networkError(e.code)));
    sock.once('connect', () => {
      sock.removeAllListeners('error');
      this._adopt(sock);
    });
  }

  _adopt(sock) {
    this._sock = sock;
    const { readable, writable, pipe } = tcpStreams(sock, () => this._resolveClosed());
    this._pipe = pipe;
    this._info = { readable, writable, remoteAddress: sock.remoteAddress, remotePort: sock.remotePort,
      localAddress: sock.localAddress, localPort: sock.localPort };
    this._resolveOpened(this._info);
  }

  async close() {
    if (this._lockedStreams()) throw domError('InvalidStateError', 'Close called on locked streams.');
    if (this._sock) {
      this._pipe.endSocket();
      this._resolveClosed();
    } else {
      this._failOpen(domError('AbortError', 'The operation was aborted.'));
    }
  }
}

// An accepted connection: a TCPSocket whose `opened` resolves at once.
function acceptedSocket(sock) {
  const s = Object.create(TCPSocket.prototype);
  s.opened = new Promise((res, rej) => { s._resolveOpened = res; s._rejectOpened = rej; });
  s.closed = new Promise((res, rej) => { s._resolveClosed = res; s._rejectClosed = rej; });
  s.closed.catch(() => {});
  s._adopt(sock);
  return s;
}

export class TCPServerSocket extends SocketBase {
  constructor(localAddress, options = {}) {
    super();
    requirePolicy('TCPServerSocket');
    if (typeof localAddress !== 'string' || !net.isIP(localAddress)) throw new TypeError('localAddress must be a valid IP address.');
    checkPort(options.localPort, 'localPort');
    if (options.backlog !== undefined && !(Number.isInteger(options.backlog) && options.backlog > 0)) {
      throw new TypeError('backlog must be greater than zero.');
    }
    const server = net.createServer({ pauseOnConnect: false, allowHalfOpen: true });
    this._server = server;
    let controller;
    const readable = new ReadableStream({ start(c) { controller = c; } }, { highWaterMark: options.backlog || 128 });
    server.on('connection', (sock) => {
      try { controller.enqueue(acceptedSocket(sock)); } catch { sock.destroy(); }
    });
    server.once('error', (e) => this._failOpen(networkError(e.code)));
    queueMicrotask(() => {
      try { checkNetworkPermission(localAddress); } catch (e) { this._failOpen(e); return; }
      server.listen({ host: localAddress, port: options.localPort || 0, backlog: options.backlog, ipv6Only: !!options.ipv6Only }, () => {
        const a = server.address();
        this._info = { readable, localAddress: a.address, localPort: a.port };
        this._controller = controller;
        this._resolveOpened(this._info);
      });
    });
  }

  async close() {
    if (this._lockedStreams()) throw domError('InvalidStateError', 'Close called on locked streams.');
    this._server.close();
    try { this._controller && this._controller.close(); } catch { /* already closed */ }
    this._resolveClosed();
  }
}

// ---------------------------------------------------------------------------------- UDP
export class MulticastController {
  constructor(sock) {
    if (!(sock instanceof dgram.Socket)) throw new TypeError('Illegal constructor');
    this._sock = sock;
    this._groups = [];
  }

  get joinedGroups() { return Object.freeze([...this._groups]); }

  async joinGroup(ipAddress) {
    if (!net.isIP(ipAddress)) throw new TypeError(`${ipAddress} is not a valid IP address.`);
    if (this._groups.includes(ipAddress)) throw domError('InvalidStateError', 'Already joined this group.');
    try { this._sock.addMembership(ipAddress); } catch (e) { throw networkError(e.code); }
    this._groups.push(ipAddress);
  }

  async leaveGroup(ipAddress) {
    if (!net.isIP(ipAddress)) throw new TypeError(`${ipAddress} is not a valid IP address.`);
    if (!this._groups.includes(ipAddress)) throw domError('InvalidStateError', 'Not a member of this group.');
    try { this._sock.dropMembership(ipAddress); } catch (e) { throw networkError(e.code); }
    this._groups = this._groups.filter((g) => g !== ipAddress);
  }
}

export class UDPSocket extends SocketBase {
  constructor(options = {}) {
    super();
    requirePolicy('UDPSocket');
    const o = options;
    const connected = o.remoteAddress !== undefined || o.remotePort !== undefined;
    const bound = o.localAddress !== undefined || o.localPort !== undefined;
    if (connected && bound) throw new TypeError('remoteAddress/remotePort and localAddress/localPort cannot be specified at the same time.');
    if (!connected && !bound) throw new TypeError('Either remoteAddress and remotePort or localAddress must be specified.');
    if (connected && (o.remoteAddress === undefined || o.remotePort === undefined)) throw new TypeError('remoteAddress and remotePort must be specified together.');
    if (bound && (o.localAddress === undefined || !net.isIP(o.localAddress))) throw new TypeError('localAddress must be a valid IP address.');
    checkPort(o.remotePort, 'remotePort');
    checkPort(o.localPort, 'localPort');
    checkCommon(o);
    if (o.multicastTimeToLive !== undefined && !(Number.isInteger(o.multicastTimeToLive) && o.multicastTimeToLive >= 0 && o.multicastTimeToLive <= 255)) {
      throw new TypeError('multicastTimeToLive must be in range [0, 255].');
    }
    this._connected = connected;
    queueMicrotask(() => this._open(o));
  }

  _open(o) {
    try { checkNetworkPermission(this._connected ? o.remoteAddress : o.localAddress); } catch (e) { this._failOpen(e); return; }
    const fam = this._connected
      ? (o.dnsQueryType === 'ipv6' || net.isIPv6(o.remoteAddress) ? 6 : 4)
      : family(o.localAddress);
    const sock = dgram.createSocket({ type: fam === 6 ? 'udp6' : 'udp4', reuseAddr: !!o.multicastAllowAddressSharing,
      ipv6Only: !!o.ipv6Only, recvBufferSize: o.receiveBufferSize, sendBufferSize: o.sendBufferSize });
    this._sock = sock;
    sock.once('error', (e) => this._failOpen(networkError(e.code)));
    const ready = () => {
      sock.removeAllListeners('error');
      if (o.multicastTimeToLive !== undefined) sock.setMulticastTTL(o.multicastTimeToLive);
      if (o.multicastLoopback !== undefined) sock.setMulticastLoopback(!!o.multicastLoopback);
      this._makeStreams(o);
    };
    if (this._connected) sock.bind(0, () => sock.connect(o.remotePort, o.remoteAddress, ready));
    else sock.bind({ port: o.localPort || 0, address: o.localAddress, exclusive: !o.multicastAllowAddressSharing }, ready);
  }

  _makeStreams(o) {
    const sock = this._sock;
    const connected = this._connected;
    let controller;
    const readable = new ReadableStream({
      start(c) { controller = c; },
      cancel() { sock.removeAllListeners('message'); },
    }, { highWaterMark: UDP_READ_HWM });
    sock.on('message', (msg, rinfo) => {
      if (controller.desiredSize <= 0) return; // queue full: drop, as the kernel buffer would
      const data = new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      controller.enqueue(connected ? { data } : { data, remoteAddress: rinfo.address, remotePort: rinfo.port });
    });
    // Chromium 156 (seen in the IWA tests) reports nothing when ICMP says a connected UDP peer's
    // port is unreachable: the datagrams are just lost. Other socket errors end the readable.
    sock.on('error', (e) => {
      if (e.code === 'ECONNREFUSED') return;
      try { controller.error(networkError(e.code)); } catch { /* done */ }
    });
    const writable = new WritableStream({
      write: (msg) => new Promise((resolve, reject) => {
        if (!msg || msg.data === undefined) { reject(new TypeError('UDPMessage.data is required.')); return; }
        const data = toBytes(msg.data);
        if (data.byteLength > MAX_UDP) { reject(domError('DataError', 'Message too long.')); return; }
        // A send after an ICMP port-unreachable fails with ECONNREFUSED in Node; Chromium
        // reports nothing (the datagram is lost), so neither do we.
        const cb = (err) => (err && err.code !== 'ECONNREFUSED' ? reject(networkError(err.code)) : resolve());
        if (connected) {
          if (msg.remoteAddress !== undefined || msg.remotePort !== undefined) {
            reject(new TypeError('remoteAddress and remotePort must not be specified for a connected socket.'));
            return;
          }
          sock.send(data, cb);
        } else {
          if (msg.remoteAddress === undefined || msg.remotePort === undefined) {
            reject(new TypeError('remoteAddress and remotePort must be specified for a bound socket.'));
            return;
          }
          try { checkNetworkPermission(msg.remoteAddress); } catch (e) { reject(e); return; }
          sock.send(data, msg.remotePort, msg.remoteAddress, cb);
        }
      }),
    }, { highWaterMark: 64 });
    const a = sock.address();
    const info = { readable, writable, localAddress: a.address, localPort: a.port };
    if (connected) {
      const r = sock.remoteAddress();
      info.remoteAddress = r.address;
      info.remotePort = r.port;
    } else if (permissions.directSocketsMulticast) {
      info.multicastController = new MulticastController(sock);
    }
    this._info = info;
    this._resolveOpened(info);
  }

  async close() {
    if (this._lockedStreams()) throw domError('InvalidStateError', 'Close called on locked streams.');
    if (this._sock) {
      try { this._sock.close(); } catch { /* already closed */ }
      this._resolveClosed();
    } else {
      this._failOpen(domError('AbortError', 'The operation was aborted.'));
    }
  }
}

export function install(target = globalThis) {
  Object.assign(target, { TCPSocket, UDPSocket, TCPServerSocket, MulticastController, directSocketsHarness: harness });
  return target;
}
