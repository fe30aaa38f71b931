"""The QUIC examples as one app: ``socketiwa run examples/quic -- NAME [ARGS]`` runs NAME.py
inside the IWA (``python examples/quic/NAME.py [ARGS]`` on CPython). NAME is one of
http3_app, webtransport_echo, websocket_h3, zero_rtt (each file says what it does)."""
import importlib
import sys

EXAMPLES = ("http3_app", "webtransport_echo", "websocket_h3", "zero_rtt")

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in EXAMPLES:
        sys.exit(f"usage: main.py {{{','.join(EXAMPLES)}}} [ARGS]  (see each file's docstring)")
    sys.exit(importlib.import_module(sys.argv[1]).main(sys.argv[2:]))
