#!/usr/bin/env bash
# Build the C decoder (native/src) for the browser: web/nmem.wasm, a WASI "reactor" module
# with no imports, used by web/nmem.js and the page web/index.html (docs/C_API.md,
# "WebAssembly").
#
#   bash scripts/build_wasm.sh [OUT.wasm]      (default: web/nmem.wasm)
#
# Tools (Debian 12): clang (14), lld (wasm-ld), wasi-libc (C library for wasm32-wasi) and
# libclang-rt-14-dev-wasm32 (compiler builtins). Nothing is downloaded. CC_WASM overrides
# the compiler (a clang); WASI_SYSROOT the C library's sysroot, when it is not where Debian's clang looks
# (Debian's wasi-libc installs into /usr/include/wasm32-wasi and /usr/lib/wasm32-wasi).
set -euo pipefail
export LC_ALL=C
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/web/nmem.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$root"
cc="${CC_WASM:-clang}"

sysroot=()
if [ -n "${WASI_SYSROOT:-}" ]; then
  sysroot=(--sysroot="$WASI_SYSROOT")
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
# The whole library (native/src/*.c) and the glue. -mexec-model=reactor: no main; the module
# exports _initialize (web/nmem.js runs it once). Only the export_name functions of
# nmem_wasm.c and the memory are exported, and wasm-ld drops what they do not reach (the
# lossless encoder). 1 MB of stack (wasm-ld's default is 64 KB); the memory grows as needed
# (malloc returns NULL, and the decoder NMEM_ERR_MEMORY, where the browser refuses).
"$cc" --target=wasm32-wasi "${sysroot[@]}" -std=c11 -O2 -Wall -Wextra -Werror \
  -Inative/include -mexec-model=reactor -Wl,--strip-all -Wl,-z,stack-size=1048576 \
  native/src/*.c native/wasm/nmem_wasm.c -o "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "$out: $(wc -c < "$out") bytes"
