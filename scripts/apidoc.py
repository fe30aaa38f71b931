#!/usr/bin/env python3
"""The API reference, generated from docstrings with pdoc: build/apidoc/index.html.

    .venv/bin/python scripts/apidoc.py              # check docstrings, then build
    .venv/bin/python scripts/apidoc.py --check      # only the docstring check

Fails (exit 1) when a public name has no docstring (listed, one per line) or pdoc cannot
build a page. Public: what a module's ``__all__`` lists, or else every name it defines without
a leading underscore; for a class, also its public methods and properties (a method that
overrides a documented one inherits that documentation). Constants need none.
Docstrings are reStructuredText (pdoc's docformat="restructuredtext"), with literal blocks
(``Example::``) shown as code (rst_literal_blocks). tests/test_packaging.py runs it in CI.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import warnings
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "pkg"))

# What a user imports. The Pyodide-only backend (it imports the browser's `js`) and the
# internals (socketiwa's own wire format, event machinery, the CLI's helpers) are not part of the
# reference; socketiwa.seedwire is (the README's wire="socketiwa-js": the JS library's envelopes).
PUBLIC_MODULES = (
    "socketiwa", "socketiwa.aio", "socketiwa.compat", "socketiwa.quic", "socketiwa.errors",
    "socketiwa.permissions", "socketiwa.seedwire", "socketiwa.h3", "socketiwa.h3.client", "socketiwa.h3.server",
    "socketiwa.h3.webtransport", "socketiwa.h3.websocket", "socketiwa.h3.tickets", "socketiwa.h3.echo",
)

# Modules whose names are not held to the docstring rule (their pages are still built): none.
# It was the transport core while issue 9 rewrote it; tests/test_typecheck.py keeps it empty,
# as it keeps pyproject.toml free of mypy exemptions.
DOCSTRINGS_PENDING: frozenset[str] = frozenset()


def pending(module_name: str) -> bool:
    return module_name in DOCSTRINGS_PENDING or any(
        p.endswith(".*") and module_name.startswith(p[:-1]) for p in DOCSTRINGS_PENDING)


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, obj in vars(module).items()
            if not n.startswith("_") and getattr(obj, "__module__", None) == module.__name__]


def class_members(cls: type) -> list[tuple[str, object]]:
    """Public methods and properties the class itself defines."""
    out = []
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if inspect.isfunction(func) or isinstance(func, property):
            out.append((name, func))
    return out


def inherited_doc(cls: type, name: str) -> str | None:
    for base in cls.__mro__[1:]:
        member = vars(base).get(name)
        if member is not None and getattr(member, "__doc__", None):
            return str(member.__doc__)
    return None


def missing_docstrings() -> tuple[list[str], int]:
    """(names without a docstring, how many were skipped as pending)."""
    missing: list[str] = []
    skipped = 0
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip() and not pending(module_name):
            missing.append(f"{module_name} (module)")
        for name in public_names(module):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue  # constants, submodules; and each object once, where it is re-exported
            seen.add(id(obj))
            where = f"{obj.__module__}.{obj.__qualname__}"
            if pending(obj.__module__):
                skipped += 1
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(where)
            if inspect.isclass(obj):
                for member_name, member in class_members(obj):
                    if not (getattr(member, "__doc__", None) or "").strip() \
                            and not inherited_doc(obj, member_name):
                        missing.append(f"{where}.{member_name}")
    return missing, skipped


def listed_by_parent(module_name: str) -> bool:
    """pdoc adds a submodule its parent's ``__all__`` names by itself (naming it again warns)."""
    parent, _, name = module_name.rpartition(".")
    return bool(parent) and name in getattr(importlib.import_module(parent), "__all__", ())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rst_literal_blocks(doc: str) -> str:
    """reST literal blocks as Markdown code fences. The docstrings are reStructuredText
    (``literal``, :class:`roles`, ``Example::`` then an indented block); pdoc converts most of
    that to Markdown but shows ``::`` and the block's indentation as written. As reST reads it:
    ``Server::`` -> ``Server:``; ``text ::`` and a lone ``::`` lose the marker."""
    lines = doc.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        text = line.rstrip()
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        if not (text.endswith("::") and not text.lstrip().startswith("..")  # (a directive)
                and j < len(lines) and _indent(lines[j]) > _indent(line)):
            out.append(line)
            i += 1
            continue
        base, inner = _indent(line), _indent(lines[j])
        end = j
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > base):
            end += 1
        while not lines[end - 1].strip():  # trailing blank lines stay outside the fence
            end -= 1
        head = text[:-2]
        head = head.rstrip() if head.endswith(" ") or not head.strip() else head + ":"
        if head.strip():
            out += [head, ""]
        pad = " " * base
        out += [pad + "```python", *[pad + l[inner:] if l.strip() else "" for l in lines[j:end]],
                pad + "```"]
        i = end
    return "\n".join(out)


def build(out: Path) -> Path:
    import pdoc
    import pdoc.docstrings
    import pdoc.render

    rst = pdoc.docstrings.rst
    if not getattr(rst, "literal_blocks", False):  # once per process
        def rst_then_markdown(contents: str, source_file: Path | None) -> str:
            return rst(rst_literal_blocks(contents), source_file)
        setattr(rst_then_markdown, "literal_blocks", True)
        pdoc.docstrings.rst = rst_then_markdown  # what docformat="restructuredtext" runs
    pdoc.render.configure(docformat="restructuredtext", search=True, show_source=True,
                          footer_text="socketiwa API reference")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*[m for m in PUBLIC_MODULES if not listed_by_parent(m)], output_directory=out)
    # Annotations naming types imported only for type checkers (TYPE_CHECKING, to avoid import
    # cycles) cannot be resolved at run time: pdoc shows them as written. Count, don't flood.
    unresolved = [w for w in caught if "Error parsing type annotation" in str(w.message)]
    for w in caught:
        if w not in unresolved:
            print(f"pdoc: {w.message}", file=sys.stderr)
    if unresolved:
        print(f"apidoc: {len(unresolved)} annotations shown as written (TYPE_CHECKING-only names)")
    return out / "index.html"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "apidoc")
    ap.add_argument("--check", action="store_true", help="only check docstrings, build nothing")
    args = ap.parse_args()
    missing, skipped = missing_docstrings()
    for name in missing:
        print(f"no docstring: {name}", file=sys.stderr)
    if missing:
        print(f"apidoc: {len(missing)} public names without a docstring", file=sys.stderr)
        return 1
    print(f"apidoc: docstrings present ({skipped} names of modules being rewritten not checked)")
    if not args.check:
        print(f"apidoc: built {build(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
