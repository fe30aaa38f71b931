// node --import=bridge/node/register.mjs: install the Direct Sockets classes on globalThis.
import { install } from './direct-sockets.mjs';

install(globalThis);
