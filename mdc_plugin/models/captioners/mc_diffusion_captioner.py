"""MC-Diffusion captioner: backbone -> VQ neck -> D3PM caption head."""
from mmpretrain.registry import MODELS

from .image_captioner import ImageCaptioner


@MODELS.register_module()
class MCDiffusionCaptioner(ImageCaptioner):
    """:class:`ImageCaptioner` whose neck and head must agree on the
    condition vocabulary, checked at build time.

    The neck (``VQTokenizerNeck``) gives K codes plus the mask id K and N
    code positions per image; the head (``D3PMCaptionHead``) embeds
    ``num_codes + 1`` condition ids at ``condition_length`` positions.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        neck, head = self.neck, self.head
        if neck is None or not hasattr(neck, 'num_codes'):
            raise ValueError('MCDiffusionCaptioner needs a VQTokenizerNeck '
                             '(discrete condition codes)')
        if not hasattr(head, 'condition_length'):
            raise ValueError('MCDiffusionCaptioner needs a head with '
                             'discrete conditions (D3PMCaptionHead)')
        if neck.num_codes != head.num_codes:
            raise ValueError(
                f'codebook size mismatch: the neck has num_codes='
                f'{neck.num_codes} (condition vocabulary {neck.vocab_size} '
                f'with the mask) but the head has num_codes={head.num_codes}')
        if neck.num_tokens is None:
            raise ValueError('set the neck\'s num_tokens (code positions per '
                             'image) so that it can be checked against the '
                             "head's condition_length")
        if neck.num_tokens != head.condition_length:
            raise ValueError(
                f'condition length mismatch: the neck gives num_tokens='
                f'{neck.num_tokens} codes per image but the head has '
                f'condition_length={head.condition_length}')
