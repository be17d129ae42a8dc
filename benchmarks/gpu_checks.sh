#!/usr/bin/env bash
# The DD-Payne model's GPU measurements (issue "The DD-Payne model"), prepared to run as ONE call on a
# lent GPU machine, which has torch but no astropy and no internet.
#
# Here, once (the wheels of what the GPU machine lacks, for its Python 3.12):
#     bash benchmarks/gpu_checks.sh --fetch-wheels
# Then, on the GPU machine, in the repository root (the results land in $OUT, default ./gpu-out):
#     bash benchmarks/gpu_checks.sh            # at most ~9 min (run with timeout_s=600)
#     QUICK=1 DEVICE=cpu bash benchmarks/gpu_checks.sh   # a smoke run of the same commands on a CPU
#
# What it runs, each under its own timeout so that one slow part cannot eat the others' time:
#   1. benchmarks/bench_training.py: one epoch over 3627 stars x 7781 pixels against a naive per-pixel
#      torch.nn loop (target: >= 50x), FLOP rate vs a dense matmul, host and GPU memory per epoch;
#   2. benchmarks/science_training.py, gradient fidelity: the paper-like 40-neuron model on the whole
#      committed mock library, per-label rho between model and physical gradient spectra.
# The tree sent must be under the device tool's 64 MiB, and the synthesis results alone are more: move
# them aside for the call (mv work-synth/results /tmp/results-aside) and back after it.
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

OUT=${OUT:-gpu-out}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ] && ! python3 -c "import astropy" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import ddpayne_mlp" 2>/dev/null; then   # registers the plugins' entry points
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch, ddpayne; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ddpayne', ddpayne.__version__)"
} | tee "$OUT/machine.txt"

if [ -n "${QUICK:-}" ]; then
    timeout 300 python3 benchmarks/bench_training.py --device "$DEVICE" --quick --epochs 2 --naive-pixels 5 \
        --skip-regularizer 2>&1 | tee "$OUT/bench_training.txt"
    timeout 300 python3 benchmarks/science_training.py --device "$DEVICE" --skip-small --epochs 2 \
        --n-train 100 --hidden 5 --out "$OUT/science" 2>&1 | grep -v "training:" | tee "$OUT/science.txt"
    exit 0
fi
# at most 10 min per device call: ~30 s of setup + 180 s + 330 s
timeout 180 python3 benchmarks/bench_training.py --device "$DEVICE" --epochs 5 --naive-pixels 300 --analytic \
    2>&1 | tee "$OUT/bench_training.txt"
timeout 330 python3 benchmarks/science_training.py --device "$DEVICE" --skip-small --epochs 2000 \
    --out "$OUT/science" 2>&1 | grep -v "training:" | tee "$OUT/science.txt"
rm -rf "$OUT/science"/*-ckpt "$OUT/science"/*.pt   # $OUT returns at most 8 files of 16 MB
