#!/usr/bin/env bash
# `make bench-gpu` on a GPU machine that reaches no package index: the one
# way mmctx has run on a GPU so far (an NVIDIA H200 with no network, 2026-11-26;
# docs/benchmarks/README.md). Uses the machine's own CUDA torch and nvcc, no venv.
#
#   bash tools/bench_gpu_offline.sh WHEELHOUSE
#
# WHEELHOUSE holds, fetched on a machine with PyPI for the GPU machine's Python
# (`pip download --no-deps --only-binary=:all: --python-version 3.12 --platform
# manylinux2014_x86_64 ...`, see docs/benchmarks/README.md): the mmcv 2.1.0
# sdist (`pip download --no-deps --no-binary :all: mmcv==2.1.0`) and the wheels
# of mmengine, mmdet, mmsegmentation, their pure-Python needs and setuptools<70
# (mmcv's setup.py imports pkg_resources); timm 1.0.31 (requirements-benchmark.txt)
# as well for the peers step's timm rows (timm's own needs, torchvision among
# them, must be the machine's).
#
# Steps: the wheels go into $SITE (--no-deps, nothing resolved); mmcv is built
# twice in place from the sdist, at once with its CPU ops (enough for the module
# table: mmdet needs mmcv.ops importable) and, niced, in the background with
# its CUDA ops for the GPU's compute capability (the cost and AMP steps run
# mmcv's CUDA nms / roi_align); then bench_gpu.py's modules step (meanwhile),
# and once the CUDA build is done its peers, cost and amp steps, cost / AMP
# within the time left (BUDGET_S in all, default 3600), and the report.
#
# Environment: SITE (default /tmp/mmctx-site), BUILD (default /tmp/mmctx-mmcv),
# WORK_DIR (default work_dirs/bench_gpu), REPORT_DIR (default docs/benchmarks),
# BUDGET_S, MAX_JOBS (default nproc).
set -u
WHEELS="${1:?usage: bash tools/bench_gpu_offline.sh WHEELHOUSE}"
WHEELS="$(cd "$WHEELS" && pwd)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SITE="${SITE:-/tmp/mmctx-site}"; BUILD="${BUILD:-/tmp/mmctx-mmcv}"
WORK_DIR="${WORK_DIR:-$REPO/work_dirs/bench_gpu}"; REPORT_DIR="${REPORT_DIR:-$REPO/docs/benchmarks}"
BUDGET_S="${BUDGET_S:-3600}"; JOBS="${MAX_JOBS:-$(nproc)}"
T0=$SECONDS
left() { echo $(( BUDGET_S - (SECONDS - T0) )); }
log() { echo "[bench_gpu_offline $((SECONDS - T0)) s] $*"; }
die() { log "error: $*" >&2; exit 1; }

SDIST="$(ls "$WHEELS"/mmcv-2.1.0.tar.gz 2>/dev/null)" || die "no mmcv-2.1.0.tar.gz in $WHEELS"
ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sort -u | paste -sd';')" \
    || die "nvidia-smi found no GPU"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv
python3 -c "import sys, torch; print('Python', sys.version.split()[0], 'torch', torch.__version__, 'CUDA', torch.version.cuda); sys.exit(not torch.cuda.is_available())" \
    || die "python3's torch sees no CUDA device"
python3 -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEELS"/*.whl \
    || die "pip could not install the wheels of $WHEELS into $SITE"
export PYTHONPATH="$SITE"
for kind in cpu cuda; do rm -rf "$BUILD/$kind"; mkdir -p "$BUILD/$kind"; tar xzf "$SDIST" -C "$BUILD/$kind"; done
( cd "$BUILD/cuda/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS="$JOBS" \
    nice -n 19 python3 setup.py build_ext --inplace > "$BUILD/cuda/build.log" 2>&1; echo $? > "$BUILD/cuda/rc" ) &
( cd "$BUILD/cpu/mmcv-2.1.0" && CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 MAX_JOBS="$JOBS" \
    python3 setup.py build_ext --inplace > "$BUILD/cpu/build.log" 2>&1; echo $? > "$BUILD/cpu/rc" )
[ "$(cat "$BUILD/cpu/rc")" = 0 ] || die "mmcv's CPU-op build failed: $BUILD/cpu/build.log"
log "mmcv with CPU ops built; the CUDA-op build goes on in the background ($BUILD/cuda/build.log)"
BENCH=(python3 "$REPO/tools/analysis_tools/bench_gpu.py" --no-reexec --work-dir "$WORK_DIR"
       --report-dir "$REPORT_DIR")
PYTHONPATH="$SITE:$BUILD/cpu/mmcv-2.1.0:$REPO" "${BENCH[@]}" --steps modules \
    || die "the module table failed"
while [ ! -f "$BUILD/cuda/rc" ]; do sleep 5; done
[ "$(cat "$BUILD/cuda/rc")" = 0 ] || die "mmcv's CUDA-op build failed: $BUILD/cuda/build.log"
log "mmcv with CUDA ops built"
export PYTHONPATH="$SITE:$BUILD/cuda/mmcv-2.1.0:$REPO"
python3 -c "import torch; from mmcv.ops import nms; b = torch.rand(50, 4, device='cuda') * 50; b[:, 2:] += b[:, :2]; nms(b, torch.rand(50, device='cuda'), 0.5)" \
    || die "mmcv's CUDA nms does not run"
for step in peers cost amp; do
    [ "$(left)" -gt 60 ] || { log "BUDGET_S spent: $step not started"; continue; }
    "${BENCH[@]}" --steps "$step" --budget-s "$(( $(left) - 30 ))" || die "the $step step failed"
done
"${BENCH[@]}" --report-only
log "done"
