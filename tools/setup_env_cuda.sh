#!/usr/bin/env bash
# mmctx's Python environment on a machine with an NVIDIA GPU: a CUDA torch and
# mmcv 2.1.0 built with its CUDA ops. The sibling of tools/setup_env.sh (the
# CPU environment of our development machines), kept apart so that each has
# its own venv and its own fingerprint.
#
#   bash tools/setup_env_cuda.sh           # -> .venv-cuda in the repository root
#   bash tools/setup_env_cuda.sh --plan    # print what it would do; change nothing
#
# Steps (each prints its time):
#   1. gpu     compute capabilities (nvidia-smi --query-gpu=compute_cap) give
#              TORCH_CUDA_ARCH_LIST (e.g. "9.0" on an H100);
#   2. torch   reuse a CUDA torch that mmcv 2.1.0 compiles against (torch >= 2.0
#              with CUDA 11-13 whose CUDA version the driver runs), found in
#              the venv or in $MMCTX_PYTHON / python3 (the venv, made from that
#              interpreter, then sees its site-packages through a .pth file: this
#              works for a system, conda or venv interpreter alike, where
#              --system-site-packages would miss a venv's); else install $MMCTX_TORCH_SPEC
#              (PyPI's Linux torch wheels are CUDA builds);
#   3. nvcc    an nvcc of torch's CUDA major version that compiles a test
#              kernel: $CUDA_HOME, PATH, /usr/local/cuda*; else (CUDA >= 13) PyPI's
#              CUDA packages (nvidia-cuda-nvcc, -crt, nvidia-nvvm, -runtime,
#              -cccl) merged into one CUDA_HOME under the wheel cache; else
#              Debian's nvidia-cuda-toolkit;
#   4. mmcv    the mmcv 2.1.0 wheel from the cache, keyed by Python, torch,
#              CUDA and arch list; built there when missing with FORCE_CUDA=1,
#              MMCV_WITH_OPS=1, MAX_JOBS = cores, ninja;
#   5. stack   mmengine / mmdet / mmseg, requirements.txt and mmctx (editable),
#              torch pinned to the one mmcv was built against;
#   6. check   mmcv's CUDA ops (nms, roi_align) run on the GPU.
# A second run with nothing changed finds its stamp and returns at once; with
# the wheel cached a fresh venv takes only the pip installs.
#
# Environment variables:
#   MMCTX_CUDA_VENV    the venv                          (default: <repo>/.venv-cuda)
#   MMCTX_PYTHON       interpreter probed for a CUDA torch and used for a new venv
#                      (default: python3.11 if present, else python3)
#   MMCTX_TORCH_SPEC   torch to install when none is reusable (default: torch==2.13.0)
#   MMCTX_WHEEL_CACHE  wheel cache; CUDA builds go to its cuda/ folder
#                                                        (default: ~/.cache/mmctx/wheels)
#   MMCTX_CUDA_ARCH    arch list to build for, e.g. "8.0;9.0" (default: the GPUs')
#   MMCTX_FORCE_SETUP  =1: ignore the stamp and re-run every step (the wheel cache stays)
#   MAX_JOBS           parallel compile jobs            (default: nproc)
# For --plan on a machine without a GPU (what the tests do):
#   MMCTX_FAKE_COMPUTE_CAP  lines nvidia-smi would print for compute_cap (e.g. "9.0")
#   MMCTX_FAKE_TORCH        "<torch version> <CUDA version or none>" of the probed torch
#   MMCTX_FAKE_NVCC         "<nvcc path> <release>" of an installed nvcc, or "none"
#   MMCTX_FAKE_DRIVER_CUDA  the CUDA version the driver supports (nvidia-smi's header)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMCTX_CUDA_VENV:-$REPO/.venv-cuda}"
if [ -n "${MMCTX_PYTHON:-}" ]; then
    PYTHON="$MMCTX_PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
    PYTHON=python3.11
else
    PYTHON=python3
