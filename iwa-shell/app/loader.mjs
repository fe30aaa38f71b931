// The shell's loader: start Pyodide (served from this bundle: the IWA's CSP allows nothing else),
// hand Python the Direct Sockets adapter, load the socketiwa package and run the entry point.
//   index.html                  run the app: /app/app.json (a `socketiwa build` app) if the
//                               bundle has one, else /app/main.py
//   index.html?main=/app/x.py   run another entry point from the bundle
//   index.html?argv=["a","b"]   the program's sys.argv[1:] (JSON list; `socketiwa run DIR -- a b`)
//   index.html?mode=test        load everything, then wait for automation (tests, benchmarks)
// State is shown on the page and exposed as window.socketiwaShell for automation: the program's
// output is kept in state.output ([stream, text] lines) and its exit status in state.exitCode.
import { createBridge } from '/bridge/adapter.mjs';

const params = new URLSearchParams(location.search);
const logEl = document.getElementById('log');
const stateEl = document.getElementById('state');
const state = { phase: 'loading', detail: '', error: null, startedAt: performance.now(), timings: {},
  output: [], exitCode: null, marks: {} };
// Start-up phases for benchmarks (bench/bench_startup.py): performance.now() at each step; the
// page's performance.timeOrigin turns them into wall-clock times.
const mark = (name) => { state.marks[name] = performance.now(); };
mark('loader_start');

// One text node per line: appending stays cheap however much was printed (rewriting textContent
// would copy the whole log per line); the page keeps the last LOG_LINES lines.
const LOG_LINES = 5000;
function log(line) {
  logEl.append(line + '\n');
  if (logEl.childNodes.length > LOG_LINES) {
    for (let i = 0; i < LOG_LINES / 5; i++) logEl.firstChild.remove();
  }
  console.log('[shell]', line);
}
function setPhase(phase, detail = '') {
  state.phase = phase;
  state.detail = detail;
  stateEl.dataset.phase = phase;
  stateEl.textContent = detail ? `${phase}: ${detail}` : phase;
}

// Output waits here until automation takes it (takeOutput); bounded, the oldest lines go first
// and are counted, so a program nobody watches cannot fill the memory.
const OUTPUT_LIMIT = 10000;
function keepOutput(stream, text) {
  state.output.push([stream, text]);
  if (state.output.length > OUTPUT_LIMIT) {
    state.output.shift();
    state.outputDropped += 1;
  }
}
const shell = { state, pyodide: null, log, takeOutput: () => state.output.splice(0) };
// Lines dropped so far because nobody took them in time (see keepOutput).
state.outputDropped = 0;
window.socketiwaShell = shell;

async function main() {
  globalThis.socketiwaBridge = createBridge(globalThis);
  setPhase('loading', 'Pyodide');
  const t0 = performance.now();
  const { loadPyodide } = await import('/pyodide/pyodide.mjs');
  mark('pyodide_imported');
  const pyodide = await startPyodide(loadPyodide, {
    indexURL: new URL('/pyodide/', location.href).href,
    // An IWA has no terminal: input() gets end-of-file instead of a blocking prompt() dialog.
    stdin: () => null,
    stdout: (s) => { keepOutput('stdout', s); log(s); },
    stderr: (s) => { keepOutput('stderr', s); log(s); },
    // Called once the wasm module is instantiated, before the interpreter starts.
    fsInit: () => mark('wasm_ready'),
  });
  mark('pyodide_loaded');
  state.timings.pyodide_ms = Math.round(performance.now() - t0);
  shell.pyodide = pyodide;
  shell.loadPyodide = loadPyodide;
  setPhase('loading', 'socketiwa');
  const t1 = performance.now();
  if (state.socketiwaFiles !== 'snapshot') {  // (a restored snapshot came with socketiwa's files)
    await pyodide.loadPackage(['socketiwa'], { messageCallback: () => {}, errorCallback: (m) => log(m) });
  }
  mark('packages_loaded');
  state.timings.packages_ms = Math.round(performance.now() - t1);
  // Every program here starts with socketiwa: import it now, so "ready" means ready to use it
  // (a restored snapshot has it imported already).
  pyodide.runPython('import socketiwa');
  mark('socketiwa_imported');
  log(`Pyodide ${pyodide.version} ready in ${state.timings.pyodide_ms} ms; socketiwa in ${state.timings.packages_ms} ms`);
  // Run Python code in this page; used by automation and by the entry point below.
  shell.run = async (code) => {
    await pyodide.loadPackagesFromImports(code);
    const result = await pyodide.runPythonAsync(code);
    return result && result.toJs ? result.toJs({ dict_converter: Object.fromEntries }) : result;
  };
  if (params.get('mode') === 'test') {
    setPhase('ready');
    return;
  }
  const argv = JSON.parse(params.get('argv') || '[]');
  const appInfo = params.get('main') ? null : await fetch('/app/app.json').then((r) => (r.ok ? r.json() : null));
  if (appInfo) {
    await runApp(pyodide, appInfo, argv);
    return;
  }
  const entry = params.get('main') || '/app/main.py';
  const response = await fetch(entry);
  if (!response.ok) throw new Error(`entry point ${entry}: HTTP ${response.status}`);
  setPhase('running', entry);
  const value = await shell.run(await response.text());
  state.result = value === undefined ? null : value;
  state.exitCode = 0;
  setPhase('done', entry);
}

