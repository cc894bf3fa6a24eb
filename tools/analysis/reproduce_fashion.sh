#!/usr/bin/env bash
# Reproduce the real-image (Fashion-MNIST) comparison of docs/results.md.
#   bash tools/analysis/reproduce_fashion.sh [OUT=work_dirs/fashion] [LANE=all]
# A job is NAME:SEED, or NAME@Mx:SEED for M times the budget (iterations,
# cosine length and checkpoint interval scaled together; folder
# NAME_Mx_seedS), e.g. LANE_JOBS='mdc@4x:0 cap@4x:0' for the budget curve.
# LANE splits the training runs into two halves (a, b) that can run side by
# side on two cores (OMP_NUM_THREADS=1 each); 'probes' runs the probes and
# the collection once both halves are done; 'all' does everything in order;
# 'custom' runs the jobs listed in LANE_JOBS (e.g. LANE_JOBS='cap:1 clip:1');
# 'gap' runs tools/analysis/caption_diagnostics.py on every finished caption
# run (BLOCKS: the block lengths of the MDC grid, default '0 9') and
# collects "Why MDC trails Cap" (docs/results_data/fashion_gap).
# The committed docs/results_data/fashion/NAME_seedS folders hold each
# finished run's final scalars: copied into OUT, collect_fashion.py counts
# them beside new runs.
# Every run uses the same backbone, scenes, budget and seed handling; only
# the objective differs. The runs skip the hook's per-run init/pixel
# references (minutes each on CPU); the probes lane measures them once. Finished steps are skipped (outputs are written
# whole or not at all), so the command can be re-run after an interruption.
set -euo pipefail
OUT=${1:-work_dirs/fashion}
LANE=${2:-all}
SEEDS=(0 1)
mkdir -p "$OUT"

declare -A CFG=(
  [supervised]=configs/benchmarks/supervised_resnet18-w32_fashion.py
  [mdc]=configs/mdc/resnet18-w32_fashion.py
  [mdc_mdlm-t]=configs/mdc/resnet18-w32_fashion_mdlm-t.py
  [cap]=configs/baselines/cap_resnet18-w32_fashion.py
  [clip]=configs/baselines/clip_resnet18-w32_fashion.py
  [cappa]=configs/baselines/cappa_resnet18-w32_fashion.py
  [mdc_words-loss]=configs/mdc/resnet18-w32_fashion_words-loss.py
  [mdc_pad-0.1]=configs/mdc/resnet18-w32_fashion_pad-0.1.py
  [mdc_blind]=configs/mdc/resnet18-w32_fashion_blind.py
  [cap_blind]=configs/baselines/cap_resnet18-w32_fashion_blind.py
)
MAX_ITERS=$(python -c "from mmengine import Config; print(Config.fromfile('${CFG[mdc]}').train_cfg.max_iters)" 2>/dev/null)
LANE_A="supervised:0 mdc:0 cap:0 mdc:1 cap:1"
LANE_B="mdc_mdlm-t:0 clip:0 mdc_mdlm-t:1 clip:1 supervised:1"

train() {  # train NAME SEED [MULT]
  local name=$1 seed=$2 mult=${3:-1} dir="$OUT/$1_seed$2"
  local iters=$((MAX_ITERS * mult)) budget=()
  if [ "$mult" != 1 ]; then
    dir="$OUT/${name}_${mult}x_seed$seed"
    budget=("train_cfg.max_iters=$iters" "train_cfg.val_interval=$iters"
            "param_scheduler.1.end=$iters"
            "default_hooks.checkpoint.interval=$((iters / 4))")
  fi
  if [ -f "$dir/iter_$iters.pth" ] && [ -f "$dir/done" ]; then
    echo "skip $name x$mult seed $seed (done)"; return
  fi
  local resume=()
  [ -f "$dir/last_checkpoint" ] && resume=(--resume)
  local start=$(date +%s)
  python tools/train.py "${CFG[$name]}" --work-dir "$dir" "${resume[@]}" \
    --cfg-options randomness.seed="$seed" "custom_hooks.0.baselines=[]" \
    "${budget[@]}" > "$dir.log" 2>&1
  echo "$name x$mult seed $seed: $(( $(date +%s) - start )) s" | tee "$dir/done"
}

