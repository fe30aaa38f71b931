// Load each built package in a Pyodide distribution under Node and import what its recipe's
// `test: imports:` lists: proves the wasm32 extension modules link and initialise in that runtime.
// usage: node import_check.mjs DIST_DIR '{"aioquic": ["aioquic._buffer", ...], ...}'
import path from "node:path";
import { pathToFileURL } from "node:url";

const [dist, spec] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.resolve(dist, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: path.resolve(dist) + "/" });
const lock = pyodide._api.lockfile_packages ?? {};
let failed = 0;
for (const [pkg, imports] of Object.entries(JSON.parse(spec))) {
  try {
    await pyodide.loadPackage(pkg, { messageCallback: () => {}, errorCallback: (m) => console.error(m) });
    for (const name of imports) pyodide.runPython(`import importlib; importlib.import_module(${JSON.stringify(name)})`);
    console.log(`    Pyodide ${pyodide.version}: ${pkg} imports ${imports.join(", ")}`);
  } catch (err) {
    failed++;
    console.error(`    Pyodide ${pyodide.version}: ${pkg} FAILED: ${String(err.message ?? err).split("\n").slice(-3).join(" | ")}`);
  }
}
process.exit(failed ? 1 : 0);
