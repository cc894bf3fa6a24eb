"""MDC: image-conditioned masked-diffusion caption head.

Training (MDLM / LLaDA style): draw t per sample, mask every caption token
independently with probability t, let a bidirectional decoder that
cross-attends to all image tokens predict the originals, and weight the
cross-entropy on masked positions by 1/t (the continuous-time ELBO of the
log-linear masking schedule).

Length: captions are padded with EOS (as LLaDA does) and the padding EOS
tokens are masked and predicted like any other token, so the model learns
where captions end without a separate length predictor; decoding stops at
the first EOS. The leading BOS stays visible and is never predicted.
``padding_weight`` scales the loss on the padding after the first EOS
(0: words and the first EOS only, as Cap's loss).

Decoding: ``remasking`` orders the commits (surest first or random);
``block_length`` decodes LLaDA's semi-autoregressive blocks left to right,
which keeps the surest-first order from committing the (always sure)
padding EOS before the words (``block_length=1`` is strictly left to
right).
"""
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..captioners.scoring import normalize_log_likelihood
from ..diffusion import commit_counts, merge_sampler_cfg, softmax_draw
from ..tokenizers import CaptionTokenizer
from .base_caption_head import CrossAttentionCaptionHead
from .block_decoding import CACHE_REFRESHES, ActiveBatch
from .caption_vocabulary import check_vocabulary

LOSS_WEIGHTINGS = ('elbo', 'uniform')
REMASKINGS = ('low_confidence', 'random')
#: How ``model.score`` reads a caption's likelihood (see ``log_likelihood``).
SCORE_METHODS = ('elbo', 'masked_once', 'one_at_a_time', 'left_to_right')


