#!/usr/bin/env bash
# The GPU check, one command (about 6 minutes on one H100/H200-class GPU; no internet, no
# model download): the CUDA tests (tests/test_cuda.py), then benchmarks/gpu_run.py: CADFT
# against TRL's DFT on a model of Qwen2.5-1.5B's shape in bf16 at sequence 2048 (step time,
# tokens/s, peak memory, accumulation 1 and 4, with and without gradient checkpointing, and
# a profiled step), `cadft score` against the naive loop, one rewriting round of 64 prompts,
# and the sharded recipes.
#
#   bash benchmarks/gpu.sh                      # on the GPU machine, from the repository root
#   CADFT_GPU_SMOKE=1 bash benchmarks/gpu.sh    # dry run of every step on the CPU, tiny sizes
#
# Runs from the source tree (src/ on PYTHONPATH when cadft is not installed). Wheels in .whl/
# (trl, datasets, math-verify and their missing needs, for a machine without a registry) are
# installed into /tmp/site first when trl is missing. A saved tokenizer in .gpu/tokenizer is
# used when present (else the embedded model's, else the character tokenizer). Results go to
# $OUT (default: gpu-results/): gpu.json, tests.log, profile.md. Extra arguments go to
# benchmarks/gpu_run.py (e.g. --rounds 30, --seq_len 1024).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
OUT="${OUT:-gpu-results}"
mkdir -p "$OUT"
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
if ! "$PYTHON" -c "import trl" 2>/dev/null && compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
"$PYTHON" -c "import cadft" 2>/dev/null || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu/tokenizer ] && export CADFT_GPU_TOKENIZER="${CADFT_GPU_TOKENIZER:-$PWD/.gpu/tokenizer}"
if [ "${CADFT_GPU_SMOKE:-0}" != "0" ]; then
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" CADFT_CUDA_TESTS_ON_CPU=1
fi
"$PYTHON" -m pytest -q -rP -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/tests.log" \
  | grep -E "^(cpu|cuda) |passed|failed|skipped|Error" ; tests=${PIPESTATUS[0]}
"$PYTHON" benchmarks/gpu_run.py --json "$OUT/gpu.json" --profile "$OUT/profile.md" "$@"; bench=$?
echo "tests: exit $tests; benchmarks: exit $bench"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
