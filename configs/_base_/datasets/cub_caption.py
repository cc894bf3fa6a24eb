# CUB-200-2011 with Reed et al.'s text_c10 captions (10 per image) and the
# standard zero-shot class split (150 trainval / 50 test classes); see
# docs/data_preparation.md. Use split_mode='image' (train/test) for the
# official image split instead.
dataset_type = 'CUBCaption'
data_root = 'data/CUB_200_2011'
split_mode = 'class'

caption_tokenizer = dict(type='CLIPBPETokenizer')
max_caption_length = 40

# No flips: captions may mention left/right wings etc.
train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.5, 1.0),
         interpolation='bicubic', backend='pillow'),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer,
         max_length=max_caption_length, random_pick=True),
    dict(type='PackInputs',
         algorithm_keys=['gt_caption', 'caption_ids', 'image_id']),
]
test_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='Resize', scale=(224, 224), interpolation='bicubic',
         backend='pillow'),
    dict(type='TokenizeCaption', tokenizer=caption_tokenizer,
         max_length=max_caption_length, random_pick=False),
    dict(type='PackInputs',
         algorithm_keys=['gt_caption', 'caption_ids', 'image_id']),
]

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='trainval',
                 split_mode=split_mode, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test',
                 split_mode=split_mode, pipeline=test_pipeline,
                 test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
test_dataloader = val_dataloader

# METEOR needs Java (a JVM of ~1 GB starts with the metric); without
# `java` on PATH it is skipped with a warning at start and after every
# evaluation, and the other scores are computed.
val_evaluator = dict(type='CaptionMetric',
                     scores=['BLEU', 'METEOR', 'ROUGE-L', 'CIDEr'])
test_evaluator = val_evaluator
