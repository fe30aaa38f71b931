#!/usr/bin/env bash
# Build everything that runs in the browser, from registry packages only:
#   toolchain   a Debian sid chroot with emscripten 6.0.5 (cached outside the repo, reused)
#   wheels      aioquic, pylsqpack and socketiwa-crypto (AWS-LC) for Pyodide 314.0.7
#               -> dist/wasm/wheels; a check build for Pyodide 315.0.0-alpha.2 -> dist/wasm/wheels-315
#   dist        build/pyodide-dist-314: the Pyodide runtime + every wheel the page loads
#   user dist   dist/pyodide: runtime, wheels and pyodide-lock.json for your own page
#   app         build/iwa (dev-mode layout) and build/socketiwa.swbn (signed; prints its ID)
#
# Usage: bash build-wasm.sh [--clean] [--help]
#   --clean   delete the outputs and the cache (toolchain chroot included), then build from nothing
# Cache: $SOCKETIWA_CACHE (default ~/.cache/socketiwa)/toolchain. Needs root (debootstrap, chroot).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CACHE=${SOCKETIWA_CACHE:-$HOME/.cache/socketiwa}
TC=$CACHE/toolchain
CHROOT=$TC/sid
EMSCRIPTEN_VERSION=6.0.5
# Pyodide runtime -> the Python it embeds and its ABI tag (from the npm packages' pyodide-lock.json)
TARGETS=("314 3.14 3.14.2 2026_0 dist/wasm/wheels" "315 3.15 3.15.0rc1 2026_5 dist/wasm/wheels-315")
RECIPES=(pylsqpack aioquic socketiwa-crypto)
CHROOT_PACKAGES="emscripten python3 python3.14-dev python3.15-dev python3.14-venv python3.15-venv make cmake"
CHROOT_PACKAGES+=" librust-aws-lc-sys-dev ca-certificates"

STEP=start
step() { printf '==> %s\n' "$*"; STEP="$*"; STEP_START=$(date +%s); }
done_step() { printf '    ok (%ss)\n' "$(( $(date +%s) - STEP_START ))"; }
die() { echo "build-wasm.sh: $*" >&2; exit 1; }

# --- chroot plumbing: bind mounts live only while this script runs ---
MOUNTS=(proc sys dev dev/pts srv/repo)
unmount_chroot() {
  local m
  for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do
    m=$CHROOT/${MOUNTS[i]}
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m"; fi
  done
}
mount_chroot() {
  mkdir -p "$CHROOT/srv/repo"
  for m in proc sys dev dev/pts; do mountpoint -q "$CHROOT/$m" || mount --bind "/$m" "$CHROOT/$m"; done
  mountpoint -q "$CHROOT/srv/repo" || mount --bind -o ro "$ROOT" "$CHROOT/srv/repo"
}
in_chroot() {
  chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH=/srv/build/bin:/usr/local/bin:/usr/bin:/bin:/usr/lib/llvm-21/bin \
    SSL_CERT_FILE=/srv/host-ca-bundle.crt PIP_CERT=/srv/host-ca-bundle.crt \
    REQUESTS_CA_BUNDLE=/srv/host-ca-bundle.crt "$@"
}
# A step's output is reused while the stamp holds the same key (its inputs' hash).
stamp_ok() { [ -f "$TC/stamps/$1" ] && [ "$(cat "$TC/stamps/$1")" = "$2" ]; }
stamp() { mkdir -p "$TC/stamps"; echo "$2" > "$TC/stamps/$1"; }
key_of() { cat "$@" | sha256sum | cut -c1-16; }

trap 'rc=$?; unmount_chroot; [ $rc = 0 ] || echo "build-wasm.sh: FAILED at step: $STEP" >&2' EXIT

case "${1:-}" in
  --help|-h) sed -n '2,12p' "$0"; exit 0 ;;
  --clean)
    echo "==> --clean: removing build/, dist/wasm, dist/pyodide and $TC"
    unmount_chroot; rm -rf build dist/wasm dist/pyodide "$TC"; shift ;;
  "") ;;
  *) die "unknown option $1 (see --help)" ;;
