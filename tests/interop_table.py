"""The HTTP/3 interop table, from test results: which clients work against which socketiwa
servers, each cell one test's outcome.

    python tests/interop_table.py --run             # run the interop tests, print the table
    python tests/interop_table.py results.xml       # from an earlier pytest --junitxml run

Cells: "pass", "FAIL", "skip" (not run here, e.g. a package missing), "·" (no such pairing).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_FILES = ["tests/test_webtransport_chromium.py", "tests/test_h3_chromium.py", "tests/test_ws_h3_chromium.py",
              "tests/test_h3_chromium_runtime_server.py", "tests/test_h3_curl.py", "tests/test_h3.py",
              "tests/test_webtransport.py", "tests/test_ws_h3.py", "tests/test_h3_tickets.py",
              "tests/test_h3_starlette.py"]
RUNTIME_SERVER = "test_h3_chromium_runtime_server::test_chromium_h3_clients_against_runtime_server"

# (row, test for the server on CPython, in Pyodide under Node, in the IWA); "{rt}" is the runtime
SERVER_TABLE = [
    ("Chromium WebTransport, plain page",
     "test_webtransport_chromium::test_chromium_webtransport_against_socketiwa_server",
     f"{RUNTIME_SERVER}[node]", f"{RUNTIME_SERVER}[iwa]"),
    ("Chromium WebTransport, page in the IWA",
     "test_webtransport_chromium::test_iwa_page_webtransport_client_against_cpython_server[iwa]", None,
     "test_webtransport_chromium::test_iwa_page_webtransport_client_against_server_in_the_iwa[iwa]"),
    ("Chromium h3 navigation + fetch (nextHopProtocol h3)",
     "test_h3_chromium::test_chromium_fetch_and_navigation_over_h3", f"{RUNTIME_SERVER}[node]",
     f"{RUNTIME_SERVER}[iwa]"),
    ("Chromium fetch resumed with 0-RTT", "test_h3_chromium::test_chromium_fetch_resumes_with_0rtt",
     f"{RUNTIME_SERVER}[node]", f"{RUNTIME_SERVER}[iwa]"),
    ("Chromium WebSocket over h3", "test_ws_h3_chromium::test_chromium_websocket_over_h3_against_socketiwa_server",
     f"{RUNTIME_SERVER}[node]", f"{RUNTIME_SERVER}[iwa]"),
    ("curl (curl_cffi) h3", *(f"test_h3_curl::test_curl_h3_client_against_socketiwa_server[{rt}]"
                              for rt in ("cpython", "node", "iwa"))),
    ("aioquic h3 client (GET, streams, trailers, CONNECT + datagrams)",
     *(f"test_h3::test_h3_asgi_server_with_aioquic_client[{rt}]" for rt in ("cpython", "node", "iwa"))),
    ("socketiwa client (same runtime), h3", *(f"test_h3::test_h3_socketiwa_both_ends[{rt}]"
                                              for rt in ("cpython", "node", "iwa"))),
    ("socketiwa client (same runtime), WebTransport",
     *(f"test_webtransport::test_webtransport_socketiwa_both_ends[{rt}]" for rt in ("cpython", "node", "iwa"))),
    ("socketiwa client (same runtime), WebSocket over h3",
     *(f"test_ws_h3::test_ws_h3_asgi_server_and_client[{rt}]" for rt in ("cpython", "node", "iwa"))),
    ("socketiwa client (same runtime), tickets + 0-RTT",
     *(f"test_h3_tickets::test_h3_resumption_and_0rtt[{rt}]" for rt in ("cpython", "node", "iwa"))),
    ("Starlette app served", "test_h3_starlette::test_starlette_over_h3", None, None),
]
# (row, test for the socketiwa client on CPython, in Pyodide under Node, in the IWA)
CLIENT_TABLE = [
    ("aioquic h3 server", *(f"test_h3::test_h3_client_against_aioquic_server[{rt}]"
                            for rt in ("cpython", "node", "iwa"))),
    ("aioquic WebTransport server", *(f"test_webtransport::test_webtransport_client_against_aioquic_server[{rt}]"
                                      for rt in ("cpython", "node", "iwa"))),
    ("aioquic + wsproto WebSocket-over-h3 server",
     *(f"test_ws_h3::test_ws_h3_client_against_aioquic_server[{rt}]" for rt in ("cpython", "node", "iwa"))),
]


def outcomes(junit: Path) -> dict[str, str]:
    """'module::name[param]' -> pass/FAIL/skip."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        key = case.get("classname", "").rsplit(".", 1)[-1] + "::" + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            out[key] = "FAIL"
        elif case.find("skipped") is not None:
            out[key] = "skip"
        else:
            out[key] = "pass"
    return out


def render(results: dict[str, str]) -> str:
    def cell(test):
        return "·" if test is None else results.get(test, "not run")

    lines = ["| client | server on CPython | server in Pyodide (Node) | server in the IWA |",
             "|---|---|---|---|"]
    lines += [f"| {row} | {cell(a)} | {cell(b)} | {cell(c)} |" for row, a, b, c in SERVER_TABLE]
    lines += ["", "| server (on CPython) | socketiwa client on CPython | in Pyodide (Node) | in the IWA |",
              "|---|---|---|---|"]
    lines += [f"| {row} | {cell(a)} | {cell(b)} | {cell(c)} |" for row, a, b, c in CLIENT_TABLE]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("junit", nargs="?", type=Path, help="a pytest --junitxml file")
    ap.add_argument("--run", action="store_true", help="run the interop tests first (scripts/netns.sh)")
    args = ap.parse_args()
    junit = args.junit
    if args.run:
        junit = Path(tempfile.mkdtemp()) / "interop.xml"
        subprocess.run([str(ROOT / "scripts" / "netns.sh"), str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest",
                        "-q", "-p", "no:cacheprovider", "--runtimes=cpython,node,iwa", f"--junitxml={junit}",
                        *TEST_FILES], cwd=ROOT)
    if junit is None:
        ap.error("give a junit file or --run")
    print(render(outcomes(junit)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
