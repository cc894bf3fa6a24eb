"""MMEngine's remote checkpoint schemes, ending in the one safe loader.

MMEngine's ``http(s)://`` loader (and ``torchvision://`` / ``modelzoo://``,
``open-mmlab://`` / ``openmmlab://`` and ``mmcls://``, which resolve to
URLs) goes through ``torch.hub.load_state_dict_from_url``, and ``pavi://`` /
``s3://`` / ``petrel://`` call ``torch.load`` on the downloaded bytes. Each
replacement here only *fetches* the file to a local path (URLs into the
torch hub cache, ``<hub_dir>/checkpoints``, as MMEngine does; other
backends into a temporary directory) and hands that path to ``load_local``,
the allow-listed weights-only loader of local files.
"""
import os
import os.path as osp
import tempfile
import urllib.error
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlparse

import torch
import mmengine.runner.checkpoint as mme_ckpt
from mmengine.dist import get_dist_info
from mmengine.fileio import get_file_backend

__all__ = [
    'CheckpointDownloadError', 'cache_dir', 'download_url',
    'safe_scheme_loaders'
]

LocalLoader = Callable[[str, Any], Any]


class CheckpointDownloadError(RuntimeError):
    """A checkpoint URL could not be fetched (HTTP error, no connection)."""


def cache_dir() -> str:
    """``<torch hub dir>/checkpoints``, where MMEngine caches URLs too."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def download_url(url: str, model_dir: Optional[str] = None) -> str:
    """Fetch ``url`` into the cache (once; rank 0 first) and return the path.

    A cached file of the same name is reused, as by ``torch.hub``. The
    download is written to a temporary file and moved into place, so a
    killed download never leaves a partial cache entry.
    """
    name = osp.basename(urlparse(url).path) or 'checkpoint.pth'
    path = osp.join(model_dir or cache_dir(), name)

    def fetch() -> None:
        if osp.isfile(path):
            return
        os.makedirs(osp.dirname(path), exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, path, progress=False)
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = err  # 'HTTP Error 404: File not found'
            if not isinstance(err, urllib.error.HTTPError):
                reason = getattr(err, 'reason', None) or err
            raise CheckpointDownloadError(
                f'Could not download checkpoint "{url}": {reason}') from err

    rank, world_size = get_dist_info()
    if rank == 0:
        fetch()
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            fetch()
    return path


def safe_scheme_loaders(load_local: LocalLoader) -> Dict[str, Callable]:
    """Safe loaders keyed by the name of the MMEngine loader they replace."""

    def load_from_http(filename: str,
                       map_location: Any = None,
                       model_dir: Optional[str] = None,
                       progress: bool = False) -> Any:
        return load_local(download_url(filename, model_dir), map_location)

    def load_from_torchvision(filename: str, map_location: Any = None) -> Any:
        name = filename.split('://', 1)[1]
        url = mme_ckpt.get_torchvision_models()[name]
        return load_from_http(url, map_location)

    def load_from_openmmlab(filename: str, map_location: Any = None) -> Any:
        name = filename.split('://', 1)[1]
        name = mme_ckpt.get_deprecated_model_names().get(name, name)
        url = mme_ckpt.get_external_models()[name]
        if url.startswith(('http://', 'https://')):
            return load_from_http(url, map_location)
        return load_local(
            osp.join(mme_ckpt._get_mmengine_home(), url), map_location)

    def load_from_mmcls(filename: str, map_location: Any = None) -> Any:
        url = mme_ckpt.get_mmcls_models()[filename[len('mmcls://'):]]
        return mme_ckpt._process_mmcls_checkpoint(
            load_from_http(url, map_location))

    def load_from_pavi(filename: str, map_location: Any = None) -> Any:
        from pavi import modelcloud  # only where pavi is installed
        model = modelcloud.get(filename[len('pavi://'):])
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, model.name)
            model.download(path)
            return load_local(path, map_location)

    def load_from_ceph(filename: str,
                       map_location: Any = None,
                       backend: str = 'petrel') -> Any:
        data = get_file_backend(
            filename, backend_args={'backend': backend}).get(filename)
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, 'checkpoint.pth')
            with open(path, 'wb') as f:
                f.write(data)
            return load_local(path, map_location)

    loaders = (load_from_http, load_from_torchvision, load_from_openmmlab,
               load_from_mmcls, load_from_pavi, load_from_ceph)
    for loader in loaders:
        loader._mdc_safe = True
    return {loader.__name__: loader for loader in loaders}
