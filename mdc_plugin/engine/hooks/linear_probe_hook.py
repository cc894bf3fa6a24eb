"""Linear probe of frozen backbone features, run after validation.

After each validation epoch the hook extracts backbone features of a labelled
train split and a labelled val split, fits a multinomial logistic regression
(L-BFGS, weight decay picked on a held-out fifth of the train features) and
adds the val accuracy to the validation metrics, so one training command
shows whether the features learned something. ``pooling='attn'`` instead
keeps every token and trains an attention-pooling probe on them (see
``attention_probe``).
"""
import copy
import logging
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import MMLogger, print_log
from mmengine.model import is_model_wrapper
from mmengine.utils import ProgressBar
from mmpretrain.registry import DATASETS, HOOKS
from torch import Tensor
from torch.utils.data import DataLoader

from ...models.captioners.utils import image_tokens_from_backbone
from .attention_probe import attention_probe_accuracy

POOLINGS = ('cls', 'mean', 'cls+mean', 'attn')
#: Reference probes a hook can report beside the backbone's own result.
BASELINES = ('init', 'pixels')
#: Pixel features larger than this are average-pooled down (2x per step).
MAX_PIXEL_FEATURES = 4096


class ExtractionProgress:
    """Progress of one feature extraction pass.

    On a terminal a :class:`~mmengine.utils.ProgressBar`; otherwise (a log
    file, a pipe) a log line with the counts at most every ``interval``
    seconds. Either way one line when the pass is done, with its time.
    """

    def __init__(self, what: str, total: int, interval: float = 20.0,
                 tty: Optional[bool] = None) -> None:
        self.what = what
        self.total = total
        self.interval = interval
        self.done = 0
        self.start = self.last = time.monotonic()
        tty = sys.stdout.isatty() if tty is None else tty
        self.bar = ProgressBar(total) if tty and total else None

    def update(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            for _ in range(count):
                self.bar.update()
            return
        now = time.monotonic()
        if now - self.last >= self.interval and self.done < self.total:
            self.last = now
            print_log(f'LinearProbeHook: {self.what}: {self.done:,}/'
                      f'{self.total:,} '
                      f'({100 * self.done / max(1, self.total):.0f}%), '
                      f'{now - self.start:.0f} s', logger='current')

    def finish(self) -> None:
        if self.bar is not None:
            print()
        print_log(f'LinearProbeHook: {self.what}: {self.done:,}/'
                  f'{self.total:,} done in '
                  f'{time.monotonic() - self.start:.0f} s', logger='current')


def pixel_features(inputs: Tensor) -> Tensor:
    """Preprocessed images (B, 3, H, W) -> flat pixel vectors (B, D): one
    channel when all three are equal (grayscale data), average-pooled by 2
    until D <= ``MAX_PIXEL_FEATURES``."""
    if torch.equal(inputs[:, :1].expand_as(inputs), inputs):
        inputs = inputs[:, :1]
    while inputs[0].numel() > MAX_PIXEL_FEATURES:
        inputs = F.avg_pool2d(inputs, 2)
    return inputs.flatten(1).float()


def pool_tokens(tokens: Tensor, pooling: str) -> Tensor:
    """(B, 1+N, C) tokens -> (B, C) or (B, 2C) features; 'attn' keeps
    all (B, 1+N, C) tokens for the attention probe."""
    if pooling == 'attn':
        return tokens
    if pooling == 'cls':
        return tokens[:, 0]
    if pooling == 'mean':
        return tokens.mean(1)
    return torch.cat([tokens[:, 0], tokens.mean(1)], dim=1)


def fit_linear_probe(train_x: Tensor, train_y: Tensor, num_classes: int,
                     weight_decay: float, max_iter: int = 200) -> Tensor:
    """Multinomial logistic regression by L-BFGS.

    Args:
        train_x: (N, D) standardised features; train_y: (N,) labels.
    Returns:
        (D + 1, K) weights (last row is the bias).
    """
    x = torch.cat([train_x, torch.ones(len(train_x), 1)], dim=1)
    w = torch.zeros(x.shape[1], num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1, max_iter=max_iter,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w, train_y) + \
            weight_decay * w[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def probe_accuracy(train: Tuple[Tensor, Tensor], val: Tuple[Tensor, Tensor],
                   num_classes: int,
                   weight_decays=(1e-5, 1e-4, 1e-3, 1e-2)) -> Dict[str, float]:
    """Fit on ``train`` (features (N, D), labels (N,)), pick the weight
    decay on a held-out fifth of it, refit, and score on ``val``."""
    mean, std = train[0].mean(0), train[0].std(0) + 1e-6
    tx, vx = (train[0] - mean) / std, (val[0] - mean) / std
    ty, vy = train[1], val[1]
    n_hold = max(1, len(tx) // 5)
    perm = torch.randperm(len(tx), generator=torch.Generator().manual_seed(0))
    hold, fit = perm[:n_hold], perm[n_hold:]

    def accuracy(w: Tensor, x: Tensor, y: Tensor) -> float:
        logits = torch.cat([x, torch.ones(len(x), 1)], 1) @ w
        return (logits.argmax(1) == y).float().mean().item()

    scores = {
        wd: accuracy(fit_linear_probe(tx[fit], ty[fit], num_classes, wd),
                     tx[hold], ty[hold])
        for wd in weight_decays
    }
    best_wd = max(scores, key=scores.get)
    w = fit_linear_probe(tx, ty, num_classes, best_wd)
    return dict(accuracy=100 * accuracy(w, vx, vy),
                train_accuracy=100 * accuracy(w, tx, ty),
                weight_decay=best_wd)


@HOOKS.register_module()
class LinearProbeHook(Hook):
    """Add ``probe/accuracy`` (linear probe on frozen features) to the
    validation metrics.

    Args:
        train_dataset / val_dataset: dataset configs with ``gt_label``;
            default to the runner's train / val dataloader datasets.
        pipeline: replaces the datasets' pipelines (load + pack, no
            augmentation); ``None`` keeps them.
        pooling: 'cls', 'mean' (all tokens), 'cls+mean' (L-BFGS linear
            probe on the pooled vector), or 'attn': an attention-pooling
            probe (one learned query over all tokens + LayerNorm + linear,
            AdamW; lr, weight decay and epochs picked on a held-out fifth
            of train).
        attn_mlp_ratio: with 'attn', hidden width (over C) of the MAP
            head's residual MLP after the pooling; 0 (default) leaves it
            out.
        probe_seed: seed of the attention probe's initialisation and
            batch order (the other poolings are deterministic).
        interval: probe every ``interval`` validation epochs.
        batch_size / num_workers: feature extraction loader settings.
        prefix: metric key prefix.

        baselines: reference probes reported beside the result, each
            computed once per run with the same probe: ``'init'`` probes the
            weights the run starts from (its random initialisation, or
            ``load_from``) before the first iteration, ``'pixels'`` the raw
            preprocessed pixels. They add ``probe/init_accuracy``,
            ``probe/pixels_accuracy`` and ``probe/gain_over_init`` and a
            one-line verdict; they are stored in checkpoints, so a resumed
            run reports the same references.

    Runs on rank 0 and broadcasts the numbers, so distributed runs log one
    result.
    """

    priority = 'ABOVE_NORMAL'  # before LoggerHook, so the result is logged

    def __init__(self, train_dataset: Optional[dict] = None,
                 val_dataset: Optional[dict] = None,
                 pipeline: Optional[List[dict]] = None,
                 pooling: str = 'mean', interval: int = 1,
                 batch_size: int = 128, num_workers: int = 0,
                 prefix: str = 'probe', probe_seed: int = 0,
                 attn_mlp_ratio: float = 0.0,
                 baselines: Sequence[str] = ()) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f'pooling={pooling!r} not one of {POOLINGS}')
        unknown = [b for b in baselines if b not in BASELINES]
        if unknown:
            raise ValueError(f'baselines={list(baselines)}: {unknown} not '
                             f'among {BASELINES}')
        self.baselines = tuple(baselines)
        self.baseline_results: Dict[str, Dict[str, float]] = {}
        self.dataset_cfgs = dict(train=train_dataset, val=val_dataset)
        self.pipeline = pipeline
        self.pooling = pooling
        self.interval = interval
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.prefix = prefix
        self.probe_seed = probe_seed
        if attn_mlp_ratio and pooling != 'attn':
            raise ValueError(f'attn_mlp_ratio={attn_mlp_ratio} needs '
                             f"pooling='attn', got {pooling!r}")
        self.attn_mlp_ratio = attn_mlp_ratio
        self._datasets = {}
        self._calls = 0
        #: what is being probed, for progress lines
        self._stage = 'backbone'
        #: seconds between progress log lines (when not on a terminal)
        self.progress_interval = 20.0

    def _progress(self, split: str, total: int,
                  kind: str) -> ExtractionProgress:
        what = ('raw pixels: pixels' if kind == 'pixels'
                else f'{self._stage}: features')
        return ExtractionProgress(f'{what} of the {split} items', total,
                                  self.progress_interval)

    def _announce(self, what: str, when: str) -> None:
        """Log what is about to run (before a silent stretch)."""
        sizes = ' / '.join(f'{len(self._dataset(split)):,} {split}'
                           for split in ('train', 'val'))
        fit = ('an attention-pooling probe (AdamW)' if self.pooling == 'attn'
               else 'an L-BFGS linear probe')
        print_log(f'LinearProbeHook: linear probe of {what} {when}: '
                  f'extracting features of {sizes} items (batch '
                  f'{self.batch_size}), then fitting {fit} '
                  f'({self.pooling} pooling) ...', logger='current')

    def _resolve_datasets(self, runner) -> None:
        """Take missing dataset configs from the runner's dataloaders."""
        for split in ('train', 'val'):
            if self.dataset_cfgs[split] is None:
                loader = runner.cfg.get(f'{split}_dataloader')
                if not loader or 'dataset' not in loader:
                    raise ValueError(
                        f'LinearProbeHook needs {split}_dataset: the config '
                        f'has no {split}_dataloader.dataset to take it from')
                self.dataset_cfgs[split] = copy.deepcopy(loader['dataset'])

    def _dataset(self, split: str):
        if split not in self._datasets:
            cfg = copy.deepcopy(self.dataset_cfgs[split])
            if self.pipeline is not None:
                cfg['pipeline'] = copy.deepcopy(self.pipeline)
            self._datasets[split] = DATASETS.build(cfg)
        return self._datasets[split]

    @torch.no_grad()
    def extract_per_output(self, model,
                           split: str) -> Tuple[List[Tensor], Tensor]:
        """Pooled features of every backbone output (one per entry of a
        ViT's ``out_indices``): a list of (N, D) features, or (N, T, C)
        tokens for 'attn', and the labels (N,) of one split."""
        dataset = self._dataset(split)
        loader = DataLoader(dataset, batch_size=self.batch_size,
                            num_workers=self.num_workers,
                            collate_fn=pseudo_collate)
        name = type(model.backbone).__name__
        feats, labels = None, []
        progress = self._progress(split, len(dataset), 'features')
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            outputs = model.backbone(data['inputs'])
            if not isinstance(outputs, (tuple, list)):
                outputs = (outputs, )
            pooled = [
                pool_tokens(image_tokens_from_backbone(out, name),
                            self.pooling).float().cpu() for out in outputs
            ]
            feats = [[] for _ in pooled] if feats is None else feats
            for store, feat in zip(feats, pooled):
                store.append(feat)
            labels.append(torch.stack(
                [s.gt_label.reshape(-1)[0] for s in data['data_samples']]))
            progress.update(len(pooled[0]))
        progress.finish()
        return ([torch.cat(store) for store in feats],
                torch.cat(labels).long().cpu())

    def extract(self, model, split: str) -> Tuple[Tensor, Tensor]:
        """Frozen features (N, D), or tokens (N, T, C) for 'attn', of the
        backbone's last output, and labels (N,) of one split."""
        feats, labels = self.extract_per_output(model, split)
        return feats[-1], labels

    def fit(self, train: Tuple[Tensor, Tensor], val: Tuple[Tensor, Tensor],
            num_classes: int) -> Dict[str, float]:
        """Fit this hook's probe (linear or attention) on extracted
        features and score it on ``val``; unprefixed metrics."""
        if self.pooling == 'attn':
            return attention_probe_accuracy(train, val, num_classes,
                                            seed=self.probe_seed,
                                            mlp_ratio=self.attn_mlp_ratio)
        return probe_accuracy(train, val, num_classes)

    def num_classes(self) -> int:
        return len(self._dataset('train').metainfo['classes'])

    def probe(self, model) -> Dict[str, float]:
        """Extract both splits and fit; returns prefixed metrics."""
        was_training = model.training
        model.eval()
        try:
            result = self.fit_model(model)
        finally:
            model.train(was_training)
        return {f'{self.prefix}/{k}': v for k, v in result.items()}

    @torch.no_grad()
    def extract_pixels(self, model, split: str) -> Tuple[Tensor, Tensor]:
        """Raw preprocessed pixels (N, D) (see :func:`pixel_features`) and
        labels (N,) of one split."""
        dataset = self._dataset(split)
        loader = DataLoader(dataset, batch_size=self.batch_size,
                            num_workers=self.num_workers,
                            collate_fn=pseudo_collate)
        feats, labels = [], []
        progress = self._progress(split, len(dataset), 'pixels')
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            feats.append(pixel_features(data['inputs']).cpu())
            labels.append(torch.stack(
                [s.gt_label.reshape(-1)[0] for s in data['data_samples']]))
            progress.update(len(feats[-1]))
        progress.finish()
        return torch.cat(feats), torch.cat(labels).long().cpu()

    def probe_pixels(self, model) -> Dict[str, float]:
        """The linear (L-BFGS) probe on raw pixels; unprefixed metrics."""
        train, val = (self.extract_pixels(model, 'train'),
                      self.extract_pixels(model, 'val'))
        return probe_accuracy(train, val, self.num_classes())

    @staticmethod
    def _unwrap(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def before_train(self, runner) -> None:
        """Probe the starting weights (and pixels) once, before training
        changes them; the global random state is left untouched so the
        run trains exactly as it would without the baselines."""
        todo = [b for b in self.baselines if b not in self.baseline_results]
        if not todo:
            return
        if 'init' in todo and runner.iter > 0:
            runner.logger.warning(
                'LinearProbeHook: no init probe: this run resumes at '
                f'iteration {runner.iter} from a checkpoint that does not '
                'store one, and the starting weights are gone')
            todo.remove('init')
            if not todo:
                return
        self._resolve_datasets(runner)
        model = self._unwrap(runner)
        result = [None]
        if is_main_process():
            with torch.random.fork_rng(devices=[]):
                # builds the probe data sets: inside the forked RNG
                self._announce(self._baseline_names(runner, todo),
                               'before training')
                was_training = model.training
                model.eval()
                try:
                    result[0] = {
                        name: self._timed_baseline(model, name)
                        for name in todo}
                finally:
                    model.train(was_training)
                    self._stage = 'backbone'
        broadcast_object_list(result)
        self.baseline_results.update(result[0])
        runner.logger.info('linear probe references: ' + ', '.join(
            f'{name} {res["accuracy"]:.2f}%'
            for name, res in self.baseline_results.items()))

    @staticmethod
    def _baseline_names(runner, todo: Sequence[str]) -> str:
        """'the starting weights (random init) and raw pixels'."""
        load_from = getattr(runner, '_load_from', None) or \
            runner.cfg.get('load_from')
        source = f'load_from {load_from}' if load_from else 'random init'
        names = dict(init=f'the starting weights ({source})',
                     pixels='raw pixels')
        return ' and '.join(names[name] for name in todo)

    def _timed_baseline(self, model, name: str) -> Dict[str, float]:
        """One reference probe, with a log line of its result and time."""
        start = time.monotonic()
        if name == 'pixels':
            result = self.probe_pixels(model)
        else:
            self._stage = 'starting weights'
            result = self.fit_model(model)
        label = 'raw pixels' if name == 'pixels' else 'starting weights'
        print_log(f'LinearProbeHook: {label}: {result["accuracy"]:.2f}% '
                  f'({time.monotonic() - start:.0f} s)', logger='current')
        return result

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.baseline_results:
            checkpoint.setdefault('meta', {})['linear_probe_baselines'] = \
                copy.deepcopy(self.baseline_results)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        stored = checkpoint.get('meta', {}).get('linear_probe_baselines')
        if stored:
            self.baseline_results.update(
                {name: {k: float(v) for k, v in res.items()}
                 for name, res in stored.items() if name in self.baselines})

    def fit_model(self, model) -> Dict[str, float]:
        """Extract both splits with ``model`` (already in eval mode) and
        fit this hook's probe; unprefixed metrics."""
        train, val = self.extract(model, 'train'), self.extract(model, 'val')
        return self.fit(train, val, self.num_classes())

    def verdict(self, result: Dict[str, float]) -> str:
        """One line: this backbone's probe beside the references."""
        parts = [f'this backbone {result["accuracy"]:.2f}%']
        init = self.baseline_results.get('init')
        if init:
            parts.append(f'starting weights {init["accuracy"]:.2f}%')
        pixels = self.baseline_results.get('pixels')
        if pixels:
            parts.append(f'raw pixels {pixels["accuracy"]:.2f}%')
        text = (f'linear probe ({self.pooling} pooling, '
                f'{self.num_classes()} classes): ' + ' | '.join(parts))
        if init:
            gain = result['accuracy'] - init['accuracy']
            verdict = 'improved' if gain > 0 else 'did not improve'
            text += (f' -> training {verdict} the features '
                     f'({gain:+.2f} points)')
        return text

    def after_val_epoch(self, runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        self._calls += 1
        if (self._calls - 1) % self.interval:
            return
        self._resolve_datasets(runner)
        model = self._unwrap(runner)
        if is_main_process():
            self._announce(f'this backbone (iteration {runner.iter})',
                           'after validation')
            self._stage = 'this backbone'
        try:
            result = [self.probe(model) if is_main_process() else None]
        finally:
            self._stage = 'backbone'

        broadcast_object_list(result)
        own = {k[len(self.prefix) + 1:]: v for k, v in result[0].items()}
        for name, res in self.baseline_results.items():
            result[0][f'{self.prefix}/{name}_accuracy'] = res['accuracy']
        if 'init' in self.baseline_results:
            result[0][f'{self.prefix}/gain_over_init'] = \
                own['accuracy'] - self.baseline_results['init']['accuracy']
        runner.logger.info('linear probe: ' + ', '.join(
            f'{k}={v:.4g}' for k, v in result[0].items()))
        if self.baseline_results:
            runner.logger.info(self.verdict(own))
        if metrics is not None:
            metrics.update(result[0])
        for key, value in result[0].items():
            runner.message_hub.update_scalar(f'val/{key}', value)


def probe_hook_from_config(cfg, pooling: Optional[str] = None,
                           probe_seed: int = 0,
                           attn_mlp_ratio: float = 0.0) -> LinearProbeHook:
    """The config's LinearProbeHook (or a default one) with datasets taken
    from its train/val dataloaders."""
    hook_cfg = next(
        (dict(h) for h in cfg.get('custom_hooks', [])
         if h.get('type') == 'LinearProbeHook'),
        dict(pipeline=[dict(type='LoadCaptionImage'),
                       dict(type='PackInputs')]))
    hook_cfg.pop('type', None)
    hook_cfg.setdefault('train_dataset', cfg.train_dataloader.dataset)
    hook_cfg.setdefault('val_dataset', cfg.val_dataloader.dataset)
    if pooling:
        hook_cfg['pooling'] = pooling
    hook_cfg['probe_seed'] = probe_seed
    if attn_mlp_ratio:
        hook_cfg['attn_mlp_ratio'] = attn_mlp_ratio
    return LinearProbeHook(**hook_cfg)


def build_model_for_probe(config: str, cfg_options: Optional[dict] = None,
                          seed: int = 0, checkpoint: Optional[str] = None):
    """Build a pretraining config's model for probing (tools/linear_probe.py,
    tools/analysis/layerwise_probe.py).

    The model is built and initialised under ``seed``; with ``checkpoint``
    its backbone is loaded strictly (``load_backbone_weights``: every
    backbone weight must be there). Returns ``(cfg, model, source,
    ignored_keys)``: ``source`` names the weights ('random init (seed N)'
    or the checkpoint path), ``ignored_keys`` the checkpoint keys the
    backbone does not have.
    """
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from ...utils.cli import merge_cfg_options
    from ...utils.safe_checkpoint import hardened_checkpoints
    from ...utils.weights import load_backbone_weights
    cfg = Config.fromfile(config)
    merge_cfg_options(cfg, cfg_options, config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    # init_weights logs every parameter at INFO when no log file is open
    # (hundreds of lines before the result): keep it quiet here.
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with hardened_checkpoints():  # init_cfg 'Pretrained' loads safely
            model.init_weights()
    finally:
        logger.setLevel(level)
    if not checkpoint:
        return cfg, model, f'random init (seed {seed})', []
    report = load_backbone_weights(model, checkpoint)
    return cfg, model, checkpoint, sorted(report.unexpected)
