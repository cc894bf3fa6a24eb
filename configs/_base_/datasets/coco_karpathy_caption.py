# COCO captions, Karpathy splits (113k train incl. restval / 5k val / 5k test)
# from Karpathy's dataset_coco.json; see docs/data_preparation.md. The LAVIS
# list files also work: ann_file='annotations/coco_karpathy_val.json' with
# split=None.
dataset_type = 'COCOKarpathyCaption'
data_root = 'data/coco'
ann_file = 'annotations/dataset_coco.json'
# dataset_coco.json's filepath ('train2014'/'val2014') is joined to this
img_prefix = ''

caption_tokenizer = dict(type='CLIPBPETokenizer')  # 49408 + pad + mask
max_caption_length = 32

# Caption-safe augmentation: mild crops, no flips (captions say left/right).
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
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 data_prefix=dict(img_path=img_prefix), split='train',
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 data_prefix=dict(img_path=img_prefix), split='val',
                 pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
test_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, ann_file=ann_file,
                 data_prefix=dict(img_path=img_prefix), split='test',
                 pipeline=test_pipeline, test_mode=True),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)

# METEOR needs Java (a JVM of ~1 GB starts with the metric); without
# `java` on PATH it is skipped with a warning at start and after every
# evaluation, and the other scores are computed.
val_evaluator = dict(type='CaptionMetric',
                     scores=['BLEU', 'METEOR', 'ROUGE-L', 'CIDEr'])
test_evaluator = val_evaluator
