# CapPa baseline on Fashion scenes (Tschannen et al. 2023, big_vision's
# recipe): Cap with 75% of the samples decoded in parallel from all-mask
# inputs (bidirectional attention, every token predicted from the image
# alone). The published model closest to MDC; everything else as
# configs/baselines/cap_resnet18-w32_fashion.py.
_base_ = ['./cap_resnet18-w32_fashion.py']

model = dict(head=dict(parallel_prob=0.75))
