"""Models: tokenizers, decoder layers, heads, necks and captioners."""
from . import tokenizers  # noqa: F401
from . import layers, heads, necks, captioners  # noqa: F401
from . import mc_diffusion, prefix_diffusion  # noqa: F401
from . import backbones  # noqa: F401
