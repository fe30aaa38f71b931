#!/usr/bin/env bash
# A second CPython pass on a newer Python than .venv's 3.11: Debian's python3.14 from the toolchain
# chroot that build-wasm.sh makes (a registry package, so a fresh machine gets it the same way).
# asyncio changed under socketiwa in 3.12+ (Server.wait_closed waits for connections, sendto of
# empty datagrams), so the transport core's tests run on both. CPython only: no Pyodide here.
# It works in a private mount namespace, so build-wasm.sh's own chroot mounts are never touched.
#
#   scripts/cpython-newer.sh prepare      make or refresh its venv in the chroot (needs PyPI)
#   scripts/cpython-newer.sh run [ARGS]   run pytest there (ARGS with tests/... paths replace the
#                                         default test files)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SID=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}/toolchain/sid
PY=python3.14
VENV=/srv/build/venv-test-$PY
REQS="pytest==8.4.2 pytest-timeout==2.4.0 $(grep -E '^hypothesis' "$ROOT/requirements-dev.txt") tblib pexpect pytest-asyncio"
TESTS=(tests/test_events.py tests/test_udp.py tests/test_tcp.py tests/test_server.py tests/test_hostile.py
       tests/test_aio.py tests/test_compat_socket.py
       tests/test_hostile_props.py)

if [ ! -x "$SID/usr/bin/$PY" ] || [ "$(id -u)" != 0 ]; then
  echo "cpython-newer.sh: SKIPPED: no $PY toolchain chroot at $SID (run build-wasm.sh as root)" >&2
  exit 0
fi

in_chroot() {  # a private mount namespace: proc/dev and the repo (read-only) at /srv/test-repo
  unshare -m bash -c '
    set -e; SID=$1; ROOT=$2; shift 2
    mount --make-rprivate /
    for m in proc dev; do mountpoint -q "$SID/$m" || mount --bind "/$m" "$SID/$m"; done
    mkdir -p "$SID/srv/test-repo"
    mount --bind -o ro "$ROOT" "$SID/srv/test-repo"
    exec chroot "$SID" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/bin:/bin \
      SSL_CERT_FILE=/srv/host-ca-bundle.crt PIP_CERT=/srv/host-ca-bundle.crt \
      PYTHONDONTWRITEBYTECODE=1 "$@"' in_chroot "$SID" "$ROOT" "$@"
}

case "${1:-run}" in
  prepare)
    key=$(echo "$REQS pytest-pyodide==0.59.2" | sha256sum | cut -c1-16)
    stamp="$SID$VENV/.socketiwa-key"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then exit 0; fi
    echo "==> $PY test venv in the toolchain chroot"
    in_chroot bash -c "rm -rf $VENV && $PY -m venv $VENV && $VENV/bin/pip install -q $REQS &&
      $VENV/bin/pip install -q --no-deps pytest-pyodide==0.59.2"
    echo "$key" > "$stamp"
    ;;
  run)
    shift || true
    [ -f "$SID$VENV/pyvenv.cfg" ] || { echo "cpython-newer.sh: run 'prepare' first" >&2; exit 1; }
    args=("$@")
    paths=0; for a in "$@"; do case $a in tests/*) paths=1 ;; esac; done
    [ $paths = 1 ] || args=("${TESTS[@]}" "$@")
    echo "==> pytest on $PY (CPython tests only)"
    in_chroot bash -c 'cd /srv/test-repo && PYTHONPATH=/srv/test-repo/pkg exec "$0" -m pytest \
      -p no:cacheprovider --runtimes=cpython "$@"' "$VENV/bin/python" "${args[@]}"
    ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
