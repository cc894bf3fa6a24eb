# Blind control of image-text matching (docs/results.md, "Image-text
# matching"): the MDC Fashion config with the image tokens zeroed before the
# decoder (BlindImageTokens), so the decoder learns the caption language
# alone, with the same shape, data and budget. Its matching accuracy is what
# the language prior gives; its backbone stays at random init.
_base_ = ['./resnet18-w32_fashion.py']

model = dict(neck=dict(type='BlindImageTokens'))
