"""METEOR 1.5 through the jar pycocoevalcap ships, kept warm and pipelined.

Numbers are the jar's own (same command line ``-l en -norm``, same input
lines as pycocoevalcap's ``Meteor``), so they equal COCOEvalCap's. What
differs is how the JVM is driven:

* the JVM (about 6 s to load its 62 MB paraphrase table) is started in the
  background as soon as a :class:`MeteorScorer` is started, warmed up with
  random WordNet sentences (a cold JVM scores its first few thousand
  segments about twice as slowly as a warm one), and kept for later
  evaluations (one pool per process, see :func:`shared_meteor_scorer`);
* all ``SCORE`` lines are written by a feeder thread while the answers are
  read, instead of one blocking round trip per image;
* with ``workers > 1`` the ``SCORE`` lines are split over several JVMs
  (each needs about 1 GB of RAM); the final ``EVAL`` runs on one of them.
"""
import atexit
import collections
import os
import subprocess
import threading
from typing import Dict, List, Optional, Sequence, Tuple

from .java import meteor_jar, require_java

#: JVM options: pycocoevalcap's heap (-Xmx2G), fixed up front, and the
#: throughput collector (measured ~25% less CPU per segment than the
#: default G1 on 2 cores). Scores do not depend on them.
METEOR_JVM_OPTIONS = ('-Xmx2G', '-Xms2G', '-XX:+UseParallelGC')


def meteor_score_line(hyp: str, refs: Sequence[str]) -> str:
    """The ``SCORE`` line pycocoevalcap's ``Meteor._stat`` writes."""
    hyp = hyp.replace('|||', '').replace('  ', ' ')
    return ' ||| '.join(('SCORE', ' ||| '.join(refs), hyp))


