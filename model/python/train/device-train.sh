#!/bin/bash
# One training run on a lent GPU machine, within one call of the workplace's device tool
# (README.md, "Training on a lent GPU"): train_device.py on the carried .pack, then the run's
# results into $OUT in pieces the tool brings back (at most 16 MiB a file, 8 files):
#   model.partNN (the weight file, split; join with cat), run.tar.gz (train.csv, val.csv,
#   choice.json), curves.png, train.log.
# Usage (on the GPU machine, from the repository root; carry .pack):
#   model/python/train/device-train.sh SECONDS [train_device.py options, e.g. --init model/default/default.safetensors]
# Then here: cat /work/.device/N/model.part* > model.safetensors
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 SECONDS [train_device.py options]" >&2; exit 2; }
out=${OUT:?"OUT: the device tool's output folder"}
run=$(mktemp -d)
seconds=$1
shift
PYTHONUNBUFFERED=1 python3 model/python/train/train_device.py --pack .pack --out "$run" \
  --seconds "$seconds" "$@" >"$out/train.log" 2>&1
rc=$?
if [ -f "$run/model.safetensors" ]; then
  split -b 16M -d "$run/model.safetensors" "$out/model.part"
fi
(cd "$run" && tar czf "$out/run.tar.gz" ./*.csv choice.json 2>/dev/null)
cp "$run/curves.png" "$out/" 2>/dev/null
grep -v '^step ' "$out/train.log" | tail -n 20
exit $rc
