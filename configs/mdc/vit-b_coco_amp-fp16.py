# MDC ViT-B/16 on COCO with fp16 autocast and dynamic loss scaling
# (MMEngine's AmpOptimWrapper), for GPUs without fast bf16 (V100, T4):
#   bash tools/dist_train.sh configs/mdc/vit-b_coco_amp-fp16.py 8
# The head computes its loss in float32 (logits.float()), so the masked
# cross-entropy weighted by 1/t does not overflow in fp16. Gradient
# clipping (max_norm 1.0) acts on the unscaled gradients.
_base_ = ['./vit-b_coco.py']

optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
                     loss_scale='dynamic')
