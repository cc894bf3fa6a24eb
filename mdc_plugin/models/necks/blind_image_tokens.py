"""The blind control of image-text matching: a decoder that never sees the
image, so whatever it scores comes from the language prior alone."""
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class BlindImageTokens(BaseModule):
    """Replace the image tokens by zeros (B, N, C) -> (B, N, C).

    Put it as the ``neck`` of an :class:`ImageCaptioner` and train as usual:
    the head then cross-attends to a constant memory in training and in
    testing, so it becomes a text-only caption model (CapPa's "blind"
    decoder) with the same shape and budget as the sighted one. No gradient
    reaches the backbone, which stays at its initialisation.
    """

    def forward(self, tokens: Tensor) -> Tensor:
        """Image tokens (B, N, C) -> zeros of the same shape."""
        return tokens.new_zeros(tokens.shape)
