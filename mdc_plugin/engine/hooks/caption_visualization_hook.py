"""Draw predicted and reference captions on validation/test images.

Every ``interval``-th sample of a validation or test loop is drawn (the
image, long edge resized, above a white band holding the text, so that no
caption covers the image) and handed to the visualizer's backends
(``LocalVisBackend``: ``<log_dir>/vis_data/vis_image/<name>_<step>.png``;
``TensorboardVisBackend``: the image tab) or, with ``out_dir``, written
there as PNG files. The text is ``pred: <caption>`` followed by up to
``num_refs`` ``ref: <reference>`` lines.

Enable it in a config (``configs/_base_/default_runtime.py`` holds it
disabled)::

    default_hooks = dict(visualization=dict(enable=True, interval=100))

or for one run: ``--cfg-options default_hooks.visualization.enable=True``.
"""
import os.path as osp
import textwrap
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.model import is_model_wrapper
from mmpretrain.engine.hooks import VisualizationHook
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample
from mmengine.runner import EpochBasedTrainLoop


@HOOKS.register_module()
class CaptionVisualizationHook(VisualizationHook):
    """Save images with their predicted and reference captions.

    A drop-in for MMPretrain's ``VisualizationHook`` (same ``enable``,
    ``interval``, ``show`` and ``out_dir``): batches whose predictions carry
    ``pred_caption`` are drawn as captions, anything else (a classifier's
    ``pred_label``) is left to ``VisualizationHook``.

    Args:
        enable (bool): draw at all. Defaults to False.
        interval (int): draw samples ``0, interval, 2 * interval, ...`` of
            each loop (counted across ranks' local batches). Defaults to 500.
        num_refs (int): reference captions drawn under the prediction.
        resize (int): long edge of the drawn image in pixels (small inputs
            such as the 64 px shapes images are scaled up so the text fits).
        show (bool): also show in a window.
        out_dir (str, optional): write PNGs here (relative paths are under
            the run's log dir) instead of to the visualizer backends.
        **kwargs: ``text_cfg`` (dict): ``draw_texts`` arguments, e.g.
            ``font_sizes``.
    """

    def __init__(self, enable: bool = False, interval: int = 500,
                 num_refs: int = 1, resize: int = 256, show: bool = False,
                 out_dir: Optional[str] = None, **kwargs) -> None:
        if int(interval) < 1:
            raise ValueError(f'CaptionVisualizationHook: interval must be '
                             f'>= 1, got {interval}')
        if int(num_refs) < 0:
            raise ValueError(f'CaptionVisualizationHook: num_refs must be '
                             f'>= 0, got {num_refs}')
        # VisualizationHook.__init__ would look the visualizer up now, before
        # a runner exists; it is taken from the runner when a loop starts.
        self._visualizer = None
        self.enable = enable
        self.interval = int(interval)
        self.show = show
        self.out_dir = out_dir
        self.draw_args = {**kwargs, 'show': show}
        self.num_refs = int(num_refs)
        self.resize = resize
        self._seen = 0
        self._to_rgb = False
        self._log_dir = '.'

    # ---------------------------------------------------------- bookkeeping
    def _start_loop(self, runner) -> None:
        self._seen = 0
        self._visualizer = runner.visualizer
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        preprocessor = getattr(model, 'data_preprocessor', None)
        # Raw inputs are BGR when the preprocessor converts them to RGB.
        self._to_rgb = bool(getattr(preprocessor, 'to_rgb', False))
        self._log_dir = runner.log_dir

    def before_val_epoch(self, runner) -> None:
        self._start_loop(runner)

    def before_test_epoch(self, runner) -> None:
        self._start_loop(runner)

    def after_val_iter(self, runner, batch_idx: int, data_batch: dict,
                       outputs: Sequence[DataSample]) -> None:
        step = runner.epoch if isinstance(runner.train_loop,
                                          EpochBasedTrainLoop) \
            else runner.iter
        self._draw(runner, batch_idx, data_batch, outputs, step, 'val')

    def after_test_iter(self, runner, batch_idx: int, data_batch: dict,
                        outputs: Sequence[DataSample]) -> None:
        self._draw(runner, batch_idx, data_batch, outputs, 0, 'test')

    # -------------------------------------------------------------- drawing
    def caption_text(self, sample: DataSample) -> str:
        """``pred: ...`` and up to ``num_refs`` ``ref: ...`` lines."""
        lines = [f"pred: {sample.get('pred_caption')}"]
        refs = sample.get('gt_caption', None)
        if isinstance(refs, str):
            refs = [refs]
        lines += [f'ref: {r}' for r in list(refs or [])[:self.num_refs]]
        return '\n'.join(lines)

    def _image(self, image) -> np.ndarray:
        """(3, H, W) uint8 input tensor -> (H, W, 3) uint8 RGB array."""
        array = image.permute(1, 2, 0).cpu().numpy().astype(np.uint8)
        return np.ascontiguousarray(array[..., ::-1] if self._to_rgb
                                    else array)

    def _name(self, sample: DataSample, sample_id: int, mode: str) -> str:
        if 'img_path' in sample:
            stem = osp.splitext(osp.basename(sample.img_path))[0]
        elif 'image_id' in sample:
            stem = str(sample.image_id)
        else:
            stem = str(sample_id)
        return f'{mode}_{stem}'

    def _draw(self, runner, batch_idx: int, data_batch: dict,
              outputs: Sequence[DataSample], step: int, mode: str) -> None:
        if not self.enable or not outputs:
            return
        if 'pred_caption' not in outputs[0]:
            # Not a captioner: MMPretrain's classification drawing.
            self._draw_samples(batch_idx, data_batch, outputs, step=step)
            return
        start, self._seen = self._seen, self._seen + len(outputs)
        first = -(-start // self.interval) * self.interval
        for sample_id in range(first, self._seen, self.interval):
            sample = outputs[sample_id - start]
            name = self._name(sample, sample_id, mode)
            out_file = None
            if self.out_dir is not None:
                out_file = osp.join(self._log_dir, self.out_dir,
                                    f'{name}_{step}.png')
            drawn = self.draw_caption_below(
                self._image(data_batch['inputs'][sample_id - start]),
                self.caption_text(sample))
            if self.show:
                self._visualizer.show(drawn, win_name=name)
            if out_file is not None:
                mmcv.imwrite(drawn[..., ::-1], out_file)
            else:
                self._visualizer.add_image(name, drawn, step=step)

    def draw_caption_below(self, image: np.ndarray, text: str) -> np.ndarray:
        """The image (long edge resized to ``resize``) above a white band
        holding ``text``, wrapped to the image width; nothing covers the
        image.

        Args:
            image: (H, W, 3) uint8 RGB.
            text: caption lines.

        Returns:
            np.ndarray: (H' + band, W', 3) uint8 RGB.
        """
        if self.resize:
            h, w = image.shape[:2]
            size = (self.resize, self.resize * h // w) if w < h else \
                (self.resize * w // h, self.resize)
            image = mmcv.imresize(image, size)
        h, w = image.shape[:2]
        text_cfg = dict(self.draw_args.get('text_cfg') or {})
        font = int(text_cfg.pop('font_sizes', max(8, w // 24)))
        chars = max(8, int(w / (0.6 * font)))
        lines = [part for line in text.split('\n')
                 for part in (textwrap.wrap(line, chars) or [''])]
        band = int(len(lines) * font * 1.5 + font)
        canvas = np.full((h + band, w, 3), 255, dtype=np.uint8)
        canvas[:h] = image
        vis = self._visualizer
        vis.set_image(canvas)
        vis.draw_texts('\n'.join(lines),
                       np.array([[font // 2, h + font // 2]]),
                       font_sizes=font, colors='black',
                       vertical_alignments='top', **text_cfg)
        return vis.get_image()
