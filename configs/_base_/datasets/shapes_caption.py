# The embedded synthetic shapes caption set (generated locally on first use
# and cached under data_root; nothing is downloaded). 64x64 images, two
# coloured shapes each, 5 captions per image, 10 shape-set classes (label option).
# Image normalisation lives in the model's data_preprocessor (to_rgb=True).
dataset_type = 'SyntheticShapesCaption'
data_root = 'data/shapes'
shapes_cfg = dict(
    num_images=dict(train=5000, val=500, test=500), img_size=64, seed=0)

# Word-level tokenizer shipped with the package (33 ids incl. specials);
# caption heads reuse these two via {{_base_.caption_tokenizer}} and
# {{_base_.max_caption_length}}.
caption_tokenizer = dict(type='ShapesTokenizer')
max_caption_length = 16

# No flips or crops: captions name left/right/above/below.
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
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline, **shapes_cfg),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='val',
                 pipeline=test_pipeline, test_mode=True, **shapes_cfg),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
test_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 pipeline=test_pipeline, test_mode=True, **shapes_cfg),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)

# METEOR needs Java and is slow: left out of the CPU default.
val_evaluator = dict(type='CaptionMetric', scores=['BLEU', 'ROUGE-L', 'CIDEr'])
test_evaluator = val_evaluator
