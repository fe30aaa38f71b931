#!/usr/bin/env node
// Build the socketiwa Isolated Web App.
//
//   node iwa-shell/build.mjs [--dev-dir build/iwa] [--swbn build/socketiwa.swbn]
//                            [--main app.py] [--manifest alt.webmanifest] [--pyodide-dist DIR]
//                            [--overlay DIR] [--key key.pem]
//
// Lays the app out in a directory (served over HTTP for dev-mode installs) and signs the same
// files into a web bundle (.swbn, Ed25519). --overlay adds (or replaces) files from a directory
// on top of the shell (the socketiwa CLI puts a user's app there). The signing key is made on
// first use and kept outside the repository (--key, else SOCKETIWA_IWA_KEY, default
// ~/.cache/socketiwa/iwa-signing-key.pem). Same files and key give the same bundle, byte for byte.
// Prints one JSON line: {id, origin, devDir, swbn, bytes, files, sha256}.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as wbn from 'wbn';
import * as wbnSign from 'wbn-sign';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fail = (msg) => { console.error(`build.mjs: ${msg}`); process.exit(1); };
const args = { 'dev-dir': 'build/iwa', swbn: 'build/socketiwa.swbn', 'pyodide-dist': 'build/pyodide-dist-314' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'help') { console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split("\n").slice(1, 14).join('\n')); process.exit(0); }
  if (process.argv[i + 1] === undefined) fail(`--${k} needs a value`);
  args[k] = process.argv[i + 1];
}

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.json': 'application/json',
  '.webmanifest': 'application/manifest+json', '.wasm': 'application/wasm', '.zip': 'application/zip',
  '.png': 'image/png', '.py': 'text/plain; charset=utf-8', '.whl': 'application/zip',
  '.gz': 'application/gzip',
};
export const mimeType = (name) => MIME[path.extname(name).toLowerCase()] || 'application/octet-stream';

function signingKey() {
  const keyPath = args.key || process.env.SOCKETIWA_IWA_KEY
    || path.join(process.env.SOCKETIWA_CACHE || path.join(os.homedir(), '.cache', 'socketiwa'), 'iwa-signing-key.pem');
  if (!fs.existsSync(keyPath)) {
    fs.mkdirSync(path.dirname(keyPath), { recursive: true });
    const { privateKey } = crypto.generateKeyPairSync('ed25519');
    fs.writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    console.error(`build.mjs: generated a new signing key at ${keyPath}`);
  }
  let key;
  try {
    key = wbnSign.parsePemKey(fs.readFileSync(keyPath, 'utf8'));
  } catch (e) {
    fail(`the signing key ${keyPath} is not a valid Ed25519 or ECDSA P-256 PEM private key (${e.message}); `
      + 'restore it from your backup, or delete it to make a new key (the app then gets a new ID)');
  }
  return { keyPath, key };
}

// Bytecode for the Python the app ships (iwa-shell/precompile.py, why there): the stdlib zip and
// every wheel of the runtime get unchecked-hash .pyc files, compiled by the runtime's own CPython
// in Pyodide under Node. Results are cached by content (SOCKETIWA_CACHE, else ~/.cache/socketiwa):
// the first build pays a few seconds, later ones reuse the same bytes. SOCKETIWA_PRECOMPILE=0
// ships the runtime as it is (to compare launch times).
const PRECOMPILE = process.env.SOCKETIWA_PRECOMPILE !== '0';
const sha256Of = (data) => crypto.createHash('sha256').update(data).digest('hex');
// Every changed input adds files to a cache: keep the most recently used `keep`.
function pruneCache(dir, keep) {
  const entries = fs.readdirSync(dir).map((name) => path.join(dir, name))
    .map((file) => ({ file, used: fs.statSync(file).mtimeMs })).sort((a, b) => b.used - a.used);
  for (const { file } of entries.slice(keep)) fs.rmSync(file, { force: true });
}
// Mark a cache entry used (pruneCache keeps the recent ones).
const touch = (file) => { const now = new Date(); fs.utimesSync(file, now, now); return file; };