class _MeteorJVM:
    """One ``meteor-1.5.jar -stdio`` process."""

    def __init__(self) -> None:
        java = require_java('METEOR')
        jar = meteor_jar()
        cmd = [java, '-jar', *METEOR_JVM_OPTIONS, os.path.basename(jar),
               '-', '-', '-stdio', '-l', 'en', '-norm']
        self.proc = subprocess.Popen(
            cmd, cwd=os.path.dirname(jar), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stderr: collections.deque = collections.deque(maxlen=40)
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:
            self._stderr.append(line.decode(errors='replace').rstrip())

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.poll()
            raise RuntimeError(
                'the METEOR JVM stopped (exit code '
                f'{self.proc.returncode}); its stderr ends with: '
                + ' | '.join(self._stderr))
        return line.decode().strip()

    def _feed(self, lines: Sequence[str]) -> threading.Thread:
        """Write ``lines`` from a thread so the reader never deadlocks."""
        payload = ''.join(f'{line}\n' for line in lines).encode()

        def write() -> None:
            try:
                self.proc.stdin.write(payload)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                pass  # the reader reports the dead JVM

        thread = threading.Thread(target=write, daemon=True)
        thread.start()
        return thread

    def stats(self, score_lines: Sequence[str]) -> List[str]:
        """Send ``SCORE`` lines, return one statistics line per input."""
        feeder = self._feed(score_lines)
        out = [self._readline() for _ in score_lines]
        feeder.join()
        return out

    def evaluate(self, stats: Sequence[str]) -> Tuple[float, List[float]]:
        """Send one ``EVAL`` line; return (corpus score, per-segment)."""
        feeder = self._feed(['EVAL' + ''.join(f' ||| {s}' for s in stats)])
        per_segment = [float(self._readline()) for _ in stats]
        score = float(self._readline())
        feeder.join()
        return score, per_segment

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.kill()
        self.proc.wait()


class MeteorScorer:
    """A pool of warm METEOR JVMs.

    Args:
        workers (int): JVMs to split the ``SCORE`` lines over.
        warmup (int): Synthetic segments each JVM scores right after start
            (0 for none; 3000 take ~3 s of CPU in the background). Real
            work arriving earlier cuts the warm-up short.
    """

    def __init__(self, workers: int = 1, warmup: int = 3000) -> None:
        if workers < 1:
            raise ValueError(f'METEOR workers must be >= 1, got {workers}')
        self.workers = workers
        self.warmup = warmup
        self._jvms: List[_MeteorJVM] = []
        self._error: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._wanted = threading.Event()  # real work waits: stop warming
        self._starter: Optional[threading.Thread] = None

    def start(self) -> 'MeteorScorer':
        """Start the JVMs in the background (returns at once)."""
        with self._lock:
            if self._starter is None:
                self._starter = threading.Thread(
                    target=self._start, daemon=True)
                self._starter.start()
        return self

    def _start(self) -> None:
        try:
            jvms = [_MeteorJVM() for _ in range(self.workers)]
            self._jvms = jvms
            if self.warmup:
                lines = _warmup_lines(self.warmup)
                threads = [
                    threading.Thread(target=self._warm, args=(jvm, lines),
                                     daemon=True) for jvm in jvms
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        except BaseException as e:  # reported by wait_ready()
            self._error = e
        finally:
            self._ready.set()

    def _warm(self, jvm: _MeteorJVM, lines: Sequence[str]) -> None:
        for i in range(0, len(lines), 200):
            if self._wanted.is_set():
                return
            jvm.stats(lines[i:i + 200])

    def wait_ready(self, timeout: Optional[float] = None,
                   finish_warmup: bool = False) -> None:
        """Block until the JVMs are up (raises what starting them raised).

        Unless ``finish_warmup``, a running warm-up is cut short.
        """
        self.start()
        if not finish_warmup:
            self._wanted.set()
        if not self._ready.wait(timeout):
            raise TimeoutError(f'the METEOR JVM did not start in {timeout} s')
        if self._error is not None:
            raise RuntimeError(f'could not start METEOR: {self._error}') \
                from self._error

    def compute(self, hyps: Sequence[str],
                refs: Sequence[Sequence[str]]) -> Tuple[float, List[float]]:
        """METEOR of tokenized predictions against tokenized references.

        Args:
            hyps (Sequence[str]): One tokenized prediction per image.
            refs (Sequence[Sequence[str]]): Tokenized references per image.

        Returns:
            tuple: ``(score, per_image)``: the jar's corpus score (float;
            not the mean of per-image scores) and a list of per-image float.
        """
        if len(hyps) != len(refs):
            raise ValueError(f'{len(hyps)} predictions but {len(refs)} '
                             'reference lists')
        if not hyps:
            return float('nan'), []
        lines = [meteor_score_line(h, r) for h, r in zip(hyps, refs)]
        return self.evaluate(self.stats(lines))

    def stats(self, score_lines: Sequence[str]) -> List[str]:
        """Alignment statistics (str) of ``SCORE`` lines, in input order.

        Statistics of different segments are independent, so they may be
        gathered in several calls and passed together to :meth:`evaluate`.
        """
        if not score_lines:
            return []
        self.wait_ready()
        with self._lock:
            if any(jvm.proc.poll() is not None for jvm in self._jvms):
                self._restart_dead()
            chunk = -(-len(score_lines) // len(self._jvms))
            parts = [score_lines[i:i + chunk]
                     for i in range(0, len(score_lines), chunk)]
            results: Dict[int, List[str]] = {}
            errors: List[BaseException] = []

            def run(k: int) -> None:
                try:
                    results[k] = self._jvms[k].stats(parts[k])
                except BaseException as e:  # re-raised below
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(k, ), daemon=True)
                       for k in range(1, len(parts))]
            for t in threads:
                t.start()
            run(0)
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            return [s for k in range(len(parts)) for s in results[k]]

    def evaluate(self, stats: Sequence[str]) -> Tuple[float, List[float]]:
        """Corpus and per-segment METEOR from :meth:`stats` output."""
        if not stats:
            return float('nan'), []
        self.wait_ready()
        with self._lock:
            return self._jvms[0].evaluate(stats)

    def _restart_dead(self) -> None:
        for k, jvm in enumerate(self._jvms):
            if jvm.proc.poll() is not None:
                jvm.close()
                self._jvms[k] = _MeteorJVM()

    def close(self) -> None:
        """Stop the JVMs."""
        self._wanted.set()
        if self._starter is not None:
            self._starter.join()
        for jvm in self._jvms:
            jvm.close()
        self._jvms = []
        self._starter = None
        self._ready.clear()
        self._wanted.clear()


def _warmup_lines(num: int, seed: int = 0) -> List[str]:
    """``SCORE`` lines of random sentences over WordNet's vocabulary.

    The words come from the jar's own synonym data, so the warm-up shares
    nothing in particular with the captions evaluated later.
    """
    import random
    import re
    import zipfile
    with zipfile.ZipFile(meteor_jar()) as z:
        text = z.read('synonym/english.synsets').decode('latin-1')
    words = sorted({w for w in re.split(r'[_\s]+', text)
                    if w.isalpha() and w.isascii()})
    rng = random.Random(seed)

    def sentence() -> str:
        return ' '.join(rng.choice(words).lower()
                        for _ in range(rng.randint(6, 14)))

    return [meteor_score_line(sentence(), [sentence() for _ in range(5)])
            for _ in range(num)]


_SHARED: Dict[int, MeteorScorer] = {}  # workers -> pool
_SHARED_LOCK = threading.Lock()


def shared_meteor_scorer(workers: int = 1, warmup: int = 3000) -> MeteorScorer:
    """The process-wide :class:`MeteorScorer` with ``workers`` JVMs.

    Started (in the background) on first request and stopped at interpreter
    exit, so repeated evaluations and several metrics reuse one warm pool.
    ``warmup`` only matters for the request that starts the pool.
    """
    with _SHARED_LOCK:
        scorer = _SHARED.get(workers)
        if scorer is None:
            scorer = _SHARED[workers] = MeteorScorer(workers, warmup)
        elif scorer._starter is None:  # closed: restart with this warm-up
            scorer.warmup = warmup
        return scorer.start()


@atexit.register
def _close_shared() -> None:
    for scorer in list(_SHARED.values()):
        try:
            scorer.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass
