"""Locate Java and the jars shipped with pycocoevalcap (never downloads)."""
import os
import shutil
from typing import List, Optional

#: Files SPICE needs in ``pycocoevalcap/spice/lib`` beyond what pip installs;
#: pycocoevalcap would download them on first use, we never do.
SPICE_CORENLP_JARS = ('stanford-corenlp-3.6.0.jar',
                      'stanford-corenlp-3.6.0-models.jar')


def pycocoevalcap_dir() -> str:
    """Return the pycocoevalcap install folder (a namespace package)."""
    try:
        import pycocoevalcap
    except ImportError as e:  # pragma: no cover - it is a requirement
        raise ImportError(
            'CaptionMetric needs pycocoevalcap (pip install pycocoevalcap) '
            'for the Java jars of the COCO caption toolkit') from e
    return list(pycocoevalcap.__path__)[0]


def java_executable() -> Optional[str]:
    """Return the path of ``java`` on PATH, or None."""
    return shutil.which('java')


def require_java(what: str) -> str:
    """Return the ``java`` path or raise RuntimeError naming ``what``."""
    java = java_executable()
    if java is None:
        raise RuntimeError(
            f'{what} needs Java (a `java` executable on PATH) and none was '
            'found; install a JRE (e.g. openjdk-17-jre-headless) or drop '
            f'{what} from CaptionMetric(scores=...)')
    return java


def ptb_tokenizer_jar() -> str:
    """Return the path of the Stanford CoreNLP 3.4.1 jar used for PTB."""
    return _existing(
        os.path.join(pycocoevalcap_dir(), 'tokenizer',
                     'stanford-corenlp-3.4.1.jar'), 'PTB tokenization')


def meteor_jar() -> str:
    """Return the path of ``meteor-1.5.jar`` (its ``data/`` sits beside)."""
    return _existing(
        os.path.join(pycocoevalcap_dir(), 'meteor', 'meteor-1.5.jar'),
        'METEOR')


def spice_jar() -> str:
    """Return the path of ``spice-1.0.jar``."""
    return os.path.join(pycocoevalcap_dir(), 'spice', 'spice-1.0.jar')


def missing_spice_files() -> List[str]:
    """Return the SPICE files absent locally (empty list: SPICE can run)."""
    spice_dir = os.path.join(pycocoevalcap_dir(), 'spice')
    needed = [spice_jar()] + [
        os.path.join(spice_dir, 'lib', name) for name in SPICE_CORENLP_JARS
    ]
    return [path for path in needed if not os.path.isfile(path)]


def _existing(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'{what} needs {path}, which pycocoevalcap should ship; '
            'reinstall pycocoevalcap')
    return path
