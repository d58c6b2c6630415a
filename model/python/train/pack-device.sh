#!/bin/bash
# Builds .pack for one training call on a lent GPU (README.md, "On a lent GPU: train first"):
# the teacher-labelled people, and part K of N of the training backgrounds (the wallpapers of
# ../teachers/backgrounds.py and the photographs of ../shared/data/backgrounds; every held-out
# wallpaper too, for the validation's wallpaper kind), at the sizes that let the pack travel
# beside the repository; no ImageNet encoder (the run continues a
# weight file with --init). Then checks what the call carries, the tree and .pack, against the
# device tool's 64 MiB, and fails when it is over.
# Usage (here, on the CPU, from the repository root):
#   model/python/train/pack-device.sh K/N LABELS WALLPAPERS
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 K/N LABELS WALLPAPERS" >&2; exit 2; }
part=$1 labels=$2 wallpapers=$3
shared=$(cd "$(dirname "$0")/../../../.." && pwd)/shared/data
rm -rf .pack
/usr/bin/python3 model/python/train/pack.py --labels "$labels" \
  --images "$shared/people-train/images" \
  --wallpapers "$wallpapers" --bg "$shared/backgrounds/images" --long-side 448 --quality 85 \
  --bg-long-side 480 --bg-quality 80 --val-backgrounds 56 --bg-part "$part" --out .pack
limit=$((64 * 1024 * 1024))
tree=$( (git ls-files -z --cached --others --exclude-standard \
         | xargs -0 stat -c %s 2>/dev/null || true) \
  | awk '{ s += $1 } END { print s }')
pack=$(du -sb .pack | cut -f1)
total=$((tree + pack))
awk -v t="$tree" -v p="$pack" 'BEGIN { m = 1048576
  printf "a device call carries %.1f MiB of 64: the tree %.1f, .pack %.1f\n", (t + p) / m,
    t / m, p / m }'
[ "$total" -le "$limit" ] \
  || { echo "over the device tool's 64 MiB: use more parts (N)" >&2; exit 1; }