fi
TORCH_SPEC="${MMCTX_TORCH_SPEC:-torch==2.13.0}"
WHEEL_CACHE="${MMCTX_WHEEL_CACHE:-$HOME/.cache/mmctx/wheels}"
MMCV_VERSION=2.1.0
STAMP="$VENV/.mmctx-cuda-setup-stamp"
JOBS="${MAX_JOBS:-$(nproc 2>/dev/null || echo 4)}"

PLAN=0
for arg in "$@"; do
    case "$arg" in
        --plan) PLAN=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "[setup_env_cuda] unknown argument: $arg (use --plan or --help)" >&2; exit 2 ;;
    esac
done

log() { echo "[setup_env_cuda] $*" >&2; }
die() { echo "[setup_env_cuda] error: $*" >&2; exit 1; }
plan() { echo "[setup_env_cuda] plan: $*"; }

STEP_NAME=""
STEP_START=$SECONDS
TOTAL_START=$SECONDS
step() {  # step NAME: close the previous step (its time) and open the next
    if [ -n "$STEP_NAME" ]; then
        log "step $STEP_NAME done in $((SECONDS - STEP_START)) s"
    fi
    STEP_NAME="$1"
    STEP_START=$SECONDS
    [ -n "$1" ] && log "step $1 ..."
    return 0
}

# ---------------------------------------------------------------- helpers
# "12.8" -> 12 / 8
cuda_major() { echo "${1%%.*}"; }
cuda_minor() { echo "$1" | cut -d. -f2; }

# version_ge A B: A >= B for dotted versions (local labels like +cu128 ignored)
version_ge() {
    local a="${1%%+*}" b="${2%%+*}"
    [ "$(printf '%s\n%s\n' "$a" "$b" | sort -V | head -n 1)" = "$b" ]
}

# TORCH_CUDA_ARCH_LIST from nvidia-smi's compute_cap lines: unique, sorted, ';'-joined
arch_list_from_caps() {
    local caps
    caps="$(tr -d ' \r' | grep -v '^$' | sort -u -V | tr '\n' ';')"
    caps="${caps%;}"
    [ -n "$caps" ] || return 1
    local cap
    IFS=';' read -ra parts <<<"$caps"
    for cap in "${parts[@]}"; do
        [[ "$cap" =~ ^[0-9]+\.[0-9]+$ ]] || { echo "bad compute capability '$cap'" >&2; return 1; }
    done
    echo "$caps"
}

# The PyPI packages that make a CUDA toolkit for building extensions (nvcc,
# its C runtime headers and NVVM, the runtime headers and libcudart, CCCL's
# thrust / cub / libcu++), for CUDA version $1 ("13.0"). Only from CUDA 13 on:
# the CUDA 11 / 12 package nvidia-cuda-nvcc-cu12 holds ptxas alone, no nvcc
# (checked for 12.1, 12.4, 12.6, 12.8, 12.9). Measured without a GPU: the
# CUDA 13.0 set, merged by merge_toolkit with the headers of PyPI's torch
# 2.13.0 (CUDA 13.0) wheel's nvidia-* packages, compiles and links seven of
# mmcv 2.1.0's CUDA ops (nms, roi_align, focal_loss, ms_deform_attn, carafe,
# sync_bn, deform_conv) and cudabind.cpp for sm_90 through torch's
# CUDAExtension (8 min on one core).
cuda_pip_packages() {
    local major minor ver
    major="$(cuda_major "$1")"
    minor="$(cuda_minor "$1")"
    ver="$major.$minor.*"
    case "$major" in
        13|14)
            echo "nvidia-cuda-nvcc==$ver nvidia-cuda-crt==$ver nvidia-nvvm==$ver" \
                 "nvidia-cuda-runtime==$ver nvidia-cuda-cccl==$ver" ;;
        *) return 1 ;;
    esac
}

