# MDC ViT-B/16 on COCO with PyTorch FSDP (parameters, gradients and
# optimizer state sharded across GPUs) through MMEngine's FlexibleRunner:
#   bash tools/dist_train.sh configs/mdc/vit-b_coco_fsdp.py 8
# Each ViT layer is its own FSDP unit (`wrap_layers_by_name`); the caption
# decoder and head stay in the root unit (see mdc_plugin/engine/fsdp.py).
# Mixed precision is FSDP's own (bf16 compute and reduce); checkpoints hold
# the full (unsharded) state dict, so tools/test.py and tools/caption.py
# read them like any other. On CPU-only machines (gloo) tools/train.py sets
# strategy.model_wrapper.device_id='cpu' itself.
_base_ = ['./vit-b_coco.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(
        auto_wrap_policy=dict(type='wrap_layers_by_name',
                              layer_names=['TransformerEncoderLayer']),
        sharding_strategy='FULL_SHARD',
        mixed_precision=dict(param_dtype='bfloat16',
                             reduce_dtype='bfloat16',
                             buffer_dtype='float32'),
        use_orig_params=True),
    state_dict_cfg='full',
)
# Clip by the global gradient norm over all shards (plain OptimWrapper
# would clip each rank's shard by its own norm).
optim_wrapper = dict(type='ShardedClipOptimWrapper')
