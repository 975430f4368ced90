#!/usr/bin/env bash
# The GPU benchmark suite (benchmarks/gpu_suite.py): Mask R-CNN and DeepFill inference, both
# training steps, end-to-end photos/s and torchvision's Mask R-CNN as the peer, on JAX, in one
# table (printed and written to outputs/benchmarks/gpu_suite[_smoke].md, or to --out FILE). About
# 8 minutes on one H200.
#   bash benchmarks/run_all.sh            # GPU machine
#   bash benchmarks/run_all.sh --smoke    # CPU smoke run (tiny sizes), as the test suite does
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
# one section per process; let each grow its GPU memory instead of taking 75 % up front
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec python3 benchmarks/gpu_suite.py "$@"
