"""Models: tokenizers, decoder layers, the shared diffusion core, heads,
necks, captioners, frozen image encoders and image-text scorers."""
from . import tokenizers  # noqa: F401
from . import layers, diffusion, scorers  # noqa: F401
from . import heads, necks, captioners  # noqa: F401
from . import backbones, image_encoders, vq_image_tokenizer  # noqa: F401
