#!/bin/sh
# Only the CUDA backend's module links the CUDA libraries (cudart, cuDNN, cuBLAS/cuBLASLt), so
# that libhfam, the tools and the GStreamer plugin load on a machine without them
# (model/engine/cuda-module.c). ldd lists all that a file loads, its libraries' libraries too.
# Usage: cuda-links.sh MODULE FILE...
# Fails when a FILE loads one of them, or when MODULE loads no cudart or no cuDNN (the names
# looked for would then be wrong).
set -u
cuda_libs='^[[:space:]]*lib(cudart|cudnn|cublas)[._-]'
module=$1
shift
status=0
listing=$(mktemp)
trap 'rm -f "$listing"' EXIT

# what $1 loads, into $listing
list () {
  ldd "$1" >"$listing" 2>&1 && return 0
  echo "FAIL: ldd $1:"
  cat "$listing"
  status=1
  return 1
}

if list "$module"; then
  for lib in cudart cudnn; do
    grep -Eq "^[[:space:]]*lib$lib[.]" "$listing" && continue
    echo "FAIL: $module does not load lib$lib"
    status=1
  done
fi
for f in "$@"; do
  list "$f" || continue
  if grep -Eq "$cuda_libs" "$listing"; then
    echo "FAIL: $f loads CUDA libraries:"
    grep -E "$cuda_libs" "$listing"
    status=1
  else
    echo "ok: $f loads no CUDA library"
  fi
done
exit $status
