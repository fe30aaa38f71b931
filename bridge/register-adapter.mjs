// node --import=bridge/register-adapter.mjs: expose the socketiwa adapter to Pyodide as
// globalThis.socketiwaBridge, as the IWA shell's loader does in the browser.
import { createBridge } from './adapter.mjs';

globalThis.socketiwaBridge = createBridge(globalThis);
