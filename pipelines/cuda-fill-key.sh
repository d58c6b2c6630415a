#!/bin/bash
# fill-key.sh with the frames in GPU memory: decoded, uploaded once (cudaupload), matted on the
# device with the encoder of one frame overlapping the decoders of the previous
# (pipeline-depth=2), and downloaded once per output (cudadownload). Needs an NVIDIA GPU and
# GStreamer's nvcodec plugin (gstreamer1.0-plugins-bad), which registers cudaupload only where
# a CUDA device opens. Same outputs as fill-key.sh: OUTDIR/fill.mkv and OUTDIR/key.mkv.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 CLIP OUTDIR [MODEL.safetensors]" >&2
  exit 2
fi
clip=$1 outdir=$2
model=()
[ $# -eq 3 ] && model=("model=$3")
read -r -a props <<< "${HFAMMATTE_PROPS:-}"
mkdir -p "$outdir"

exec gst-launch-1.0 -e \
  filesrc location="$clip" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! cudaupload \
    ! hfammatte name=matte backend=cuda pipeline-depth=2 "${model[@]}" "${props[@]}" \
  matte.src ! queue ! cudadownload ! videoconvert ! video/x-raw,format=I420 ! x264enc \
    ! h264parse ! matroskamux ! filesink location="$outdir/fill.mkv" \
  matte.alpha ! queue ! cudadownload ! videoconvert ! video/x-raw,format=I420 ! x264enc \
    ! h264parse ! matroskamux ! filesink location="$outdir/key.mkv"
