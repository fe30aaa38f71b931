// A peer that behaves on the wire exactly like an app built on the JavaScript Socket.IWA library
// (the seed), on Node's plain `net` and `dgram` sockets instead of Direct Sockets:
//  - every event is one write of new TextEncoder().encode(JSON.stringify(envelope));
//  - every received chunk is a 'message', then decoded with a (non-fatal) TextDecoder and given to
//    JSON.parse whole; an object with __socketiwa === 1 is an event, ack request or ack response;
//  - ack ids count from 1; emitWithAck sends args: [payload]; respond(...args) answers with args.
// The app on top (the handlers below) is what tests/test_seedwire.py talks to.
// Prints {"tcp": port, "udp": port} on its first line; runs until stdin closes.
import dgram from 'node:dgram';
import net from 'node:net';

const ACK_TIMEOUT_MS = 10000;

class SeedConnection {
  // `write(bytes)` is the transport: one TCP write, or one datagram to the last sender.
  constructor(write, kind) {
    this.write = write;
    this.kind = kind;
    this.ackSeq = 1;
    this.pendingAcks = new Map();
    this.listeners = new Map();
    this.messages = [];          // plain data received (what the seed's 'message' would show)
    this.unparsed = 0;           // chunks that looked like an envelope but JSON.parse refused
  }

  on(name, fn) { this.listeners.set(name, fn); }

  localEmit(name, ...args) {
    const fn = this.listeners.get(name);
    if (fn) fn(...args);
  }

  send(data) {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    return this.write(bytes);
  }

  sendEnvelope(envelope) { return this.send(JSON.stringify(envelope)); }

  emitEvent(name, ...args) { return this.sendEnvelope({ __socketiwa: 1, t: 'event', e: name, args }); }

  emitWithAck(name, payload) {
    const id = this.ackSeq++;
    return new Promise((resolve, reject) => {
      const timeout = setTimeout(() => {
        this.pendingAcks.delete(id);
        reject(new Error(`Ack timeout for event '${name}'`));
      }, ACK_TIMEOUT_MS);
      this.pendingAcks.set(id, { resolve, timeout });
      this.sendEnvelope({ __socketiwa: 1, t: 'ack_request', e: name, args: [payload], id });
    });
  }

  // The seed's _handleStructuredMessage, on one received chunk (TCP) or datagram (UDP).
  receive(bytes) {
    const text = new TextDecoder().decode(bytes);
    let envelope = null;
    try {
      const parsed = JSON.parse(text);
      if (parsed && parsed.__socketiwa === 1) envelope = parsed;
    } catch (_) {
      if (text.startsWith('{"__socketiwa"')) this.unparsed++;
    }
    if (!envelope) {
      this.messages.push(text);
      this.localEmit('message', text);
      return;
    }
    if (envelope.t === 'event') {
      this.localEmit(envelope.e, ...(envelope.args || []));
    } else if (envelope.t === 'ack_request') {
      const respond = async (...args) => {
        await this.sendEnvelope({ __socketiwa: 1, t: 'ack_response', id: envelope.id, args });
      };
      this.localEmit(envelope.e, ...(envelope.args || []), respond);
    } else if (envelope.t === 'ack_response' && this.pendingAcks.has(envelope.id)) {
      const pending = this.pendingAcks.get(envelope.id);
      clearTimeout(pending.timeout);
      this.pendingAcks.delete(envelope.id);
      pending.resolve((envelope.args || [])[0]);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The app: what a JavaScript developer writes with the seed's on()/emit()/emitWithAck().
function app(conn) {
  conn.on('message', (text) => { conn.emitEvent('got-plain', text); });
  conn.on('echo', (...args) => { const respond = args.pop(); respond(...args); });
  conn.on('note', (...args) => { conn.emitEvent('noted', ...args); });
  conn.on('ask', async (payload, respond) => {
    const answer = await conn.emitWithAck('question', payload);
    respond({ asked: payload, answer });
  });
  conn.on('plain', async (text, respond) => { await conn.send(text); respond('sent'); });
  conn.on('fake-lifecycle', async (respond) => {
    await conn.emitEvent('close', { code: 4000, reason: 'fake' });
    await conn.emitEvent('after', 'fake sent');
    respond('done');
  });
  conn.on('burst', async (n, respond) => {
    const ticks = [];
    for (let i = 0; i < n; i++) ticks.push(JSON.stringify({ __socketiwa: 1, t: 'event', e: 'tick', args: [i, 'é'.repeat(i % 7)] }));
    if (conn.kind === 'tcp') {
      // What the network may do to the seed's writes: several envelopes merged into one
      // chunk, and one envelope split over three writes.
      await conn.send(ticks.join(''));
      const last = new TextEncoder().encode(JSON.stringify({ __socketiwa: 1, t: 'event', e: 'tick', args: [n, 'split ✓'] }));
      await conn.send(last.subarray(0, 5));
      await sleep(20);
      await conn.send(last.subarray(5, 30));   // cuts inside a multi-byte character? maybe
      await sleep(20);
      await conn.send(last.subarray(30));
    } else {
      for (const t of ticks) await conn.send(t);
      await conn.emitEvent('tick', n, 'split ✓');
    }
    respond('burst sent');
  });
  // Connect to a server the test opened (socketiwa's create_tcp_server) and be the seed app there.
  conn.on('dial', (port, respond) => {
    const socket = net.connect(port, '127.0.0.1', () => respond('dialed'));
    serve(socket);
  });
  conn.on('report', (respond) => {
    respond({ messages: conn.messages.splice(0), unparsed: conn.unparsed });
  });
}

function serve(socket) {
  socket.setNoDelay(true);
  const conn = new SeedConnection((bytes) => new Promise((resolve, reject) => {
    socket.write(bytes, (err) => (err ? reject(err) : resolve()));
  }), 'tcp');
  app(conn);
  // The seed's close(): the socket ends, {code, reason} stays local (no envelope is sent).
  conn.on('hangup', async (respond) => { await respond('bye'); socket.end(); });
  socket.on('data', (chunk) => conn.receive(new Uint8Array(chunk)));
  socket.on('error', () => {});
}

const server = net.createServer(serve);

const udp = dgram.createSocket('udp4');
let lastSender = null;
const udpConn = new SeedConnection((bytes) => new Promise((resolve, reject) => {
  udp.send(bytes, lastSender.port, lastSender.address, (err) => (err ? reject(err) : resolve()));
}), 'udp');
app(udpConn);
udp.on('message', (msg, rinfo) => {
  lastSender = rinfo;             // the seed's connected UDP socket answers its one remote
  udpConn.receive(new Uint8Array(msg));
});

await new Promise((r) => server.listen(0, '127.0.0.1', r));
await new Promise((r) => udp.bind(0, '127.0.0.1', r));
process.stdout.write(JSON.stringify({ tcp: server.address().port, udp: udp.address().port }) + '\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
