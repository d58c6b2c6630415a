#!/bin/bash
# Live background removal: a V4L2 camera through hfammatte to a window, the people over a
# checkerboard. On the CPU the element picks a smaller inference size for real time (auto);
# frames that come too late are dropped (qos). See README.md for OBS.
set -euo pipefail

if [ $# -gt 2 ]; then
  echo "usage: $0 [MODEL.safetensors] [DEVICE (default /dev/video0)]" >&2
  exit 2
fi
model=()
[ $# -ge 1 ] && [ -n "$1" ] && model=("model=$1")
device=${2:-/dev/video0}
# libgomp's idle threads spin by default and take the cores from the other elements
# (several times slower here); let them sleep unless the caller says otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
read -r -a props <<< "${HFAMMATTE_PROPS:-}"

exec gst-launch-1.0 \
  v4l2src device="$device" ! videoconvert \
    ! hfammatte "${model[@]}" "${props[@]}" \
    ! compositor background=checker ! videoconvert ! autovideosink