# "<torch version> <CUDA version or none> <python major.minor>" of interpreter $1;
# the version is the installed distribution's, so that pip can pin it
probe_torch() {
    if [ -n "${MMCTX_FAKE_TORCH:-}" ]; then
        echo "$MMCTX_FAKE_TORCH 3.11"
        return 0
    fi
    "$1" - <<'EOF' 2>/dev/null || true
import sys
try:
    import torch
except Exception:
    sys.exit(0)
from importlib.metadata import version  # the distribution's version, what pip pins
# (PyPI's CUDA wheels say 2.13.0 there and 2.13.0+cu130 in torch.__version__)
print(version('torch'), torch.version.cuda or 'none', '%d.%d' % sys.version_info[:2])
EOF
}

# Why the torch described by "$1" (probe_torch's line) cannot be reused, or nothing.
torch_unusable_reason() {
    local version cuda pyver
    read -r version cuda pyver <<<"$1"
    [ -n "$version" ] || { echo "no torch"; return; }
    [ "$cuda" != none ] || { echo "torch $version is a CPU build"; return; }
    version_ge "$version" 2.0 || { echo "torch $version < 2.0"; return; }
    case "$(cuda_major "$cuda")" in 11|12|13) ;; *) echo "CUDA $cuda unsupported"; return ;; esac
    if [ -n "$DRIVER_CUDA" ] && ! version_ge "$DRIVER_CUDA" "$(cuda_major "$cuda").0"; then
        echo "the driver supports CUDA $DRIVER_CUDA, torch needs CUDA $cuda"
        return
    fi
    version_ge "$pyver" 3.8 || { echo "Python $pyver < 3.8"; return; }
}

# release of an nvcc binary ("12.8")
nvcc_release() {
    "$1" --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1
}

# An installed nvcc whose CUDA major matches $1: prints "<path> <release>"
find_nvcc() {
    local want_major cand rel
    want_major="$(cuda_major "$1")"
    if [ -n "${MMCTX_FAKE_NVCC:-}" ]; then
        [ "$MMCTX_FAKE_NVCC" = none ] && return 1
        read -r cand rel <<<"$MMCTX_FAKE_NVCC"
        [ "$(cuda_major "$rel")" = "$want_major" ] && { echo "$cand $rel"; return 0; }
        return 1
    fi
    for cand in "${CUDA_HOME:-}/bin/nvcc" "$(command -v nvcc 2>/dev/null || true)" \
            "/usr/local/cuda-$1/bin/nvcc" /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
        [ -x "$cand" ] || continue
        rel="$(nvcc_release "$cand")"
        [ -n "$rel" ] && [ "$(cuda_major "$rel")" = "$want_major" ] && { echo "$cand $rel"; return 0; }
    done
    return 1
}

# Copy the include folders of the nvidia-* packages in site-packages $1 into
# $2, keeping files already there (cp -n's exit status differs between
# coreutils versions, hence the explicit test).
copy_headers() {
    local d f rel
    for d in "$1"/nvidia/*/include; do
        if [ -d "$d" ]; then
            while IFS= read -r -d '' f; do
                rel="${f#"$d"/}"
                if [ ! -e "$2/$rel" ]; then
                    mkdir -p "$(dirname "$2/$rel")"
                    cp -a "$f" "$2/$rel"
                fi
            done < <(find "$d" \( -type f -o -type l \) -print0)
        fi
    done
    return 0
}

# Merge the pip-installed CUDA packages under $1 (a --target dir) and the
# include folders of the nvidia-* packages torch brought along ($2: the
# venv's site-packages) into one CUDA_HOME ($3), the layout that
# torch.utils.cpp_extension expects: bin/nvcc, include/, lib64/libcudart.so.
merge_toolkit() {
    local target="$1" site="$2" out="$3" tmp="$3.tmp" d sub
    rm -rf "$tmp"
    mkdir -p "$tmp/include"
    for d in "$target"/nvidia/*/; do
        for sub in bin include lib lib64 nvvm; do
            if [ -d "$d$sub" ]; then
                mkdir -p "$tmp/$sub"
                cp -a "$d$sub/." "$tmp/$sub/"
            fi
        done
    done
    # cuBLAS / cuSPARSE / cuSOLVER / cuRAND headers (torch's CUDA headers include them)
    copy_headers "$site" "$tmp/include"
    if [ ! -x "$tmp/bin/nvcc" ]; then
        log "no bin/nvcc in the CUDA packages under $target"
        return 1
    fi
    [ -e "$tmp/lib64" ] || ln -s lib "$tmp/lib64"
    if [ ! -e "$tmp/lib64/libcudart.so" ]; then
        local so
        so="$(cd "$tmp/lib64" && ls libcudart.so.* 2>/dev/null | head -n 1)"
        if [ -z "$so" ]; then
            log "no libcudart.so.* in the CUDA runtime package under $target"
            return 1
        fi
        ln -s "$so" "$tmp/lib64/libcudart.so"
    fi
    rm -rf "$out"
    mv "$tmp" "$out"
}

