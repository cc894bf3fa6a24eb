# The README's main job: MDC pretraining on the Fashion-MNIST subset shipped
# in the package (real product photos, official IDX files, no download, no
# system package), the same model, objective and sampler as
# resnet18-w32_fashion.py. data_root='embedded' reads the shipped subset even
# where the full set is installed, so the numbers are the same on every
# machine: train scenes from the first 10,000 official train items, val
# scenes and the probe's test split from the first 2,000 official test items.
# The run ends with the verdict line: this backbone against its starting
# weights (random init) and raw pixels on the held-out official test items.
#   python tools/train.py configs/mdc/resnet18-w32_fashion_embedded.py
# Budget: chosen from the measured curve in docs/results.md ("The main job").
_base_ = ['./resnet18-w32_fashion.py']

data_root = 'embedded'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
custom_hooks = [
    dict(type='LinearProbeHook',
         train_dataset=dict(type='FashionMNISTItems', data_root=data_root,
                            split='train', num_items=10000),
         val_dataset=dict(type='FashionMNISTItems', data_root=data_root,
                          split='test', num_items=None),
         pipeline={{_base_.fashion_probe_pipeline}},
         pooling='mean',
         baselines=['init', 'pixels']),
]
