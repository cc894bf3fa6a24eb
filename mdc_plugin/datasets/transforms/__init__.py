"""Caption data transforms (registered in mmpretrain's ``TRANSFORMS``)."""
from .crop_to_box import CropToBox
from .load_caption_image import ImageLoadError, LoadCaptionImage, to_uint8_bgr
from .tokenize_caption import TokenizeCaption

__all__ = ['ImageLoadError', 'LoadCaptionImage', 'to_uint8_bgr',
           'TokenizeCaption']
__all__ += ['CropToBox']
