# MDC on Fashion scenes with the loss on the words and the first EOS only
# (padding_weight=0, as Cap's loss); the padding EOS stays in the input,
# masked like any other position. Everything else as
# configs/mdc/resnet18-w32_fashion.py, its sampler included (surest-first
# in blocks of 5). The padding is never a target: the first EOS ends the
# caption and what follows it is dropped.
_base_ = ['./resnet18-w32_fashion.py']

model = dict(head=dict(padding_weight=0.0))
