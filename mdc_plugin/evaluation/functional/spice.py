"""SPICE through pycocoevalcap's ``spice-1.0.jar``, only when it can run.

pycocoevalcap's ``Spice()`` downloads Stanford CoreNLP 3.6.0 on first use.
Here nothing is downloaded: :func:`spice_unavailable_reason` tells whether
Java and every needed jar are present, and :func:`compute_spice` runs the
jar with the same options as the toolkit (``-subset -silent``, 8 GB heap),
with its input, output and parse cache in a temporary / user cache folder
instead of the package folder.
"""
import json
import math
import os
import subprocess
import tempfile
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .java import java_executable, missing_spice_files, spice_jar


def spice_unavailable_reason() -> Optional[str]:
    """Return why SPICE cannot run here (str), or None when it can."""
    if java_executable() is None:
        return 'no `java` executable on PATH'
    missing = missing_spice_files()
    if missing:
        return ('its Stanford CoreNLP 3.6.0 jars are not installed '
                f'(missing: {", ".join(missing)}); pycocoevalcap would '
                'download them, CaptionMetric never does. Copy '
                'stanford-corenlp-3.6.0.jar and '
                'stanford-corenlp-3.6.0-models.jar there to enable SPICE')
    return None


def _float(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def compute_spice(hyps: Sequence[str],
                  refs: Sequence[Sequence[str]],
                  cache_dir: Optional[str] = None,
                  timeout: float = 3600.0) -> Tuple[float, List[float]]:
    """SPICE F-score of tokenized predictions against tokenized references.

    Args:
        hyps (Sequence[str]): One tokenized prediction per image.
        refs (Sequence[Sequence[str]]): Tokenized references per image.
        cache_dir (str, optional): SPICE parse cache; defaults to
            ``~/.cache/mdc_plugin/spice``.
        timeout (float): Seconds to wait for the JVM.

    Returns:
        tuple: ``(score, per_image)``: the mean of the per-image ``All`` F
        scores (float, NaN if any is NaN, as in the toolkit) and the list.
    """
    reason = spice_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f'SPICE cannot run: {reason}')
    if cache_dir is None:
        cache_dir = os.path.join(os.path.expanduser('~'), '.cache',
                                 'mdc_plugin', 'spice')
    os.makedirs(cache_dir, exist_ok=True)
    data = [dict(image_id=i, test=h, refs=list(r))
            for i, (h, r) in enumerate(zip(hyps, refs))]
    jar = spice_jar()
    with tempfile.TemporaryDirectory(prefix='mdc_spice_') as tmp:
        in_file = os.path.join(tmp, 'input.json')
        out_file = os.path.join(tmp, 'output.json')
        with open(in_file, 'w') as f:
            json.dump(data, f)
        cmd = [java_executable(), '-jar', '-Xmx8G', os.path.basename(jar),
               in_file, '-cache', cache_dir, '-out', out_file, '-subset',
               '-silent']
        proc = subprocess.run(cmd, cwd=os.path.dirname(jar),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f'SPICE failed (exit code {proc.returncode}): '
                f'{proc.stderr.decode(errors="replace")[-2000:]}')
        with open(out_file) as f:
            results = json.load(f)
    by_id = {item['image_id']: _float(item['scores']['All']['f'])
             for item in results}
    per_image = [by_id.get(i, math.nan) for i in range(len(data))]
    return float(np.mean(np.array(per_image))), per_image
