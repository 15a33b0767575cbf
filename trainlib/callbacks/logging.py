"""``CSVLogger``: the Recorder's rows of a fit, written to a CSV file as they are logged."""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Callable

from ..callback import Callback
from .tracker import evaluation_only

__all__ = ['CSVLogger']


def write_row(file: IO[str], cells: list) -> None:
    "Write ``cells`` as one comma-separated line and push it to disk (flush and fsync: a crash loses no row)."
    file.write(','.join(str(c) for c in cells) + '\n')
    file.flush()
    os.fsync(file.fileno())


class CSVLogger(Callback):
    """Write the Recorder's column names, then each epoch's row, to ``learn.path/fname``.

    It sits in front of ``learn.logger`` for the fit (each row also goes on to the previous logger,
    e.g. the progress table) and puts the previous logger back in ``after_fit``, which runs also when
    the fit fails. Each row is flushed to disk as it is written. ``append=True`` adds to the file.
    Better than fastai: the file is opened when training starts, so ``learn.validate()`` (which runs
    ``before_fit``/``after_fit`` too) neither truncates the history nor adds a row to it; and when a
    callback that ran before this one in ``before_fit`` restores the logger first, the later logger
    is not put back over it."""
    order = 60
    _stateattrs = ('file',)

    def __init__(self, fname: str | Path = 'history.csv', append: bool = False) -> None:
        self.fname, self.append = Path(fname), append
        self.file: Any = None
        self.old_logger: Callable | None = None

    @property
    def target(self) -> Path:
        "The CSV file: ``learn.path/fname``."
        return Path(self.learn.path) / self.fname

    def read_log(self) -> list[list[str]]:
        "The rows of the file, header first, as lists of strings (fastai gives a pandas DataFrame)."
        import csv
        with open(self.target, newline='') as f: return list(csv.reader(f))

    def before_fit(self) -> None:
        "Put this logger in front of ``learn.logger``."
        if evaluation_only(self.learn):
            self.run = False
            return
        self.old_logger, self.learn.logger = self.learn.logger, self._write_line

    def before_train(self) -> None:
        "Open the file when training starts (not for a bare ``validate``)."
        if self.file is None: self._open()

    def _open(self) -> None:
        target = self.target
        target.parent.mkdir(parents=True, exist_ok=True)
        self.file = target.open('a' if self.append else 'w')
        write_row(self.file, self.learn.recorder.metric_names)

    def _write_line(self, log: list) -> None:
        "Write ``log`` as a row (while the file is open), then pass it to the previous logger."
        if self.file is not None: write_row(self.file, log)
        if self.old_logger is not None: self.old_logger(log)

    def after_fit(self) -> None:
        "Close the file and give ``learn.logger`` back."
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.learn.logger == self._write_line: self.learn.logger = self.old_logger
