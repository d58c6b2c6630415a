#!/bin/bash
# The CUDA backend on a GPU machine with CUDA (nvcc, cuDNN), meson and ninja but no GStreamer:
# builds the engine, kernels, tests and bench only; checks every CUDA op against its CPU twin,
# the whole network against the CPU backend and the device-frame API against the CPU path;
# times ResNet-50 and ResNet-101 HFAM at 512x288 and 512x512, fp16 and fp32, pipeline depth 1
# and 2, and the same network in PyTorch on the same GPU (frozen TorchScript, and
# torch.compile), with the ratios. See tests/gpu/README.md.
#
# Usage: tests/gpu/run.sh [all | check | bench [PATTERN]]   (default all; each phase builds
#        first; PATTERN, an extended regular expression, picks the bench configurations by
#        "MODEL SIZE PRECISION", e.g. 'fp16' or 'r101 512x512')
# Environment:
#   PYTHON        python3 with torch (default: python3 on PATH)
#   BUILD         build folder (default: /tmp/hfam-build-gpu)
#   DEPS          folder of .deb files from tests/gpu/fetch-deps.sh, unpacked into a private
#                 prefix when pkg-config cannot find GLib (default: .gpu-deps in the repo root)
#   NVCC_TARGETS  nvcc targets (default: sm_XY of the GPU present, e.g. sm_90)
#   RUNS          timed frames per configuration (default 50)
#   TORCH_COMPILE 1: also time torch.compile at 512x288 fp16 (default 1; 0 skips it)
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
RUNS=${RUNS:-50}
TORCH_COMPILE=${TORCH_COMPILE:-1}
LOG=$BUILD/gpu-logs
failed=0

say () { printf '\n=== %s\n' "$*"; }
die () { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

case $phase in all|check|bench) ;; *) die "unknown phase '$phase' (all, check or bench)";; esac

# ---- the machine (the facts of shared/notes/gpu-machine.md, checked) ----
say "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader \
  || die "nvidia-smi failed: no GPU here"
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
nvcc --version | tail -n 2
echo "meson $(meson --version), ninja $(ninja --version), $(gcc --version | head -n 1)"
"$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())' \
  || die "$PYTHON cannot import torch (set PYTHON)"
nproc