# make_venv PYTHON DIR: Debian / Ubuntu split venv's
# ensurepip into python3-venv, often missing on GPU images: install it then.
make_venv() {
    local python="$1" dir="$2"
    shift 2
    if ! "$python" -m venv "$@" "$dir"; then
        rm -rf "$dir"
        command -v apt-get >/dev/null || die "$python -m venv failed and there is no apt-get"
        local ver
        ver="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
        log "$python -m venv failed: installing Debian's python$ver-venv"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$ver-venv" \
            || DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
        "$python" -m venv "$@" "$dir"
    fi
}

# nvcc_works CUDA_HOME ARCH_LIST: compile a small kernel for the first arch
# (catches a toolkit put together from packages that lacks a piece).
nvcc_works() {
    local home="$1" arch dir
    arch="$(echo "${2%%;*}" | tr -d '.')"
    dir="$(mktemp -d "${TMPDIR:-/tmp}/mmctx-nvcc.XXXXXX")"
    cat > "$dir/t.cu" <<'CU'
#include <cuda_runtime.h>
#include <cuda_fp16.h>
__global__ void add(float *x, __half y) { x[threadIdx.x] += __half2float(y); }
int main() { float *x; cudaMalloc(&x, 32 * sizeof(float)); add<<<1, 32>>>(x, __float2half(1.f)); return 0; }
CU
    if PATH="$home/bin:$PATH" "$home/bin/nvcc" -gencode "arch=compute_$arch,code=sm_$arch" \
            -I"$home/include" -L"$home/lib64" -o "$dir/t" "$dir/t.cu" >"$dir/log" 2>&1; then
        rm -rf "$dir"
        return 0
    fi
    log "nvcc of $home cannot compile a test kernel for sm_$arch:"
    tail -n 5 "$dir/log" >&2
    rm -rf "$dir"
    return 1
}

# ---------------------------------------------------------------- 1. gpu
step gpu
DRIVER_CUDA="${MMCTX_FAKE_DRIVER_CUDA:-}"
GPU_NAMES=""
if [ -n "${MMCTX_FAKE_COMPUTE_CAP:-}" ]; then
    CAPS="$MMCTX_FAKE_COMPUTE_CAP"
    GPU_NAMES="(fake)"
elif command -v nvidia-smi >/dev/null 2>&1; then
    CAPS="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null || true)"
    GPU_NAMES="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null \
        | sort -u | tr '\n' ';' || true)"
    [ -n "$DRIVER_CUDA" ] || DRIVER_CUDA="$(nvidia-smi 2>/dev/null \
        | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n 1)"
else
    CAPS=""
fi
if [ -n "${MMCTX_CUDA_ARCH:-}" ]; then
    ARCH_LIST="$(echo "$MMCTX_CUDA_ARCH" | tr ';, ' '\n\n\n' | arch_list_from_caps)" \
        || die "MMCTX_CUDA_ARCH='$MMCTX_CUDA_ARCH' is not a list of compute capabilities like 8.0;9.0"
