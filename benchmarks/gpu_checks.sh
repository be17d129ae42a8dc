#!/usr/bin/env bash
# The DD-Payne model's GPU measurements (issue "The DD-Payne model"), prepared to run as ONE call on a
# lent GPU machine, which has torch but no astropy and no internet.
#
# Here, once (the wheels of what the GPU machine lacks, for its Python 3.12):
#     bash benchmarks/gpu_checks.sh --fetch-wheels
# Then one device call, in the repository root, with carry [".whl"] and timeout_s 480 (the results land
# in $OUT there, default ./gpu-out; the script exits non-zero if a step failed):
#     bash benchmarks/gpu_checks.sh            # at most ~7 min
#     QUICK=1 DEVICE=cpu bash benchmarks/gpu_checks.sh   # a smoke run of the same commands on a CPU
#
# What it runs, each under its own timeout so that one slow part cannot eat the others' time:
#   1. benchmarks/bench_training.py: one epoch over 3627 stars x 7781 pixels against a naive per-pixel
#      torch.nn loop (target: >= 50x), FLOP rate vs a dense matmul, host and GPU memory per epoch;
#   2. benchmarks/science_training.py, gradient fidelity: the paper-like 40-neuron model on the whole
#      committed mock library, per-label rho between model and physical gradient spectra, with as many
#      of 2000 epochs as fit in 200 s (timed on the machine first).
# The tree sent must be under the device tool's 64 MiB. The synthesis results alone are more, and the
# rest of the tracked tree is ~75 MB with the 3989-star library (47 MB) and the gradient product (13 MB),
# which the call needs. So, with no synthesis runner working (flock -n work-synth/runner.lock true
# succeeds when none runs):
#     bash benchmarks/gpu_checks.sh --aside     # moves what the call does not read to /tmp/ddpayne-aside
#     ... the device call ...
#     bash benchmarks/gpu_checks.sh --restore   # puts it back
set -u -o pipefail
cd "$(dirname "$0")/.."
# What the training benchmarks import beyond torch/numpy/scipy/pluggy/tqdm/psutil/matplotlib/pyyaml (there):
WHEELS="astropy==8.0.2 pyerfa==2.0.1.5 astropy-iers-data==0.2026.11.2.0.34.55"
if [ "${1:-}" = "--fetch-wheels" ]; then
    mkdir -p .whl
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
    for w in $WHEELS; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$w" \
            || echo "could not fetch $w" >&2
    done
    du -sh .whl
    exit 0
fi

# what the GPU call does not read: synthesis results and plan, test and example data, the solar spectra
ASIDE_PATHS="work-synth/results work-synth/plan.json tests/data examples/ddpayne-boss/ddpayne_boss/data ddpayne/data/sun"
ASIDE_DIR=/tmp/ddpayne-aside
move_paths() {   # move_paths FROM_ROOT TO_ROOT HINT: each of ASIDE_PATHS under FROM_ROOT to TO_ROOT
    local from=$1 to=$2 hint=$3 p
    for p in $ASIDE_PATHS; do
        [ -e "$from/$p" ] || continue
        [ -e "$to/$p" ] && { echo "$to/$p exists already: $hint" >&2; exit 1; }
        mkdir -p "$to/$(dirname "$p")" && mv "$from/$p" "$to/$p" || exit 1
    done
}
if [ "${1:-}" = "--aside" ]; then
    move_paths . "$ASIDE_DIR" "run --restore first"
    echo "tree now: $(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null \
        | tail -1 | cut -f1) bytes (limit 67108864)"
    exit 0
fi
if [ "${1:-}" = "--restore" ]; then
    move_paths "$ASIDE_DIR" . "not overwriting"
    git status --short | head
    exit 0
fi

OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if ! python3 -c "import astropy" 2>/dev/null; then
    [ -d .whl ] || { echo "astropy is missing and there is no .whl/: run --fetch-wheels here and carry .whl" >&2; exit 1; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    python3 -c "import astropy.table" || exit 1
fi
if ! python3 -c "import ddpayne_mlp" 2>/dev/null; then   # registers the plugins' entry points
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch, ddpayne; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ddpayne', ddpayne.__version__)"
} | tee "$OUT/machine.txt"

failed=0
step() {   # step NAME SECONDS CMD...: run with a timeout, keep its output, remember a failure
    local name=$1 secs=$2; shift 2
    timeout "$secs" "$@" 2>&1 | grep --line-buffered -v "training:" | tee "$OUT/$name.txt"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "step $name failed (rc $rc)" | tee -a "$OUT/machine.txt"; failed=1; }
}
if [ -n "${QUICK:-}" ]; then
    step bench_training 300 python3 benchmarks/bench_training.py --device "$DEVICE" --quick --epochs 2 \
        --naive-pixels 5 --skip-regularizer
    step science 300 python3 benchmarks/science_training.py --device "$DEVICE" --skip-small --epochs 2 \
        --n-train 100 --hidden 5 --out "$OUT/science"
else
    # at most ~7 min of the call: ~30 s of setup + 150 s + 240 s (the probe and the budgeted training)
    step bench_training 150 python3 benchmarks/bench_training.py --device "$DEVICE" --epochs 5 \
        --naive-pixels 300 --analytic
    step science 240 python3 benchmarks/science_training.py --device "$DEVICE" --skip-small --epochs 2000 \
        --time-budget 200 --holdout-refs 6 --out "$OUT/science"
fi
rm -rf "$OUT/science"/*-ckpt "$OUT/science"/*.pt   # $OUT returns at most 8 files of 16 MB
exit $failed
