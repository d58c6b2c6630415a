#!/bin/sh
# Runs every test: all suites as they are; the loader and element suites under valgrind
# memcheck (a definite leak or a memory error fails them); then a second build, BUILD_DIR-sanitize
# (clang, ASan + UBSan, the fuzz targets), where the kernel, loader, engine, tools, element and
# CUDA emulator suites run again and each fuzz target runs for $FUZZ_SECONDS (default 60) seconds.
# Usage: tests/run-all.sh [BUILD_DIR]   (default: build). Ends with "N passed, N failed".
set -u
build=${1:-build}
passed=0
failed=0
skipped=0

run () {
  log=$(mktemp)
  meson test -C "$build" --print-errorlogs "$@" >"$log" 2>&1
  cat "$log"
  ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  bad=0
  for n in $(sed -n 's/^\(Fail\|Unexpected Pass\|Timeout\): *\([0-9]*\).*/\2/p' "$log"); do
    bad=$((bad + n))
  done
  # meson itself failing (bad setup, build error) counts as a failure too
  [ -z "$ok" ] && bad=$((bad + 1))
  skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  skipped=$((skipped + ${skip:-0}))
  passed=$((passed + ${ok:-0}))
  failed=$((failed + bad))
  rm -f "$log"
}

run
run --setup valgrind --suite loader
run --setup valgrind_gst --suite gst

sanitize=$build-sanitize
if command -v clang >/dev/null 2>&1; then
  if [ ! -d "$sanitize" ]; then
    CC=clang CXX=clang++ meson setup "$sanitize" -Db_sanitize=address,undefined -Db_lundef=false \
      -Dcuda=disabled -Dfuzzing=true >/dev/null || failed=$((failed + 1))
  fi
  build=$sanitize
  run --setup sanitize --suite kernels --suite loader --suite engine --suite tools --suite gst \
    --suite fuzz
  run --setup sanitize_fibers --suite cuda-emulator
else
  echo "skipped: the sanitizer build and the fuzz targets (no clang)"
  skipped=$((skipped + 1))
fi
[ "$skipped" -gt 0 ] && echo "($skipped skipped: a feature this machine lacks, e.g. a CUDA device)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
