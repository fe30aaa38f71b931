"""The README's HTTP/3 interop table is made from test results (tests/interop_table.py): every
cell must name a test that exists and runs on all three runtimes in CI, or a renamed or removed
test would leave a cell "not run" without anyone noticing."""
import subprocess
import sys
from pathlib import Path

import interop_table

ROOT = Path(__file__).resolve().parent.parent


def test_every_interop_cell_names_a_collected_test():
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--runtimes=cpython,node,iwa", *interop_table.TEST_FILES],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    collected = set()
    for line in out.stdout.splitlines():
        path, sep, name = line.strip().partition("::")
        if sep:
            collected.add(f"{Path(path).stem}::{name}")
    cells = [(row, test) for row, *tests in interop_table.SERVER_TABLE + interop_table.CLIENT_TABLE
             for test in tests if test is not None]
    assert len(cells) >= 30
    missing = [(row, test) for row, test in cells if test not in collected]
    assert not missing, missing
    # every row has its server-on-CPython (or client-on-CPython) and in-the-IWA cells
    for row, on_cpython, _in_node, in_iwa in interop_table.SERVER_TABLE + interop_table.CLIENT_TABLE:
        if row != "Starlette app served":      # a CPython-only extra, not in the README's table
            assert on_cpython and in_iwa, row
