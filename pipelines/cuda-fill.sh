#!/bin/bash
# The people of a clip on black (a shaped fill: colour times matte) with the frames in GPU
# memory end to end: decoded, uploaded once (cudaupload), matted on the device with the encoder
# of one frame overlapping the decoders of the previous (pipeline-depth=2), and downloaded once
# (cudadownload). The key pad stays unlinked: gstcuda allocates no GRAY formats, so a linked key
# keeps the element on system memory (fill-key.sh). Needs an NVIDIA GPU and GStreamer's nvcodec
# plugin (gstreamer1.0-plugins-bad), which registers cudaupload only where a CUDA device opens.
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 CLIP OUT.mkv [MODEL.safetensors]" >&2
  exit 2
fi
clip=$1 out=$2
model=()
[ $# -eq 3 ] && model=("model=$3")
read -r -a props <<< "${HFAMMATTE_PROPS:-}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

exec gst-launch-1.0 -e \
  filesrc location="$clip" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! cudaupload \
    ! hfammatte backend=cuda pipeline-depth=2 premultiplied=true "${model[@]}" "${props[@]}" \
    ! cudadownload ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse \
    ! matroskamux ! filesink location="$out"
