#!/usr/bin/env bash
# Fuzz the native core's container parser, lossy and lossless decoders with libFuzzer under
# AddressSanitizer + UndefinedBehaviorSanitizer (native/fuzz/fuzz_nmem.c).
#
#   bash scripts/fuzz.sh [SECONDS] [libFuzzer flags...]     # default 60 s
#
# Needs clang (Debian: apt-get install clang). New inputs go to native/fuzz/work/corpus (ignored
# by git); the committed seeds in native/fuzz/corpus are only read. A finding stops the run
# with a crash-* file in native/fuzz/work and exit status != 0. The last lines printed are
# libFuzzer's final statistics (stat::number_of_executed_units = executions).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
cc="${CLANG:-clang}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "scripts/fuzz.sh needs clang with libFuzzer (apt-get install clang)" >&2
  exit 2
fi
work="$root/native/fuzz/work"
mkdir -p "$work/corpus"
# The decoder's numeric loops compare on every sample: libFuzzer's comparison tracing there
# cost 70 % of the time and finds nothing a parser would need, so lossy.c is built without it
# (edge coverage and the sanitizers stay on everywhere).
flags=(-std=c11 -g -O2 -Wall -Wextra -Werror -fno-sanitize-recover=all -I"$root/native/include")
san=-fsanitize=fuzzer-no-link,address,undefined
"$cc" "${flags[@]}" "$san" -c "$root/native/src/container.c" -o "$work/container.o"
"$cc" "${flags[@]}" "$san" -c "$root/native/src/tables.c" -o "$work/tables.o"
"$cc" "${flags[@]}" "$san" -fno-sanitize-coverage=trace-cmp -c "$root/native/src/lossy.c" \
  -o "$work/lossy.o"
"$cc" "${flags[@]}" "$san" -fno-sanitize-coverage=trace-cmp -c "$root/native/src/lossless.c" \
  -o "$work/lossless.o"
"$cc" "${flags[@]}" "$san" -c "$root/native/fuzz/fuzz_nmem.c" -o "$work/fuzz_nmem.o"
"$cc" -fsanitize=fuzzer,address,undefined "$work"/{container,tables,lossy,lossless,fuzz_nmem}.o \
  -o "$work/fuzz_nmem"
cd "$work"
exec ./fuzz_nmem -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" "$root/native/fuzz/corpus"
