#!/bin/bash
# The CUDA backend on a GPU machine with CUDA (nvcc, cuDNN), meson and ninja but no GStreamer:
# builds the engine, kernels, tests and bench only; checks every CUDA op against its CPU twin,
# the whole network (alone and in batches) against the CPU backend and the device-frame API
# against the CPU path; times ResNet-50 and ResNet-101 HFAM at 512x288 and 512x512, fp16 and
# fp32, pipeline depth 1 and 2, batch groups of 1 and 4 streams at 512x288 fp16, and the
# same network in PyTorch on the same GPU (frozen TorchScript, and torch.compile), with the
# ratios. Phase gst: the GStreamer element with CUDA memory in and out
# (tests/gst's test_cuda_memory, the whole element suite, then tools/hfam-element-bench: 1080p
# NV12 in CUDA memory end to end, frames/s and latency; four streams with and without a shared
# model and in one batch group, and in system memory with and without a batch group) in a
# second build folder, with GStreamer 1.22 and gstcuda unpacked from $DEPS/gst. See
# tests/gpu/README.md.
#
# Usage: tests/gpu/run.sh [all | check | gst | bench [PATTERN]]   (default all: check, gst
#        (skipped with a message where no GStreamer and no $DEPS/gst are), bench; each phase
#        builds first; PATTERN, an extended regular expression, picks the bench configurations
#        by "MODEL SIZE PRECISION", e.g. 'fp16' or 'r101 512x512')
# Environment:
#   PYTHON        python3 with torch (default: python3 on PATH)
#   BUILD         build folder (default: /tmp/hfam-build-gpu; phase gst: $BUILD-gst)
#   DEPS          folder of .deb files from tests/gpu/fetch-deps.sh, unpacked into a private
#                 prefix when pkg-config cannot find GLib (default: .gpu-deps in the repo root);
#                 $DEPS/gst: GStreamer, when pkg-config cannot find gstreamer-cuda-1.0
#   PREFIX        where they are unpacked (default /tmp/hfam-prefix; GStreamer: $PREFIX-gst)
#   NVCC_TARGETS  nvcc targets (default: sm_XY of the GPU present, e.g. sm_90)
#   RUNS          timed frames per configuration (default 50)
#   ELEMENT_FRAMES timed frames per element configuration in phase gst (default 300)
#   TORCH_COMPILE 1: also time torch.compile at 512x288 fp16 (default 1; 0 skips it; any
#                 other value: an extended regular expression, as PATTERN, naming the
#                 configurations to compile, e.g. 'r101 512x288 fp16')
#   BATCH_ROUNDS  rounds of the batch groups' rows (default 2; each round is 4 bench runs)
#   VARIANT_ROUNDS rounds of R101's variants (lanes, split-K, cuBLASLt off) in the bench
#                 (default 2; each round is 8 bench runs)
#   DEADLINE      seconds after start past which no further bench configuration starts
#                 (default 540: one call of the device tool may run 600 s)
#   OUT           if set: summary.txt and gpu-logs.tar.gz are written there
# Exit status: 0 when every check passed (bench numbers are reported, not judged).
set -uo pipefail

phase=${1:-all}
pattern=${2:-.}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
PYTHON=${PYTHON:-python3}
BUILD=${BUILD:-/tmp/hfam-build-gpu}
DEADLINE=${DEADLINE:-540}
DEPS=${DEPS:-$root/.gpu-deps}
PREFIX=${PREFIX:-/tmp/hfam-prefix}
RUNS=${RUNS:-50}
TORCH_COMPILE=${TORCH_COMPILE:-1}
VARIANT_ROUNDS=${VARIANT_ROUNDS:-2}
LOG=$BUILD/gpu-logs
failed=0

say () { printf '\n=== %s\n' "$*"; }