elif [ -n "$CAPS" ]; then
    ARCH_LIST="$(echo "$CAPS" | arch_list_from_caps)" \
        || die "nvidia-smi --query-gpu=compute_cap printed '$CAPS', not compute capabilities"
else
    die "no NVIDIA GPU found (nvidia-smi missing, or too old for --query-gpu=compute_cap:" \
        "then set MMCTX_CUDA_ARCH, e.g. 8.0); to see the plan on a machine without a GPU:" \
        "MMCTX_FAKE_COMPUTE_CAP=9.0 bash tools/setup_env_cuda.sh --plan"
fi
log "GPU: ${GPU_NAMES:-unknown} compute capability $ARCH_LIST, driver CUDA ${DRIVER_CUDA:-unknown}"
[ "$PLAN" = 1 ] && plan "TORCH_CUDA_ARCH_LIST=$ARCH_LIST (driver CUDA ${DRIVER_CUDA:-unknown})"

# Stamp: what the environment is made from.
fingerprint() {
    cat "$REPO/requirements.txt" "$REPO/setup.py" "$REPO/tools/setup_env_cuda.sh"
    echo "$TORCH_SPEC $MMCV_VERSION $VENV $ARCH_LIST"
}
FINGERPRINT="$(fingerprint | sha256sum | cut -d' ' -f1)"
if [ "$PLAN" = 0 ] && [ "${MMCTX_FORCE_SETUP:-0}" != 1 ] && [ -f "$STAMP" ] \
        && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] && [ -x "$VENV/bin/python" ]; then
    log "environment up to date: $VENV"
    exit 0
fi
if [ "$PLAN" = 0 ]; then
    mkdir -p "$(dirname "$VENV")"
    LOCK="${TMPDIR:-/tmp}/mmctx-setup-cuda-$(echo "$VENV" | sha256sum | cut -c1-16).lock"
    exec 9>"$LOCK"
    flock 9
fi

# ---------------------------------------------------------------- 2. torch
step torch
REUSE=""        # interpreter whose CUDA torch is reused
TORCH_INFO=""
REUSE_SITE=0
CANDIDATES=()
[ -x "$VENV/bin/python" ] && CANDIDATES+=("$VENV/bin/python")
command -v "$PYTHON" >/dev/null 2>&1 && CANDIDATES+=("$(command -v "$PYTHON")")
command -v python3 >/dev/null 2>&1 && CANDIDATES+=("$(command -v python3)")
for cand in "${CANDIDATES[@]}"; do
    info="$(probe_torch "$cand")"
    reason="$(torch_unusable_reason "$info")"
    if [ -z "$reason" ]; then
        REUSE="$cand"
        TORCH_INFO="$info"
        break
    fi
    log "not reusing the torch of $cand: $reason"
done
if [ -n "$REUSE" ]; then
    read -r TORCH_VERSION TORCH_CUDA _ <<<"$TORCH_INFO"
    if [ "$REUSE" != "$VENV/bin/python" ]; then
        REUSE_SITE=1
        WHAT="venv $VENV from $REUSE, seeing its site-packages through a .pth (reusing its torch $TORCH_VERSION, CUDA $TORCH_CUDA)"
    else
        WHAT="reuse torch $TORCH_VERSION (CUDA $TORCH_CUDA) of $VENV"
    fi
else
    TORCH_VERSION=""
    TORCH_CUDA=""
    WHAT="venv $VENV from $PYTHON, pip install '$TORCH_SPEC' (PyPI's Linux wheel is a CUDA build)"
fi
if [ "$PLAN" = 1 ]; then
    plan "torch: $WHAT"
else
    log "$WHAT"
    if [ ! -x "$VENV/bin/python" ]; then
        if [ "$REUSE_SITE" = 1 ]; then
            make_venv "$REUSE" "$VENV"
            # the reused interpreter's site-packages, after the venv's own
            "$REUSE" -c 'import site, sysconfig
