#!/bin/bash
# Consecutive frames of a video over green, one row per temporal setting, in SHEET.png: where a
# smoothing drags a moving edge behind (a trail of the old position, a faded hand) it shows
# from tile to tile. Rows: temporal-smoothing=0; the plain blend (temporal-mode=blend,
# temporal-smoothing=0.5); the element's defaults (temporal-mode=compensated). Every row runs
# the clip from its start, so that the smoothing has its history.
# Options: -s FIRST (default 30), -n COUNT (default 6) frames from FIRST, -w W each tile's
# width (default 256), -c X,Y,W,H a crop to zoom on, -m MODEL; extra element properties in
# HFAMMATTE_PROPS, as the other scripts.
set -euo pipefail

usage() {
  echo "usage: $0 [-s FIRST] [-n COUNT] [-w TILE_WIDTH] [-c X,Y,W,H] [-m MODEL] VIDEO SHEET.png" >&2
  exit 2
}
source "$(dirname "$0")/sheet-lib.sh"
sheet_options "s:n:w:c:m:" "$@"
first=${opt_s:-30} count=${opt_n:-6} tile_w=${opt_w:-256} crop=${opt_c:-} model=${opt_m:-}
[ ${#positional[@]} -eq 2 ] || usage
video=${positional[0]} sheet=${positional[1]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
settings=("temporal-smoothing=0" "temporal-mode=blend temporal-smoothing=0.5" "")

# each setting's RGBA frames 0 .. first + count - 1
for ((r = 0; r < ${#settings[@]}; r++)); do
  mkdir "$work/$r"
  gst-launch-1.0 -q filesrc location="$video" ! decodebin \
    ! identity eos-after=$((first + count)) ! videoconvert \
    ! hfammatte ${model:+model=$model} ${HFAMMATTE_PROPS:-} ${settings[r]} \
    ! videoconvert ! pngenc compression-level=1 ! multifilesink location="$work/$r/%06d.png"
done
frames=("$work"/0/*.png)
if [ "${#frames[@]}" -lt $((first + count)) ]; then
  echo "$0: $video has ${#frames[@]} frames, fewer than $((first + count))" >&2
  exit 1
fi
png_size "${frames[0]}"
crop_filter "$crop"
tile_h=$(( (tile_w * height / width + 1) / 2 * 2 ))

compositor=(compositor name=sheet background=black)
sources=()
pad=0
for ((r = 0; r < ${#settings[@]}; r++)); do
  for ((i = 0; i < count; i++)); do
    file=$(printf '%s/%d/%06d.png' "$work" "$r" $((first + i)))
    for layer in green frame; do
      compositor+=("sink_$pad::xpos=$((i * tile_w))" "sink_$pad::ypos=$((r * tile_h))"
                   "sink_$pad::zorder=$([ $layer = green ] && echo 0 || echo 1)")
      if [ $layer = green ]; then
        sources+=(videotestsrc pattern=solid-color foreground-color=0xff40a050 num-buffers=1
                  ! "video/x-raw,width=$tile_w,height=$tile_h" ! "sheet.sink_$pad")
      else
        sources+=(filesrc location="$file" ! pngdec ! videoconvert ! $crop_element ! videoscale
                  ! "video/x-raw,width=$tile_w,height=$tile_h,pixel-aspect-ratio=1/1"
                  ! imagefreeze num-buffers=1 ! "sheet.sink_$pad")
      fi
      pad=$((pad + 1))
    done
  done
done
gst-launch-1.0 -q "${compositor[@]}" ! videoconvert ! pngenc ! filesink location="$sheet" \
  "${sources[@]}"
echo "$sheet: frames $first to $((first + count - 1)) of $video;" \
  "rows: no smoothing, blend 0.5, the defaults (compensated)"