# summary.txt and the logs into $OUT: at the end, and also when the device tool's time limit
# stops the script (SIGTERM), so that what ran so far comes back
write_out () {
  [ -n "${OUT:-}" ] && [ -d "$OUT" ] || return 0
  { echo "tests/gpu/run.sh $phase: $1"; grep -h '^\(ok\|FAIL\|SKIP\|device\|seed\)' \
      "$LOG"/cuda-*.log 2>/dev/null
    [ "$phase" = all ] || [ "$phase" = gst ] && grep -h 'key max\|NV12 frame\|:[EF]:' \
      "$LOG"/gst-cuda-memory.log "$LOG"/gst-cuda-memory-testlog.txt "$LOG"/gst-suite.log \
      2>/dev/null | sort -u
    [ "$phase" = all ] || [ "$phase" = gst ] && cat "$LOG/gst-phase.log" 2>/dev/null
    [ -s "$LOG/bench-edges-cuda.log" ] && cat "$LOG/bench-edges-cuda.log"
    [ -s "$LOG/bench-summary.txt" ] && cat "$LOG/bench-summary.txt"
    [ -s "$LOG/lanes-r101.txt" ] && cat "$LOG/lanes-r101.txt"
    [ -s "$LOG/batch-512x288-fp16.txt" ] && cat "$LOG/batch-512x288-fp16.txt"
    grep -h "cuBLASLt's product" "$LOG"/*.log 2>/dev/null | sort | uniq -c; } >"$OUT/summary.txt"
  tar -czf "$OUT/gpu-logs.tar.gz" -C "$BUILD" gpu-logs 2>/dev/null
}

trap 'write_out "stopped (SIGTERM: the time limit?) before the end"; exit 124' TERM

die () { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

case $phase in
  all|check|gst|bench) ;;
  *) die "unknown phase '$phase' (all, check, gst or bench)";;
esac

# ---- the machine (the facts of shared/notes/gpu-machine.md, checked) ----
say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader \
  || die "nvidia-smi failed: no GPU here"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
nvcc --version | tail -n 2
echo "meson $(meson --version), ninja $(ninja --version), $(gcc --version | head -n 1)"
"$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
                                      "cuda", torch.version.cuda,
                                      "cudnn", torch.backends.cudnn.version())' \
  || die "$PYTHON cannot import torch (set PYTHON)"
nproc

# ---- C libraries: from the machine, else from the carried .deb files ----
# unpack_debs DIR PREFIX: DIR/*.deb into PREFIX (never into /), .pc files and the -dev
# packages' absolute .so links pointed at PREFIX
unpack_debs () {
  local f pc l t
  rm -rf "$2" && mkdir -p "$2"
  for f in "$1"/*.deb; do dpkg -x "$f" "$2" || { echo "run.sh: dpkg -x $f failed"; return 1; }; done
  # the .pc files name /usr: point them at the prefix
  for pc in "$2"/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc "$2"/usr/share/pkgconfig/*.pc; do
    [ -f "$pc" ] && sed -i "s|=/usr|=$2/usr|g; s|-I/usr/|-I$2/usr/|g; s|-L/usr/|-L$2/usr/|g" "$pc"
  done
  # absolute .so links of the -dev packages
  for l in "$2"/usr/lib/x86_64-linux-gnu/*.so; do
    t=$(readlink "$l" || true)
    case $t in /*) ln -sf "$2$t" "$l";; esac
  done
  return 0
}
prefix=$PREFIX
if ! pkg-config --exists glib-2.0 json-glib-1.0 libpng libjpeg 2>/dev/null; then
  [ -d "$DEPS" ] \
    || die "no GLib/json-glib/libpng/libjpeg here and no $DEPS: run tests/gpu/fetch-deps.sh" \
           "where apt works and carry .gpu-deps"
  if [ ! -e $prefix/.done ]; then
    unpack_debs "$DEPS" $prefix || die "unpacking $DEPS failed"
    touch $prefix/.done
  fi
  lib=$prefix/usr/lib/x86_64-linux-gnu
  pc_dirs=$lib/pkgconfig:$prefix/usr/share/pkgconfig
  export PKG_CONFIG_PATH=$pc_dirs${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export CPATH=$prefix/usr/include${CPATH:+:$CPATH}
  export LIBRARY_PATH=$lib${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CMAKE_PREFIX_PATH=$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}  # oneDNN
  if ! command -v pkg-config >/dev/null; then
    export PKG_CONFIG=$prefix/usr/bin/pkgconf
    mkdir -p $prefix/bin && ln -sf $PKG_CONFIG $prefix/bin/pkg-config
    export PATH=$prefix/bin:$PATH
  fi
  echo "C libraries from $DEPS, unpacked in $prefix"
fi

# ---- cuDNN: beside CUDA, else the nvidia-cudnn wheel of $PYTHON ----
cuda_root=$(dirname "$(dirname "$(command -v nvcc)")")
cudnn_opt=""
if [ ! -e "$cuda_root/include/cudnn.h" ] && [ ! -e /usr/include/cudnn.h ]; then
  wheel=$("$PYTHON" -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null) \
    || die "no cuDNN: not in $cuda_root/include and no nvidia.cudnn module in $PYTHON"
  mkdir -p /tmp/hfam-cudnn/lib
  ln -sfn "$wheel/include" /tmp/hfam-cudnn/include
  for so in "$wheel"/lib/libcudnn*.so.*; do ln -sf "$so" /tmp/hfam-cudnn/lib/; done
  ln -sf "$(ls "$wheel"/lib/libcudnn.so.* | head -n 1)" /tmp/hfam-cudnn/lib/libcudnn.so
  export LD_LIBRARY_PATH=$wheel/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  cudnn_opt="-Dcudnn_root=/tmp/hfam-cudnn"
  echo "cuDNN from $wheel"
fi

# meson.build's torch_python (default /usr/bin/python3) is named for the golden vectors (not
# built here); it must exist
[ -e /usr/bin/python3 ] || ln -s "$(command -v "$PYTHON")" /usr/bin/python3

cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
NVCC_TARGETS=${NVCC_TARGETS:-sm_$cc}
mkdir -p "$LOG"

if [ "$phase" != gst ]; then
# ---- build: engine, kernels, tests, bench ----
say "build in $BUILD (nvcc targets $NVCC_TARGETS)"
if [ ! -e "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dcuda=enabled -Dgst=disabled -Dnvcc_targets="$NVCC_TARGETS" \
    -Dbuildtype=release $cudnn_opt || die "meson setup failed"
fi
ninja -C "$BUILD" model/engine/cuda/libhfam-cuda.so tests/gpu/test-cuda-ops \
  tests/gpu/test-cuda-network tests/gpu/test-cuda-device-frames tests/gpu/test-cuda-device-edges \
  tests/gpu/test-cuda-temporal tests/gpu/test-cuda-islands tools/hfam-bench \
  tests/kernels/bench-edges-cuda tests/kernels/test-nhwc tests/kernels/test-frame \
  tests/kernels/test-resize tests/kernels/test-temporal tests/kernels/test-compensate \
  tests/kernels/test-islands tests/kernels/test-bars tests/gpu/test-cuda-bars \
  tests/gpu/test-cuda-matte-resize || die "build failed"
# the CUDA backend's module, which libhfam opens at run time, for the programs run from $BUILD
# below (meson test sets it for its own tests)
export HFAMMATTE_CUDA_MODULE=$BUILD/model/engine/cuda/libhfam-cuda.so

# ---- weight files: random ResNet-50 / ResNet-101 HFAM, the tiny one, the golden cases ----
models=$BUILD/gpu-models
mkdir -p "$models"
for c in tiny r50 r101; do
  [ -s "$models/$c.safetensors" ] \
    || "$PYTHON" model/python/reference/export.py --config $c -o "$models/$c.safetensors" \
    || die "export.py --config $c failed"
done
fi

run_check () {
  local name=$1; shift
  say "$name"
  "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: $name FAILED (exit $rc$([ "$rc" -eq 124 ] && echo ': the time-out'))" \
      | tee -a "$LOG/$name.log"
    failed=$((failed + 1))
  elif grep -q "cuBLASLt's product" "$LOG/$name.log"; then
    # the frames passed on cuDNN's fallback: a product that ran at plan was refused at run
    echo "run.sh: $name FAILED: cuBLASLt refused a product at run time (the warning above)" \
      | tee -a "$LOG/$name.log"
    failed=$((failed + 1))
  fi
}

# ---- phase gst: the element with CUDA memory in and out, against the CPU element ----
# In $BUILD-gst: -Dgst=enabled, the tiny model of tests/gst made by $PYTHON (-Dtorch_python).
# GStreamer 1.22 with gstcuda from the machine, else unpacked from $DEPS/gst into $PREFIX-gst;
# those libraries reach the linker (-rpath-link) and the test (LD_LIBRARY_PATH, through meson
# test's wrapper) only, never $PYTHON.
gst_phase () {
  local gbuild=$BUILD-gst gprefix=$PREFIX-gst lib="" pcpath="" wrap="" known so name f
  local failed_before
  note () { echo "run.sh: gst: $*" | tee -a "$LOG/gst-phase.log"; }
  say "gst: the element, CUDA memory in and out (build in $gbuild)"
  : >"$LOG/gst-phase.log"
  if pkg-config --exists gstreamer-cuda-1.0 gstreamer-check-1.0 gstreamer-video-1.0 \
     2>/dev/null; then
    echo "GStreamer $(pkg-config --modversion gstreamer-1.0) from the machine"
  elif ! ls "$DEPS"/gst/*.deb >/dev/null 2>&1; then
    note "skipped: no GStreamer with gstcuda here and no $DEPS/gst/*.deb" \
         "(run tests/gpu/fetch-deps.sh where apt works and carry .gpu-deps)"
    [ "$phase" = gst ] && failed=$((failed + 1))
    return
  else
    lib=$gprefix/usr/lib/x86_64-linux-gnu
    if [ ! -e "$gprefix/.done" ]; then
      unpack_debs "$DEPS/gst" "$gprefix" || { failed=$((failed + 1)); return; }
      # shared linking only: the private requirements' .pc files are not carried
      sed -i '/^Requires\.private:/d' "$lib"/pkgconfig/*.pc
      # what an Ubuntu image usually has: ours only where the machine's loader has none
      mkdir -p "$gprefix/if-missing"
      for f in "$DEPS"/gst/if-missing/*.deb; do
        [ -e "$f" ] \
          && { dpkg -x "$f" "$gprefix/if-missing" || { failed=$((failed + 1)); return; }; }
      done
      known=$(PATH=$PATH:/sbin:/usr/sbin ldconfig -p)
      for so in "$gprefix"/if-missing/{usr/,}lib/x86_64-linux-gnu/lib*.so.*; do
        [ -f "$so" ] && [ ! -L "$so" ] || continue
        name=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
        [ -n "$name" ] || continue
        if ! awk -v n="$name" '$1 == n && /x86-64/ { f = 1 } END { exit !f }' <<<"$known"; then
          ln -sf "$so" "$lib/$name"
          echo "$name: none on the machine, ours"
        fi
      done
      touch "$gprefix/.done"
    fi
    pcpath=$lib/pkgconfig
    wrap="env LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export GST_PLUGIN_SCANNER=$lib/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner
    echo "GStreamer from $DEPS/gst, unpacked in $gprefix"
  fi
  if [ ! -e "$gbuild/build.ninja" ]; then
    PKG_CONFIG_PATH=$pcpath${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} \
      meson setup "$gbuild" -Dcuda=enabled -Dgst=enabled -Dnvcc_targets="$NVCC_TARGETS" \
      -Dbuildtype=release $cudnn_opt -Dtorch_python="$(command -v "$PYTHON")" \
      ${lib:+-Dc_link_args=-Wl,-rpath-link,$lib} >"$LOG/gst-setup.log" 2>&1
    if [ $? -ne 0 ]; then
      tail -n 30 "$LOG/gst-setup.log"
      note "meson setup FAILED"; failed=$((failed + 1)); return
    fi
  fi
  grep -E 'CUDA backend|GStreamer element|CUDA memory in the element' "$LOG/gst-setup.log"
  if ! grep -Eiq 'CUDA memory in the element *: *(yes|true)' "$LOG/gst-setup.log"; then
    note "FAILED: no CUDA memory in the element (gstreamer-cuda-1.0 or the CUDA backend not found)"
    failed=$((failed + 1)); return
  fi
  if ! ninja -C "$gbuild" gst/libgsthfam.so model/engine/cuda/libhfam-cuda.so \
       tests/gst/test-hfammatte tests/gst/hfam-tiny.safetensors tools/hfam-element-bench \
       >"$LOG/gst-build.log" 2>&1; then
    tail -n 40 "$LOG/gst-build.log"
    note "build FAILED"; failed=$((failed + 1)); return
  fi
  # test_cuda_memory: CUDA memory in and out on the CUDA backend against the CPU element,
  # RGBA and NV12, pipeline depth 1 and 2 (check:4 prints each frame's key difference).
  # CK_FORK=no: test-hfammatte opens a CUDA context while it makes its suite (to choose the
  # tests), and a child forked after that cannot use CUDA: check's default (a child per
  # test) would skip test_cuda_memory on a GPU machine
  failed_before=$failed
  run_check gst-cuda-memory env CK_FORK=no GST_CHECKS=test_cuda_memory \
    GST_DEBUG=*:2,check:4,hfammatte:5,cudaallocator:4,cudabufferpool:4,cudacontext:4,cudautils:4 \
    GST_DEBUG_NO_COLOR=1 meson test -C "$gbuild" --no-rebuild --print-errorlogs -v \
    ${wrap:+--wrapper "$wrap"} hfammatte
  cp "$(ls -t "$gbuild"/meson-logs/testlog*.txt | head -n 1)" "$LOG/gst-cuda-memory-testlog.txt"
  if [ "$failed" -ne "$failed_before" ]; then
    note "test_cuda_memory FAILED"
  elif grep -q 'test_cuda_memory: skipped' "$LOG"/gst-cuda-memory*; then
    note "test_cuda_memory FAILED: skipped (gstcuda or libhfam opened no CUDA device)"
    failed=$((failed + 1))
  elif ! grep -q 'Checks: 1, Failures: 0, Errors: 0' "$LOG"/gst-cuda-memory*; then
    note "test_cuda_memory FAILED: it did not run"
    failed=$((failed + 1))
  else
    note "test_cuda_memory passed"
  fi
  # the whole element suite (the CPU tests, and the CUDA ones that need a device)
  run_check gst-suite env CK_FORK=no meson test -C "$gbuild" --no-rebuild --print-errorlogs -v \
    ${wrap:+--wrapper "$wrap"} hfammatte
  cp "$(ls -t "$gbuild"/meson-logs/testlog*.txt | head -n 1)" "$LOG/gst-suite-testlog.txt"
  grep -h 'Checks:' "$LOG/gst-suite.log" | tail -n 1 | sed 's/^/run.sh: gst: the element suite: /' \
    | tee -a "$LOG/gst-phase.log"
  element_bench "$gbuild" "$wrap"
}

# The element end to end (issue 20): 1080p NV12 in CUDA memory from gstcuda's pool, RGBA out in
# CUDA memory, default model (and random R101 weights) at pipeline depth 1 and 2: frames/s and
# latency; first a check of 3 frames' alpha (fp32) against the CPU element's, on random R101
# weights (a trained model sees nobody in the bench's frames: alpha 0 would pass any fault) and
# RGBA (the CPU element's GstVideoConverter interpolates NV12's chroma, the device does not).
# Each run at most ELEMENT_TIMEOUT seconds (a hang would take the call's time); the bench
# refuses to time an element that is not on its CUDA context (the host path's figures).
# What an element run said into the gst phase's summary: the lines matching $2, and its failure
# (run_check's line, or the bench's own reasons), as "run.sh: gst: $3: ..."
element_bench_lines () {
  grep -h "$2\|FAILED\|does not start\|does not run on\|failed\|Terminated" "$LOG/$1.log" \
    | sed "s|^|run.sh: gst: $3: |" | tee -a "$LOG/gst-phase.log"
}

element_bench () {
  local gbuild=$1 wrap=$2 bench d m name
  bench=(${wrap:-} env HFAMMATTE_CUDA_MODULE="$gbuild/model/engine/cuda/libhfam-cuda.so"
         GST_REGISTRY="$gbuild/registry-bench.bin" OMP_WAIT_POLICY=passive
         timeout --foreground "${ELEMENT_TIMEOUT:-180}" "$gbuild/tools/hfam-element-bench"
         --memory cuda --format NV12 --size 1920x1080)
  [ -s "$gbuild/r101.safetensors" ] \
    || "$PYTHON" model/python/reference/export.py --config r101 -o "$gbuild/r101.safetensors"
  run_check gst-element-check "${bench[@]}" --format RGBA --frames 3 --warmup 1 --check 3 \
    --set model="$gbuild/r101.safetensors"
  element_bench_lines gst-element-check 'check frame' "element check, random R101, RGBA"
  for m in model/default/default.safetensors "$gbuild/r101.safetensors"; do
    for d in 1 2; do
      name=gst-element-bench-$(basename "$m" .safetensors)-depth$d
      run_check "$name" "${bench[@]}" \
        --frames "${ELEMENT_FRAMES:-300}" --warmup 20 --set model="$m" --set pipeline-depth=$d
      element_bench_lines "$name" 'frames/s\|latency' "element $(basename "$m") depth $d"
    done
  done
  # four cameras: four elements sharing one model (the default), four with their own, and
  # four in one batch group (max-batch=4: one batch of four frames on the GPU, each element's
  # frames preprocessed and written in CUDA memory by its own frames-only backend)
  local how
  for how in "share-model=true max-batch=1" "share-model=false max-batch=1" \
             "share-model=true max-batch=4"; do
    name=gst-element-bench-4-streams-${how// /-}
    run_check "$name" "${bench[@]}" \
      --frames "${ELEMENT_FRAMES:-300}" --warmup 20 --streams 4 --set pipeline-depth=2 \
      --set model=model/default/default.safetensors --set "${how% *}" --set "${how#* }"
    element_bench_lines "$name" 'all streams\|memory' "4 streams, $how"
  done
  # and in system memory with and without a batch group: four elements on 1080p NV12
  local mb
  for mb in 1 4; do
    run_check "gst-element-bench-4-streams-max-batch-$mb" "${bench[@]:0:${#bench[@]}-6}" \
      --memory system --format NV12 --size 1920x1080 --set backend=cuda \
      --frames "${ELEMENT_FRAMES:-300}" --warmup 20 --streams 4 --set pipeline-depth=2 \
      --set model=model/default/default.safetensors --set max-batch=$mb
    element_bench_lines "gst-element-bench-4-streams-max-batch-$mb" 'all streams\|memory' \
      "4 streams in system memory, max-batch=$mb"
  done
}

if [ "$phase" = all ] || [ "$phase" = check ]; then
  [ -s "$models/golden/r18_160x96.safetensors" ] \
    || "$PYTHON" model/python/reference/golden.py --outdir "$models/golden" >/dev/null \
    || echo "run.sh: golden.py failed: the odd-width cases are not checked"
  run_check cpu-twins sh -c "'$BUILD/tests/kernels/test-nhwc' &&
    '$BUILD/tests/kernels/test-frame' && '$BUILD/tests/kernels/test-resize' &&
    '$BUILD/tests/kernels/test-temporal' && '$BUILD/tests/kernels/test-compensate' &&
    '$BUILD/tests/kernels/test-islands' && '$BUILD/tests/kernels/test-bars'"
  run_check cuda-ops "$BUILD/tests/gpu/test-cuda-ops" -v
  run_check cuda-temporal "$BUILD/tests/gpu/test-cuda-temporal"
  run_check cuda-islands "$BUILD/tests/gpu/test-cuda-islands"
  run_check cuda-bars "$BUILD/tests/gpu/test-cuda-bars"
  run_check cuda-matte-resize "$BUILD/tests/gpu/test-cuda-matte-resize"
  golden=()
  for g in r18_160x96:160x96 r50_160x96:160x96 tiny_f16_64x64:96x64 r18_i8_64x64:64x64; do
    f=$models/golden/${g%%:*}.safetensors
    [ -s "$f" ] && golden+=("$f" "${g##*:}")
  done
  run_check cuda-network-small "$BUILD/tests/gpu/test-cuda-network" \
    "$models/tiny.safetensors" 64x64 "$models/tiny.safetensors" 160x96 "${golden[@]}"
  run_check cuda-network-r50-r101 "$BUILD/tests/gpu/test-cuda-network" \
    "$models/r50.safetensors" 512x288 "$models/r101.safetensors" 512x288
  # the trained default model (fp16 weights; few near-ties, unlike random weights)
  run_check cuda-network-default "$BUILD/tests/gpu/test-cuda-network" \
    model/default/default.safetensors 512x288
  # frames in device memory through preprocess.cu and matte.cu, on the primary context and on
  # one the test pushes, 333x187 and 1920x1080: random R50 weights (an alpha that varies all
  # over the test's frames), then the default model (trained: alpha ~0 on them)
  run_check cuda-device-frames "$BUILD/tests/gpu/test-cuda-device-frames" \
    "$models/r50.safetensors"
  run_check cuda-device-frames-default "$BUILD/tests/gpu/test-cuda-device-frames" \
    model/default/default.safetensors
  # the edges (refine, foreground fill, key levels) on device frames against host frames
  run_check cuda-device-edges "$BUILD/tests/gpu/test-cuda-device-edges" "$models/r50.safetensors"
  # the same with a synchronisation after every node: a kernel fault names its node
  if [ "$failed" -ne 0 ]; then
    run_check cuda-network-sync env HFAM_CUDA_SYNC=1 G_MESSAGES_DEBUG=all \
      "$BUILD/tests/gpu/test-cuda-network" "$models/tiny.safetensors" 64x64
  fi
fi

if [ "$phase" = all ] || [ "$phase" = gst ]; then
  gst_phase
fi

# Where R101's time goes at 512x288 fp16: per stage (no graphs, every stage synchronised:
# slower than the bench's frames), per node, and what the graph's lanes, split-K and cuBLASLt
# gain. Run right after R101's 512x288 fp16 row (the bars), before the rest, which DEADLINE
# cuts first.
diagnose_r101 () {
  if [ "$SECONDS" -gt "$DEADLINE" ]; then
    echo "run.sh: R101's diagnosis skipped: past DEADLINE ($DEADLINE s)"
    return
  fi
  timeout --foreground 120 "$BUILD/tools/hfam-bench" --model "$models/r101.safetensors" \
    --size 512x288 --backend cuda --precision fp16 --no-graphs -n 20 --no-torch --no-ort 2>&1 \
    | tee "$LOG/stages-r101.log"
  # and per node (every node timed on one stream: the slowest 40, then totals by kind)
  HFAM_CUDA_PROFILE=1 timeout --foreground 120 "$BUILD/tools/hfam-bench" \
    --model "$models/r101.safetensors" --size 512x288 --backend cuda --precision fp16 -n 10 \
    --no-torch --no-ort >"$LOG/profile-r101.log" 2>&1
  sed -n '/^cuda backend profile/,$p' "$LOG/profile-r101.log"
  # what the lanes, split-K and cuBLASLt gain: the default against every node on one stream
  # (HFAM_CUDA_ONE_STREAM=1), against no split-K (HFAM_CUDA_SPLIT_K=0) and against 1x1
  # convolutions on cuDNN only (HFAM_CUDA_GEMM=0), alternated so that drift hits all alike
  lanes=$LOG/lanes-r101.txt
  printf '%-6s %-14s %-5s %12s %10s\n' round variant depth latency_ms fps >"$lanes"
  for round in $(seq "$VARIANT_ROUNDS"); do
    for variant in default one-stream no-split-k no-gemm; do
      for depth in 1 2; do
        llog=$LOG/variant-$round-$variant-d$depth.log
        [ "$SECONDS" -gt "$DEADLINE" ] && continue
        one=0; split=""; gemm=""
        [ $variant = one-stream ] && one=1
        [ $variant = no-split-k ] && split=0
        [ $variant = no-gemm ] && gemm=0
        HFAM_CUDA_ONE_STREAM=$one HFAM_CUDA_SPLIT_K=$split HFAM_CUDA_GEMM=$gemm \
          timeout --foreground 120 "$BUILD/tools/hfam-bench" \
          --model "$models/r101.safetensors" --size 512x288 --backend cuda --precision fp16 \
          --depth $depth -n "$RUNS" --no-torch --no-ort >"$llog" 2>&1
        lat=$(sed -n 's/.*latency (submit to collect): median \([0-9.]*\) ms.*/\1/p' "$llog")
        fps=$(sed -n 's/.*throughput \([0-9.]*\) frames.*/\1/p' "$llog")
        printf '%-6s %-14s %-5s %12s %10s\n' $round $variant $depth "${lat:-n/a}" \
          "${fps:-n/a}" >>"$lanes"
      done
    done
  done
  echo "R101 512x288 fp16: default (lanes, split-K and cuBLASLt timed), one stream, no split-K," \
    "no cuBLASLt"
  cat "$lanes"
}

# Batch groups on CUDA (issue 20): B streams, each a context, in one batch group of max-batch B
# (B = 1: one context alone), pipeline depth 2, 512x288 fp16, R101 and the default model,
# alternated BATCH_ROUNDS times so that drift hits all alike; frames/s over all the streams.
batch_rows () {
  local batches=$LOG/batch-512x288-fp16.txt round m b weights blog fps lat fill
  printf '%-6s %-8s %-6s %12s %10s %11s\n' round model batch latency_ms fps mean_batch >"$batches"
  for round in $(seq "${BATCH_ROUNDS:-2}"); do
    for m in r101 default; do
      weights=$models/$m.safetensors
      [ $m = default ] && weights=$root/model/default/default.safetensors
      for b in 1 4; do
        blog=$LOG/batch-$round-$m-b$b.log
        if [ "$SECONDS" -gt "$DEADLINE" ]; then
          echo "run.sh: batch $round $m $b skipped: past DEADLINE ($DEADLINE s)" >>"$batches"
          continue
        fi
        timeout --foreground 120 "$BUILD/tools/hfam-bench" --model "$weights" --size 512x288 \
          --backend cuda --precision fp16 --depth 2 --batch $b -n "$RUNS" --no-torch --no-ort \
          >"$blog" 2>&1
        lat=$(sed -n 's/.*latency (submit to collect): median \([0-9.]*\) ms.*/\1/p' "$blog")
        fps=$(sed -n 's/.*throughput \([0-9.]*\) frames.*/\1/p' "$blog")
        fill=$(sed -n 's/.*mean batch \([0-9.]*\) frames.*/\1/p' "$blog")
        printf '%-6s %-8s %-6s %12s %10s %11s\n' $round $m $b "${lat:-n/a}" "${fps:-n/a}" \
          "${fill:-n/a}" >>"$batches"
        # (why a row has no figures)
        [ -n "$fps" ] || tail -n 3 "$blog" | sed "s|^|run.sh: batch $round $m $b: |" >>"$batches"
      done
    done
  done
  echo "batch groups, 512x288 fp16, depth 2: B streams in one group of max-batch B"
  cat "$batches"
}

if [ "$phase" = all ] || [ "$phase" = bench ]; then
  # the edge ops at 1080p (issue 16's bar: refinement and foreground under 0.5 ms together) and
  # the temporal smoothing's device kernels at the defaults (issue 17's: negligible on CUDA)
  say "bench: the edge and smoothing ops at 1920x1080"
  timeout --foreground 60 "$BUILD/tests/kernels/bench-edges-cuda" 2>&1 \
    | tee "$LOG/bench-edges-cuda.log"
  say "bench: $RUNS frames per configuration (configurations matching '$pattern')"
  summary=$LOG/bench-summary.txt
  [ -s "$summary" ] || printf '%-5s %-8s %-5s %-5s %12s %10s %12s %12s %14s %9s %11s\n' model size \
    prec depth latency_ms fps torch_ms eager_ms torch.compile vs_torch vs_compile >"$summary"
  for prec in fp16 fp32; do
    for m in r101 r50 default; do
      weights=$models/$m.safetensors
      [ $m = default ] && weights=$root/model/default/default.safetensors
      for size in 512x288 512x512; do
        echo "$m $size $prec" | grep -Eq -- "$pattern" || continue
        if [ "$SECONDS" -gt "$DEADLINE" ]; then
          echo "run.sh: $m $size $prec skipped: past DEADLINE ($DEADLINE s)" | tee -a "$summary"
          continue
        fi
        half=""; [ $prec = fp16 ] && half="--half"
        tlog=$LOG/torch-$m-$size-$prec.log
        timeout --foreground 300 "$PYTHON" model/python/reference/torch_bench.py \
          --model "$weights" --size $size -n "$RUNS" --device cuda $half >"$tlog" 2>&1
        torch_ms=$(sed -n 's/^median_ms //p' "$tlog")
        cat "$tlog"
        # PyTorch eager, which the issue names (frozen TorchScript is the ratios' baseline)
        elog=$LOG/torch-eager-$m-$size-$prec.log
        timeout --foreground 300 "$PYTHON" model/python/reference/torch_bench.py \
          --model "$weights" --size $size -n "$RUNS" --device cuda $half --eager >"$elog" 2>&1
        eager_ms=$(sed -n 's/^median_ms //p' "$elog")
        tail -n 2 "$elog"
        compile_ms=""
        compile_pattern=$TORCH_COMPILE
        [ "$TORCH_COMPILE" = 1 ] && compile_pattern='r101 512x288 fp16'
        if [ "$TORCH_COMPILE" != 0 ] && echo "$m $size $prec" | grep -Eq -- "$compile_pattern"; then
          clog=$LOG/torch-compile-$m-$size-$prec.log
          timeout --foreground 240 "$PYTHON" tests/gpu/torch_compile_bench.py \
            --model "$weights" --size $size -n "$RUNS" $half >"$clog" 2>&1
          compile_ms=$(sed -n 's/^median_ms //p' "$clog")
          tail -n 3 "$clog"
        fi
        for depth in 1 2; do
          blog=$LOG/bench-$m-$size-$prec-d$depth.log
          timeout --foreground 300 "$BUILD/tools/hfam-bench" --model "$weights" --size $size \
            --backend cuda --precision $prec --depth $depth -n "$RUNS" --no-torch --no-ort \
            >"$blog" 2>&1
          cat "$blog"
          lat=$(sed -n 's/.*latency (submit to collect): median \([0-9.]*\) ms.*/\1/p' "$blog")
          fps=$(sed -n 's/.*throughput \([0-9.]*\) frames.*/\1/p' "$blog")
          ratio=$(awk -v a="$lat" -v b="$torch_ms" \
            'BEGIN { if (a && b) printf "%.2f", a / b; else print "n/a" }')
          cratio=$(awk -v a="$lat" -v b="$compile_ms" \
            'BEGIN { if (a && b) printf "%.2f", a / b; else print "n/a" }')
          printf '%-5s %-8s %-5s %-5s %12s %10s %12s %12s %14s %9s %11s\n' $m $size $prec $depth \
            "${lat:-n/a}" "${fps:-n/a}" "${torch_ms:-n/a}" "${eager_ms:-n/a}" "${compile_ms:-n/a}" \
            "$ratio" "$cratio" >>"$summary"
        done
        if [ "$m $size $prec" = "r101 512x288 fp16" ]; then
          batch_rows
          diagnose_r101
        fi
      done
    done
  done
  say "bench summary"
  grep -h "cuBLASLt's product" "$LOG"/bench-*.log "$LOG"/variant-*.log "$LOG"/batch-*.log \
    2>/dev/null | sort | uniq -c
  echo "latency: submit to collect, median; fps: frames/s with 'depth' frames in flight;"
  echo "vs_torch, vs_compile: engine latency / PyTorch median frame time" \
    "(< 1: the engine is faster)"
  cat "$summary"
fi

result="$([ $failed -eq 0 ] && echo 'all checks passed' || echo "$failed check(s) FAILED")"
write_out "$result"
say "$result"
exit $((failed > 0))
