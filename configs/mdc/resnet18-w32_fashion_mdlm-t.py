# MDC on Fashion scenes with MDLM's masking range t in [1e-3, 1] instead of
# the paper's [0.5, 1]; everything else as configs/mdc/resnet18-w32_fashion.py.
_base_ = ['./resnet18-w32_fashion.py']

model = dict(head=dict(t_range=(1e-3, 1.0)))
