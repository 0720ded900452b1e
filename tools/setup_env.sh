#!/usr/bin/env bash
# Create (or update) mmctx's Python environment. Idempotent: a second run
# with nothing changed finds its stamp and returns in about a second.
#
#   bash tools/setup_env.sh            # -> .venv in the repository root
#
# Environment variables:
#   MMCTX_VENV         where the venv lives        (default: <repo>/.venv)
#   MMCTX_PYTHON       interpreter for a new venv  (default: python3.11)
#   MMCTX_WHEEL_CACHE  cache of the mmcv wheel     (default: ~/.cache/mmctx/wheels)
#   MMCTX_FORCE_SETUP  =1: ignore the stamp and re-run every step
#
# Steps (see shared/ENVIRONMENT.md for the measured recipe):
#   1. venv; torch 2.13.0 (CPU); setuptools<70 + wheel + numpy (mmcv's
#      setup.py imports pkg_resources, gone from setuptools >= 70);
#   2. mmcv 2.1.0 with its compiled ops from the wheel cache - built there
#      from the PyPI source release when missing (~20 min on 2 cores, once
#      per machine; PyPI has no mmcv 2.1.0 wheel for this torch);
#   3. mmengine / mmdet / mmseg and the rest of requirements.txt, the test
#      tools of requirements-test.txt (pytest, onnx + onnxruntime for the
#      export tests), panopticapi
#      (PyPI: panopticapi-lite; mmdet's panoptic loading and metric import
#      it), and mmctx itself in editable mode.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMCTX_VENV:-$REPO/.venv}"
PYTHON="${MMCTX_PYTHON:-python3.11}"
WHEEL_CACHE="${MMCTX_WHEEL_CACHE:-$HOME/.cache/mmctx/wheels}"
TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmctx-setup-stamp"

log() { echo "[setup_env] $*" >&2; }

# What the environment is made from: a change to any of these re-runs setup.
fingerprint() {
    cat "$REPO/requirements.txt" "$REPO/requirements-test.txt" "$REPO/setup.py" \
        "$REPO/tools/setup_env.sh"
    echo "$TORCH_VERSION $MMCV_VERSION $VENV"
}
FINGERPRINT="$(fingerprint | sha256sum | cut -d' ' -f1)"

if [ "${MMCTX_FORCE_SETUP:-0}" != 1 ] && [ -f "$STAMP" ] \
        && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] && [ -x "$VENV/bin/python" ]; then
    log "environment up to date: $VENV"
    exit 0
fi

mkdir -p "$(dirname "$VENV")"
# One setup at a time per venv (make demo and make test may start together).
LOCK="${TMPDIR:-/tmp}/mmctx-setup-$(echo "$VENV" | sha256sum | cut -c1-16).lock"
exec 9>"$LOCK"
flock 9
# Another run may have finished while we waited.
if [ "${MMCTX_FORCE_SETUP:-0}" != 1 ] && [ -f "$STAMP" ] \
        && [ "$(cat "$STAMP")" = "$FINGERPRINT" ]; then
    log "environment up to date: $VENV"
    exit 0
fi

START=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || { log "no $PYTHON found (set MMCTX_PYTHON)"; exit 1; }
    log "creating venv $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

log "torch $TORCH_VERSION and build tools"
"${PIP[@]}" install -q "torch==$TORCH_VERSION"
# pip notes that torch asks for setuptools >= 77: harmless at run time, and
# mmcv's setup.py needs pkg_resources (setuptools < 70).
"${PIP[@]}" install -q "setuptools<70" wheel numpy

mmcv_wheel() {
    ls "$WHEEL_CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1
}
if [ -z "$(mmcv_wheel)" ]; then
    log "no mmcv $MMCV_VERSION wheel in $WHEEL_CACHE: building it with its ops (~20 min on 2 cores)"
    mkdir -p "$WHEEL_CACHE"
    BUILD="$(mktemp -d "${TMPDIR:-/tmp}/mmcv-build.XXXXXX")"
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$BUILD"
    tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
    MAX_JOBS="${MAX_JOBS:-2}" MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" \
        "${PIP[@]}" wheel --no-build-isolation --no-deps \
        "$BUILD/mmcv-$MMCV_VERSION" -w "$BUILD/wheel"
    # move in only a complete wheel, so an interrupted build leaves no cache
    mv "$BUILD"/wheel/mmcv-"$MMCV_VERSION"-*.whl "$WHEEL_CACHE"/
    rm -rf "$BUILD"
fi
log "mmcv from $(mmcv_wheel)"
"${PIP[@]}" install -q --no-deps "$(mmcv_wheel)"

log "OpenMMLab packages, requirements and test tools"
# mmcv's own runtime dependencies come with mmengine / mmdet (addict, yapf,
# opencv, ...); requirements.txt pins the rest.
# torch stays pinned: the resolver must not swap the torch mmcv was built
# against (its compiled ops would fail to load).
"${PIP[@]}" install -q "torch==$TORCH_VERSION" "mmengine==0.10.7" "mmdet==3.3.0" \
    "mmsegmentation==1.2.2" pycocotools ftfy regex -r "$REPO/requirements.txt" \
    -r "$REPO/requirements-test.txt" "panopticapi-lite==0.2.0"
# That resolution upgrades setuptools for torch (>= 77), but mmengine imports
# pkg_resources at run time (is_installed): back to < 70, on its own so that
# pip only warns about torch's wish.
"${PIP[@]}" install -q "setuptools<70"
log "mmctx (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$REPO"

"$PY" - <<'EOF'
import pkg_resources  # noqa: F401  (mmengine needs it at run time)
import mmcv.ops  # noqa: F401  (the compiled ops mmdet needs)
import mmdet, mmseg, mmctx  # noqa: F401,E401
print(f'[setup_env] ok: mmcv {mmcv.__version__} mmdet {mmdet.__version__} '
      f'mmseg {mmseg.__version__} mmctx {mmctx.__version__}')
EOF
echo "$FINGERPRINT" > "$STAMP"
log "done in $((SECONDS - START)) s"
