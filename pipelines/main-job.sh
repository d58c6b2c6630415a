#!/bin/bash
# The main job on a fresh Debian 12 machine: install what the project needs, build it, and
# run it on real people: a photo (hfam-matte) and a clip (pipelines/composite.sh), both from
# Debian's opencv-doc package, with the default model (model/default/MODEL_CARD.md) as the installed
# element finds it: the project is installed into out/install first. Writes out/: the photo's
# matte and cut-out, the composited clip (MKV) and a contact sheet of it (PNG).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${BUILD_DIR:-build}
out=${OUT_DIR:-out}
frames=${FRAMES:-150}

# 1. Debian packages (only those missing; root or sudo)
mapfile -t packages < <(grep -v '^#' .ci/packages)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
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

# 3. A photo and a clip of people, unpacked from opencv-doc without installing it
data="$out/data"
mkdir -p "$data"
examples="$data/usr/share/doc/opencv-doc/examples/data"
if [ ! -f "$examples/vtest.avi" ]; then
  (cd "$data" && apt-get download opencv-doc && dpkg -x opencv-doc_*.deb . && rm opencv-doc_*.deb)
fi

# 4. One photo: the matte and the RGBA cut-out (no --model: the default model)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
"$prefix/bin/hfam-matte" "$examples/messi5.jpg" -o "$out/messi5-alpha.png" --alpha
"$prefix/bin/hfam-matte" "$examples/messi5.jpg" -o "$out/messi5-rgba.png" --rgba

# 5. The clip's first $frames frames over a picture (no model property: the default model),
#    then a contact sheet
export GST_PLUGIN_PATH="$plugin_dir"
gst-launch-1.0 -q filesrc location="$examples/vtest.avi" ! decodebin ! identity eos-after="$frames" \
  ! videoconvert ! video/x-raw,format=I420 ! x264enc ! h264parse ! matroskamux \
  ! filesink location="$data/clip.mkv"
gst-launch-1.0 -q filesrc location="$examples/building.jpg" ! jpegdec ! videoconvert ! pngenc \
  ! filesink location="$data/background.png"
time pipelines/composite.sh "$data/clip.mkv" "$data/background.png" "$out/composite.mkv"
pipelines/contact-sheet.sh "$out/composite.mkv" "$out/composite-sheet.png"
echo "main job done: $out/messi5-alpha.png $out/messi5-rgba.png $out/composite.mkv $out/composite-sheet.png"
