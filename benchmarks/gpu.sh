#!/usr/bin/env bash
# The GPU check, one command (at most ~8 minutes on one H100/H200-class GPU; no internet,
# no model download): CADFT against TRL's DFT on a from-scratch ~100M model in bf16 (step
# time, ratio, tokens/s, peak memory), one rewriting round (transformers generation), and
# the score-throughput benchmark (score_rows against the naive loop: the 3x target).
#
#   bash benchmarks/gpu.sh                      # on the GPU machine, from the repository root
#   CADFT_GPU_SMOKE=1 bash benchmarks/gpu.sh    # dry run of every step on the CPU, tiny sizes
#
# Needs the project installed (make install TORCH_SPEC=torch on a GPU machine). Extra
# arguments go to benchmarks/gpu_run.py (e.g. --json gpu.json, --rounds 300).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
export TOKENIZERS_PARALLELISM=false
if [ "${CADFT_GPU_SMOKE:-0}" != "0" ]; then
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
exec "$PYTHON" benchmarks/gpu_run.py "$@"
