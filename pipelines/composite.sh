#!/bin/bash
# Green-screen-free compositing: the people of CLIP over the picture BACKGROUND.png, to
# H.264 in Matroska. The picture is fitted to the clip's size (black bars if the aspects
# differ). Extra element properties come from $HFAMMATTE_PROPS, e.g.
#   HFAMMATTE_PROPS="inference-size=384 temporal-smoothing=0.3" ./composite.sh in.mp4 bg.png out.mkv
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 CLIP BACKGROUND.png OUT.mkv [MODEL.safetensors]" >&2
  exit 2
fi
clip=$1 background=$2 out=$3
model=()
[ $# -eq 4 ] && model=("model=$4")
# libgomp's idle threads spin by default and take the cores from the other elements
# (several times slower here); let them sleep unless the caller says otherwise.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
read -r -a props <<< "${HFAMMATTE_PROPS:-}"

# The clip's size, from the caps of its first decoded frame.
probe=$(gst-launch-1.0 -v filesrc location="$clip" ! decodebin ! videoconvert \
  ! identity eos-after=1 ! fakesink 2>&1) || true
caps=$(grep -m1 'fakesink0.GstPad:sink: caps' <<< "$probe") || {
  echo "$0: cannot decode $clip" >&2
  exit 1
}
width=$(sed -n 's/.*width=(int)\([0-9]*\).*/\1/p' <<< "$caps")
height=$(sed -n 's/.*height=(int)\([0-9]*\).*/\1/p' <<< "$caps")

# The picture is one frame that the compositor repeats until the clip ends.
exec gst-launch-1.0 -e \
  compositor name=comp background=black \
      sink_0::width="$width" sink_0::height="$height" \
      sink_0::sizing-policy=keep-aspect-ratio sink_0::repeat-after-eos=true \
    ! video/x-raw,width="$width",height="$height" \
    ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse \
    ! matroskamux ! filesink location="$out" \
  filesrc location="$background" ! pngdec ! videoconvert \
    ! imagefreeze num-buffers=1 ! video/x-raw,framerate=1/1 ! comp.sink_0 \
  filesrc location="$clip" ! decodebin ! videoconvert \
    ! hfammatte "${model[@]}" "${props[@]}" ! comp.sink_1
