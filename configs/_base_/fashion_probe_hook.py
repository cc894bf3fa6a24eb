# The official Fashion-MNIST probe on frozen features: fit on 10,000 train
# items, score on all 10,000 official test items, each item centred on a
# 64 px canvas (scene scale). Reported beside the run's own starting
# weights (random init) and raw pixels, measured with the same probe.
fashion_probe_pipeline = [dict(type='LoadCaptionImage'), dict(type='PackInputs')]
custom_hooks = [
    dict(type='LinearProbeHook',
         train_dataset=dict(type='FashionMNISTItems',
                            data_root=None, split='train',
                            num_items=10000),
         val_dataset=dict(type='FashionMNISTItems',
                          data_root=None, split='test',
                          num_items=None),
         pipeline=fashion_probe_pipeline,
         pooling='mean',
         baselines=['init', 'pixels']),
]
