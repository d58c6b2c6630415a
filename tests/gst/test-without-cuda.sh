#!/bin/sh
# The element where the CUDA toolkit's libraries are missing: /usr/local/cuda is hidden behind
# an empty folder in a mount namespace of this test's own (nothing outside it sees that), and
# then gst-inspect-1.0 must describe hfammatte, a pipeline with backend=auto must run on the
# CPU, and backend=cuda must fail with the reason. Exit 77 (skipped) where no such namespace can
# be made (unshare -m needs root) or where there is no /usr/local/cuda to hide.
# Usage: test-without-cuda.sh MODEL   (GST_PLUGIN_PATH and HFAMMATTE_CUDA_MODULE from meson)
set -u
model=$1
[ -d /usr/local/cuda ] || { echo "SKIP: no /usr/local/cuda to hide"; exit 77; }
unshare -m true 2>/dev/null || { echo "SKIP: cannot make a mount namespace (unshare -m)"; exit 77; }

GST_REGISTRY=$(mktemp -u /tmp/hfam-without-cuda-XXXXXX.bin)
export GST_REGISTRY
trap 'rm -f "$GST_REGISTRY"' EXIT
exec unshare -m sh -eu -c '
  mount -t tmpfs none /usr/local/cuda
  model=$1
  log=$(mktemp)
  trap "rm -f $log" EXIT
  gst-inspect-1.0 hfammatte >"$log" 2>&1 || { cat "$log"; echo "FAIL: gst-inspect-1.0"; exit 1; }
  echo "ok: gst-inspect-1.0 hfammatte"
  pipeline="videotestsrc num-buffers=3 ! video/x-raw,width=64,height=48 ! hfammatte model=$model"
  gst-launch-1.0 -q $pipeline backend=auto ! fakesink >"$log" 2>&1 \
    || { cat "$log"; echo "FAIL: backend=auto did not run on the CPU"; exit 1; }
  echo "ok: backend=auto runs on the CPU"
  if gst-launch-1.0 -q $pipeline backend=cuda ! fakesink >"$log" 2>&1; then
    echo "FAIL: backend=cuda ran without the CUDA libraries"
    exit 1
  fi
  grep -q "does not open" "$log" || { cat "$log"; echo "FAIL: backend=cuda says no why"; exit 1; }
  echo "ok: backend=cuda fails: $(grep -o "module .*" "$log" | head -n 1)"
' sh "$model"
