#!/bin/sh
# Runs one libFuzzer target of a build configured with -Dfuzzing=true (tests/fuzz/meson.build).
# Usage: tests/fuzz/run.sh BUILD_DIR TARGET [SECONDS [LIBFUZZER_ARGS...]]
#   TARGET: weights (loader, hparams, graph) or images (the tools' PNG and JPEG readers).
#   SECONDS: default $FUZZ_SECONDS, else 60.
# The corpus lives in BUILD_DIR/tests/fuzz/corpus-TARGET (seeded by seed-TARGET.sh the first
# time, and kept, so that each run starts where the last one stopped); whatever crashes lands in
# BUILD_DIR/tests/fuzz/crashes-TARGET/. Exits non-zero when the target crashed or leaked.
set -eu
[ $# -ge 2 ] \
  || { echo "usage: $0 BUILD_DIR weights|images [SECONDS [LIBFUZZER_ARGS...]]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
build=$1 target=$2 seconds=${3:-${FUZZ_SECONDS:-60}}
shift 2
[ $# -gt 0 ] && shift
fuzzer=$build/tests/fuzz/fuzz-$target
[ -x "$fuzzer" ] \
  || { echo "$fuzzer: not built (configure with CC=clang -Dfuzzing=true)" >&2; exit 2; }
corpus=$build/tests/fuzz/corpus-$target
crashes=$build/tests/fuzz/crashes-$target
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ]; then
  "$here/seed-$target.sh" "$corpus" "$build"
fi
case $target in
  # the seeds hold the default model (32 MB), but what matters is the header: the micro
  # models of seed-weights.sh are at most 60 kB
  weights) set -- -dict="$here/safetensors.dict" -max_len=65536 "$@" ;;
esac
status=0
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
"$fuzzer" "$corpus" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$crashes/" "$@" || status=$?
echo "corpus: $(ls "$corpus" | wc -l) inputs, $(du -sk "$corpus" | cut -f1) KiB in $corpus"
exit $status
