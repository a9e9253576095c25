#!/usr/bin/env bash
# The claims report's networks and scores on a lent GPU machine, as one time-boxed run (a lease is
# 15 minutes of device time): the groups in order (experiments/claims/config.py), each a separate
# process, the scores packed into $OUT/claims_gpu.tgz after each group, so whatever finished before
# the deadline comes back; then issue 19's per-sample gradient norm benchmark at 224 px.
#   OUT=results/gpu_claims [CLAIM_GROUPS="003 001"] [BENCH=0] bash experiments/claims/gpu_claims.sh [SECONDS (default 540)]
# Needs Fashion-MNIST's four IDX .gz files in $OODJAX_FASHION_MNIST (default .data/fashion-mnist,
# copied there from /usr/share/datasets/fashion-mnist: the GPU machine is offline and has no Debian
# package). Uses the jax the machine has; machine.txt says which.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/gpu_claims}
mkdir -p "$OUT"
BUDGET=${1:-540}
BENCH=${BENCH:-100}  # seconds kept for the gradient-norm benchmark at the end
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 JAX_PLATFORMS=cuda,cpu
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/oodjax_jax_cache}  # ensemble members compile once
export OODJAX_FASHION_MNIST=${OODJAX_FASHION_MNIST:-$PWD/.data/fashion-mnist}
PY=${PYTHON:-python3}
start=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  $PY -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, \
'optax', optax.__version__, 'orbax', o.__version__, jax.devices())"; } 2>&1 | tee "$OUT/machine.txt"
quiet() { grep --line-buffered -v "^WARNING\|^I0000\|^W0000\|^E0000"; }
for g in ${CLAIM_GROUPS:-000 002 004 001 003 ensembles}; do
  left=$(( BUDGET - BENCH - ($(date +%s) - start) ))
  if [ "$left" -lt 30 ]; then echo "== group $g skipped: ${left} s left" | tee -a "$OUT/claims.log"; continue; fi
  echo "== group $g ($(date +%T), ${left} s left)" | tee -a "$OUT/claims.log"
  timeout "$left" $PY -m experiments.claims --variant gpu --groups "$g" --no-progress 2>&1 | quiet | tee -a "$OUT/claims.log"
  find results -path 'results/claims_gpu_*' \( -name scores.npz -o -name metrics.json -o -name run.json \
       -o -name summary.md -o -name tuned.md \) -print0 | tar czf "$OUT/claims_gpu.tgz" --null -T -
done
left=$(( BUDGET - ($(date +%s) - start) ))
echo "== gradient-norm benchmark ($(date +%T), ${left} s left)"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
for m in $([ "$BENCH" -gt 0 ] && echo resnet18 resnet50); do
  left=$(( BUDGET - ($(date +%s) - start) ))
  [ "$left" -lt 20 ] && break
  timeout "$left" $PY -m experiments.benchmarks.ghost_plan_bench --model $m --image-size 224 --batch 128 --chunk 32 \
      --repeats 3 --only jit-one,jit-map,eager,vmap 2>&1 | quiet | tee "$OUT/ghost_$m.txt"
done
echo "== done ($(date +%T))"