@MODELS.register_module()
class MaskedDiffusionCaptionHead(CrossAttentionCaptionHead):
    """Masked-diffusion caption decoder (bidirectional, cross-attention).

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead`.
        image_dims: width C of the image tokens the decoder attends to.
        t_range: (t_min, t_max) of the masking ratio t ~ U[t_min, t_max];
            MDLM uses (1e-3, 1). Narrow ranges give the masking-ratio
            ablation.
        stratified_t: antithetic t across the batch (lower variance).
        loss_weighting: ``'elbo'`` weights masked-token cross-entropy by 1/t
            and averages over all generated positions (the ELBO);
            ``'uniform'`` is the plain mean over masked tokens (BERT-like).
        padding_weight: loss weight of the padding positions after the
            first EOS (1: every position, the ELBO of the padded caption;
            0: the words and the first EOS only). Padding stays in the
            input, masked like any other position.
        sampler: defaults for :meth:`sample`: ``steps`` (int), ``temperature``
            (0 = greedy), ``schedule`` ('uniform' or 'cosine'), ``remasking``
            ('low_confidence' or 'random'), ``block_length`` (None: one
            block; k: semi-autoregressive blocks of k positions, widened
            to ceil((L-1) / steps) when there are fewer steps than blocks),
            ``threshold`` (0: off; t in (0, 1]: Fast-dLLM's parallel
            decoding, each step commits every masked position of the block
            whose confidence is >= t, at least the surest one, so a block
            takes as many steps as it needs and ``steps`` only sets the
            block width), ``early_stop`` (after each block, a caption that
            has committed its eos and everything before it leaves the
            batch, and sampling stops when none is left: the same captions
            for greedy low-confidence decoding; random remasking and
            temperature > 0 draw for fewer rows, so their draws differ),
            ``vocabulary`` (None, or the ids of a caption
            vocabulary, :mod:`.caption_vocabulary`: exact for the
            captions it can spell), ``block_cache`` (Fast-dLLM's dual
            cache, approximate: the first step of a block runs the whole
            caption and keeps every position's keys and values; the block's
            later steps recompute only its own positions against them),
            ``cache_refresh`` (with the block cache: ``'full'``, each block
            starts with a full pass; ``'committed'``, only the first does
            and a later block starts with a pass over the positions
            committed since they were last encoded and the block itself),
            ``refresh_ahead`` (with the block cache: every cached pass also
            recomputes this many positions after the block; 0: none), see
            :mod:`.block_decoding`.
        **kwargs: decoder shape, see :class:`CrossAttentionCaptionHead`.
    """

    #: How the decoder reads a caption (metrics probing it use this).
    caption_reading = 'masked'

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, image_dims: int,
                 t_range: Tuple[float, float] = (1e-3, 1.0),
                 stratified_t: bool = True, loss_weighting: str = 'elbo',
                 padding_weight: float = 1.0,
                 sampler: Optional[dict] = None, **kwargs) -> None:
        super().__init__(tokenizer, max_length, memory_dims=image_dims,
                         **kwargs)
        t_min, t_max = t_range
        if not 0 < t_min <= t_max <= 1:
            raise ValueError(f't_range={t_range} must satisfy '
                             '0 < t_min <= t_max <= 1')
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f'loss_weighting={loss_weighting!r} is not one '
                             f'of {LOSS_WEIGHTINGS}')
        if not 0 <= padding_weight <= 1:
            raise ValueError(f'padding_weight={padding_weight} not in [0, 1]')
        self.t_range = (float(t_min), float(t_max))
        self.stratified_t = stratified_t
        self.loss_weighting = loss_weighting
        self.padding_weight = float(padding_weight)
        self.sampler_cfg = dict(steps=8, temperature=0.0, schedule='uniform',
                                remasking='low_confidence', block_length=None,
                                threshold=0.0, early_stop=True,
                                vocabulary=None, block_cache=False,
                                cache_refresh='full', refresh_ahead=0)
        self.update_sampler_cfg(sampler, type(self).__name__)
        #: Defaults of ``model.score`` (see :meth:`log_likelihood`).
        self.score_cfg = dict(method='elbo', draws=8, seed=0,
                              normalize='sum', shared_masks=True)

    def check_sampler_cfg(self, cfg: dict) -> None:
        """Known remasking; steps, schedule and blocks that commit every
        token."""
        owner = 'MaskedDiffusionCaptionHead'
        if cfg['remasking'] not in REMASKINGS:
            raise ValueError(
                f'{owner}: sampler.remasking must be '
                "'low_confidence' or 'random', got "
                f"{cfg['remasking']!r}")
        threshold = cfg['threshold']
        if isinstance(threshold, bool) or not isinstance(
                threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ValueError(f'{owner}: sampler.threshold={threshold!r} must '
                             'be a number in [0, 1] (0: off)')
        if threshold and cfg['remasking'] == 'random':
            raise ValueError(f'{owner}: sampler.threshold commits by '
                             "confidence; it needs remasking='low_confidence'")
        for key in ('early_stop', 'block_cache'):
            if not isinstance(cfg[key], bool):
                raise ValueError(f'{owner}: sampler.{key} must be True or '
                                 f'False, got {cfg[key]!r}')
        if cfg['cache_refresh'] not in CACHE_REFRESHES:
            raise ValueError(f'{owner}: sampler.cache_refresh must be one '
                             f'of {CACHE_REFRESHES}, got '
                             f"{cfg['cache_refresh']!r}")
        if cfg['cache_refresh'] != 'full' and not cfg['block_cache']:
            raise ValueError(f'{owner}: sampler.cache_refresh='
                             f"{cfg['cache_refresh']!r} refreshes the block "
                             'cache; it needs block_cache=True')
        ahead = cfg['refresh_ahead']
        if isinstance(ahead, bool) or not isinstance(ahead, int) or \
                ahead < 0:
            raise ValueError(f'{owner}: sampler.refresh_ahead={ahead!r} must '
                             'be an int >= 0')
        if ahead and not cfg['block_cache']:
            raise ValueError(f'{owner}: sampler.refresh_ahead={ahead} '
                             'refreshes the block cache; it needs '
                             'block_cache=True')
        check_vocabulary(cfg['vocabulary'], self.vocab_size, owner)
        self.block_schedule(cfg['steps'], cfg['schedule'],
                            cfg['block_length'])  # checks all three

    def block_schedule(self, steps: int, schedule: str,
                       block_length: Optional[int]
                       ) -> List[Tuple[int, int, List[int]]]:
        """Split the L-1 caption positions into blocks decoded left to right.

        ``steps`` is the total: each block gets an equal share (earlier
        blocks one more where it does not divide), spent by ``schedule``.
        With fewer steps than blocks, the blocks are widened to
        ``ceil((L-1) / steps)`` positions, so every block gets a step and
        the step count (the decoder passes) stays what was asked.

        Returns:
            ``(start, end, counts)`` per block: positions ``start..end-1``
            committed ``counts[s]`` at step s.

        Raises:
            ValueError: a block length that is not None or an int >= 1, or
                steps < 1.
        """
        positions = self.max_length - 1
        size = positions if block_length is None else block_length
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f'sampler.block_length={block_length!r} must be '
                             'None or an int >= 1')
        if isinstance(steps, bool) or not isinstance(steps, int) or \
                steps < 1:
            raise ValueError(f'sampler.steps={steps!r} must be an int >= 1')
        size = max(size, -(-positions // steps))
        starts = list(range(1, self.max_length, size))
        base, extra = divmod(steps, len(starts))
        blocks = []
        for i, start in enumerate(starts):
            end = min(start + size, self.max_length)
            counts = commit_counts(end - start, base + (i < extra), schedule)
            blocks.append((start, end, counts))
        return blocks

    # ----------------------------------------------------------------- train
    def sample_t(self, batch: int, device) -> Tensor:
        """(B,) masking ratios in ``t_range`` (antithetic if stratified)."""
        u = torch.rand(batch, device=device)
        if self.stratified_t:
            u = (u[:1] + torch.arange(batch, device=device) / batch) % 1
        t_min, t_max = self.t_range
        return t_min + (t_max - t_min) * u

    def loss(self, image_tokens: Tensor, data_samples: Sequence) -> dict:
        """image_tokens (B, N, C) -> ``dict(loss=...)`` (scalar)."""
        targets = self.targets(self.caption_ids(data_samples,
                                                image_tokens.device))
        batch, length = targets.shape
        t = self.sample_t(batch, targets.device)
        masked = torch.rand(batch, length, device=targets.device) < t[:, None]
        masked[:, 0] = False  # bos is the fixed prompt
        inputs = targets.masked_fill(masked, self.tokenizer.mask_id)
        hidden, _ = self.decoder(inputs, memory=image_tokens)
        # Project only the masked positions: the others carry no loss.
        logits = self.logits(hidden[masked])
        ce = F.cross_entropy(logits.float(), targets[masked],
                             reduction='none')
        if self.padding_weight == 1.0:
            if self.loss_weighting == 'elbo':
                weights = (1.0 / t)[:, None].expand(batch, length)[masked]
                loss = (ce * weights).sum() / (batch * (length - 1))
            else:
                loss = ce.sum() / masked.sum().clamp(min=1)
        else:
            position_weight = self.position_weights(targets)
            weights = position_weight[masked]
            if self.loss_weighting == 'elbo':
                weights = weights * (1.0 / t)[:, None].expand(
                    batch, length)[masked]
                total = position_weight[:, 1:].sum()
            else:
                total = position_weight[masked].sum()
            loss = (ce * weights).sum() / total.clamp(min=1e-6)
        with torch.no_grad():
            acc = (logits.argmax(-1) == targets[masked]).float().mean()
        return dict(loss=loss, mask_acc=acc, mask_ratio=masked.float().mean())

    def position_weights(self, targets: Tensor) -> Tensor:
        """(B, L) eos-padded targets -> (B, L) loss weights: 1 on the words
        and the first eos, ``padding_weight`` after it, 0 on bos."""
        eos = targets == self.tokenizer.eos_id
        after_first_eos = (eos.long().cumsum(1) - eos.long()) > 0
        weights = torch.ones_like(targets, dtype=torch.float)
        weights[after_first_eos] = self.padding_weight
        weights[:, 0] = 0
        return weights

    # ------------------------------------------------------------ likelihood
    @torch.no_grad()
    def token_nll(self, image_tokens: Tensor, caption_ids: Tensor,
                  upto: Optional[int] = None) -> Tensor:
        """Exact chain-rule NLL in left-to-right order.

        Position i is predicted with the positions before it given and every
        position from i on masked, which is the likelihood of decoding
        strictly left to right (one token per step). image_tokens (B, N, C),
        caption_ids (B, L) -> (B, L) nats (0 at bos); L-1 decoder passes,
        or ``upto - 1`` when only positions below ``upto`` are wanted (the
        rest stay 0).
        """
        targets = self.targets(caption_ids)
        batch, length = targets.shape
        memory_kv = self.decoder.memory_kv(image_tokens)
        nll = torch.zeros(batch, length, device=targets.device)
        positions = torch.arange(length, device=targets.device)
        for i in range(1, min(length, upto or length)):
            inputs = targets.masked_fill(positions[None] >= i,
                                         self.tokenizer.mask_id)
            hidden, _ = self.decoder(inputs, memory_kv=memory_kv)
            logits = self.logits(hidden[:, i]).float()
            nll[:, i] = F.cross_entropy(logits, targets[:, i],
                                        reduction='none')
        return nll

    @torch.no_grad()
    def elbo_nll(self, image_tokens: Tensor, caption_ids: Tensor,
                 draws: int = 16, seed: int = 0,
                 group_size: int = 1) -> Tensor:
        """Monte-Carlo negative ELBO of the eos-padded caption, in nats.

        Averages ``sum over masked positions of CE / t`` over ``draws``
        masks with t ~ U(0, 1] (stratified over the draws), an upper bound
        on -log p of the whole padded caption whatever ``t_range`` the head
        was trained on. One decoder pass per draw; the draws come from a
        generator seeded with ``seed`` (the global RNG is untouched).
        ``group_size`` g: consecutive groups of g rows (the candidate
        captions of one image) share their t and masks, so the difference
        between two candidates' estimates has far less variance (common
        random numbers); g=1 draws every row on its own.

        Returns:
            (B,) nats per caption (all L-1 positions, padding included).
        """
        if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
            raise ValueError(f'MaskedDiffusionCaptionHead: draws={draws!r} '
                             'must be an int >= 1')
        targets = self.targets(caption_ids)
        batch, length = targets.shape
        if group_size < 1 or batch % group_size:
            raise ValueError(f'group_size={group_size} must divide the '
                             f'{batch} rows')
        groups = batch // group_size
        device = targets.device
        gen = torch.Generator(device=device).manual_seed(seed)
        memory_kv = self.decoder.memory_kv(image_tokens)
        offset = torch.rand(groups, generator=gen, device=device)
        total = torch.zeros(batch, device=device)
        for d in range(draws):
            t = 1.0 - ((offset + d / draws) % 1.0)  # in (0, 1]
            masked = torch.rand(groups, length, generator=gen,
                                device=device) < t[:, None]
            t = t.repeat_interleave(group_size)
            masked = masked.repeat_interleave(group_size, 0)
            masked[:, 0] = False
            inputs = targets.masked_fill(masked, self.tokenizer.mask_id)
            hidden, _ = self.decoder(inputs, memory_kv=memory_kv)
            ce = F.cross_entropy(self.logits(hidden).float().transpose(1, 2),
                                 targets, reduction='none')
            total += (ce * masked).sum(1) / t
        return total / draws

    @torch.no_grad()
    def log_likelihood(self, image_tokens: Tensor, caption_ids: Tensor,
                       method: str = 'elbo', draws: int = 8, seed: int = 0,
                       normalize: str = 'sum', group_size: int = 1,
                       shared_masks: bool = True) -> Tensor:
        """A log-likelihood score of each caption given its image.

        image_tokens (R, N, C), caption_ids (R, L) -> (R,) nats, summed over
        the words and first eos (``normalize='mean'``: divided by their
        number, n). ``method`` (decoder passes per caption in brackets):

        * ``'elbo'`` [``draws``]: minus the Monte-Carlo negative ELBO of the
          eos-padded caption (:meth:`elbo_nll`, seeded by ``seed``; rows in
          groups of ``group_size`` share their masks unless
          ``shared_masks=False``): a lower bound on
          log p of all L-1 positions, the padding after the first eos
          included (``'mean'`` still divides by n); its expectation does
          not depend on ``draws``, its noise does.
        * ``'masked_once'`` [1]: every word and the first eos masked at
          once, the padding after it visible (so the length is given); the
          sum of each position's log-probability. A cheap heuristic.
        * ``'one_at_a_time'`` [n]: each real token masked alone with every
          other visible (the pseudo-log-likelihood). A heuristic.
        * ``'left_to_right'`` [n]: the exact chain rule in left-to-right
          order (:meth:`token_nll`), the likelihood of decoding one token
          per step left to right.
        """
        if method not in SCORE_METHODS:
            raise ValueError(f'MaskedDiffusionCaptionHead: score method '
                             f'{method!r} is not one of {SCORE_METHODS}')
        real = self.real_token_mask(caption_ids)
        upto = int(real.nonzero()[:, 1].max()) + 1
        if method == 'elbo':
            total = -self.elbo_nll(image_tokens, caption_ids, draws, seed,
                                   group_size if shared_masks else 1)
        elif method == 'left_to_right':
            total = -(self.token_nll(image_tokens, caption_ids, upto) *
                      real).sum(1)
        elif method == 'masked_once':
            total = -(self._masked_nll(image_tokens, caption_ids, real) *
                      real).sum(1)
        else:
            nll = torch.zeros_like(real, dtype=torch.float)
            for i in range(1, upto):
                only_i = torch.zeros_like(real)
                only_i[:, i] = True
                nll[:, i] = self._masked_nll(image_tokens, caption_ids,
                                             only_i & real)[:, i]
            total = -(nll * real).sum(1)
        return normalize_log_likelihood(total, real, normalize)

    def _masked_nll(self, image_tokens: Tensor, caption_ids: Tensor,
                    masked: Tensor) -> Tensor:
        """(R, L) nats of each position predicted with ``masked`` (R, L)
        replaced by the mask token and the rest visible; one decoder pass.
        """
        targets = self.targets(caption_ids)
        inputs = targets.masked_fill(masked, self.tokenizer.mask_id)
        hidden, _ = self.decoder(inputs, memory=image_tokens)
        return F.cross_entropy(self.logits(hidden).float().transpose(1, 2),
                               targets, reduction='none')

    # ---------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(self, image_tokens: Tensor, steps: Optional[int] = None,
               temperature: Optional[float] = None,
               schedule: Optional[str] = None,
               remasking: Optional[str] = None,
               block_length: Optional[int] = None,
               threshold: Optional[float] = None,
               early_stop: Optional[bool] = None,
               vocabulary=None, block_cache: Optional[bool] = None,
               cache_refresh: Optional[str] = None,
               refresh_ahead: Optional[int] = None,
               return_trace: bool = False):
        """Decode captions from all-mask in ``steps`` denoising steps.

        Each step predicts the masked positions of the current block and
        commits the ``k_s`` most confident predictions
        (``remasking='low_confidence'``) or ``k_s`` random ones; ``k_s``
        follows ``schedule`` so that every position of the block is
        committed after its last step. With ``block_length=None`` the block
        is the whole caption; ``steps = L - 1`` is one token per step.
        ``threshold``, ``early_stop``, ``vocabulary``, ``block_cache``,
        ``cache_refresh`` and ``refresh_ahead``: see the class docstring.
        ``None`` keeps the head's default for every option.

        Args:
            image_tokens: (B, N, C).
        Returns:
            (B, L) token ids, and with ``return_trace`` a list of (B, L)
            id tensors after each step.
        """
        cfg = merge_sampler_cfg(
            self.sampler_cfg, dict(steps=steps, temperature=temperature,
                                   schedule=schedule, remasking=remasking,
                                   block_length=block_length,
                                   threshold=threshold, early_stop=early_stop,
                                   vocabulary=vocabulary,
                                   block_cache=block_cache,
                                   cache_refresh=cache_refresh,
                                   refresh_ahead=refresh_ahead),
            type(self).__name__)
        self.check_sampler_cfg(cfg)
        tok = self.tokenizer
        batch, length = image_tokens.shape[0], self.max_length
        device = image_tokens.device
        ids = torch.full((batch, length), tok.mask_id, device=device)
        ids[:, 0] = tok.bos_id
        if not batch:
            return (ids, []) if return_trace else ids
        vocab, weight, forbidden = self.output_subset(cfg['vocabulary'],
                                                      device)
        # Additive (V',) bias: -inf on ids that must never be emitted.
        bias = torch.zeros(forbidden.shape, device=device).masked_fill(
            forbidden, float('-inf'))
        batch_state = ActiveBatch(ids, self.decoder.memory_kv(image_tokens),
                                  self.decoder, cfg['block_cache'],
                                  cfg['cache_refresh'], cfg['refresh_ahead'])
        trace = []
        record = (lambda: trace.append(batch_state.snapshot())) \
            if return_trace else None
        blocks = self.block_schedule(cfg['steps'], cfg['schedule'],
                                     cfg['block_length'])
        for start, end, counts in blocks:
            window = batch_state.window(start, end)
            if cfg['threshold']:
                self._fill_block_by_threshold(batch_state.ids, start, end,
                                              window, weight, bias, vocab,
                                              cfg, record)
            else:
                self._fill_block(batch_state.ids, start, end, counts, window,
                                 weight, bias, vocab, cfg, record)
            if cfg['early_stop'] and end < length:
                done = self._finished_rows(batch_state.ids)
                if bool(done.any()):
                    # Nothing left can change these captions: pad them and
                    # decode the others without them.
                    finished = batch_state.ids[done]
                    finished[finished == tok.mask_id] = tok.eos_id
                    batch_state.ids[done] = finished
                    batch_state.retire(done)
                if not len(batch_state):
                    break
        ids = batch_state.sync()
        return (ids, trace) if return_trace else ids

    def _fill_block(self, ids: Tensor, start: int, end: int,
                    counts: List[int], window: Callable[..., Tensor],
                    weight: Tensor, bias: Tensor, vocab: Optional[Tensor],
                    cfg: dict, record: Optional[Callable[[], None]]) -> None:
        """Commit positions ``start..end-1`` of ``ids`` (B, L) in place,
        ``counts[s]`` per row at step s."""
        mask_id, batch = self.tokenizer.mask_id, ids.shape[0]
        for count in counts:
            hidden = window()  # (B, S, D)
            # Every row has the same number M of masked positions in the
            # block (each step commits `count` per row): project only those
            # (B, M) to the vocabulary, which dominates the step for large
            # vocabularies.
            in_block = ids[:, start:end] == mask_id
            offsets = in_block.nonzero()[:, 1].view(batch, -1)
            positions = start + offsets
            hidden = hidden.gather(1, offsets[..., None].expand(
                -1, -1, hidden.shape[-1]))
            logits = self.logits(hidden, weight).float() + bias
            pred, conf = self._propose(logits, cfg['temperature'])
            if vocab is not None:
                pred = vocab[pred]
            if cfg['remasking'] == 'random':
                conf = torch.rand_like(conf)
            top = conf.topk(count, dim=-1).indices
            ids.scatter_(1, positions.gather(1, top), pred.gather(1, top))
            if record is not None:
                record()

    def _fill_block_by_threshold(self, ids: Tensor, start: int, end: int,
                                 window: Callable[..., Tensor],
                                 weight: Tensor, bias: Tensor,
                                 vocab: Optional[Tensor], cfg: dict,
                                 record: Optional[Callable[[], None]]
                                 ) -> None:
        """Commit positions ``start..end-1`` of ``ids`` (B, L) in place:
        each step every masked one whose confidence is >= the threshold,
        and at least the surest masked one of each row. A step runs only
        the rows with masked positions left in the block."""
        mask_id = self.tokenizer.mask_id
        while True:
            pick = (ids[:, start:end] == mask_id).any(-1).nonzero()[:, 0]
            if not len(pick):
                return
            block = ids[pick, start:end]  # (R, S)
            in_block = block == mask_id
            logits = self.logits(window(pick), weight).float() + bias
            pred, conf = self._propose(logits, cfg['temperature'])
            if vocab is not None:
                pred = vocab[pred]
            conf = conf.masked_fill(~in_block, -1.0)
            commit = (conf >= cfg['threshold']) & in_block
            commit |= F.one_hot(conf.argmax(-1), end - start).bool()
            ids[pick, start:end] = torch.where(commit, pred, block)
            if record is not None:
                record()

    def _finished_rows(self, ids: Tensor) -> Tensor:
        """(B,) whether each row of ``ids`` (B, L) has committed an eos and
        every position before its first one (then nothing left can change
        its text)."""
        tok = self.tokenizer
        eos = ids == tok.eos_id
        has_eos = eos.any(1)
        first = torch.where(has_eos, eos.float().argmax(1),
                            torch.full_like(has_eos, ids.shape[1],
                                            dtype=torch.long))
        before = torch.arange(ids.shape[1], device=ids.device)[None] < \
            first[:, None]
        return has_eos & ~((ids == tok.mask_id) & before).any(1)

    @staticmethod
    def _propose(logits: Tensor, temperature: float) -> Tuple[Tensor, Tensor]:
        """(B, L, V) logits -> proposed ids and their probabilities (B, L)."""
        if temperature > 0:
            return softmax_draw(logits, temperature)
        conf, pred = F.softmax(logits, dim=-1).max(dim=-1)
        return pred, conf

    def predict(self, image_tokens: Tensor, **sampler_overrides) -> list:
        """image_tokens (B, N, C) -> list of B caption strings."""
        return self.decode(self.sample(image_tokens, **sampler_overrides))
