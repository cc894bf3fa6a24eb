# MDC ViT-B/16 on COCO with DeepSpeed ZeRO-2 (optimizer state and gradients
# sharded) and bf16, through MMEngine's FlexibleRunner. DeepSpeed is not a
# dependency of this project: `pip install deepspeed` on the GPU machines,
# then
#   bash tools/dist_train.sh configs/mdc/vit-b_coco_deepspeed.py 8
# Gradient clipping moves from the optim wrapper into the DeepSpeed config;
# the image batch is cast to bf16 with the model (`inputs_to_half`).
_base_ = ['./vit-b_coco.py']

runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=int(2e8),
        reduce_scatter=True,
        reduce_bucket_size=int(2e8),
        overlap_comm=True,
        contiguous_gradients=True),
    bf16=dict(enabled=True),
    inputs_to_half=['inputs'],
    gradient_clipping=1.0,
    train_micro_batch_size_per_gpu={{_base_.train_dataloader.batch_size}},
    gradient_accumulation_steps=1,
)
optim_wrapper = dict(
    _delete_=True,
    type='DeepSpeedOptimWrapper',
    optimizer={{_base_.optim_wrapper.optimizer}},
    paramwise_cfg={{_base_.optim_wrapper.paramwise_cfg}},
)
