#!/usr/bin/env bash
# (inside the toolchain chroot) A minimal PYODIDE_ROOT that pyodide-build accepts without
# downloading a cross-build environment: Makefile.envs, the wasm32 headers from pyinc.sh and a
# sysconfigdata for the target. Only what out-of-tree `pyodide build` of C extensions reads.
# usage: xbuildenv.sh PYVER(3.14) PYVERSION(3.14.2) EMSCRIPTEN(6.0.5) ABI(2026_0) PYINC OUTDIR
set -euo pipefail
V=$1; PYVERSION=$2; EMVER=$3; ABI=$4; PYINC=$5; ROOT=$6
rm -rf "$ROOT"; mkdir -p "$ROOT"
INSTALL=$ROOT/cpython/installs/python-$PYVERSION
mkdir -p "$INSTALL/include" "$INSTALL/sysconfigdata" "$INSTALL/lib"
cp -a "$PYINC" "$INSTALL/include/python$V"
cat > "$ROOT/Makefile.envs" <<MK
export PYVERSION ?= $PYVERSION
export PYODIDE_EMSCRIPTEN_VERSION ?= $EMVER
export PYODIDE_VERSION ?= 0.0.0
export PYODIDE_ABI_VERSION ?= $ABI
export PLATFORM_TRIPLET=wasm32-emscripten
export SYSCONFIG_NAME=_sysconfigdata__emscripten_\$(PLATFORM_TRIPLET)
export PYMAJOR=${V%%.*}
export PYMINOR=${V#*.}
export PYMICRO=0
export CPYTHONROOT=\$(PYODIDE_ROOT)/cpython
export CPYTHONINSTALL=\$(CPYTHONROOT)/installs/python-\$(PYVERSION)
export TARGETINSTALLDIR=\$(CPYTHONINSTALL)
export SYSCONFIGDATA_DIR=\$(CPYTHONINSTALL)/sysconfigdata/
export PYTHONINCLUDE=\$(CPYTHONINSTALL)/include/python\$(PYMAJOR).\$(PYMINOR)
export OPTFLAGS=-O2
export CFLAGS_BASE=\$(OPTFLAGS) -g0 -fPIC -fwasm-exceptions -sSUPPORT_LONGJMP=wasm
# --experimental-pic silences wasm-ld 21's "-shared is not yet stable" warning, which
# pyodide-build's compiler wrapper would turn into an error (--fatal-warnings).
export LDFLAGS_BASE=\$(OPTFLAGS) -g0 -L\$(CPYTHONINSTALL)/lib/ -s WASM_BIGINT -fwasm-exceptions -sSUPPORT_LONGJMP=wasm -Wl,--experimental-pic
export CXXFLAGS_BASE=
.output_vars:
	set
MK
"python$V" - "$INSTALL/sysconfigdata/_sysconfigdata__emscripten_wasm32-emscripten.py" \
  "$INSTALL/include/python$V" "$V" <<'PY'
import pprint, re, sys, sysconfig
out, inc, ver = sys.argv[1:4]
tag = ver.replace(".", "")
host = __import__(sysconfig._get_sysconfigdata_name())
config = dict(host.build_time_vars)
for line in open(f"{inc}/pyconfig.h"):
    m = re.match(r"#define ((?:SIZEOF|ALIGNOF)_\w+) (\d+)$", line.strip())
    if m and m.group(1) in config:
        config[m.group(1)] = int(m.group(2))
config.update({
    "EXT_SUFFIX": f".cpython-{tag}-wasm32-emscripten.so", "SOABI": f"cpython-{tag}-wasm32-emscripten",
    "MULTIARCH": "wasm32-emscripten", "HOST_GNU_TYPE": "wasm32-unknown-emscripten", "MACHDEP": "emscripten",
    "CC": "emcc", "CXX": "em++", "LDSHARED": "emcc -shared", "BLDSHARED": "emcc -shared",
    "LDCXXSHARED": "em++ -shared", "CCSHARED": "-fPIC", "CFLAGS": "-DNDEBUG -O2 -Wall",
    "OPT": "-DNDEBUG -O2 -Wall", "BASECFLAGS": "", "PY_CFLAGS": "-DNDEBUG -O2 -Wall", "LDFLAGS": "",
    "CPPFLAGS": "", "INCLUDEPY": inc, "CONFINCLUDEPY": inc, "Py_ENABLE_SHARED": 0,
    "LDLIBRARY": f"libpython{ver}.a", "SHLIB_SUFFIX": ".so",
})
with open(out, "w") as f:
    f.write("# wasm32-emscripten build configuration, derived by socketiwa's xbuildenv.sh\nbuild_time_vars = ")
    pprint.pprint(config, stream=f)
PY
# pyodide-build reads pinned cross-build requirements from here; we have none
: > "$ROOT/../requirements.txt"
echo "PYODIDE_ROOT for Python $PYVERSION / emscripten $EMVER / ABI $ABI in $ROOT"