paths = [sysconfig.get_paths()[k] for k in ("purelib", "platlib")] + site.getsitepackages()
print("\n".join(dict.fromkeys(p for p in paths if p)))' \
                > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/mmctx-reused-torch.pth"
            read -r version _ <<<"$(probe_torch "$VENV/bin/python")"
            [ "$version" = "$TORCH_VERSION" ] || die "the venv does not see torch $TORCH_VERSION of $REUSE"
        else
            command -v "$PYTHON" >/dev/null || die "no $PYTHON found (set MMCTX_PYTHON)"
            make_venv "$PYTHON" "$VENV"
        fi
    fi
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
if [ "$PLAN" = 0 ] && [ -z "$REUSE" ]; then
    "${PIP[@]}" install -q "$TORCH_SPEC"
    read -r TORCH_VERSION TORCH_CUDA _ <<<"$(probe_torch "$PY")"
    [ -n "$TORCH_VERSION" ] || die "torch did not install into $VENV ('$TORCH_SPEC')"
    reason="$(torch_unusable_reason "$TORCH_VERSION $TORCH_CUDA 3.11")"
    [ -z "$reason" ] || die "the installed torch cannot be used: $reason; set MMCTX_TORCH_SPEC" \
        "(e.g. an older torch==X.Y.Z whose CUDA the driver supports) or pip's index"
fi
if [ "$PLAN" = 0 ]; then
    "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
        || die "torch $TORCH_VERSION (CUDA $TORCH_CUDA) sees no GPU: check the driver (CUDA ${DRIVER_CUDA:-unknown})"
    log "torch $TORCH_VERSION, CUDA $TORCH_CUDA"
fi

# ---------------------------------------------------------------- 3. nvcc
step nvcc
TOOLKITS="$WHEEL_CACHE/cuda/toolkits"
if [ -z "$TORCH_CUDA" ]; then
    # plan only: the CUDA version is known once torch is installed
    plan "nvcc: an installed nvcc of torch's CUDA major version, else" \
        "PyPI's CUDA >= 13 packages (nvidia-cuda-nvcc, -crt, -nvvm, -runtime, -cccl) of torch's CUDA version" \
        "merged into $TOOLKITS/cuda-<version>," \
        "else Debian's nvidia-cuda-toolkit"
    NVCC_HOME=""
elif [ "$PLAN" = 1 ]; then
    if found="$(find_nvcc "$TORCH_CUDA")"; then
        read -r NVCC_PATH NVCC_REL <<<"$found"
        NVCC_HOME="$(dirname "$(dirname "$NVCC_PATH")")"
        plan "nvcc: use $NVCC_PATH (release $NVCC_REL), CUDA_HOME=$NVCC_HOME"
    else
        NVCC_HOME="$TOOLKITS/cuda-$TORCH_CUDA"
        if ! PKGS="$(cuda_pip_packages "$TORCH_CUDA")"; then
            NVCC_HOME=""
            plan "nvcc: none installed for CUDA $TORCH_CUDA and PyPI has no nvcc before CUDA 13:" \
                "apt-get install nvidia-cuda-toolkit (used if its major is $(cuda_major "$TORCH_CUDA"));" \
                "else install CUDA toolkit $TORCH_CUDA yourself and set CUDA_HOME"
        elif [ -x "$NVCC_HOME/bin/nvcc" ]; then
            plan "nvcc: cached toolkit $NVCC_HOME"
        else
            plan "nvcc: pip install --target $TOOLKITS/pkgs-$TORCH_CUDA $PKGS;" \
                "merged into CUDA_HOME=$NVCC_HOME (fallback: apt-get install nvidia-cuda-toolkit)"
        fi
    fi