async function precompile(dist) {
  const cache = path.join(process.env.SOCKETIWA_CACHE || path.join(os.homedir(), '.cache', 'socketiwa'), 'pyc');
  const script = fs.readFileSync(path.join(ROOT, 'iwa-shell', 'precompile.py'));
  const runtime = fs.readFileSync(path.join(dist, 'pyodide.asm.wasm'));
  // The output depends on the input file, the compiler (the runtime) and the script.
  const salt = sha256Of(Buffer.concat([Buffer.from(sha256Of(runtime)), Buffer.from(sha256Of(script))]));
  const lockPath = path.join(dist, 'pyodide-lock.json');
  const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
  const inputs = ['python_stdlib.zip', ...Object.values(lock.packages).map((p) => p.file_name)
    .filter((f) => f.endsWith('.whl') && fs.existsSync(path.join(dist, f)))];
  const out = new Map();   // url path under pyodide/ -> cached file
  const todo = [];
  for (const name of inputs) {
    const data = fs.readFileSync(path.join(dist, name));
    const cached = path.join(cache, `${sha256Of(Buffer.concat([Buffer.from(salt), data])).slice(0, 32)}-${name}`);
    out.set(name, cached);
    if (fs.existsSync(cached)) touch(cached);
    else todo.push({ name, data, cached });
  }
  if (todo.length) {
    fs.mkdirSync(cache, { recursive: true });
    const { loadPyodide } = await import(path.join(dist, 'pyodide.mjs'));
    const py = await loadPyodide({ indexURL: dist + path.sep, stdout: () => {}, stderr: (s) => console.error(s) });
    py.FS.writeFile('/tmp/precompile.py', script);
    const mod = py.pyimport('sys');
    mod.path.insert(0, '/tmp');
    mod.destroy();
    const pc = py.pyimport('precompile');
    for (const { name, data, cached } of todo) {
      py.FS.writeFile('/tmp/in', data);
      if (name === 'python_stdlib.zip') {
        const [major, minor] = py.runPython('import sys; sys.version_info[:2]').toJs();
        pc.precompile_zip('/tmp/in', '/tmp/out', `/lib/python${major}${minor}.zip`);
      } else {
        pc.precompile_wheel('/tmp/in', '/tmp/out');
      }
      fs.writeFileSync(`${cached}.tmp`, py.FS.readFile('/tmp/out'));
      fs.renameSync(`${cached}.tmp`, cached);   // never a half-written file in the cache
    }
    pc.destroy();
  }
  // The lock names each wheel's hash: point it at the precompiled wheels.
  for (const pkg of Object.values(lock.packages)) {
    if (out.has(pkg.file_name)) pkg.sha256 = sha256Of(fs.readFileSync(out.get(pkg.file_name)));
  }
  const lockText = JSON.stringify(lock, null, 1);
  const lockOut = path.join(cache, `${sha256Of(lockText).slice(0, 32)}-pyodide-lock.json`);
  if (!fs.existsSync(lockOut)) fs.writeFileSync(lockOut, lockText);
  out.set('pyodide-lock.json', touch(lockOut));
  pruneCache(cache, 80);
  return out;
}

// Every file of the app: [url path, absolute source path].
async function collect() {
  const files = new Map();
  const addDir = (dir, prefix) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (fs.statSync(full).isDirectory()) addDir(full, `${prefix}${name}/`);
      else files.set(`${prefix}${name}`, full);
    }
  };
  addDir(path.join(ROOT, 'iwa-shell', 'app'), '');
  const dist = path.resolve(ROOT, args['pyodide-dist']);
  if (!fs.existsSync(path.join(dist, 'pyodide.asm.wasm'))) {
    fail(`${dist} has no Pyodide runtime: run 'python scripts/pyodide_dist.py' (scripts/setup.sh does) first`);
  }
  addDir(dist, 'pyodide/');
  if (PRECOMPILE) {
    for (const [name, cached] of await precompile(dist)) files.set(`pyodide/${name}`, cached);
  }
  files.set('bridge/adapter.mjs', path.join(ROOT, 'bridge', 'adapter.mjs'));
  if (args.overlay) addDir(path.resolve(args.overlay), '');
  if (args.main) files.set('app/main.py', path.resolve(args.main));
  if (args.manifest) files.set('.well-known/manifest.webmanifest', path.resolve(args.manifest));
  return files;
}

function layOut(files, devDir) {
  fs.rmSync(devDir, { recursive: true, force: true });
  for (const [rel, src] of files) {
    const dest = path.join(devDir, rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(src, dest);
  }
}

async function sign(files, key, out) {
  const id = new wbnSign.WebBundleId(key).serialize();
  const origin = `isolated-app://${id}/`;
  const builder = new wbn.BundleBuilder('b2');
  for (const [rel, src] of files) {
    const headers = { 'Content-Type': mimeType(rel) };
    const body = fs.readFileSync(src);
    builder.addExchange(origin + rel, 200, headers, body);
    if (rel === 'index.html') builder.addExchange(origin, 200, headers, body);
  }
  const { signedWebBundle } = await new wbnSign.IntegrityBlockSigner(
    builder.createBundle(), id, [new wbnSign.NodeCryptoSigningStrategy(key)]).sign();
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, signedWebBundle);
  const sha256 = crypto.createHash('sha256').update(signedWebBundle).digest('hex');
  return { id, origin, bytes: signedWebBundle.length, sha256 };
}

