"""``TokenizeCaption``: one reference caption -> fixed-length id array."""
import logging
import random
from typing import List, Optional, Union

from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS


def sample_name(results: dict) -> str:
    """Human-readable name of a sample for messages (img_path / image_id)."""
    parts = [f'{k}={results[k]!r}' for k in ('img_path', 'image_id')
             if k in results]
    return ', '.join(parts) or '<sample without img_path/image_id>'


def unknown_token_id(tokenizer) -> Optional[int]:
    """The tokenizer's unknown-token id, or None (byte-level BPE has none).

    ``unk_id`` if the tokenizer defines it, else the ``unk_token_id`` of a
    wrapped HuggingFace tokenizer (``HFCaptionTokenizer``).
    """
    unk = getattr(tokenizer, 'unk_id', None)
    if unk is None:
        unk = getattr(getattr(tokenizer, '_tok', None), 'unk_token_id', None)
    return None if unk is None else int(unk)


@TRANSFORMS.register_module()
class TokenizeCaption(BaseTransform):
    """Tokenize one reference caption to ``[bos, t1..tn, eos, pad, ...]``.

    **Required keys:** ``caption_key`` (str or list[str]).
    **Added keys:** ``out_key`` (np.ndarray of int64, shape ``(max_length,)``).
    ``results[caption_key]`` is left unchanged.

    Captions longer than ``max_length - 2`` content tokens are cut (bos and
    eos kept). Truncations are counted in :attr:`num_truncated` (per process);
    the first one and every ``log_interval``-th are logged with the sample.

    Args:
        tokenizer (dict | CaptionTokenizer): tokenizer config or instance.
        max_length (int): output length including bos and eos (>= 3).
        caption_key (str): key of the reference caption(s).
        random_pick (bool): pick a reference uniformly at random (training);
            if False use the first one (evaluation).
        out_key (str): key of the output ids.
        log_interval (int): log every this many truncations after the first.
    """

    def __init__(self,
                 tokenizer,
                 max_length: int,
                 caption_key: str = 'gt_caption',
                 random_pick: bool = True,
                 out_key: str = 'caption_ids',
                 log_interval: int = 1000) -> None:
        # imported here: mdc_plugin.models may import the datasets package
        from mdc_plugin.models.tokenizers import build_caption_tokenizer
        if int(max_length) < 3:
            raise ValueError(f'TokenizeCaption: max_length must be >= 3 (bos, '
                             f'one token, eos), got {max_length}')
        self.tokenizer = build_caption_tokenizer(tokenizer)
        self.max_length = int(max_length)
        self.caption_key = caption_key
        self.random_pick = bool(random_pick)
        self.out_key = out_key
        self.log_interval = max(1, int(log_interval))
        self.num_seen = 0
        self.num_truncated = 0

    def _pick(self, results: dict) -> str:
        if self.caption_key not in results:
            raise KeyError(f'TokenizeCaption: key {self.caption_key!r} not in '
                           f'results of sample {sample_name(results)}')
        captions: Union[str, List[str]] = results[self.caption_key]
        if isinstance(captions, str):
            caption = captions
        elif isinstance(captions, (list, tuple)):
            if not captions:
                raise ValueError(f'TokenizeCaption: empty caption list in '
                                 f'{self.caption_key!r} of sample '
                                 f'{sample_name(results)}')
            idx = random.randrange(len(captions)) if self.random_pick else 0
            caption = captions[idx]
        else:
            raise TypeError(f'TokenizeCaption: {self.caption_key!r} must be a '
                            f'str or list of str, got '
                            f'{type(captions).__name__} in sample '
                            f'{sample_name(results)}')
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f'TokenizeCaption: empty caption {caption!r} in '
                             f'sample {sample_name(results)}')
        return caption

    def transform(self, results: dict) -> dict:
        """Add ``results[out_key]``: int64 array of shape ``(max_length,)``.
        """
        if self.caption_key not in results:
            # Inference on bare images (MMPretrain's ImageCaptionInferencer
            # runs the test pipeline without captions): nothing to encode.
            return results
        caption = self._pick(results)
        tok = self.tokenizer
        ids, cut = tok.encode_padded(caption, self.max_length)
        if ids[1] == tok.eos_id:
            raise ValueError(f'TokenizeCaption: caption {caption!r} of sample '
                             f'{sample_name(results)} encodes to no tokens')
        self._check_known(ids, caption, results)
        self.num_seen += 1
        if cut:
            self.num_truncated += 1
            if self.num_truncated == 1 or \
                    self.num_truncated % self.log_interval == 0:
                print_log(
                    f'TokenizeCaption: truncated caption of sample '
                    f'{sample_name(results)} from {self.max_length - 2 + cut} '
                    f'to {self.max_length - 2} tokens '
                    f'(max_length={self.max_length}); '
                    f'{self.num_truncated} of {self.num_seen} captions '
                    'truncated so far in this process',
                    logger='current', level=logging.WARNING)
        results[self.out_key] = ids
        return results

    def _check_known(self, ids, caption: str, results: dict) -> None:
        """Refuse a caption whose every token is the unknown token."""
        unk = unknown_token_id(self.tokenizer)
        if unk is None:
            return
        content = [int(i) for i in ids[1:] if i not in
                   (self.tokenizer.eos_id, self.tokenizer.pad_id)]
        if content and all(i == unk for i in content):
            raise ValueError(
                f'TokenizeCaption: caption {caption!r} of sample '
                f'{sample_name(results)} has no word the tokenizer knows '
                f'(all {len(content)} token(s) are the unknown token), so it '
                'would be trained as [bos, unk, eos]. Fix or drop the '
                'caption, or use a tokenizer whose vocabulary covers it.')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(tokenizer={self.tokenizer!r}, '
                f'max_length={self.max_length}, '
                f'caption_key={self.caption_key!r}, '
                f'random_pick={self.random_pick}, out_key={self.out_key!r})')
