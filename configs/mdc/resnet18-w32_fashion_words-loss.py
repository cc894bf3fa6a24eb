# MDC on Fashion scenes with the loss on the words and the first EOS only
# (padding_weight=0, as Cap's loss); the padding EOS stays in the input,
# masked like any other position. Everything else as
# configs/mdc/resnet18-w32_fashion.py. The padding is never a target, so
# the caption length is found by decoding in semi-autoregressive blocks
# (the first EOS ends the caption; what follows it is dropped).
_base_ = ['./resnet18-w32_fashion.py']

model = dict(head=dict(
    padding_weight=0.0,
    sampler=dict(remasking='low_confidence', block_length=9)))
