"""Checks run before the runner builds anything (``build_runner``).

A training run from scratch reads its pretrained / frozen weights only in
``init_weights``, after the whole model (and for VQKD a ViT-B) is built.
:func:`check_weight_files` finds every local weight file the model config
names and, if any is missing, fails at once naming the config key, the
variable that sets it and how to get the file.
"""
import os.path as osp
from typing import Any, Dict, List, Tuple

from .cfg_variables import copied_variables

__all__ = ['check_weight_files', 'VQKD_HINT']

#: How to get the VQKD weights of ``configs/mc_diffusion/mcs_vqkd-b16_cub.py``.
VQKD_HINT = (
    'VQKD weights: MMPretrain\'s BEiT v2 target generator, '
    'https://download.openmmlab.com/mmselfsup/1.x/target_generator_ckpt/'
    'vqkd_encoder.pth (keys encoder.*, encode_task_layer.*, quantize.*); '
    'from a BEiT v2 pretraining checkpoint (keys target_generator.*) also '
    'set model.backbone.init_cfg.prefix=target_generator.encoder. and '
    'model.neck.checkpoint_prefix=target_generator.')


def _weight_paths(node: Any, prefix: str,
                  vq: bool = False) -> List[Tuple[str, str, bool]]:
    """``(key, path, is_vqkd)`` of every ``checkpoint`` string under
    ``node``."""
    out = []
    if isinstance(node, dict):
        vq = vq or (node.get('type') == 'VQTokenizerNeck'
                    and node.get('tokenizer', 'vqkd') == 'vqkd'
                    and node.get('source') == 'frozen')
        for key, child in node.items():
            path = f'{prefix}.{key}'
            if key == 'checkpoint' and isinstance(child, str):
                out.append((path, child, vq))
            else:
                out.extend(_weight_paths(child, path, vq))
    elif isinstance(node, (list, tuple)):
        for i, child in enumerate(node):
            out.extend(_weight_paths(child, f'{prefix}.{i}', vq))
    return out


def check_weight_files(cfg: Any) -> None:
    """Fail early if a local weight file named in ``cfg.model`` is missing.

    Skipped when the run loads a full checkpoint (``load_from``), which
    replaces those weights. URLs and ``'torchvision://'``-style names are
    not checked.

    Args:
        cfg: the merged config (``mmengine.Config`` or dict).

    Raises:
        FileNotFoundError: naming each missing file's config key.
    """
    if cfg.get('load_from'):
        return
    model = cfg.get('model')
    if hasattr(model, 'to_dict'):
        model = model.to_dict()
    found = _weight_paths(model or {}, 'model')
    missing = [(k, p, vq) for k, p, vq in found
               if '://' not in p and not osp.isfile(osp.expanduser(p))]
    if not missing:
        return
    variables: Dict[str, str] = {}
    filename = getattr(cfg, 'filename', None)
    if filename and osp.isfile(filename):
        for name in copied_variables(filename):
            value = cfg.get(name)
            if isinstance(value, str):
                variables.setdefault(value, name)
    vq_paths = {p for _, p, vq in missing if vq}
    lines = []
    for key, path, _ in missing:
        via = variables.get(path)
        how = f'--cfg-options {via}=PATH (sets {key})' if via else \
            f'--cfg-options {key}=PATH'
        lines.append(f'  {key} = {path!r} is not a file; pass {how}')
    msg = 'weight files named in the config are missing:\n' + \
        '\n'.join(lines)
    if vq_paths or any(osp.basename(p).startswith('vqkd')
                       for _, p, _ in missing):
        msg += '\n' + VQKD_HINT
    raise FileNotFoundError(msg)
