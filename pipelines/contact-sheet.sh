#!/bin/bash
# A contact sheet of a video: six frames spread over OUT.mkv (fewer if it is shorter),
# each 320x180 (letterboxed), tiled 3 by 2 into SHEET.png. GStreamer only: one pipeline
# writes small JPEG thumbnails of every frame, a second tiles the chosen ones.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 VIDEO.mkv SHEET.png" >&2
  exit 2
fi
video=$1 sheet=$2
tile_w=320 tile_h=180 columns=3 tiles=6
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gst-launch-1.0 -q filesrc location="$video" ! decodebin ! videoconvert \
  ! videoscale add-borders=true ! video/x-raw,width=$tile_w,height=$tile_h,pixel-aspect-ratio=1/1 \
  ! jpegenc quality=92 ! multifilesink location="$work/frame-%06d.jpg"

frames=("$work"/frame-*.jpg)
count=${#frames[@]}
if [ ! -e "${frames[0]}" ]; then
  echo "$0: no frames decoded from $video" >&2
  exit 1
fi
[ "$count" -lt "$tiles" ] && tiles=$count

# Tile i shows the clip's frame round(i * (count - 1) / (tiles - 1)).
compositor=(compositor name=sheet background=black)
sources=()
for ((i = 0; i < tiles; i++)); do
  index=0
  [ "$tiles" -gt 1 ] && index=$(( (2 * i * (count - 1) + tiles - 1) / (2 * (tiles - 1)) ))
  compositor+=("sink_$i::xpos=$(( i % columns * tile_w ))"
               "sink_$i::ypos=$(( i / columns * tile_h ))")
  sources+=(filesrc location="${frames[index]}" ! jpegdec ! videoconvert
            ! imagefreeze num-buffers=1 ! "sheet.sink_$i")
done
gst-launch-1.0 -q "${compositor[@]}" ! videoconvert ! pngenc ! filesink location="$sheet" \
  "${sources[@]}"