probe() {  # probe OUTFILE CONFIG [args...]
  local out=$1; shift
  [ -f "$out" ] && { echo "skip $out"; return; }
  local args=("$@") i
  for ((i = 0; i < ${#args[@]} - 1; i++)); do
    if [ "${args[i]}" = --checkpoint ] && [ ! -f "${args[i + 1]}" ]; then
      echo "skip $out (no checkpoint ${args[i + 1]})"; return
    fi
  done
  python tools/linear_probe.py "$@" --out "$out" > "${out%.json}.log" 2>&1
  echo "probe -> $out"
}

run_lane() {
  local job name mult
  for job in $1; do
    name=${job%%:*} mult=1
    if [[ $name == *@*x ]]; then mult=${name##*@}; mult=${mult%x}; name=${name%@*}; fi
    train "$name" "${job##*:}" "$mult"
  done
}

probes() {
  local q1=$((MAX_ITERS / 4)) q2=$((MAX_ITERS / 2))
  probe "$OUT/pixels.json" "${CFG[mdc]}" --pixels
  for seed in "${SEEDS[@]}"; do
    probe "$OUT/random_seed$seed.json" "${CFG[mdc]}" --seed "$seed"
    # learning curve: the same run's checkpoints at 25% and 50% of the budget
    for name in mdc cap clip; do
      for it in $q1 $q2; do
        probe "$OUT/curve_${name}_seed${seed}_iter$it.json" "${CFG[$name]}" \
          --checkpoint "$OUT/${name}_seed$seed/iter_$it.pth"
      done
    done
  done
  # attention-pooling (MAP) probe of every final backbone and random init
  for seed in "${SEEDS[@]}"; do
    probe "$OUT/attn_random_seed$seed.json" "${CFG[mdc]}" --seed "$seed" --pooling attn
    for name in supervised mdc mdc_mdlm-t cap clip; do
      probe "$OUT/attn_${name}_seed$seed.json" "${CFG[$name]}" --pooling attn \
        --checkpoint "$OUT/${name}_seed$seed/iter_$MAX_ITERS.pth"
    done
  done
  # MDC caption quality against denoising steps and remasking order, on
  # the val scenes of the table (35 = one token per step at max_length 36)
  for seed in "${SEEDS[@]}"; do
    for name in mdc mdc_mdlm-t; do
      for remasking in low_confidence random; do
        sweep "$OUT/steps_${name}_seed${seed}_${remasking/_/-}.json" "$name" "$seed" \
          35 16 8 4 2 1 --cfg-options model.head.sampler.remasking=$remasking
      done
    done
  done
  python tools/analysis/collect_fashion.py "$OUT" --out docs/results_data/fashion \
    --plot docs/images/fashion_learning_curve.png \
    --steps-plot docs/images/fashion_mdc_sampling_steps.png
}

sweep() {  # sweep OUTFILE NAME SEED STEPS... [--cfg-options ...]
  local out=$1 name=$2 seed=$3; shift 3
  local ckpt="$OUT/${name}_seed$seed/iter_$MAX_ITERS.pth"
  [ -f "$out" ] && { echo "skip $out"; return; }
  [ -f "$ckpt" ] || { echo "skip $out (no checkpoint $ckpt)"; return; }
  python tools/analysis/sampling_steps.py "${CFG[$name]}" "$ckpt" --split val --steps "$@" \
    --work-dir "$OUT/sampling_steps" --out "$out" > "${out%.json}.log" 2>&1
  echo "sweep -> $out"
}

diag() {  # diag RUN: caption diagnostics of a finished run's last checkpoint
  local run=$1 out="$OUT/diag_$1.json" name mult=1 ckpt
  [ -f "$out" ] && { echo "skip $out"; return; }
  name=${run%_seed*}
  if [[ $name =~ ^(.+)_([0-9]+)x$ ]]; then
    name=${BASH_REMATCH[1]} mult=${BASH_REMATCH[2]}
  fi
  [ -n "${CFG[$name]:-}" ] || { echo "skip $run (no config for $name)"; return; }
  ckpt="$OUT/$run/iter_$((MAX_ITERS * mult)).pth"
  [ -f "$ckpt" ] || { echo "skip $run (no checkpoint $ckpt)"; return; }
  python tools/analysis/caption_diagnostics.py "${CFG[$name]}" "$ckpt" \
    --split val --steps 8 35 --block-lengths ${BLOCKS:-0 9} \
    --out "$out" > "${out%.json}.log" 2>&1
  echo "diagnostics -> $out"
}

gap() {  # "Why MDC trails Cap": diagnostics of every finished run, tables
  local dir
  for dir in "$OUT"/*_seed*/; do
    dir=$(basename "$dir")
    [[ $dir == supervised* || $dir == clip* ]] || diag "$dir"
  done
  python tools/analysis/collect_mdc_gap.py "$OUT" \
    --committed docs/results_data/fashion --out docs/results_data/fashion_gap \
    --plot docs/images/fashion_mdc_gap_budget.png
}

case "$LANE" in
  a) run_lane "$LANE_A" ;;
  b) run_lane "$LANE_B" ;;
  probes) probes ;;
  custom) run_lane "${LANE_JOBS:?set LANE_JOBS, e.g. 'cap:1 clip:1'}" ;;
  gap) gap ;;
  all) run_lane "$LANE_A"; run_lane "$LANE_B"; probes ;;
  *) echo "LANE must be a, b, probes, custom, gap or all" >&2; exit 2 ;;
esac
