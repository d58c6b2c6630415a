#!/bin/sh
# Builds a seed corpus for fuzz-weights from real weight files; nothing of it is committed.
#
#   tests/fuzz/seed-weights.sh OUTDIR [BUILDDIR]
#
# Seeds: the shipped default model, the test models the engine suite generates in BUILDDIR
# (default: build; absent until `meson compile -C BUILDDIR` ran), and "micro" models written
# here by the PyTorch reference: every width 1, so a whole network is 20 to 60 kB, ResNet-18
# and -50 (basic and bottleneck blocks), each in F32, F16 and I8. Run the fuzzer with
# -max_len=65536: the micro models and the default model's 33 kB header fit, and the larger
# seeds are cut to their headers and first tensors, which is where the checks are.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUTDIR [BUILDDIR]" >&2
  exit 2
fi
out=$1
source_root=$(cd "$(dirname "$0")/../.." && pwd)
build=${2:-$source_root/build}
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"

cp "$source_root/model/default/default.safetensors" "$out/default.safetensors"
for model in "$build"/tests/model/engine/*.safetensors; do
  case $model in
    *.golden.safetensors|*'*'*) ;;  # golden outputs are not models; no match at all
    *) cp "$model" "$out/" ;;
  esac
done

if "$python" -c 'import torch' 2>/dev/null; then
  "$python" - "$source_root/model/python/reference" "$out" <<'PYTHON'
import os
import sys

sys.path.insert(0, sys.argv[1])
import hfam  # noqa: E402
import weights  # noqa: E402

for depth in (18, 50):
    config = hfam.HfamConfig(encoder_depth=depth, encoder_width=1, mfem_channels=1, sk_width=1,
                             context_widths=(1,) * 5, semantic_widths=(1,) * 14 + (3,),
                             detail_widths=(1,) * 15, lbb_width=1)
    folded = hfam.fold_batchnorm(hfam.HFAM(config))
    for dtype in ("F32", "F16", "I8"):
        weights.write_safetensors(os.path.join(sys.argv[2], f"micro_r{depth}_{dtype}.safetensors"),
                                  folded, config.to_metadata(), dtype)
PYTHON
else
  echo "$0: no PyTorch in $python: no micro models (set PYTHON)" >&2
fi
echo "$(ls "$out" | wc -l) seeds in $out"
