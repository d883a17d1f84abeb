#!/usr/bin/env bash
# The GPU checks of the scale-out issue, in one go, on a machine with a CUDA GPU:
#
#   1. the default run (`python -m protobench.run --attack pgd-local`) with --device cuda,
#      compared with the committed CPU reference (results/reference/) within the CI gate's
#      tolerances (results/baselines/ci.tolerances.toml);
#   2. research/attack_speed.py --device cuda (64 and 256 pairs, the committed synth-smallcnn);
#   3. research/push_speed.py --device cuda (100 and 1000 prototypes);
#   4. the CUDA tests;
#   5. the scale-out checks: pair-step costs of the CUB backbones on the card
#      (research/scale.py costs --device cuda), the projection of cub-full from them,
#      --batch-size auto, a 1-rank torchrun run on the GPU against the plain run, and
#      bf16 / compile against fp32 on the GPU.
#
#     bash research/gpu_checks.sh [LOG_DIR]     (default: results/gpu-checks)
#
# Prints the card, the software and every time; writes LOG_DIR/checks.log and the CUDA
# run in LOG_DIR/reference-cuda/. Each step runs even when an earlier one fails; the exit
# status is the number of failed steps.
set -u
LOG_DIR=${1:-results/gpu-checks}
PY=${PYTHON:-python3}
mkdir -p "$LOG_DIR"
exec > >(tee "$LOG_DIR/checks.log") 2>&1
source "$(dirname "${BASH_SOURCE[0]}")/gpu_steps.sh"  # step, describe_machine

describe_machine

run_dir="$LOG_DIR/reference-cuda"
rm -rf "$run_dir"
step "default run, cuda" $PY -m protobench.run --attack pgd-local --device cuda --out "$run_dir" --quiet --no-figures
baseline="$LOG_DIR/reference-cpu.csv"
cp results/baselines/ci.tolerances.toml "$LOG_DIR/reference-cpu.tolerances.toml"
step "pin the CPU reference" $PY -m protobench.regress results/reference --baseline "$baseline" --update
step "cuda run against the CPU reference" $PY -m protobench.regress "$run_dir" --baseline "$baseline"

step "attack speed, 64 pairs" $PY research/attack_speed.py --device cuda --model synth-smallcnn --steps 20
step "attack speed, 256 pairs" $PY research/attack_speed.py --device cuda --model synth-smallcnn --pairs 256 --steps 40
step "push speed, 100 prototypes" $PY research/push_speed.py --device cuda
step "push speed, 1000 prototypes" $PY research/push_speed.py --device cuda --classes 100 --images-per-class 10
step "CUDA tests" $PY -m pytest -q -rs -p no:cacheprovider tests/test_attacks_engine.py -k cuda

step "pair-step costs on the card" $PY research/scale.py costs --device cuda --pairs 64 256 --steps 10 --out "$LOG_DIR/costs-cuda.csv"
step "cub-full projected from them" $PY research/scale.py project --costs "$LOG_DIR/costs-cuda.csv"
step "batch size auto" $PY -m protobench.run --attack pgd-local --device cuda --batch-size auto --out "$LOG_DIR/auto" --quiet --no-figures
step "torchrun, 1 GPU rank" torchrun --standalone --nproc-per-node 1 -m protobench.run --attack pgd-local --device cuda --out "$LOG_DIR/torchrun" --quiet --no-figures
step "torchrun equals the plain run" $PY -c "import pandas as pd, sys; a, b = (pd.read_csv(f'$LOG_DIR/{d}/pairs.csv').drop(columns='seconds') for d in ('reference-cuda', 'torchrun')); pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-4); print('equal')"
for option in precision=bf16 compile=true; do
  step "$option against fp32" $PY -m protobench.run --attack pgd-local --device cuda --set "$option" --out "$LOG_DIR/$option" --quiet --no-figures
done

echo; echo "failed steps: $failed"
exit $failed
