"""Add bytecode to the standard library zip and to wheels, compiled by the very CPython the app
ships (run inside Pyodide under Node by build.mjs, so the bytecode magic always matches).

Pyodide's python_stdlib.zip holds only .py files, so CPython compiled every module it imported
at each start, in wasm (about 1.5 s of the launch here). The .pyc files are "unchecked hash" pycs
(PEP 552): the import system uses them without reading or hashing the source, and the sources
stay in place for tracebacks and inspect.

    precompile_zip(src, dst)    a stdlib zip: x.pyc next to each x.py (where zipimport looks)
    precompile_wheel(src, dst)  a wheel: __pycache__/x.cpython-3NN.pyc per x.py, listed in RECORD

Entries keep their original timestamps, so the same input gives the same output bytes.
"""
import importlib._bootstrap_external as bootstrap
import importlib.util
import sys
import zipfile

SITE_PACKAGES = f"{sys.prefix.rstrip('/')}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"


def _pyc(source: bytes, filename: str) -> bytes | None:
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError:
        return None  # e.g. a test fixture with deliberate errors: leave it as source only
    return bootstrap._code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)


def _copy_info(info: zipfile.ZipInfo, name: str) -> zipfile.ZipInfo:
    out = zipfile.ZipInfo(name, date_time=info.date_time)
    out.compress_type = zipfile.ZIP_DEFLATED
    out.external_attr = info.external_attr
    return out


def precompile_zip(src: str, dst: str, runtime_path: str) -> int:
    """runtime_path: where the zip sits at run time (/lib/python314.zip), for code filenames."""
    count = 0
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(_copy_info(info, info.filename), data)
            if info.filename.endswith(".py"):
                pyc = _pyc(data, f"{runtime_path}/{info.filename}")
                if pyc is not None:
                    zout.writestr(_copy_info(info, info.filename[:-3] + ".pyc"), pyc)
                    count += 1
    return count


def precompile_wheel(src: str, dst: str) -> int:
    count = 0
    added = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        record = None
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                record = (info, data)  # written last, with the .pyc files listed
                continue
            zout.writestr(_copy_info(info, info.filename), data)
            if info.filename.endswith(".py") and ".data/" not in info.filename:
                pyc = _pyc(data, f"{SITE_PACKAGES}/{info.filename}")
                if pyc is not None:
                    name = importlib.util.cache_from_source(info.filename)
                    zout.writestr(_copy_info(info, name), pyc)
                    added.append(name)
                    count += 1
        if record is not None:
            info, data = record
            if data and not data.endswith(b"\n"):
                data += b"\n"
            zout.writestr(_copy_info(info, info.filename), data + "".join(f"{n},,\n" for n in added).encode())
    return count
