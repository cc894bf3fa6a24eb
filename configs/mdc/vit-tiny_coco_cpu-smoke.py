# CPU smoke test of the real COCO pipeline (84 s of CPU time measured with
# 64 + 16 images; about a minute on an idle 2-core CPU, 396 s on one busy
# with four training runs): vit-b_coco.py's data files, annotation parsing, image
# loading and augmentation, CLIP BPE captions, masked-diffusion head,
# sampling, CaptionMetric (BLEU, METEOR with Java, ROUGE-L, CIDEr),
# checkpointing, with a tiny model at 64 px, 64 train and 16 val/test
# images, 1 epoch and 2 sampling steps. Numbers mean nothing; it shows the
# data and the code work before a GPU run.
#   python tools/train.py configs/mdc/vit-tiny_coco_cpu-smoke.py
#   python tools/train.py configs/mdc/vit-tiny_coco_cpu-smoke.py \
#       --cfg-options data_root=/data/coco       # data elsewhere
# Shrinking vit-b_coco.py in your own config: the backbone arch needs
# _delete_=True (its base value is the string 'b'), as below.
_base_ = ['./vit-b_coco.py']

img_size = 64
model = dict(
    backbone=dict(
        # _delete_: the base value is the string 'b'
        arch=dict(_delete_=True, embed_dims=192, num_layers=2, num_heads=3,
                  feedforward_channels=768),
        img_size=img_size, patch_size=16),
    head=dict(image_dims=192, embed_dims=192, num_layers=2, num_heads=3,
              sampler=dict(steps=2)),
)

_tokenize = dict(type='TokenizeCaption',
                 tokenizer={{_base_.caption_tokenizer}},
                 max_length={{_base_.max_caption_length}})
_pack = dict(type='PackInputs',
             algorithm_keys=['gt_caption', 'caption_ids', 'image_id'])
train_dataloader = dict(
    batch_size=8, num_workers=2, persistent_workers=False,
    dataset=dict(
        indices=64,
        pipeline=[
            dict(type='LoadCaptionImage'),
            dict(type='RandomResizedCrop', scale=img_size,
                 crop_ratio_range=(0.5, 1.0), interpolation='bicubic',
                 backend='pillow'),
            dict(_tokenize, random_pick=True), _pack
        ]))
_test_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='Resize', scale=(img_size, img_size), interpolation='bicubic',
         backend='pillow'),
    dict(_tokenize, random_pick=False), _pack
]
val_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=False,
                      dataset=dict(indices=16, pipeline=_test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]
default_hooks = dict(logger=dict(interval=2))
