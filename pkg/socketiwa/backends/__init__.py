"""Backend selection: Direct Sockets in Pyodide, asyncio sockets on CPython."""
from __future__ import annotations

import sys
from types import ModuleType

_backend: ModuleType | None = None


def get_backend() -> ModuleType:
    global _backend
    if _backend is None:
        if sys.platform == "emscripten":
            from . import directsockets as _backend
        else:
            from . import native as _backend
    return _backend


def set_backend(module: ModuleType | None) -> None:
    """Force a backend (tests, or an embedder with its own transport). None restores the default."""
    global _backend
    _backend = module
