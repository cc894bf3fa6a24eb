#!/usr/bin/env bash
# MDC-pretrained vs random-init ResNet-18 in the real MMDetection (Mask R-CNN)
# and MMSegmentation (UperNet) loops on Fashion-MNIST scenes, CPU, one core
# per run (docs/downstream.md, "Fashion scenes on CPU").
#
# Usage: bash tools/analysis/reproduce_downstream.sh OUT MDC_CKPT [ITERS] [det|seg|all]
#   OUT       work folder for the four runs and their logs
#   MDC_CKPT  a checkpoint of configs/mdc/resnet18-w32_fashion.py
#             (tools/analysis/reproduce_fashion.sh writes OUT/mdc_seed0/iter_1200.pth)
#   ITERS     training iterations (default 200)
#   SEEDS     env var, fine-tuning seeds (default "0 1"): runs are NAME_seedK
# Needs the environment of tools/misc/install_downstream.sh: PY (default
# .venv-downstream/bin/python). Finished runs (OUT/NAME.done) are skipped.
set -u
OUT=${1:?output folder}; CKPT=${2:?MDC checkpoint}; ITERS=${3:-200}; WHICH=${4:-all}
SEEDS=${SEEDS:-0 1}
PY=${PY:-.venv-downstream/bin/python}
cd "$(dirname "$0")/../.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT"
[ -f data/fashion_downstream/meta.json ] || \
  $PY tools/misc/make_downstream_data.py data/fashion_downstream --num-train 2000 --num-val 200
[ -f work_dirs/mdc_resnet18-w32_backbone.pth ] || \
  $PY tools/model_converters/extract_backbone.py "$CKPT" work_dirs/mdc_resnet18-w32_backbone.pth \
    --config configs/mdc/resnet18-w32_fashion.py || exit 1
DET=configs/downstream/mask-rcnn_resnet18-w32-mdc_fpn_fashion-128px.py
SEG=configs/downstream/upernet_resnet18-w32-mdc_fashion-128px.py
run() {  # NAME CONFIG OPTIONS...
  local name=$1 cfg=$2; shift 2
  [ -f "$OUT/$name.done" ] && { echo "skip $name"; return; }
  local start=$(date +%s)
  $PY tools/train.py "$cfg" --work-dir "$OUT/$name" --cfg-options train_cfg.max_iters="$ITERS" \
    train_cfg.val_interval="$ITERS" "$@" > "$OUT/$name.log" 2>&1 || { echo "$name failed: $OUT/$name.log"; return 1; }
  echo "$name: $(( $(date +%s) - start )) s" | tee "$OUT/$name.done"
}
DET_LR="param_scheduler.1.end=$ITERS param_scheduler.1.T_max=$((ITERS - 100))"
SEG_LR="param_scheduler.1.end=$ITERS"
for seed in $SEEDS; do
  S="randomness.seed=$seed"
  case $WHICH in
    det|all) run det_mdc_seed$seed $DET $DET_LR $S
             run det_random_seed$seed $DET $DET_LR $S model.backbone.init_cfg=None ;;&
    seg|all) run seg_mdc_seed$seed $SEG $SEG_LR $S
             run seg_random_seed$seed $SEG $SEG_LR $S model.backbone.init_cfg=None ;;
  esac
done
for log in "$OUT"/*.log; do
  grep -q "Iter(val)" "$log" && echo "$(basename "$log" .log): $(grep -h "Iter(val)" "$log" | tail -1 | \
    grep -oE '(coco/bbox_mAP|coco/segm_mAP|mIoU|mAcc|aAcc): [0-9.]+' | tr '\n' ' ')"
done
