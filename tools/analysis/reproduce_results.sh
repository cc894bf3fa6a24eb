#!/usr/bin/env bash
# Reproduce docs/results.md on the embedded shapes data (CPU).
#   bash tools/analysis/reproduce_results.sh [OUT=work_dirs/results]
# Every pretraining run uses the same backbone, data, schedule and seed; only
# the objective (head) differs. Re-running skips finished steps (every
# output is written whole or not at all).
set -euo pipefail
OUT=${1:-work_dirs/results}
EPOCHS=$(python -c "from mmengine import Config; print(Config.fromfile('configs/mdc/vit-tiny_shapes.py').train_cfg.max_epochs)")
mkdir -p "$OUT"

declare -A CFG=(
  [mdc]=configs/mdc/vit-tiny_shapes.py
  [cap]=configs/baselines/cap_vit-tiny_shapes.py
  [clip]=configs/baselines/clip_vit-tiny_shapes.py
  [mdc_t-low]=configs/mdc/vit-tiny_shapes.py
  [mdc_t-high]=configs/mdc/vit-tiny_shapes.py
  [mdc_uniform]=configs/mdc/vit-tiny_shapes.py
  [mdc_clip5]=configs/mdc/vit-tiny_shapes.py
)
declare -A EXTRA=(
  [mdc_t-low]="model.head.t_range=(0.001,0.4)"
  [mdc_t-high]="model.head.t_range=(0.6,1.0)"
  [mdc_uniform]="model.head.loss_weighting=uniform"
  [mdc_clip5]="optim_wrapper.clip_grad.max_norm=5.0"
)
CLIP_CKPT="$OUT/clip/epoch_$EPOCHS.pth"
# Test-time scores: n-gram metrics plus CLIPScore / RefCLIPScore from the
# contrastive baseline trained above (the offline image-text scorer).
SCORER=("test_evaluator.scores=[BLEU,ROUGE-L,CIDEr,CLIPScore,RefCLIPScore]"
        "+test_evaluator.clip_scorer.type=PluginModelScorer"
        "+test_evaluator.clip_scorer.config=${CFG[clip]}"
        "+test_evaluator.clip_scorer.checkpoint=$CLIP_CKPT")

for run in clip mdc cap mdc_t-low mdc_t-high mdc_uniform mdc_clip5; do
  ckpt="$OUT/$run/epoch_$EPOCHS.pth"
  extra=${EXTRA[$run]:-}
  if [ ! -f "$ckpt" ]; then
    /usr/bin/time -f "$run train wall %e s" python tools/train.py "${CFG[$run]}" --work-dir "$OUT/$run" \
      ${extra:+--cfg-options "$extra"}
  fi
  for pooling in mean cls attn; do
    [ -f "$OUT/$run/probe_$pooling.json" ] || python tools/linear_probe.py "${CFG[$run]}" \
      --checkpoint "$ckpt" --pooling $pooling --out "$OUT/$run/probe_$pooling.json"
  done
  if [ "$run" != clip ] && [ ! -f "$OUT/$run/shape_acc.json" ]; then
    python tools/analysis/shape_token_accuracy.py "${CFG[$run]}" "$ckpt" \
      ${extra:+--cfg-options "$extra"} > "$OUT/$run/shape_acc.json.tmp"
    mv "$OUT/$run/shape_acc.json.tmp" "$OUT/$run/shape_acc.json"
  fi
  [ -f "$OUT/$run/test.json" ] || python tools/test.py "${CFG[$run]}" "$ckpt" --work-dir "$OUT/$run" \
    --out "$OUT/$run/test.json" --cfg-options ${extra:+"$extra"} "${SCORER[@]}"
done

mkdir -p "$OUT/random"
for pooling in mean cls attn; do
  for seed in 0 1; do
    [ -f "$OUT/random/probe_${pooling}_seed$seed.json" ] || python tools/linear_probe.py \
      configs/mdc/vit-tiny_shapes.py --pooling $pooling --seed $seed \
      --out "$OUT/random/probe_${pooling}_seed$seed.json"
  done
  cp "$OUT/random/probe_${pooling}_seed0.json" "$OUT/random/probe_$pooling.json"
done

# Reference, not a captioner: the same ViT trained on the probe label itself.
# Shows the probe task is learnable at this budget (a trained backbone probes
# far above random init), so the captioners' probe numbers are informative.
SUP=configs/benchmarks/supervised_vit-tiny_shapes.py
[ -f "$OUT/supervised/epoch_$EPOCHS.pth" ] || python tools/train.py $SUP --work-dir "$OUT/supervised"
for pooling in mean cls attn; do
  [ -f "$OUT/supervised/probe_$pooling.json" ] || python tools/linear_probe.py configs/mdc/vit-tiny_shapes.py \
    --checkpoint "$OUT/supervised/epoch_$EPOCHS.pth" --pooling $pooling --out "$OUT/supervised/probe_$pooling.json"
done

