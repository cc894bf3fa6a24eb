"""Find missing and unreadable image files before a run fetches them."""
from concurrent.futures import ThreadPoolExecutor
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from PIL import Image

__all__ = ['find_bad_images', 'summarize_bad_images']


def _problem(path: str) -> Optional[str]:
    """None if ``path`` decodes as an image, else why not."""
    if not osp.isfile(path):
        return 'missing'
    try:
        with Image.open(path) as img:
            img.load()  # full decode: catches truncated files
    except Exception as e:  # PIL raises OSError, ValueError, SyntaxError...
        return f'unreadable: {type(e).__name__}: {e}'
    return None


def find_bad_images(paths: Sequence[str], num_workers: int = 8
                    ) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Check that every path is a file PIL can decode.

    Args:
        paths: image files.
        num_workers (int): decoding threads.

    Returns:
        tuple: ``(missing, unreadable)``; ``missing`` lists paths,
        ``unreadable`` ``(path, reason)`` pairs, both in input order.
    """
    with ThreadPoolExecutor(max(1, num_workers)) as pool:
        problems = list(pool.map(_problem, paths))
    missing = [p for p, why in zip(paths, problems) if why == 'missing']
    unreadable = [(p, why) for p, why in zip(paths, problems)
                  if why and why != 'missing']
    return missing, unreadable


def summarize_bad_images(missing: Sequence[str],
                         unreadable: Sequence[Tuple[str, str]],
                         total: int, limit: int = 20) -> str:
    """One message with the counts and the first ``limit`` problems."""
    lines = [f'{len(missing)} of {total} images missing, '
             f'{len(unreadable)} unreadable']
    items = [f'  missing: {p}' for p in missing] + \
        [f'  {why}: {p}' for p, why in unreadable]
    lines += items[:limit]
    if len(items) > limit:
        lines.append(f'  ... and {len(items) - limit} more')
    return '\n'.join(lines)
