"""Backend selection: Direct Sockets in Pyodide, asyncio sockets on CPython."""
from __future__ import annotations

import sys

from .base import Backend

_backend: Backend | None = None


def get_backend() -> Backend:
    """The backend in use: ``set_backend``'s, else the platform's (imported on first use)."""
    global _backend
    if _backend is None:
        if sys.platform == "emscripten":
            from . import directsockets as default
        else:
            from . import native as default
        _backend = default
        return default
    return _backend


def set_backend(module: Backend | None) -> None:
    """Force a backend (tests, or an embedder with its own transport). None restores the default."""
    global _backend
    _backend = module