esac

[ -x .venv/bin/python ] || die "run scripts/setup.sh first (no .venv)"
[ -d node_modules/pyodide ] || die "run scripts/setup.sh first (no node_modules/pyodide)"
[ "$(id -u)" = 0 ] || die "needs root for debootstrap/chroot (try: sudo bash build-wasm.sh)"
command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/setup.sh"

# --- toolchain ---
step "toolchain: Debian sid chroot ($CHROOT)"
if ! stamp_ok chroot "$CHROOT_PACKAGES"; then
  unmount_chroot; rm -rf "$CHROOT"; mkdir -p "$TC"
  debootstrap --variant=minbase sid "$CHROOT" http://deb.debian.org/debian > "$TC/debootstrap.log" 2>&1 \
    || die "debootstrap failed (log: $TC/debootstrap.log)"
  # sid's Release file can be past Valid-Until by this machine's clock
  echo 'Acquire::Check-Valid-Until "false";' > "$CHROOT/etc/apt/apt.conf.d/99no-valid-until"
  cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/srv/host-ca-bundle.crt"
  mount_chroot
  # shellcheck disable=SC2086
  in_chroot bash -c "DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends $CHROOT_PACKAGES" > "$TC/apt.log" 2>&1 \
    || die "apt-get install in the chroot failed (log: $TC/apt.log)"
  stamp chroot "$CHROOT_PACKAGES"
fi
mount_chroot
emver=$(in_chroot emcc --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)
[ "$emver" = "$EMSCRIPTEN_VERSION" ] || die "chroot has emscripten ${emver:-none}, need $EMSCRIPTEN_VERSION"
done_step

step "toolchain: wasm32 Python headers, pyodide-build venvs, PYODIDE_ROOTs"
key=$(key_of scripts/wasm/pyinc.sh scripts/wasm/xbuildenv.sh scripts/wasm/pyodide-build-requirements.txt)
if ! stamp_ok pyenv "$key"; then
  for t in "${TARGETS[@]}"; do
    read -r runtime pyver pyversion abi _ <<<"$t"
    in_chroot bash /srv/repo/scripts/wasm/pyinc.sh "$pyver" "/srv/build/pyinc/python$pyver" > "$TC/pyinc-$pyver.log" 2>&1 \
      || die "wasm32 headers for Python $pyver failed (log: $TC/pyinc-$pyver.log)"
    in_chroot bash -c "rm -rf /srv/build/venv-pb$runtime && python$pyver -m venv /srv/build/venv-pb$runtime && \
      /srv/build/venv-pb$runtime/bin/pip install -q -r /srv/repo/scripts/wasm/pyodide-build-requirements.txt" \
      > "$TC/venv-$runtime.log" 2>&1 || die "pyodide-build venv for Python $pyver failed (log: $TC/venv-$runtime.log)"
    in_chroot bash /srv/repo/scripts/wasm/xbuildenv.sh "$pyver" "$pyversion" "$EMSCRIPTEN_VERSION" "$abi" \
      "/srv/build/pyinc/python$pyver" "/srv/build/xbe$runtime/pyodide-root" > "$TC/xbe-$runtime.log" 2>&1 \
      || die "PYODIDE_ROOT for $runtime failed (log: $TC/xbe-$runtime.log)"
  done
  stamp pyenv "$key"
fi
done_step

step "AWS-LC libcrypto for wasm32"
key=$(key_of scripts/wasm/awslc.sh; ls "$CHROOT"/usr/share/cargo/registry | grep aws-lc-sys)
if ! stamp_ok awslc "$key"; then
  in_chroot bash /srv/repo/scripts/wasm/awslc.sh /srv/build/awslc-wasm > "$TC/awslc.log" 2>&1 \
    || { tail -5 "$TC/awslc.log" >&2; die "AWS-LC build failed (log: $TC/awslc.log)"; }
  stamp awslc "$key"
