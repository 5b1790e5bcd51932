"""Progress bars that work in a terminal and in Jupyter: tqdm's when it is installed
(``tqdm.auto`` picks the notebook widget), else one line on stderr rewritten in place."""

import sys
import time


class _Line:
    """A minimal bar: ``desc: done/total`` on stderr, at most a few times a second."""

    def __init__(self, total, desc):
        self.total, self.desc, self.n, self._shown = total, desc, 0, 0.0

    def update(self, n):
        self.n += n
        now = time.monotonic()
        if now - self._shown >= 0.25 or (self.total and self.n >= self.total):
            self._shown = now
            total = f"/{self.total}" if self.total else ""
            sys.stderr.write(f"\r{self.desc}: {self.n}{total}")
            sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")
        sys.stderr.flush()


def bar(total, desc):
    """A progress bar of ``total`` units (0 when unknown)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Line(total, desc)
    return tqdm(total=total or None, desc=desc)


class Bars:
    """One bar per phase, made when the phase starts; ``set(phase, done, total)``."""

    def __init__(self, enabled):
        self.enabled, self.current, self.phase = enabled, None, None

    def set(self, phase, done, total):
        if not self.enabled:
            return
        if phase != self.phase:
            self.close()
            self.phase, self.current = phase, bar(total, phase)
        if done > self.current.n:
            self.current.update(done - self.current.n)

    def close(self):
        if self.current is not None:
            self.current.close()
            self.current = None
