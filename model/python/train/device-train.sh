#!/bin/bash
# One training run on a lent GPU machine, within one call of the workplace's device tool
# (README.md, "On a lent GPU: train first"): train_device.py on the carried .pack (built here
# by pack-device.sh), then the run's results into $OUT in pieces the tool brings back (at most
# 16 MiB a file, 8 files):
#   model.partNN (the weight file, split; join with cat), run.tar.gz (train.csv, val.csv,
#   choice.json), curves.png, train.log.
# A pack without an ImageNet encoder continues model/default/default.safetensors (--init)
# unless the options name another start.
# Usage (on the GPU machine, from the repository root; carry .pack):
#   model/python/train/device-train.sh SECONDS [train_device.py options]
# PYTHON: python3 with torch (default: python3 on PATH)
# Then here: cat /work/.device/N/model.part* > model.safetensors
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 SECONDS [train_device.py options]" >&2; exit 2; }
out=${OUT:?"OUT: the device tool's output folder"}
[ -f .pack/split.json ] || { echo "no .pack here: build it with model/python/train/pack-device.sh" \
  "and name .pack in the call's carry" >&2; exit 2; }
PYTHON=${PYTHON:-python3}
seconds=$1
shift
init=model/default/default.safetensors
args=("$@")
for i in "${!args[@]}"; do
  [ "${args[$i]}" = --init ] && init=${args[$((i + 1))]:-}
done
start=()
if [ ! -f .pack/encoder.pt ] && [[ " $* " != *" --init "* ]]; then
  start=(--init "$init")
fi
[[ " ${start[*]} $* " == *" --init "* ]] \
  && from="$init (sha256 $(sha256sum "$init" | cut -c1-16))" \
  || from="the pack's ImageNet encoder"
echo "pack: $(ls .pack/image | wc -l) photos, $(ls .pack/bg | wc -l) backgrounds, part" \
  "$($PYTHON -c 'import json; print(json.load(open(".pack/split.json"))["bg_part"])')," \
  "$(du -sh .pack | cut -f1); start: $from"
run=$(mktemp -d)
PYTHONUNBUFFERED=1 $PYTHON model/python/train/train_device.py --pack .pack --out "$run" \
  --seconds "$seconds" "${start[@]}" "$@" >"$out/train.log" 2>&1
rc=$?
if [ -f "$run/model.safetensors" ]; then
  split -b 16M -d "$run/model.safetensors" "$out/model.part"
fi
(cd "$run" && tar czf "$out/run.tar.gz" ./*.csv choice.json 2>/dev/null)
cp "$run/curves.png" "$out/" 2>/dev/null
grep -v '^step ' "$out/train.log" | tail -n 20
exit $rc
