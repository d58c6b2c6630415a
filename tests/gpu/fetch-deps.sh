#!/bin/sh
# Downloads, on a machine with Debian 12's apt and a network, the .deb files of the C libraries
# that the engine's build needs and the GPU machine lacks (it has CUDA, meson, ninja and gcc but
# not these): GLib, json-glib, oneDNN, libpng, libjpeg, pkgconf and what their .pc files name.
# Also (into DIR/gst, unless --no-gst) GStreamer 1.22 with gstcuda, for run.sh's phase `gst`:
# the libraries, headers and .pc files that the element (gst/) and tests/gst/test-hfammatte
# build against, and every library the dynamic loader then needs (gstcuda links libgstgl, which
# links GL, EGL, X11, wayland, gbm, drm, gudev). Their -dev packages are left out where only a
# .pc file's Requires.private names them: run.sh drops those lines (shared linking only).
# DIR/gst/if-missing: libraries that an Ubuntu image with Python usually has; run.sh unpacks
# them only where the machine's loader lacks them (a copy of ours would shadow the machine's).
# tests/gpu/run.sh unpacks them into private prefixes (never into /).
# Usage: tests/gpu/fetch-deps.sh [--no-gst] [DIR]   (default: .gpu-deps in the repository root,
#        which it also adds to .git/info/exclude so that it travels to the device as an ignored
#        path: name it in the device tool's `carry`)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
gst=1
if [ "${1:-}" = --no-gst ]; then gst=0; shift; fi
dir=${1:-$root/.gpu-deps}
packages="libglib2.0-dev libglib2.0-0 libjson-glib-dev libjson-glib-1.0-0
  libdnnl-dev libdnnl2 libpng-dev libpng16-16 libjpeg-dev libjpeg62-turbo-dev libjpeg62-turbo
  zlib1g-dev libpcre2-dev libpcre2-8-0 libffi-dev libmount-dev libblkid-dev libselinux1-dev
  libsepol-dev pkgconf pkgconf-bin libpkgconf3"
# to build: GStreamer, -base (video, gl-prototypes .pc), -bad (gstcuda); GL/gl.h (cudaGL.h
# includes it) and the libGL.so / libGLESv2.so that gstreamer-gl-prototypes-1.0.pc links
gst_build="libgstreamer1.0-0 libgstreamer1.0-dev libgstreamer-plugins-base1.0-0
  libgstreamer-plugins-base1.0-dev libgstreamer-gl1.0-0 libgstreamer-plugins-bad1.0-0
  libgstreamer-plugins-bad1.0-dev libgl-dev libgles-dev"
# to load (the NEEDED closure of libgstcuda, libgstgl, libgstvideo, libgstreamer, libgstcheck
# beyond GLib and libc): gst-plugin-scanner comes with libgstreamer1.0-0
gst_run="liborc-0.4-0 libunwind8 libdw1 libelf1 libgl1 libglx0 libglvnd0 libegl1 libgles2
  libgbm1 libdrm2 libwayland-client0 libwayland-cursor0 libwayland-egl1 libwayland-server0
  libx11-6 libx11-xcb1 libxcb1 libxau6 libxdmcp6 libgudev-1.0-0"
gst_if_missing="libudev1 libbsd0 libmd0 libexpat1 liblzma5 libbz2-1.0"
mkdir -p "$dir"
(cd "$dir" && apt-get download $packages)
if [ $gst = 1 ]; then
  mkdir -p "$dir/gst/if-missing"
  (cd "$dir/gst" && apt-get download $gst_build $gst_run)
  (cd "$dir/gst/if-missing" && apt-get download $gst_if_missing)
fi
if [ -z "${1:-}" ] && [ -d "$root/.git" ] \
   && ! grep -qx '/.gpu-deps/' "$root/.git/info/exclude" 2>/dev/null; then
  echo '/.gpu-deps/' >>"$root/.git/info/exclude"
fi
du -sh "$dir"
[ $gst = 0 ] || du -sh "$dir/gst"