else
    command -v g++ >/dev/null || {
        log "no g++: installing Debian's build-essential"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q build-essential
    }
    NVCC_HOME=""
    # 1. an installed toolkit
    if found="$(find_nvcc "$TORCH_CUDA")"; then
        home="$(dirname "$(dirname "${found%% *}")")"
        nvcc_works "$home" "$ARCH_LIST" && NVCC_HOME="$home"
    fi
    # 2. PyPI's CUDA packages, merged into one CUDA_HOME (kept in the cache)
    if [ -z "$NVCC_HOME" ] && PKGS="$(cuda_pip_packages "$TORCH_CUDA")"; then
        home="$TOOLKITS/cuda-$TORCH_CUDA"
        if [ ! -x "$home/bin/nvcc" ]; then
            log "no usable nvcc for CUDA $TORCH_CUDA: PyPI packages $PKGS"
            mkdir -p "$TOOLKITS"
            target="$TOOLKITS/pkgs-$TORCH_CUDA"
            rm -rf "$target"
            major="$(cuda_major "$TORCH_CUDA")"
            # shellcheck disable=SC2086
            if "${PIP[@]}" install -q --no-deps --target "$target" $PKGS \
                    || { log "retrying with any CUDA $major.x release of the packages";
                         rm -rf "$target";
                         "${PIP[@]}" install -q --no-deps --target "$target" \
                             $(echo "$PKGS" | sed "s/==$major\.[0-9]*\.\*/==$major.*/g"); }; then
                SITES=("$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")
                if [ "$REUSE_SITE" = 1 ]; then
                    SITES+=("$("$REUSE" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')")
                fi
                if merge_toolkit "$target" "${SITES[0]}" "$home"; then
                    for extra in "${SITES[@]:1}"; do
                        copy_headers "$extra" "$home/include"
                    done
                fi
            fi
        fi
        [ -x "$home/bin/nvcc" ] && nvcc_works "$home" "$ARCH_LIST" && NVCC_HOME="$home"
    fi
    # 3. Debian's toolkit
    if [ -z "$NVCC_HOME" ] && command -v apt-get >/dev/null; then
        log "trying Debian's nvidia-cuda-toolkit"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nvidia-cuda-toolkit \
            || log "apt-get could not install nvidia-cuda-toolkit"
        if found="$(find_nvcc "$TORCH_CUDA")"; then
            home="$(dirname "$(dirname "${found%% *}")")"
            nvcc_works "$home" "$ARCH_LIST" && NVCC_HOME="$home"
        else
            log "Debian's nvcc ($(nvcc_release "$(command -v nvcc || echo nvcc)")) is not CUDA $TORCH_CUDA's major"
        fi
    fi
    [ -n "$NVCC_HOME" ] || die "no nvcc for CUDA $TORCH_CUDA could be found or installed (see above);" \
        "install CUDA toolkit $TORCH_CUDA and set CUDA_HOME, or pick another torch (MMCTX_TORCH_SPEC)"
    NVCC_REL="$(nvcc_release "$NVCC_HOME/bin/nvcc")"
    log "nvcc $NVCC_REL, CUDA_HOME=$NVCC_HOME"
fi

# ---------------------------------------------------------------- 4. mmcv
step mmcv
PYVER="$(if [ -x "$PY" ]; then "$PY" -c 'import sys; print("%d%d" % sys.version_info[:2])'; else echo 311; fi)"
KEY="py$PYVER-torch${TORCH_VERSION:-<torch>}-cu${TORCH_CUDA:-<cuda>}-sm$(echo "$ARCH_LIST" | tr -d '.' | tr ';' '_')"
MMCV_CACHE="$WHEEL_CACHE/cuda/$KEY"
mmcv_wheel() {
    ls "$MMCV_CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1
}
if [ "$PLAN" = 1 ]; then
    if [ -n "$(mmcv_wheel)" ]; then
        plan "mmcv: cached wheel $(mmcv_wheel)"
    else
        plan "mmcv: build mmcv $MMCV_VERSION wheel into $MMCV_CACHE with FORCE_CUDA=1 MMCV_WITH_OPS=1" \
            "MAX_JOBS=$JOBS TORCH_CUDA_ARCH_LIST=$ARCH_LIST CUDA_HOME=${NVCC_HOME:-<nvcc>}"
    fi
