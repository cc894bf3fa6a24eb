# After validation, fit a linear probe on frozen backbone features of the
# train split and report val accuracy (probe/accuracy), so a pretraining run
# shows whether its features learned something.
custom_hooks = [
    dict(type='LinearProbeHook',
         pipeline=[dict(type='LoadCaptionImage'), dict(type='PackInputs')],
         pooling='mean'),
]
