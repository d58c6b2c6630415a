#!/bin/bash
# What refine= and fill= do to one frame of a video, side by side in SHEET.png (one pipeline,
# every panel a branch of a tee through its own hfammatte):
#   top:    the frame | matte, refine=none | matte, refine=guided
#   bottom: over a flat green, fill=frame refine=none (as before issue 16) |
#           fill=frame refine=guided | fill=foreground refine=guided
# Options: -f N  the frame (from 0; default 30), -c X,Y,W,H  a crop of the frame to zoom on
# (default: the whole frame), -w W  each panel's width (default 480), -m MODEL (default: the
# element's default model); extra element properties in HFAMMATTE_PROPS, as the other scripts.
set -euo pipefail

usage() {
  echo "usage: $0 [-f FRAME] [-c X,Y,W,H] [-w PANEL_WIDTH] [-m MODEL] VIDEO SHEET.png" >&2
  exit 2
}
source "$(dirname "$0")/sheet-lib.sh"
sheet_options "f:c:w:m:" "$@"
frame=${opt_f:-30} crop=${opt_c:-} panel_w=${opt_w:-480} model=${opt_m:-}
[ ${#positional[@]} -eq 2 ] || usage
video=${positional[0]} sheet=${positional[1]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# frame N: the decoder stops after N + 1 frames, the sink keeps the last file
gst-launch-1.0 -q filesrc location="$video" ! decodebin ! identity eos-after=$((frame + 1)) \
  ! videoconvert ! video/x-raw,format=RGB ! pngenc ! multifilesink max-files=1 \
  location="$work/frame-%06d.png"
still=$(ls "$work"/frame-*.png 2>/dev/null | tail -n 1)
if [ -z "$still" ]; then
  echo "$0: no frame decoded from $video" >&2
  exit 1
fi
png_size "$still"
crop_filter "$crop"
panel_h=$(( (panel_w * height / width + 1) / 2 * 2 ))
scale="videoscale ! video/x-raw,width=$panel_w,height=$panel_h,pixel-aspect-ratio=1/1"
model_property="${model:+model=$model} ${HFAMMATTE_PROPS:-}"

compositor=(compositor name=sheet background=black)
branches=()
panel() {  # INDEX ZORDER PIPELINE...: a pad of the compositor at panel INDEX's place
  local i=$1 z=$2 pad="sink_$3"
  shift 3
  compositor+=("$pad::xpos=$(( i % 3 * panel_w ))" "$pad::ypos=$(( i / 3 * panel_h ))"
               "$pad::zorder=$z")
  branches+=(t. ! queue ! "$@" ! "sheet.$pad")
}
panel 0 1 0 $crop_element ! videoconvert ! $scale
panel 1 1 1 hfammatte $model_property refine=none name=m1 m1.alpha ! $crop_element \
  ! videoconvert ! $scale
panel 2 1 2 hfammatte $model_property refine=guided name=m2 m2.alpha ! $crop_element \
  ! videoconvert ! $scale
n=3
for settings in "fill=frame refine=none" "fill=frame refine=guided" \
                "fill=foreground refine=guided"; do
  # a flat green under the panel, then the element's RGBA over it
  compositor+=("sink_$n::xpos=$(( n % 3 * panel_w ))" "sink_$n::ypos=$panel_h"
               "sink_$n::zorder=0")
  branches+=(videotestsrc pattern=solid-color foreground-color=0xff40a050 num-buffers=1
             ! "video/x-raw,width=$panel_w,height=$panel_h" ! "sheet.sink_$n")
  panel $n 1 $((n + 3)) hfammatte $model_property $settings ! $crop_element ! $scale
  n=$((n + 1))
done
gst-launch-1.0 -q "${compositor[@]}" ! videoconvert ! pngenc ! filesink location="$sheet" \
  filesrc location="$still" ! pngdec ! videoconvert ! imagefreeze num-buffers=1 ! tee name=t \
  "${branches[@]}"
echo "$sheet: ${panel_w}x${panel_h} panels of frame $frame of $video${crop:+ (crop $crop)}"