# Longer training: Cap and heavy-masking MDC for twice the epochs (the
# cosine schedule is stretched to match).
LONG_EPOCHS=$((2 * EPOCHS))
declare -A LONG=([cap_16ep]=cap [mdc_t-high_16ep]=mdc_t-high)
for run in cap_16ep mdc_t-high_16ep; do
  base=${LONG[$run]}; extra=${EXTRA[$base]:-}; ckpt="$OUT/$run/epoch_$LONG_EPOCHS.pth"
  [ -f "$ckpt" ] || python tools/train.py "${CFG[$base]}" --work-dir "$OUT/$run" --cfg-options \
    train_cfg.max_epochs=$LONG_EPOCHS train_cfg.val_interval=$LONG_EPOCHS param_scheduler.1.end=$LONG_EPOCHS $extra
  for pooling in mean cls attn; do
    [ -f "$OUT/$run/probe_$pooling.json" ] || python tools/linear_probe.py "${CFG[$base]}" \
      --checkpoint "$ckpt" --pooling $pooling --out "$OUT/$run/probe_$pooling.json"
  done
  if [ ! -f "$OUT/$run/shape_acc.json" ]; then
    python tools/analysis/shape_token_accuracy.py "${CFG[$base]}" "$ckpt" ${extra:+--cfg-options "$extra"} \
      > "$OUT/$run/shape_acc.json.tmp"
    mv "$OUT/$run/shape_acc.json.tmp" "$OUT/$run/shape_acc.json"
  fi
  [ -f "$OUT/$run/test.json" ] || python tools/test.py "${CFG[$base]}" "$ckpt" --work-dir "$OUT/$run" \
    --out "$OUT/$run/test.json" --cfg-options ${extra:+"$extra"} "${SCORER[@]}"
done

# Layer-wise probes: the same probes on the output of every ViT block.
declare -A FINAL=([supervised]="$OUT/supervised/epoch_$EPOCHS.pth"
                  [cap_16ep]="$OUT/cap_16ep/epoch_$LONG_EPOCHS.pth"
                  [mdc_t-high_16ep]="$OUT/mdc_t-high_16ep/epoch_$LONG_EPOCHS.pth")
for pooling in mean attn; do
  for run in random supervised cap mdc mdc_t-high clip cap_16ep mdc_t-high_16ep; do
    ckpt=${FINAL[$run]:-$OUT/$run/epoch_$EPOCHS.pth}
    [ "$run" = random ] && ckpt_arg=() || ckpt_arg=(--checkpoint "$ckpt")
    [ -f "$OUT/$run/probe_layers_$pooling.json" ] || python tools/analysis/layerwise_probe.py \
      configs/mdc/vit-tiny_shapes.py "${ckpt_arg[@]}" --pooling $pooling \
      --out "$OUT/$run/probe_layers_$pooling.json"
  done
done

# The full MAP head (attention + MLP) on the last block.
for run in random supervised cap mdc mdc_t-high clip cap_16ep mdc_t-high_16ep; do
  ckpt=${FINAL[$run]:-$OUT/$run/epoch_$EPOCHS.pth}
  [ "$run" = random ] && ckpt_arg=() || ckpt_arg=(--checkpoint "$ckpt")
  [ -f "$OUT/$run/probe_map.json" ] || python tools/linear_probe.py configs/mdc/vit-tiny_shapes.py \
    "${ckpt_arg[@]}" --pooling attn --attn-mlp-ratio 4 --out "$OUT/$run/probe_map.json"
done

# Colour vs spatial structure of each backbone's patch embedding.
python tools/analysis/patch_embed_stats.py --random-config configs/mdc/vit-tiny_shapes.py \
  "supervised=$OUT/supervised/epoch_$EPOCHS.pth" "Cap=$OUT/cap/epoch_$EPOCHS.pth" \
  "MDC, t ~ U[0.001, 1]=$OUT/mdc/epoch_$EPOCHS.pth" "MDC, t ~ U[0.6, 1]=$OUT/mdc_t-high/epoch_$EPOCHS.pth" \
  "CLIP-style=$OUT/clip/epoch_$EPOCHS.pth" "Cap, 16 epochs=$OUT/cap_16ep/epoch_$LONG_EPOCHS.pth" \
  "MDC t ~ U[0.6, 1], 16 epochs=$OUT/mdc_t-high_16ep/epoch_$LONG_EPOCHS.pth" --out "$OUT/patch_embed_stats.json"

[ -f "$OUT/mdc/steps.json" ] || python tools/analysis/sampling_steps.py configs/mdc/vit-tiny_shapes.py \
  "$OUT/mdc/epoch_$EPOCHS.pth" --steps 15 8 4 2 1 --work-dir "$OUT/steps" --out "$OUT/mdc/steps.json"

python tools/analysis/collect_results.py "$OUT" --plot docs/images/mdc_sampling_steps.png \
  --examples docs/images/example_captions.png --layers-plot docs/images/layerwise_probe.png