# ---- C libraries: from the machine, else from the carried .deb files ----
prefix=/tmp/hfam-prefix
if ! pkg-config --exists glib-2.0 json-glib-1.0 libpng libjpeg 2>/dev/null; then
  [ -d "$DEPS" ] || die "no GLib/json-glib/libpng/libjpeg here and no $DEPS: run tests/gpu/fetch-deps.sh where apt works and carry .gpu-deps"
  if [ ! -e $prefix/.done ]; then
    rm -rf $prefix && mkdir -p $prefix
    for f in "$DEPS"/*.deb; do dpkg -x "$f" $prefix || die "dpkg -x $f"; done
    # the .pc files name /usr: point them at the prefix
    for pc in $prefix/usr/lib/x86_64-linux-gnu/pkgconfig/*.pc $prefix/usr/share/pkgconfig/*.pc; do
      [ -f "$pc" ] && sed -i "s|=/usr|=$prefix/usr|g; s|-I/usr/|-I$prefix/usr/|g; s|-L/usr/|-L$prefix/usr/|g" "$pc"
    done
    # absolute .so links of the -dev packages
    for l in $prefix/usr/lib/x86_64-linux-gnu/*.so; do
      t=$(readlink "$l" || true)
      case $t in /*) ln -sf "$prefix$t" "$l";; esac
    done
    touch $prefix/.done
  fi
  lib=$prefix/usr/lib/x86_64-linux-gnu
  export PKG_CONFIG_PATH=$lib/pkgconfig:$prefix/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
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

# meson.build names /usr/bin/python3 for the golden vectors (not built here); it must exist
[ -e /usr/bin/python3 ] || ln -s "$(command -v "$PYTHON")" /usr/bin/python3

# ---- build: engine, kernels, tests, bench ----
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
NVCC_TARGETS=${NVCC_TARGETS:-sm_$cc}
say "build in $BUILD (nvcc targets $NVCC_TARGETS)"
if [ ! -e "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dcuda=enabled -Dgst=disabled -Dnvcc_targets="$NVCC_TARGETS" \
    -Dbuildtype=release $cudnn_opt || die "meson setup failed"
fi
mkdir -p "$LOG"
ninja -C "$BUILD" tests/gpu/test-cuda-ops tests/gpu/test-cuda-network \
  tests/gpu/test-cuda-device-frames tools/hfam-bench \
  tests/kernels/test-nhwc tests/kernels/test-frame tests/kernels/test-resize \
  || die "build failed"

# ---- weight files: random ResNet-50 / ResNet-101 HFAM, the tiny one, the golden cases ----
models=$BUILD/gpu-models
mkdir -p "$models"
for c in tiny r50 r101; do
  [ -s "$models/$c.safetensors" ] \
    || "$PYTHON" model/reference/export.py --config $c -o "$models/$c.safetensors" \
    || die "export.py --config $c failed"
done

run_check () {
  local name=$1; shift
  say "$name"
  "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "run.sh: $name FAILED (exit $rc)"
    failed=$((failed + 1))
  fi
}

if [ "$phase" != bench ]; then
  [ -s "$models/golden/r18_160x96.safetensors" ] \
    || "$PYTHON" model/reference/golden.py --outdir "$models/golden" >/dev/null \
    || echo "run.sh: golden.py failed: the odd-width cases are not checked"
  run_check cpu-twins sh -c "'$BUILD/tests/kernels/test-nhwc' && '$BUILD/tests/kernels/test-frame' && '$BUILD/tests/kernels/test-resize'"
  run_check cuda-ops "$BUILD/tests/gpu/test-cuda-ops" -v
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
    model/default.safetensors 512x288
  # frames in device memory through preprocess.cu and matte.cu, on the primary context and on
  # one the test pushes, 333x187 and 1920x1080: random R50 weights (an alpha that varies all
  # over the test's frames), then the default model (trained: alpha ~0 on them)
  run_check cuda-device-frames "$BUILD/tests/gpu/test-cuda-device-frames" \
    "$models/r50.safetensors"
  run_check cuda-device-frames-default "$BUILD/tests/gpu/test-cuda-device-frames" \
    model/default.safetensors
  # the same with a synchronisation after every node: a kernel fault names its node
  if [ "$failed" -ne 0 ]; then
    run_check cuda-network-sync env HFAM_CUDA_SYNC=1 G_MESSAGES_DEBUG=all \
      "$BUILD/tests/gpu/test-cuda-network" "$models/tiny.safetensors" 64x64
  fi
fi

if [ "$phase" != check ]; then
  say "bench: $RUNS frames per configuration (configurations matching '$pattern')"
  summary=$LOG/bench-summary.txt
  [ -s "$summary" ] || printf '%-5s %-8s %-5s %-5s %12s %10s %12s %14s %9s %11s\n' model size \
    prec depth latency_ms fps torch_ms torch.compile vs_torch vs_compile >"$summary"
  for prec in fp16 fp32; do
    for m in r50 r101 default; do
      weights=$models/$m.safetensors
      [ $m = default ] && weights=$root/model/default.safetensors
      for size in 512x288 512x512; do
        echo "$m $size $prec" | grep -Eq -- "$pattern" || continue
        if [ "$SECONDS" -gt "$DEADLINE" ]; then
          echo "run.sh: $m $size $prec skipped: past DEADLINE ($DEADLINE s)" | tee -a "$summary"
          continue
        fi
        half=""; [ $prec = fp16 ] && half="--half"
        tlog=$LOG/torch-$m-$size-$prec.log
        timeout 300 "$PYTHON" model/reference/torch_bench.py --model "$weights" \
          --size $size -n "$RUNS" --device cuda $half >"$tlog" 2>&1
        torch_ms=$(sed -n 's/^median_ms //p' "$tlog")
        cat "$tlog"
        compile_ms=""
        if [ "$TORCH_COMPILE" = 1 ] && [ $size = 512x288 ] && [ $prec = fp16 ]; then
          clog=$LOG/torch-compile-$m-$size-$prec.log
          timeout 400 "$PYTHON" tests/gpu/torch_compile_bench.py \
            --model "$weights" --size $size -n "$RUNS" $half >"$clog" 2>&1
          compile_ms=$(sed -n 's/^median_ms //p' "$clog")
          tail -n 3 "$clog"
        fi
        for depth in 1 2; do
          blog=$LOG/bench-$m-$size-$prec-d$depth.log
          timeout 300 "$BUILD/tools/hfam-bench" --model "$weights" --size $size \
            --backend cuda --precision $prec --depth $depth -n "$RUNS" --no-torch >"$blog" 2>&1
          cat "$blog"
          lat=$(sed -n 's/.*latency (submit to collect): median \([0-9.]*\) ms.*/\1/p' "$blog")
          fps=$(sed -n 's/.*throughput \([0-9.]*\) frames.*/\1/p' "$blog")
          ratio=$(awk -v a="$lat" -v b="$torch_ms" 'BEGIN { if (a && b) printf "%.2f", a / b; else print "n/a" }')
          cratio=$(awk -v a="$lat" -v b="$compile_ms" 'BEGIN { if (a && b) printf "%.2f", a / b; else print "n/a" }')
          printf '%-5s %-8s %-5s %-5s %12s %10s %12s %14s %9s %11s\n' $m $size $prec $depth \
            "${lat:-n/a}" "${fps:-n/a}" "${torch_ms:-n/a}" "${compile_ms:-n/a}" "$ratio" \
            "$cratio" >>"$summary"
        done
      done
    done
  done
  # where the time goes (no graphs, every stage synchronised: slower than the frames above)
  if [ "$SECONDS" -le "$DEADLINE" ] && echo "r101 512x288 fp16" | grep -Eq -- "$pattern"; then
    timeout 120 "$BUILD/tools/hfam-bench" --model "$models/r101.safetensors" --size 512x288 \
      --backend cuda --precision fp16 --no-graphs -n 20 --no-torch 2>&1 | tee "$LOG/stages-r101.log"
    # and per node (every node synchronised and timed: the slowest 40 are printed)
    HFAM_CUDA_PROFILE=1 timeout 120 "$BUILD/tools/hfam-bench" --model "$models/r101.safetensors" \
      --size 512x288 --backend cuda --precision fp16 -n 10 --no-torch >"$LOG/profile-r101.log" 2>&1
    tail -n 42 "$LOG/profile-r101.log"
  fi
  say "bench summary"
  echo "latency: submit to collect, median; fps: frames/s with 'depth' frames in flight;"
  echo "vs_torch, vs_compile: engine latency / PyTorch median frame time (< 1: the engine is faster)"
  cat "$summary"
fi

result="$([ $failed -eq 0 ] && echo 'all checks passed' || echo "$failed check(s) FAILED")"
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
  { echo "tests/gpu/run.sh $phase: $result"; grep -h '^\(ok\|FAIL\|SKIP\|device\|seed\)' "$LOG"/cuda-*.log 2>/dev/null
    [ -s "$LOG/bench-summary.txt" ] && cat "$LOG/bench-summary.txt"; } >"$OUT/summary.txt"
  tar -czf "$OUT/gpu-logs.tar.gz" -C "$BUILD" gpu-logs 2>/dev/null
fi
say "$result"
exit $((failed > 0))
