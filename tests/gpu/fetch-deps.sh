#!/bin/sh
# Downloads, on a machine with Debian 12's apt and a network, the .deb files of the C libraries
# that the engine's build needs and the GPU machine lacks (it has CUDA, meson, ninja and gcc but
# not these): GLib, json-glib, oneDNN, libpng, libjpeg, pkgconf and what their .pc files name.
# tests/gpu/run.sh unpacks them into a private prefix (never into /).
# Usage: tests/gpu/fetch-deps.sh [DIR]   (default: .gpu-deps in the repository root, which it
#        also adds to .git/info/exclude so that it travels to the device as an ignored path:
#        name it in the device tool's `carry`)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/.gpu-deps}
packages="libglib2.0-dev libglib2.0-0 libjson-glib-dev libjson-glib-1.0-0
  libdnnl-dev libdnnl2 libpng-dev libpng16-16 libjpeg-dev libjpeg62-turbo-dev libjpeg62-turbo
  zlib1g-dev libpcre2-dev libpcre2-8-0 libffi-dev libmount-dev libblkid-dev libselinux1-dev
  libsepol-dev pkgconf pkgconf-bin libpkgconf3"
mkdir -p "$dir"
(cd "$dir" && apt-get download $packages)
if [ -z "${1:-}" ] && [ -d "$root/.git" ] && ! grep -qx '/.gpu-deps/' "$root/.git/info/exclude" 2>/dev/null; then
  echo '/.gpu-deps/' >>"$root/.git/info/exclude"
fi
du -sh "$dir"
