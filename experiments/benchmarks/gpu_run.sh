#!/usr/bin/env bash
# The GPU measurements of the issues, as one prepared run (a lent GPU machine is offline, so this
# uses the jax the machine has: it prints which). Logs go to $OUT (default: results/gpu).
#   bash experiments/benchmarks/gpu_run.sh
# 1. throughput_bench: MSP and GRODIN images/s on ResNet-50, 224 px, batch 128, float32 and bfloat16
# 2. imagenet_pass_bench: a 50k-image 224 px pass through `evaluate` for MSP, GradNorm and GRODIN
# 3. the test modules that need neither tensorflow nor neural-tangents, on the GPU backend
# 4. gradient_bench on ResNet-50 at 224 px, batch 128 (GradNorm, GRODIN norms / a training step)
# Each step has a time limit (the lease is short); what a step printed before its limit is kept.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/gpu}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3 JAX_PLATFORMS=cuda,cpu
PY=${PYTHON:-python3}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  $PY -c "import jax, flax, optax, orbax.checkpoint as o; print('jax', jax.__version__, 'flax', flax.__version__, \
'optax', optax.__version__, 'orbax', o.__version__, jax.devices())"; } 2>&1 | tee "$OUT/machine.txt"
step() { local name=$1 limit=$2; shift 2; echo "== $name ($(date +%T))"
         timeout "$limit" "$@" 2>&1 | grep -v "^WARNING\|^I0000\|^W0000" | tee "$OUT/$name.txt"; }
step throughput 110 $PY -m experiments.benchmarks.throughput_bench --repeats 5
step imagenet_pass 190 $PY -m experiments.benchmarks.imagenet_pass_bench
export XLA_PYTHON_CLIENT_PREALLOCATE=false
step tests 120 $PY -m pytest -q -n 12 -p no:cacheprovider --durations 5 \
     tests/test_anchoring.py tests/test_contract.py tests/test_evaluate.py tests/test_extending.py \
     tests/test_flows.py tests/test_gradients.py tests/test_leaderboard.py tests/test_metrics.py \
     tests/test_models.py tests/test_objectives.py tests/test_odin_gram.py tests/test_scores.py \
     tests/test_training.py tests/test_uncertainty.py
unset XLA_PYTHON_CLIENT_PREALLOCATE
step gradient 100 $PY -m experiments.benchmarks.gradient_bench --models resnet50 --image-size 224 \
     --batch 128 --repeats 3 --loop-n 8
echo "== done ($(date +%T))"
