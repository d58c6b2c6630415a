#!/bin/bash
# pipelines/ end to end on a short generated clip with a tiny model: composite.sh, fill-key.sh,
# four-cameras.sh (one model for its four elements), contact-sheet.sh, edges-sheet.sh and
# trail-sheet.sh must write files that decode, with the clip's frame count, fill and key frame for
# frame with the same timestamps, and a key that is not one flat value. Exit 77 (skip) when a needed
# GStreamer element is not installed.
#   test-pipelines.sh PIPELINES_DIR MODEL.safetensors
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 PIPELINES_DIR MODEL.safetensors" >&2
  exit 2
fi
pipelines=$1 model=$2
frames=10
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A small inference size keeps the run to seconds.
export HFAMMATTE_PROPS="inference-size=128"

fail () {
  echo "FAIL: $*" >&2
  exit 1
}

for element in videotestsrc x264enc h264parse matroskamux matroskademux decodebin \
               compositor imagefreeze pngenc pngdec jpegenc jpegdec multifilesink videocrop; do
  if ! gst-inspect-1.0 --exists "$element"; then
    echo "SKIP: GStreamer element $element is not installed"
    exit 77
  fi
done
gst-inspect-1.0 hfammatte > /dev/null || fail "hfammatte is not on GST_PLUGIN_PATH"

# The presentation time of each frame decoded from a Matroska file, one a line.
frame_times () {
  gst-launch-1.0 -v filesrc location="$1" ! matroskademux ! decodebin \
    ! identity silent=false ! fakesink 2>&1 \
    | sed -n 's/.*identity0: last-message = chain.*pts: \([0-9:.]*\),.*/\1/p'
}

echo "# a $frames-frame clip and a background picture"
gst-launch-1.0 -q videotestsrc num-buffers=$frames pattern=smpte \
  ! video/x-raw,format=I420,width=160,height=120,framerate=25/1 \
  ! x264enc ! h264parse ! matroskamux ! filesink location="$work/clip.mkv"
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=checkers-8 \
  ! video/x-raw,width=200,height=100 ! pngenc ! filesink location="$work/background.png"

echo "# composite.sh"
"$pipelines/composite.sh" "$work/clip.mkv" "$work/background.png" "$work/composite.mkv" \
  "$model" > "$work/composite.log" 2>&1 || { cat "$work/composite.log"; fail "composite.sh"; }
count=$(frame_times "$work/composite.mkv" | wc -l)
[ "$count" -eq $frames ] || fail "composite.mkv decodes to $count frames, not $frames"

echo "# fill-key.sh"
"$pipelines/fill-key.sh" "$work/clip.mkv" "$work/fill-key" "$model" \
  > "$work/fill-key.log" 2>&1 || { cat "$work/fill-key.log"; fail "fill-key.sh"; }
frame_times "$work/fill-key/fill.mkv" > "$work/fill.times"
frame_times "$work/fill-key/key.mkv" > "$work/key.times"
count=$(wc -l < "$work/fill.times")
[ "$count" -eq $frames ] || fail "fill.mkv decodes to $count frames, not $frames"
cmp -s "$work/fill.times" "$work/key.times" || fail "fill and key timestamps differ"
mkdir "$work/key"
gst-launch-1.0 -q filesrc location="$work/fill-key/key.mkv" ! matroskademux ! decodebin \
  ! videoconvert ! video/x-raw,format=GRAY8 ! multifilesink location="$work/key/%03d.raw"
levels=$(od -An -v -tu1 "$work/key/000.raw" | tr -s ' ' '\n' | sed '/^$/d' | sort -un | wc -l)
[ "$levels" -gt 1 ] || fail "the key is one flat value"

echo "# four-cameras.sh: four elements, one model (four with share-model=false; one batch group)"
models_loaded () {
  CELL=80x60 GST_DEBUG=hfammatte:4 GST_DEBUG_NO_COLOR=1 \
    HFAMMATTE_PROPS="$HFAMMATTE_PROPS model=$model $1" \
    "$pipelines/four-cameras.sh" "$work/background.png" "$work/four.mkv" "$work/clip.mkv" \
    > "$work/four.log" 2>&1 || { cat "$work/four.log"; fail "four-cameras.sh $1"; }
  count=$(frame_times "$work/four.mkv" | wc -l)
  [ "$count" -eq $frames ] || fail "four.mkv decodes to $count frames, not $frames"
  sed -n 's/.*model .*: \(shared\|a copy of its own\) at \(0x[0-9a-f]*\).*/\2/p' \
    "$work/four.log" | sort -u | wc -l
}
[ "$(models_loaded "")" -eq 1 ] \
  || fail "four-cameras.sh: the four elements load more than one model"
