# Blind control of image-text matching for Cap: the Cap Fashion config with
# the image tokens zeroed before the decoder (BlindImageTokens): a text-only
# autoregressive caption model, same shape, data and budget.
_base_ = ['./cap_resnet18-w32_fashion.py']

model = dict(neck=dict(type='BlindImageTokens'))