// A Pyodide memory snapshot taken right after `import socketiwa`: the page restores it instead
// of starting the interpreter and importing socketiwa (loader.mjs startPyodide; measured: 3.3 s
// less from navigation to ready on this loaded machine, results/startup.md). loadPyodide's
// _makeSnapshot / _loadSnapshot are private options of Pyodide 314, so this is optional: no
// snapshot (SOCKETIWA_SNAPSHOT=0, no Chromium, or making it failed) only means a slower start.
// It is made in headless Chromium, not Node: the interpreter records at start-up whether the
// engine can switch stacks (JSPI), and a Node-made snapshot leaves run_sync, so blocking
// socketiwa.compat, broken in the page. Made from the laid-out app, so the stdlib zip (whose
// directory Python's import caches hold) and the socketiwa wheel are exactly the shipped ones.
// Cached by content; gzip (31 MB of memory -> about 5 MB).
//
// The snapshot holds no files (Pyodide's file system lives in JS), so the page must put the
// socketiwa wheel's files back. loadPackage did that in Python (lock, fetch, hash check, unzip:
// 0.3-1 s, the first Python code to run after a restore), so the same page also sends the files
// as they lie in site-packages after the install: SNAPSHOT_FILES, which the loader writes with
// the file system's JS calls alone. Format: 4 bytes little-endian header length, the header
// (JSON {root, files: [[path under root, size], ...]}), the files' bytes in order; gzip.
const SNAPSHOT = PRECOMPILE && process.env.SOCKETIWA_SNAPSHOT !== '0';
const SNAPSHOT_FILE = 'pyodide/startup-snapshot.bin.gz';
const SNAPSHOT_FILES = 'pyodide/startup-files.bin.gz';
const SNAPSHOT_PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
const { loadPyodide } = await import('/pyodide/pyodide.mjs');
const gzip = (parts) => new Response(new Blob(parts).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer();
let files, result;
try {
  const lock = await (await fetch('/pyodide/pyodide-lock.json')).json();
  const wheel = await (await fetch('/pyodide/' + lock.packages.socketiwa.file_name)).arrayBuffer();
  const py = await loadPyodide({ indexURL: '/pyodide/', _makeSnapshot: true });
  // The wheel's files straight into site-packages: loadPackage leaves JS state behind
  // (pyodide.loadedPackages) that makeMemorySnapshot refuses. The dist-info gets what
  // loadPackage writes there (where pyodide.loadedPackages says a package came from).
  const root = py.runPython('import site; site.getsitepackages()[0]');
  const walk = (dir) => py.FS.readdir(dir).filter((n) => n !== '.' && n !== '..').flatMap((n) => {
    const full = dir + '/' + n;
    return py.FS.isDir(py.FS.stat(full).mode) ? walk(full) : [full];
  });
  const present = new Set(walk(root));
  py.unpackArchive(new Uint8Array(wheel), 'wheel', { extractDir: root });
  const distInfo = walk(root).find((f) => !present.has(f) && /^socketiwa-[^/]*[.]dist-info[/]METADATA$/.test(f.slice(root.length + 1)));
  py.FS.writeFile(distInfo.replace(/METADATA$/, 'INSTALLER'), 'pyodide.loadPackage');
  py.FS.writeFile(distInfo.replace(/METADATA$/, 'PYODIDE_SOURCE'), 'pyodide');
  const added = walk(root).filter((f) => !present.has(f)).sort();
  const bodies = added.map((f) => py.FS.readFile(f));
  const header = new TextEncoder().encode(JSON.stringify({ root,
    files: added.map((f, i) => [f.slice(root.length + 1), bodies[i].length]) }));
  files = await gzip([new Uint32Array([header.length]), header, ...bodies]);
  py.runPython('import socketiwa');
  result = await gzip([py.makeMemorySnapshot()]);
} catch (e) {
  result = 'error: ' + (e && e.stack ? e.stack : e);
}
if (files && typeof result !== 'string') await fetch('/__files', { method: 'POST', body: files });
await fetch('/__snapshot', { method: 'POST', body: result });
</script>`;

// Returns the cached files {snapshot, files}, or null (no snapshot: the app starts without one).
async function makeSnapshot(devDir) {
  try {
    return await snapshotFor(devDir);
  } catch (e) {
    console.error(`build.mjs: no start-up snapshot (${e.message}); the app starts without one`);
    return null;
  }
}

async function snapshotFor(devDir) {
  const cache = path.join(process.env.SOCKETIWA_CACHE || path.join(os.homedir(), '.cache', 'socketiwa'), 'snapshot');
  const lock = JSON.parse(fs.readFileSync(path.join(devDir, 'pyodide', 'pyodide-lock.json'), 'utf8'));
  const inputs = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip',
    lock.packages.socketiwa.file_name].map((f) => sha256Of(fs.readFileSync(path.join(devDir, 'pyodide', f))));
  const key = sha256Of(inputs.join() + SNAPSHOT_PAGE).slice(0, 32);
  const out = path.join(cache, `${key}-startup-snapshot.bin.gz`);
  const outFiles = path.join(cache, `${key}-startup-files.bin.gz`);
  if (fs.existsSync(out) && fs.existsSync(outFiles)) return { snapshot: touch(out), files: touch(outFiles) };
  const chromium = process.env.SOCKETIWA_CHROMIUM || '/usr/lib/chromium/chromium';
  if (!fs.existsSync(chromium)) {
    console.error(`build.mjs: no start-up snapshot (no Chromium at ${chromium}); the app starts without one`);
    return null;
  }
  const { default: http } = await import('node:http');
  const { spawn } = await import('node:child_process');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'socketiwa-snapshot-'));
  let browser;
  let server;
  let filesBody = null;
  try {
    const body = await new Promise((resolve, reject) => {
      server = http.createServer((req, res) => {
        if (req.method === 'POST' && (req.url === '/__snapshot' || req.url === '/__files')) {
          const chunks = [];
          req.on('data', (c) => chunks.push(c));
          req.on('end', () => {
            res.end();
            if (req.url === '/__files') filesBody = Buffer.concat(chunks);
            else resolve(Buffer.concat(chunks));
          });
          return;
        }
        const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '');
        const file = path.join(devDir, rel);
        if (rel === '__snapshot.html') {
          res.writeHead(200, { 'Content-Type': 'text/html' }).end(SNAPSHOT_PAGE);
        } else if (!rel.includes('..') && fs.existsSync(file) && fs.statSync(file).isFile()) {
          res.writeHead(200, { 'Content-Type': mimeType(rel) }).end(fs.readFileSync(file));
        } else {
          res.writeHead(404).end();
        }
      });
      server.listen(0, '127.0.0.1', () => {
        browser = spawn(chromium, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
          '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
          `--user-data-dir=${profile}`, `http://127.0.0.1:${server.address().port}/__snapshot.html`],
        // Its own process group: at the end the whole browser goes, helpers included.
        { stdio: 'ignore', env: { ...process.env, HOME: profile }, detached: true });
        browser.on('exit', (code) => reject(new Error(`Chromium exited (${code}) before sending the snapshot`)));
      });
      setTimeout(() => reject(new Error('no snapshot within 300 s')), 300000).unref();
    });
    if (body.subarray(0, 6).toString() === 'error:') throw new Error(body.toString().split('\n')[0]);
    if (!filesBody) throw new Error('the snapshot page sent no files');
    fs.mkdirSync(cache, { recursive: true });
    for (const [file, data] of [[outFiles, filesBody], [out, body]]) {
      fs.writeFileSync(`${file}.tmp`, data);
      fs.renameSync(`${file}.tmp`, file);
    }
    pruneCache(cache, 12);   // (6 builds: two files each)
    return { snapshot: out, files: outFiles };
  } finally {
    if (browser && browser.exitCode === null && browser.signalCode === null) {
      const exited = new Promise((resolve) => browser.once('exit', resolve));
      try { process.kill(-browser.pid, 'SIGKILL'); } catch { /* gone already */ }
      await exited;
    }
    if (server) server.close();
    try {
      fs.rmSync(profile, { recursive: true, force: true, maxRetries: 5 });
    } catch (e) {
      console.error(`build.mjs: could not remove ${profile}: ${e.message}`);
    }
  }
}

const files = await collect();
const devDir = path.resolve(ROOT, args['dev-dir']);
layOut(files, devDir);
const snapshot = SNAPSHOT ? await makeSnapshot(devDir) : null;
if (snapshot) {
  for (const [rel, cached] of [[SNAPSHOT_FILE, snapshot.snapshot], [SNAPSHOT_FILES, snapshot.files]]) {
    files.set(rel, cached);
    fs.copyFileSync(cached, path.join(devDir, rel));
  }
}
const result = { devDir, files: files.size };
if (args.swbn !== 'none') {
  const { key, keyPath } = signingKey();
  const out = path.resolve(ROOT, args.swbn);
  Object.assign(result, await sign(files, key, out), { swbn: out, keyPath });
}
console.log(JSON.stringify(result));
