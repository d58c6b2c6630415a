#!/bin/bash
# Fill and key for a downstream keyer (broadcast): OUTDIR/fill.mkv carries the clip's
# colour, OUTDIR/key.mkv the matte as luma (H.264 in Matroska, both with the same
# timestamps, frame for frame). For a shaped (premultiplied) fill set
# HFAMMATTE_PROPS=premultiplied=true; other element properties go there too.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 CLIP OUTDIR [MODEL.safetensors]" >&2
  exit 2
fi
clip=$1 outdir=$2
model=()
[ $# -eq 3 ] && model=("model=$3")
# libgomp's idle threads spin by default and take the cores from the other elements
# (several times slower here); let them sleep unless the caller says otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
read -r -a props <<< "${HFAMMATTE_PROPS:-}"
mkdir -p "$outdir"

exec gst-launch-1.0 -e \
  filesrc location="$clip" ! decodebin ! videoconvert \
    ! hfammatte name=matte "${model[@]}" "${props[@]}" \
  matte.src ! queue ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse \
    ! matroskamux ! filesink location="$outdir/fill.mkv" \
  matte.alpha ! queue ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse \
    ! matroskamux ! filesink location="$outdir/key.mkv"
