#!/usr/bin/env bash
# Image-text matching on the Fashion minimal pairs (docs/results.md, "Image-
# text matching by caption likelihood"), on the checkpoints that
# tools/analysis/reproduce_fashion.sh trains (including the blind controls
# mdc_blind and cap_blind and the CLIP-style runs):
#   bash tools/analysis/reproduce_matching.sh [RUNS=work_dirs/fashion] [OUT=work_dirs/matching] [LANE=all]
# LANE: 'a' or 'b' (two halves for two cores, OMP_NUM_THREADS=1 each),
# 'cost' (every scorer on the same 400 cases one after another, for the
# cost column: run it on an otherwise idle machine), 'all', or 'collect'
# (tables and docs/results_data/matching). Finished
# results are skipped (each JSON is written whole or not at all); missing
# checkpoints are reported and skipped.
set -euo pipefail
RUNS=${1:-work_dirs/fashion}
OUT=${2:-work_dirs/matching}
LANE=${3:-all}
mkdir -p "$OUT"
MDC=configs/mdc/resnet18-w32_fashion.py
CAP=configs/baselines/cap_resnet18-w32_fashion.py
CAPPA=configs/baselines/cappa_resnet18-w32_fashion.py
CLIP=configs/baselines/clip_resnet18-w32_fashion.py
MDC_BLIND=configs/mdc/resnet18-w32_fashion_blind.py
CAP_BLIND=configs/baselines/cap_resnet18-w32_fashion_blind.py

match() {  # match NAME CONFIG CHECKPOINT [score options...]
  local name=$1 config=$2 ckpt=$3; shift 3
  local out="$OUT/$name.json" opts=()
  [ -f "$out" ] && { echo "skip $name (done)"; return; }
  if [ "$ckpt" != random ] && [ ! -f "$ckpt" ]; then
    echo "skip $name (no checkpoint $ckpt)"; return
  fi
  local extra=()
  if [ "${1:-}" = --max-cases ]; then extra=(--max-cases "$2"); shift 2; fi
  [ $# -gt 0 ] && opts=(--score-options "$@")
  # --seed only seeds the 'random' initialisation (trained checkpoints
  # ignore it); Monte-Carlo scores take their seed from --score-options
  local seed=0
  [[ $name == *seed1* ]] && seed=1
  if ! python tools/analysis/image_text_matching.py "$config" "$ckpt" \
      --benchmark fashion --seed "$seed" "${extra[@]}" "${opts[@]}" \
      --out "$out" > "$OUT/$name.log" 2>&1; then
    echo "FAILED $name (see $OUT/$name.log)"; return
  fi
  tail -n 1 "$OUT/$name.log"
}

mdc_methods() {  # mdc_methods PREFIX CONFIG CKPT: every MDC score
  local p=$1 c=$2 k=$3
  match "${p}_masked-once" "$c" "$k" method=masked_once
  match "${p}_elbo-1" "$c" "$k" method=elbo draws=1
  match "${p}_elbo-4" "$c" "$k" method=elbo draws=4
  match "${p}_elbo-16" "$c" "$k" method=elbo draws=16
  match "${p}_elbo-16_mean" "$c" "$k" method=elbo draws=16 normalize=mean
  match "${p}_left-to-right" "$c" "$k" method=left_to_right
  match "${p}_one-at-a-time" "$c" "$k" method=one_at_a_time
  # the candidates of an image drawing their own masks (the ablation of
  # the shared masks)
  match "${p}_elbo-4_independent" "$c" "$k" method=elbo draws=4 shared_masks=False
  match "${p}_elbo-16_independent" "$c" "$k" method=elbo draws=16 shared_masks=False
}

lane_a() {
  for s in 0 1; do
    mdc_methods "mdc_seed$s" $MDC "$RUNS/mdc_seed$s/iter_1200.pth"
    match "random-mdc_seed$s" $MDC random method=elbo draws=16
  done
  match mdc_2x_seed0_elbo-16 $MDC "$RUNS/mdc_2x_seed0/iter_2400.pth" method=elbo draws=16
  match mdc_2x_seed1_elbo-16 $MDC "$RUNS/mdc_2x_seed1/iter_2400.pth" method=elbo draws=16
  match mdc_4x_seed0_elbo-16 $MDC "$RUNS/mdc_4x_seed0/iter_4800.pth" method=elbo draws=16
  match mdc_2x_seed0_masked-once $MDC "$RUNS/mdc_2x_seed0/iter_2400.pth" method=masked_once
  match mdc_2x_seed1_masked-once $MDC "$RUNS/mdc_2x_seed1/iter_2400.pth" method=masked_once
  match mdc_4x_seed0_masked-once $MDC "$RUNS/mdc_4x_seed0/iter_4800.pth" method=masked_once
}

lane_b() {
  for s in 0 1; do
    match "cap_seed$s" $CAP "$RUNS/cap_seed$s/iter_1200.pth"
    match "cap_seed${s}_mean" $CAP "$RUNS/cap_seed$s/iter_1200.pth" normalize=mean
    match "clip_seed$s" $CLIP "$RUNS/clip_seed$s/iter_1200.pth"
    match "random-cap_seed$s" $CAP random
    match "cap-blind_seed$s" $CAP_BLIND "$RUNS/cap_blind_seed$s/iter_1200.pth"
    match "mdc-blind_seed${s}_elbo-16" $MDC_BLIND "$RUNS/mdc_blind_seed$s/iter_1200.pth" method=elbo draws=16
    match "mdc-blind_seed${s}_masked-once" $MDC_BLIND "$RUNS/mdc_blind_seed$s/iter_1200.pth" method=masked_once
  done
  match cappa_seed0 $CAPPA "$RUNS/cappa_seed0/iter_1200.pth"
  match cap_2x_seed0 $CAP "$RUNS/cap_2x_seed0/iter_2400.pth"
  match cap_4x_seed0 $CAP "$RUNS/cap_4x_seed0/iter_4800.pth"
}

cost() {  # every scorer on the same 400 cases, one after another (run idle)
  local c=$OUT/cost k0=$RUNS/mdc_seed0/iter_1200.pth
  mkdir -p "$c"
  local saved=$OUT; OUT=$c
  match cap_seed0 $CAP "$RUNS/cap_seed0/iter_1200.pth" --max-cases 400
  match clip_seed0 $CLIP "$RUNS/clip_seed0/iter_1200.pth" --max-cases 400
  match mdc_seed0_masked-once $MDC "$k0" --max-cases 400 method=masked_once
  match mdc_seed0_elbo-4 $MDC "$k0" --max-cases 400 method=elbo draws=4
  match mdc_seed0_elbo-16 $MDC "$k0" --max-cases 400 method=elbo draws=16
  match mdc_seed0_one-at-a-time $MDC "$k0" --max-cases 400 method=one_at_a_time
  match mdc_seed0_left-to-right $MDC "$k0" --max-cases 400 method=left_to_right
  OUT=$saved
}

collect() {
  python tools/analysis/collect_matching.py "$OUT" --cost "$OUT/cost" \
    --out docs/results_data/matching
}

case "$LANE" in
  a) lane_a ;;
  b) lane_b ;;
  all) lane_a; lane_b; cost; collect ;;
  cost) cost ;;
  collect) collect ;;
  *) echo "LANE must be a, b, cost, all or collect" >&2; exit 2 ;;
esac
