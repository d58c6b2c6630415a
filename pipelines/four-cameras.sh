#!/bin/bash
# Four cameras, one model: each clip through an hfammatte of its own, the four people over
# one picture in a 2x2 mosaic, to H.264 in Matroska. The four elements name the same model
# file, so they load it once and hold its weights once (share-model, the default); given
# fewer than four clips, the clips take turns. Each camera is scaled to CELL (default
# 640x360, black bars where its aspect differs), and each element gets a quarter of the cores
# (n-threads). Element properties for all four come from $HFAMMATTE_PROPS, e.g.
#   HFAMMATTE_PROPS="model=my.safetensors inference-size=320" ./four-cameras.sh bg.png out.mkv \
#     a.mp4 b.mp4
#   HFAMMATTE_PROPS="share-model=false" ...   (four copies of the model, for comparison)
#   HFAMMATTE_PROPS="max-batch=4 n-threads=0" ...   (one batch group sharing all the cores
#     out itself: as fast, less memory; ../BENCHMARKS.md, "Batch groups")
set -euo pipefail

if [ $# -lt 3 ] || [ $# -gt 6 ]; then
  echo "usage: $0 BACKGROUND.png OUT.mkv CLIP [CLIP [CLIP [CLIP]]]" >&2
  exit 2
fi
background=$1 out=$2
shift 2
clips=("$@")
IFS=x read -r width height <<< "${CELL:-640x360}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# The cores shared out: four elements with a thread per core each would crowd out one
# another (on 2 cores, 44.6 frames/s for the four against 51.6 with one thread each:
# ../BENCHMARKS.md, "Batch groups"); HFAMMATTE_PROPS may set n-threads itself.
threads=$(( $(nproc) / 4 > 0 ? $(nproc) / 4 : 1 ))
read -r -a props <<< "n-threads=$threads ${HFAMMATTE_PROPS:-}"

# sink_0: the picture behind the whole mosaic, repeated until the cameras end; sink_1..4:
# the cameras' fills, their alpha over it.
pipeline=(compositor name=mosaic background=black
  sink_0::width=$((2 * width)) sink_0::height=$((2 * height)) sink_0::repeat-after-eos=true)
for camera in 0 1 2 3; do
  pipeline+=("sink_$((camera + 1))::xpos=$((camera % 2 * width))"
             "sink_$((camera + 1))::ypos=$((camera / 2 * height))")
done
pipeline+=(! video/x-raw,width=$((2 * width)),height=$((2 * height))
  ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse
  ! matroskamux ! filesink location="$out"
  filesrc location="$background" ! pngdec ! videoconvert ! videoscale
  ! video/x-raw,width=$((2 * width)),height=$((2 * height))
  ! imagefreeze num-buffers=1 ! video/x-raw,framerate=1/1 ! mosaic.sink_0)
for camera in 0 1 2 3; do
  clip=${clips[camera % ${#clips[@]}]}
  pipeline+=(filesrc location="$clip" ! decodebin ! videoconvert ! videoscale
    ! video/x-raw,width="$width",height="$height",pixel-aspect-ratio=1/1
    ! queue ! hfammatte name="camera$camera" "${props[@]}" ! "mosaic.sink_$((camera + 1))")
done
exec gst-launch-1.0 -e "${pipeline[@]}"
