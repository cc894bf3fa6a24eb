# As mcs_vit-tiny-vq_shapes.py, but with classifier-free guidance: for
# P_cond = 0.1 of the samples the whole condition is replaced by the
# condition [MASK] (the null condition). Same data, schedule and seed.
#   python tools/train.py configs/mc_diffusion/cfg_vit-tiny-vq_shapes.py \
#       --work-dir work_dirs/mc_diffusion/cfg
_base_ = ['./mcs_vit-tiny-vq_shapes.py']

model = dict(head=dict(guidance=dict(mode='cfg')))
