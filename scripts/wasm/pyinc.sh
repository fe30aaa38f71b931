#!/usr/bin/env bash
# (inside the toolchain chroot) Python headers for wasm32-emscripten: Debian's python3.X-dev
# headers with a pyconfig.h whose SIZEOF_*/ALIGNOF_* are what emcc really uses (wasm32 is
# ILP32; the host's x86_64 pyconfig.h would give 8-byte longs and pointers).
# usage: pyinc.sh 3.14 OUTDIR
set -euo pipefail
V=$1; OUT=$2
HOST_CONF=/usr/include/x86_64-linux-gnu/python$V/pyconfig.h
[ -f "$HOST_CONF" ] || { echo "pyinc.sh: python$V-dev is not installed in the chroot" >&2; exit 1; }
rm -rf "$OUT" && mkdir -p "$OUT"
cp -a "/usr/include/python$V/." "$OUT/"
PROBE=$(mktemp -d); trap 'rm -rf "$PROBE"' EXIT
{
  printf '#include <stdio.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <stdbool.h>\n'
  printf '#include <sys/types.h>\n#include <pthread.h>\n#include <wchar.h>\n#include <time.h>\nint main(void){\n'
  for name in $(grep -oE '^#define (SIZEOF|ALIGNOF)_[A-Z_]+' "$HOST_CONF" | awk '{print $2}'); do
    t=${name#SIZEOF_}; t=${t#ALIGNOF_}
    case $t in
      VOID_P) ty='void*' ;; LONG_LONG) ty='long long' ;; LONG_DOUBLE) ty='long double' ;;
      _BOOL) ty='_Bool' ;; MAX_ALIGN_T) ty='max_align_t' ;; *) ty=$(tr 'A-Z' 'a-z' <<<"$t") ;;
    esac
    op=sizeof; [[ $name == ALIGNOF_* ]] && op=_Alignof
    printf '  printf("%s %%d\\n", (int)%s(%s));\n' "$name" "$op" "$ty"
  done
  printf '  return 0;\n}\n'
} > "$PROBE/probe.c"
emcc -O0 "$PROBE/probe.c" -o "$PROBE/probe.js"
node "$PROBE/probe.js" > "$PROBE/sizes"
cp "$HOST_CONF" "$OUT/pyconfig.h"
while read -r name value; do
  sed -i -E "s/^#define $name [0-9]+\$/#define $name $value/" "$OUT/pyconfig.h"
done < "$PROBE/sizes"
grep -q '^#define SIZEOF_VOID_P 4$' "$OUT/pyconfig.h" || { echo "pyinc.sh: probe did not yield wasm32 sizes" >&2; exit 1; }
echo "python$V headers for wasm32 in $OUT"
