#!/usr/bin/env bash
# Issue 9's model question, in one go, on a machine with a CUDA GPU: do the resnet18 recipes
# at the paper's geometry (224 px, 7x7 cells) give a model nearer a trained ProtoPNet than the
# committed synth-resnet18, and is the explanation attack's effect larger on it? Each recipe
# takes over two hours on 2 CPU cores (models/README.md), minutes on a GPU.
#
#   1. research/recipe_sweep.py on RECIPES (default: the peer's settings and the regular
#      add-on; the committed recipe trained in 109 s on an H200): each is trained, measured
#      (accuracy, prototypes on the object, realism, latent saturation) and attacked
#      (pgd-local, 8/255, 40 steps, 32 test images, with the noise control); the sweep picks
#      one by accuracy, prototypes on the object and realism, never by the attack;
#   2. research/objectives.py on the chosen checkpoint, on test images 100-147, which no
#      committed result uses: pgd-local and auto-local (with the per-pair best of the two),
#      pgd-head-on-stomach, pgd-head-on-object, and uniform noise in each of their threat
#      models;
#   3. packs everything for the trip back: LOG_DIR/gpu-models.tar.gz (the sweep's tables,
#      logs and run summaries, the objectives' table) and the chosen checkpoint cut into
#      parts of at most 15 MiB (NAME.pt.part-00, -01, ...) with NAME.pt.sha256, so that
#      LOG_DIR holds at most 8 files, none over 16 MiB (the device tool's limits). Put the
#      checkpoint back together with:
#          cat NAME.pt.part-* > NAME.pt && sha256sum -c NAME.pt.sha256
#
#     bash research/gpu_models.sh [LOG_DIR]     (default: results/gpu-models)
#
# Settings (environment): RECIPES, DEVICE (cuda), JOBS (2), SWEEP_SECONDS (450: the sweep
# is stopped after this, and what finished is packed), FIRST_IMAGE (100), IMAGES (48),
# PYTHON (python3). On the device machine (10 minutes a command):
#     bash research/gpu_models.sh $OUT          with timeout_s 590
# A trial of the plumbing on the CPU in a few minutes:
#     DEVICE=cpu JOBS=1 RECIPES=models/synth-tiny.toml FIRST_IMAGE=0 IMAGES=8 \
#         bash research/gpu_models.sh /tmp/gpu-models
#
# Each step runs even when an earlier one fails; the exit status is the number of failed steps.
set -u
LOG_DIR=${1:-results/gpu-models}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
JOBS=${JOBS:-2}
SWEEP_SECONDS=${SWEEP_SECONDS:-450}
FIRST_IMAGE=${FIRST_IMAGE:-100}
IMAGES=${IMAGES:-48}
RECIPES=${RECIPES:-research/recipes/resnet18-224-peer.toml research/recipes/resnet18-224-regular.toml}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

mkdir -p "$LOG_DIR"
WORK=$(mktemp -d)
exec > >(tee "$WORK/gpu-models.log") 2>&1
source "$(dirname "${BASH_SOURCE[0]}")/gpu_steps.sh"  # step, describe_machine

describe_machine

sweep="$WORK/sweep"
# the sweep's own per-recipe limit stops a recipe that runs long; `timeout` the whole of it
step "train, measure and attack each recipe" timeout "$SWEEP_SECONDS" \
    $PY research/recipe_sweep.py $RECIPES --out "$sweep" --device "$DEVICE" --jobs "$JOBS" \
    --timeout $((SWEEP_SECONDS - 10))

chosen=$(cat "$sweep/chosen.txt" 2>/dev/null | tr -d '[:space:]')
if [ -n "$chosen" ] && [ -f "$sweep/$chosen.pt" ]; then
    windows="noise:mask=target,target=most-similar,target_size=2 noise:mask=target,target=object-elsewhere,target_size=2"
    step "the chosen model on unseen images" bash -o pipefail -c "$PY research/objectives.py --model '$sweep/$chosen.pt' \
        --device '$DEVICE' --first-image $FIRST_IMAGE --images $IMAGES pgd-local auto-local pgd-head-on-stomach \
        pgd-head-on-object noise $windows | tee '$WORK/objectives-$chosen.md'"
    (cd "$sweep" && split -b 15M -d -a 2 "$chosen.pt" "$chosen.pt.part-" && sha256sum "$chosen.pt" > "$chosen.pt.sha256")
    mv "$sweep/$chosen.pt".part-* "$sweep/$chosen.pt.sha256" "$LOG_DIR/"
else
    echo "!! no recipe was chosen (see the sweep's table); no checkpoint comes back"
    failed=$((failed + 1))
fi

echo; echo "failed steps: $failed"
# everything but checkpoints and attack arrays, in one file
tar -czf "$LOG_DIR/gpu-models.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='*.npz' --exclude='parts' .
ls -l "$LOG_DIR"
rm -rf "$WORK"
exit $failed