fi
cat "$CHROOT/srv/build/awslc-wasm/SOURCE"
done_step

step "crypto provider for this host's CPython (build/crypto-native; tests hold it against cryptography)"
bash crypto/build_native.sh > "$TC/crypto-native.log" 2>&1 || { tail -20 "$TC/crypto-native.log" >&2; die "native provider build failed (log: $TC/crypto-native.log)"; }
done_step

# --- wheels ---
for t in "${TARGETS[@]}"; do
  read -r runtime pyver pyversion abi outdir <<<"$t"
  mkdir -p "$outdir"
  for recipe in "${RECIPES[@]}"; do
    step "wheel: $recipe for Pyodide $runtime (ABI $abi)"
    # Rebuild when the recipe, the toolchain or (for local sources) any file under it changed.
    src=$(sed -nE 's/^\s+path:\s*(\S+)/\1/p' "recipes/$recipe/meta.yaml")
    key=$( { cat "recipes/$recipe/meta.yaml" scripts/wasm/build_recipe.py "$TC/stamps/awslc" "$TC/stamps/pyenv"
             if [ -n "$src" ]; then
               find "recipes/$recipe/$src" -type f -not -path '*/__pycache__/*' -not -name '*.so' | sort | xargs cat
             fi; } | sha256sum | cut -c1-16)
    if stamp_ok "wheel-$recipe-$runtime" "$key" && ls "$outdir/${recipe//-/_}"-*.whl >/dev/null 2>&1; then
      echo "    cached"; continue
    fi
    in_chroot "/srv/build/venv-pb$runtime/bin/python" /srv/repo/scripts/wasm/build_recipe.py \
      "/srv/repo/recipes/$recipe" "/srv/build/wheels$runtime" --abi "$abi" \
      --pyodide-root "/srv/build/xbe$runtime/pyodide-root" --sdist-cache /srv/build/sdists \
      --var awslc=/srv/build/awslc-wasm 2> "$TC/wheel-$recipe-$runtime.log" \
      || { tail -20 "$TC/wheel-$recipe-$runtime.log" >&2; die "$recipe for Pyodide $runtime failed (log: $TC/wheel-$recipe-$runtime.log)"; }
    rm -f "$outdir/${recipe//-/_}"-*.whl
    cp "$CHROOT/srv/build/wheels$runtime/${recipe//-/_}"-*.whl "$outdir/"
    stamp "wheel-$recipe-$runtime" "$key"
    done_step
  done
done
unmount_chroot

# --- runtime distributions, checked by importing every recipe's test imports ---
for t in "${TARGETS[@]}"; do
  read -r runtime _ _ _ outdir <<<"$t"
  step "Pyodide $runtime distribution (build/pyodide-dist-$runtime) and import check"
  .venv/bin/python scripts/pyodide_dist.py --version "$runtime" --wheels "$outdir" >/dev/null
  imports=$(.venv/bin/python -c 'import glob, json, yaml
print(json.dumps({m["package"]["name"]: m["test"]["imports"] for m in
                  map(lambda p: yaml.safe_load(open(p)), ["meta.yaml", *sorted(glob.glob("recipes/*/meta.yaml"))])}))')
  node scripts/wasm/import_check.mjs "build/pyodide-dist-$runtime" "$imports" \
    || die "built wheels do not import in Pyodide $runtime"
  done_step
done

step "Pyodide wheels and lock for your own page (dist/pyodide; scripts/pyodide_user_dist.py)"
.venv/bin/python scripts/pyodide_user_dist.py --out dist/pyodide >/dev/null
done_step

step "Isolated Web App and signed web bundle (build/iwa, build/socketiwa.swbn)"
node iwa-shell/build.mjs --dev-dir build/iwa --swbn build/socketiwa.swbn | tee build/iwa-build.json
done_step

echo "build-wasm.sh: done"