else
    "${PIP[@]}" install -q "setuptools<70" wheel numpy ninja
    if [ -z "$(mmcv_wheel)" ]; then
        log "building mmcv $MMCV_VERSION with CUDA ops for $ARCH_LIST ($JOBS jobs) into $MMCV_CACHE"
        mkdir -p "$MMCV_CACHE"
        BUILD="$(mktemp -d "${TMPDIR:-/tmp}/mmcv-cuda-build.XXXXXX")"
        "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation \
            "mmcv==$MMCV_VERSION" -d "$BUILD"
        tar -xzf "$BUILD/mmcv-$MMCV_VERSION.tar.gz" -C "$BUILD"
        PATH="$VENV/bin:$NVCC_HOME/bin:$PATH" CUDA_HOME="$NVCC_HOME" \
            MAX_JOBS="$JOBS" MMCV_WITH_OPS=1 FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH_LIST" \
            "${PIP[@]}" wheel --no-build-isolation --no-deps \
            "$BUILD/mmcv-$MMCV_VERSION" -w "$BUILD/wheel"
        # move in only a complete wheel, so an interrupted build leaves no cache
        mv "$BUILD"/wheel/mmcv-"$MMCV_VERSION"-*.whl "$MMCV_CACHE"/
        rm -rf "$BUILD"
    fi
    log "mmcv from $(mmcv_wheel)"
    "${PIP[@]}" install -q --no-deps --force-reinstall "$(mmcv_wheel)"
fi

# ---------------------------------------------------------------- 5. stack
step stack
STACK=("torch==${TORCH_VERSION:-<torch>}" "mmengine==0.10.7" "mmdet==3.3.0" "mmsegmentation==1.2.2"
       pycocotools ftfy regex -r "$REPO/requirements.txt" "pytest>=7" "panopticapi-lite==0.2.0")
if [ "$PLAN" = 1 ]; then
    plan "stack: pip install ${STACK[*]}; setuptools<70; pip install -e $REPO"
else
    # torch pinned: the resolver must not swap the torch mmcv was built against
    "${PIP[@]}" install -q "${STACK[@]}"
    "${PIP[@]}" install -q "setuptools<70"
    "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$REPO"
fi

# ---------------------------------------------------------------- 6. check
step check
if [ "$PLAN" = 1 ]; then
    plan "check: import mmcv.ops, mmdet, mmseg, mmctx; nms and roi_align on cuda"
    plan "stamp: $STAMP"
    step ""
    exit 0
fi
# opencv (mmcv imports it) needs libGL / glib, missing from slim GPU images
if "$PY" -c 'import cv2' 2>&1 | grep -q -E 'libGL|libgthread|libglib'; then
    log "opencv lacks system libraries: installing Debian's libgl1 libglib2.0-0"
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libgl1 libglib2.0-0
fi
"$PY" - <<'EOF'
import pkg_resources  # noqa: F401  (mmengine needs it at run time)
import torch
import mmcv
from mmcv.ops import nms, roi_align
import mmdet, mmseg, mmctx  # noqa: F401,E401
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [50., 50., 60., 60.]], device='cuda')
scores = torch.tensor([0.9, 0.8, 0.7], device='cuda')
_, keep = nms(boxes, scores, 0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.arange(64., device='cuda').view(1, 1, 8, 8)
out = roi_align(feat, torch.tensor([[0., 0., 0., 4., 4.]], device='cuda'), (2, 2), 1.0, 2, 'avg', True)
assert out.is_cuda and torch.isfinite(out).all()
print(f'[setup_env_cuda] ok: {torch.cuda.get_device_name()} torch {torch.__version__} '
      f'CUDA {torch.version.cuda} mmcv {mmcv.__version__} (CUDA ops) mmdet {mmdet.__version__} '
      f'mmseg {mmseg.__version__} mmctx {mmctx.__version__}')
EOF
echo "$FINGERPRINT" > "$STAMP"
step ""
log "done in $((SECONDS - TOTAL_START)) s: $VENV"
