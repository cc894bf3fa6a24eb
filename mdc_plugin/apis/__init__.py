"""Python API: caption images with a trained captioner.

    from mdc_plugin.apis import init_captioner, caption_images
    model = init_captioner('configs/mdc/vit-tiny_shapes.py', 'epoch_8.pth')
    caption_images(model, ['a.png'], num_alternatives=3)
"""
from .inference import caption_images, init_captioner, sampling_options

__all__ = ['init_captioner', 'caption_images', 'sampling_options']