[ "$(models_loaded share-model=false)" -eq 4 ] \
  || fail "four-cameras.sh share-model=false: not four models"
[ "$(models_loaded "max-batch=4 n-threads=0")" -eq 1 ] \
  || fail "four-cameras.sh max-batch=4: more than one model"
[ "$(grep -c 'batches of up to 4' "$work/four.log")" -eq 4 ] \
  || fail "four-cameras.sh max-batch=4: not four elements in one batch group"

echo "# cuda-fill.sh (CUDA memory end to end; needs a CUDA device)"
if gst-inspect-1.0 --exists cudaupload && gst-inspect-1.0 --exists cudadownload; then
  "$pipelines/cuda-fill.sh" "$work/clip.mkv" "$work/cuda-fill.mkv" "$model" \
    > "$work/cuda-fill.log" 2>&1 || { cat "$work/cuda-fill.log"; fail "cuda-fill.sh"; }
  frame_times "$work/cuda-fill.mkv" > "$work/cuda-fill.times"
  cmp -s "$work/fill.times" "$work/cuda-fill.times" || fail "cuda-fill.sh: other frames"
else
  echo "skipped: no cudaupload/cudadownload (nvcodec registers them only with a CUDA device)"
  bash -n "$pipelines/cuda-fill.sh" || fail "cuda-fill.sh"
fi

echo "# contact-sheet.sh"
"$pipelines/contact-sheet.sh" "$work/composite.mkv" "$work/sheet.png" \
  || fail "contact-sheet.sh"
size=$(gst-launch-1.0 -v filesrc location="$work/sheet.png" ! pngdec ! fakesink 2>&1 \
  | grep -m1 -o 'width=(int)[0-9]*, height=(int)[0-9]*') || true
[ "$size" = "width=(int)960, height=(int)360" ] || fail "sheet.png: '$size', not 960x360"

echo "# edges-sheet.sh"
"$pipelines/edges-sheet.sh" -f 3 -w 64 -c 40,20,80,60 -m "$model" "$work/clip.mkv" \
  "$work/edges.png" > "$work/edges.log" 2>&1 || { cat "$work/edges.log"; fail "edges-sheet.sh"; }
size=$(gst-launch-1.0 -v filesrc location="$work/edges.png" ! pngdec ! fakesink 2>&1 \
  | grep -m1 -o 'width=(int)[0-9]*, height=(int)[0-9]*') || true
[ "$size" = "width=(int)192, height=(int)96" ] || fail "edges.png: '$size', not 192x96"

echo "# trail-sheet.sh"
"$pipelines/trail-sheet.sh" -s 2 -n 3 -w 64 -m "$model" "$work/clip.mkv" "$work/trail.png" \
  > "$work/trail.log" 2>&1 || { cat "$work/trail.log"; fail "trail-sheet.sh"; }
size=$(gst-launch-1.0 -v filesrc location="$work/trail.png" ! pngdec ! fakesink 2>&1 \
  | grep -m1 -o 'width=(int)[0-9]*, height=(int)[0-9]*') || true
[ "$size" = "width=(int)192, height=(int)144" ] || fail "trail.png: '$size', not 192x144"

echo "# gst-inspect-1.0's example line, as written but for its sinks and length"
inspect=$(HFAMMATTE_DEFAULT_MODEL="$model" gst-inspect-1.0 hfammatte)
grep -qF "Default: \"$model\"" <<< "$inspect" || fail "gst-inspect-1.0 shows no default model"
example=$(sed -n 's/^  Example  *//p' <<< "$inspect")
[ -n "$example" ] || fail "gst-inspect-1.0 shows no example"
example=$(sed 's/autovideosink/fakesink/g; s/num-buffers=[0-9]*/num-buffers=3/' <<< "$example")
HFAMMATTE_DEFAULT_MODEL="$model" $example > "$work/example.log" 2>&1 \
  || { cat "$work/example.log"; fail "the example: $example"; }

echo "# webcam.sh (needs a camera: syntax only)"
bash -n "$pipelines/webcam.sh" || fail "webcam.sh"

echo "PASS"
