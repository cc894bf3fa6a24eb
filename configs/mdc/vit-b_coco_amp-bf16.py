# MDC ViT-B/16 on COCO with bf16 autocast (MMEngine's AmpOptimWrapper; no
# loss scaling needed). Same as `vit-b_coco.py --amp --amp-dtype bfloat16`:
#   bash tools/dist_train.sh configs/mdc/vit-b_coco_amp-bf16.py 8
# Needs a GPU (A100/H100 or newer for fast bf16); AmpOptimWrapper refuses
# to run on CPU.
_base_ = ['./vit-b_coco.py']

optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
