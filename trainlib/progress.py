"""Progress bars (fastprogress) and the epoch table.

Bars are drawn only where they render well: a notebook or an interactive terminal. Elsewhere
(CI logs, files, pipes) only the table rows are printed, one line per epoch, with no ``\\r``.
The bar is refreshed at most every ``refresh_every`` seconds; only then is the smoothed loss read
back from the device for the bar's comment. Bars can be switched off globally
(``set_progress(False)`` or ``with progress_disabled():``) or per Learner (``learn.no_bar()``).
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .callback import Callback, CallbackError
from .utils import defaults, noop

__all__ = ['ProgressCallback', 'set_progress', 'progress_disabled', 'format_row', 'in_notebook']


def set_progress(enabled: bool) -> None:
    "Turn progress bars on or off for every Learner (the epoch table is still printed)."
    defaults.show_progress = bool(enabled)


@contextmanager
def progress_disabled() -> Iterator[None]:
    "No progress bars inside the ``with`` block."
    old = defaults.show_progress
    defaults.show_progress = False
    try: yield
    finally: defaults.show_progress = old


def in_notebook() -> bool:
    "True inside a Jupyter kernel."
    shell = sys.modules.get('IPython')
    try: return shell is not None and type(shell.get_ipython()).__name__ == 'ZMQInteractiveShell'
    except Exception: return False


def _interactive() -> bool:
    isatty = getattr(sys.stdout, 'isatty', None)
    return in_notebook() or bool(isatty and isatty())


def _bar_classes(notebook: bool) -> tuple[type, type]:
    "fastprogress's (master bar, progress bar) classes: HTML widgets in a notebook, ``\\r`` lines in a terminal."
    from fastprogress import fastprogress as fp
    return (fp.NBMasterBar, fp.NBProgressBar) if notebook else (fp.ConsoleMasterBar, fp.ConsoleProgressBar)


def format_row(cells: list[str], widths: list[int] | None) -> tuple[str, list[int]]:
    """One line of the epoch table. The first call (``widths=None``) formats the header: names padded
    to 8 characters, joined by two spaces; later rows pad each cell to its column's width + 2."""
    if widths is None:
        names = [c.ljust(8) for c in cells]
        return '  '.join(names), [len(n) for n in names]
    return ''.join(c + ' ' * (2 + w - len(c)) for c, w in zip(cells, widths)), widths


def _cell(v: Any) -> str:
    return f'{v:.6f}' if isinstance(v, float) else str(v)


class ProgressCallback(Callback):
    """Show a bar per phase with the smoothed loss, and print the Recorder's rows as a table
    (an HTML table in a notebook)."""
    order = 60
    _stateattrs = ('mbar', 'pbar')
    refresh_every = 0.2
    mbar = pbar = None          # no bars outside a fit (e.g. learn.one_batch) or after unpickling
    _bars = _html = False
    old_logger = None           # the logger to give back after the fit (None: the table was not printed)
    _nested = 0                 # passes run inside a phase that has a bar (get_preds(inner=True) from a callback)

    def before_fit(self) -> None:
        "Check for a Recorder, open the master bar (where bars render) and print the table header."
        learn = self.learn
        if getattr(learn, 'recorder', None) is None:
            raise CallbackError('ProgressCallback needs a Recorder on the Learner (learn.recorder) to print its rows')
        self.mbar = self.pbar = None
        self._widths, self._nested = None, 0
        self._bars = defaults.show_progress and learn.create_mbar and _interactive()
        self._html = self._bars and in_notebook()
        if self._bars:
            master_bar, self._progress_bar = _bar_classes(self._html)
            self.mbar = master_bar(list(range(learn.n_epoch)))     # shown from its first update
        if learn.logger is not noop:
            self.old_logger, learn.logger = learn.logger, self._write_stats
            self._write_stats(learn.recorder.metric_names)
        else: self.old_logger = None

    def before_epoch(self) -> None:
        "Move the master bar to this epoch."
        if self.mbar is not None: self.mbar.update(self.learn.epoch)

    def _launch_pbar(self) -> None:
        "Open the bar of the phase that starts (training or validation)."
        if self.pbar is not None:       # a pass inside a running phase: it keeps that phase's bar
            self._nested += 1
            return
        if not self._bars: return
        try: total = len(self.learn.dl)
        except TypeError: total = None
        self.pbar = self._progress_bar(range(total or 0), parent=self.mbar, leave=False, total=total)
        self.pbar.update(0)
        self._next = time.perf_counter() + self.refresh_every

    before_train = before_validate = _launch_pbar

    def after_batch(self) -> None:
        "At most every ``refresh_every`` seconds: move the bar and show the smoothed loss (the only host read)."
        if self.pbar is None or self._nested: return
        now = time.perf_counter()
        if now < self._next: return
        self._next = now + self.refresh_every
        smooth = getattr(self.learn, 'smooth_loss', None)
        if smooth is not None: self.pbar.comment = f'{float(smooth):.4f}'
        self.pbar.update(self.learn.iter + 1)

    def _close_pbar(self) -> None:
        "Close the bar of the phase that ends."
        if self._nested:
            self._nested -= 1
        elif self.pbar is not None:
            self.pbar.on_iter_end()
            self.pbar = None

    after_train = after_validate = _close_pbar

    def after_fit(self) -> None:
        "Close the bars and give the Learner its logger back (also after a failed fit)."
        self._nested = 0
        self._close_pbar()
        if self.mbar is not None:
            self.mbar.on_iter_end()
            self.mbar = None
        if self.old_logger is not None:
            self.learn.logger = self.old_logger
            self.old_logger = None

    def _write_stats(self, log: list) -> None:
        cells = [_cell(v) for v in log]
        if self._html: return self.mbar.write(cells, table=True)     # NBMasterBar renders an HTML table
        line, self._widths = format_row(cells, self._widths)
        if self.mbar is not None: self.mbar.write(line)
        else: print(line, flush=True)
