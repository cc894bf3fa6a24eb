# MDC on Fashion scenes with the padding after the first EOS down-weighted
# to 0.1 in the loss (the words and the first EOS weigh 1): the model still
# learns where captions end, but most of the loss is on words. Everything
# else as configs/mdc/resnet18-w32_fashion.py.
_base_ = ['./resnet18-w32_fashion.py']

model = dict(head=dict(padding_weight=0.1))
