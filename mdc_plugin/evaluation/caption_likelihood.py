"""Per-token likelihood of reference captions under a caption head.

The numbers that put an autoregressive and a masked-diffusion captioner on
one scale: nats per real token (the words and the first eos, the tokens
Cap's loss counts), from each head's ``token_nll`` (exact teacher forcing
for Cap; the exact left-to-right chain rule for MDC), and for MDC also the
Monte-Carlo negative ELBO of the eos-padded caption (``elbo_nll``).
"""
from typing import Any, Callable, Dict, Optional

import torch


@torch.no_grad()
def caption_likelihood(model: torch.nn.Module, dataloader,
                       elbo_draws: int = 16, seed: int = 0,
                       max_batches: Optional[int] = None,
                       on_batch: Optional[Callable[[int], None]] = None
                       ) -> Dict[str, Any]:
    """Score every reference caption (``caption_ids``) of ``dataloader``.

    Args:
        model: an :class:`ImageCaptioner` whose head has ``token_nll``.
        dataloader: batches whose samples carry ``caption_ids``.
        elbo_draws: masks per caption for the ELBO (heads with
            ``elbo_nll``); 0 skips it.
        seed: seed of the ELBO's masks (batch i uses ``seed + i``).
        max_batches: stop after this many batches.
        on_batch: called with each batch's size (progress).

    Returns:
        ``captions``, ``real_tokens``, ``nll_per_real_token`` (nats) and,
        with an ELBO, ``elbo_per_real_token`` (all padded positions' nats
        divided by the real tokens: an upper bound on the padded caption's
        NLL on the same scale) and ``elbo_per_position``.

    Raises:
        TypeError: the head cannot score captions.
    """
    head = getattr(model, 'head', None)
    if not hasattr(head, 'token_nll'):
        raise TypeError(f'{type(model).__name__} with head '
                        f'{type(head).__name__} cannot score captions '
                        '(no token_nll): use a Cap/CapPa or MDC checkpoint')
    with_elbo = elbo_draws > 0 and hasattr(head, 'elbo_nll')
    model.eval()
    captions = real_tokens = positions = 0
    nll_sum = elbo_sum = 0.0
    for i, batch in enumerate(dataloader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'])
        ids = head.caption_ids(data['data_samples'], feats.device)
        real = head.real_token_mask(ids)
        nll_sum += float((head.token_nll(feats, ids) * real).sum())
        real_tokens += int(real.sum())
        captions += ids.shape[0]
        if with_elbo:
            elbo_sum += float(head.elbo_nll(feats, ids, elbo_draws,
                                            seed + i).sum())
            positions += ids.shape[0] * (ids.shape[1] - 1)
        if on_batch is not None:
            on_batch(ids.shape[0])
    if not captions:
        raise ValueError('caption_likelihood: the dataloader gave no '
                         'captions')
    out = dict(captions=captions, real_tokens=real_tokens,
               nll_per_real_token=nll_sum / real_tokens,
               nll_order=('left_to_right' if hasattr(head, 'elbo_nll')
                          else 'autoregressive'))
    if with_elbo:
        out.update(elbo_draws=elbo_draws,
                   elbo_per_real_token=elbo_sum / real_tokens,
                   elbo_per_position=elbo_sum / positions)
    return out
