# Captioned scenes of real Fashion-MNIST product photos (1-4 items on a 2x2
# grid, 64 px, grayscale, 5 captions each), composed on the fly from the
# official IDX files. data_root=None searches data/fashion-mnist, then
# /usr/share/datasets/fashion-mnist (`apt-get install dataset-fashion-mnist`);
# to read another folder, link it to data/fashion-mnist or override
#   train_dataloader.dataset.data_root=DIR val_dataloader.dataset.data_root=DIR
#   custom_hooks.0.train_dataset.data_root=DIR custom_hooks.0.val_dataset.data_root=DIR
# Train scenes use the 60k train items only; val/test scenes the 10k test
# items only. See docs/data_preparation.md.
dataset_type = 'FashionSceneCaption'
caption_tokenizer = dict(type='FashionTokenizer')
max_caption_length = 36  # longest caption: 33 words + bos + eos

train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer,
         max_length=max_caption_length, random_pick=True),
    dict(type='PackInputs',
         algorithm_keys=['gt_caption', 'caption_ids', 'image_id']),
]
test_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer,
         max_length=max_caption_length, random_pick=False),
    dict(type='PackInputs',
         algorithm_keys=['gt_caption', 'caption_ids', 'image_id']),
]

train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=None, split='train',
                 num_scenes=100000, pipeline=train_pipeline),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=None, split='val',
                 num_scenes=500, pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=None, split='test',
                 num_scenes=1000, pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
val_evaluator = dict(type='CaptionMetric', scores=['BLEU', 'ROUGE-L', 'CIDEr'])
test_evaluator = val_evaluator
