# After validation, fit a linear probe on frozen backbone features of the
# train split and report val accuracy (probe/accuracy), so a pretraining run
# shows whether its features learned something. Beside it: the same probe
# on the run's own starting weights (random init, measured before the first
# iteration), with a one-line verdict at the end. Add 'pixels' to the
# baselines for a raw-pixel row too (about 2 min more on 2 CPU cores).
custom_hooks = [
    dict(type='LinearProbeHook',
         pipeline=[dict(type='LoadCaptionImage'), dict(type='PackInputs')],
         pooling='mean',
         baselines=['init']),
]
