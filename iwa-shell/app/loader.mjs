// The shell's loader: start Pyodide (served from this bundle: the IWA's CSP allows nothing else),
// hand Python the Direct Sockets adapter, load the socketiwa package and run the entry point.
//   index.html                  run /app/main.py
//   index.html?main=/app/x.py   run another entry point from the bundle
//   index.html?mode=test        load everything, then wait for automation (tests, benchmarks)
// State is shown on the page and exposed as window.socketiwaShell for automation.
import { createBridge } from '/bridge/adapter.mjs';

const params = new URLSearchParams(location.search);
const logEl = document.getElementById('log');
const stateEl = document.getElementById('state');
const state = { phase: 'loading', detail: '', error: null, startedAt: performance.now(), timings: {} };

function log(line) {
  logEl.textContent += line + '\n';
  console.log('[shell]', line);
}
function setPhase(phase, detail = '') {
  state.phase = phase;
  state.detail = detail;
  stateEl.dataset.phase = phase;
  stateEl.textContent = detail ? `${phase}: ${detail}` : phase;
}

const shell = { state, pyodide: null, log };
window.socketiwaShell = shell;

async function main() {
  globalThis.socketiwaBridge = createBridge(globalThis);
  setPhase('loading', 'Pyodide');
  const t0 = performance.now();
  const { loadPyodide } = await import('/pyodide/pyodide.mjs');
  const pyodide = await loadPyodide({
    indexURL: new URL('/pyodide/', location.href).href,
    stdout: (s) => log(s),
    stderr: (s) => log(s),
  });
  state.timings.pyodide_ms = Math.round(performance.now() - t0);
  shell.pyodide = pyodide;
  shell.loadPyodide = loadPyodide;
  setPhase('loading', 'socketiwa');
  const t1 = performance.now();
  await pyodide.loadPackage(['socketiwa'], { messageCallback: () => {}, errorCallback: (m) => log(m) });
  state.timings.packages_ms = Math.round(performance.now() - t1);
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
  const entry = params.get('main') || '/app/main.py';
  const response = await fetch(entry);
  if (!response.ok) throw new Error(`entry point ${entry}: HTTP ${response.status}`);
  setPhase('running', entry);
  const value = await shell.run(await response.text());
  state.result = value === undefined ? null : value;
  setPhase('done', entry);
}

main().catch((e) => {
  state.error = String(e && e.stack ? e.stack : e);
  log(state.error);
  setPhase('error', e && e.message ? e.message.split('\n')[0] : String(e));
});