// Start Pyodide from the build's memory snapshot (iwa-shell/build.mjs makeSnapshot: the
// interpreter started and socketiwa imported, in headless Chromium at build time), else the
// normal way. What Python read from its surroundings when the snapshot was made is set again
// here. A snapshot the runtime refuses costs one failed attempt, then the normal start.
const SNAPSHOT_URL = '/pyodide/startup-snapshot.bin.gz';
// The socketiwa wheel's files as installed when the snapshot was made (build.mjs SNAPSHOT_FILES).
const SNAPSHOT_FILES_URL = '/pyodide/startup-files.bin.gz';
const gunzip = (response) => new Response(response.body.pipeThrough(new DecompressionStream('gzip'))).arrayBuffer();

async function startPyodide(loadPyodide, options) {
  const [response, filesResponse] = await Promise.all([fetch(SNAPSHOT_URL), fetch(SNAPSHOT_FILES_URL)]);
  if (!response.ok || !filesResponse.ok) {
    state.snapshot = 'none';
    return loadPyodide(options);
  }
  const memory = gunzip(response).then((buffer) => { mark('snapshot_fetched'); return new Uint8Array(buffer); });
  const files = gunzip(filesResponse);
  let pyodide;
  try {
    pyodide = await loadPyodide({ ...options, _loadSnapshot: memory });
  } catch (e) {
    state.snapshot = `refused: ${e && e.message ? e.message.split('\n')[0] : e}`;
    log(`start-up snapshot ${state.snapshot}; starting Python normally`);
    return loadPyodide(options);
  }
  mark('snapshot_restored');
  state.snapshot = 'restored';
  try {
    writeFiles(pyodide, await files);
    // What loadPackage would have noted (and init_loaded_packages finds in the dist-info): later
    // loadPackage calls, e.g. loadPackagesFromImports of `import socketiwa`, skip it.
    pyodide.loadedPackages.socketiwa = 'default channel';
    state.socketiwaFiles = 'snapshot';
    mark('files_written');
  } catch (e) {
    log(`socketiwa's files from ${SNAPSHOT_FILES_URL} not written (${e && e.message ? e.message : e}): loading the package`);
  }
  // os.environ (the language, options.env) is the build's; the random module was seeded then,
  // so every launch would repeat its numbers. (str hashes keep the build's seed: a restored
  // interpreter cannot change it. SOCKETIWA_SNAPSHOT=0 at build time opts out.)
  const lang = `${((navigator.languages && navigator.languages[0]) || 'C').replace('-', '_')}.UTF-8`;
  const scope = pyodide.toPy({ _env: { ...(options.env || {}), LANG: lang } });
  try {
    pyodide.runPython(`
import os, sys
os.environ.update(_env)
if "random" in sys.modules:
    sys.modules["random"].seed()
while sys.path.count("") > 1:  # loadPyodide put "" first again
    sys.path.remove("")
`, { globals: scope });
  } finally {
    scope.destroy();
  }
  return pyodide;
}

// The SNAPSHOT_FILES image into the file system, with its JS calls only (no Python runs: the
// first Python code after a restore is slow, its wasm functions not yet compiled).
function writeFiles(pyodide, buffer) {
  const length = new DataView(buffer).getUint32(0, true);
  const { root, files } = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const made = new Set();
  let offset = 4 + length;
  for (const [name, size] of files) {
    const path = `${root}/${name}`;
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (!made.has(dir)) {
      pyodide.FS.mkdirTree(dir);
      made.add(dir);
    }
    pyodide.FS.writeFile(path, new Uint8Array(buffer, offset, size));
    offset += size;
  }
  if (offset !== buffer.byteLength) throw new Error(`${SNAPSHOT_FILES_URL}: ${buffer.byteLength - offset} bytes left over`);
}

// A `socketiwa build` app: its code (a zip), the wheels its dependencies resolved to at build
// time (the IWA cannot fetch anything else at run time) and the Pyodide packages it names.
// The program runs the way `python main.py ARGS` would (run_app.py); its exit status is kept.
async function runApp(pyodide, appInfo, argv) {
  setPhase('loading', appInfo.name || 'app');
  const t0 = performance.now();
  const packages = [...(appInfo.packages || []), ...(appInfo.wheels || []).map((w) => new URL(w, location.href).href)];
  if (packages.length) {
    await pyodide.loadPackage(packages, { messageCallback: () => {}, errorCallback: (m) => log(m) });
  }
  const home = '/home/pyodide/app';
  const code = await fetch(appInfo.code);
  if (!code.ok) throw new Error(`app code ${appInfo.code}: HTTP ${code.status}`);
  pyodide.FS.mkdirTree(home);
  pyodide.unpackArchive(await code.arrayBuffer(), 'zip', { extractDir: home });
  const runner = await fetch('/run_app.py');
  pyodide.FS.writeFile('/home/pyodide/_socketiwa_run_app.py', await runner.text());
  state.timings.app_ms = Math.round(performance.now() - t0);
  setPhase('running', appInfo.entry);
  const run = pyodide.runPython('import sys; sys.path.insert(0, "/home/pyodide"); import _socketiwa_run_app; _socketiwa_run_app.run');
  const pyArgv = pyodide.toPy(argv);
  try {
    state.exitCode = await run(`${home}/${appInfo.entry}`, pyArgv);
  } finally {
    pyArgv.destroy();
    run.destroy();
  }
  setPhase('done', `exit code ${state.exitCode}`);
}

main().catch((e) => {
  state.error = String(e && e.stack ? e.stack : e);
  log(state.error);
  setPhase('error', e && e.message ? e.message.split('\n')[0] : String(e));
});
