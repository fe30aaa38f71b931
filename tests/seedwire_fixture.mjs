// The bytes the JavaScript Socket.IWA library (the seed) puts on the wire, made the way its code
// makes them: the same envelope object literals, JSON.stringify, then TextEncoder (its
// defaultEncode). tests/test_seedwire.py compares socketiwa.seedwire against this output.
//
//   node tests/seedwire_fixture.mjs cases         -> JSON object {case name: base64 bytes}
//   node tests/seedwire_fixture.mjs restringify   -> stdin: JSON array of base64 JSON texts;
//        stdout: the same array after JSON.parse + JSON.stringify + TextEncoder in JavaScript
//        (what a seed app sends back when it re-emits a value it received)

const encoder = new TextEncoder();
const b64 = (text) => Buffer.from(encoder.encode(text)).toString('base64');

// The three envelope shapes, key order as the seed's code writes them.
const event = (e, ...args) => ({ __socketiwa: 1, t: 'event', e, args });
// emitWithAck(eventName, payload): always exactly one argument, ids counted from 1.
const ackRequest = (e, payload, id) => ({ __socketiwa: 1, t: 'ack_request', e, args: [payload], id });
// respond(...args) inside the seed's ack_request handling.
const ackResponse = (id, ...args) => ({ __socketiwa: 1, t: 'ack_response', id, args });

const cases = {
  'event-no-args': event('ping'),
  'event-multi': event('move', 1, 'two', true, null, [3, { k: 'v' }]),
  'ack-request': ackRequest('greet', { name: 'py' }, 1),
  'ack-request-undefined': ackRequest('greet', undefined, 2),
  'ack-response': ackResponse(7, 'ok', 2),
  'ack-response-empty': ackResponse(8),
  'unicode': event('ünï', 'ü€😀', '\u2028\u2029', '\u007f\u0080', 'a\u0000b\u001f\b\f\n\r\t"\\/'),
  'lone-surrogates': event('s', '\uD800', 'x\uDFFFy', '\uDE00\uD83D', '\uDBFF'),
  'surrogate-pair': event('p', '\uD83D' + '\uDE00'),
  'numbers': event('n', 0, -0, 1.5, 0.1, 1e21, 1e-7, 123456789012345680000, 5e-324,
    1.7976931348623157e308, 2 ** 53, -(2 ** 53), 1e16, 100, 0.000001, 1.0000000000000002, 4.35,
    1 / 3, -1e-7, 2 ** 60, 1e300, 0.1 + 0.2),
  'keys': event('k', { b: 1, 2: 'two', a: 3, 1: 'one', '01': 'x', 4294967295: 'big',
    4294967294: 'max', '-1': 'neg', '1.5': 'frac' }),
  'nested': event('deep', JSON.parse('['.repeat(200) + ']'.repeat(200))),
  'empty-name': event('', 'x'),
  'long-string': event('big', 'x'.repeat(70000)),
  'ack-request-multi-id': ackRequest('q', [1, 2], 4294967295),
};

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

const mode = process.argv[2];
if (mode === 'cases') {
  const out = {};
  for (const [name, envelope] of Object.entries(cases)) out[name] = b64(JSON.stringify(envelope));
  process.stdout.write(JSON.stringify(out));
} else if (mode === 'restringify') {
  const strict = new TextDecoder('utf-8', { fatal: true });
  const texts = JSON.parse(await readStdin());
  const out = texts.map((t) => b64(JSON.stringify(JSON.parse(strict.decode(Buffer.from(t, 'base64'))))));
  process.stdout.write(JSON.stringify(out));
} else {
  process.stderr.write('usage: seedwire_fixture.mjs cases|restringify\n');
  process.exit(2);
}
