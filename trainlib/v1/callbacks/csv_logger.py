"""fastai-1's ``CSVLogger``: the epoch table of a fit, written to a CSV file as it goes."""
from __future__ import annotations

from pathlib import Path
from time import time
from typing import Any

from ...callbacks.logging import write_row
from ...recorder import format_time
from ..basic_train import LearnerCallback
from ..imports import pd

__all__ = ['CSVLogger']


def _cell(stat: Any) -> str:
    return str(stat) if isinstance(stat, int) else '#na#' if stat is None else f'{stat:.6f}'


class CSVLogger(LearnerCallback):
    """Write ``learn.recorder.names`` and then one row per epoch (epoch, smoothed training loss, the
    ``last_metrics`` values, the epoch's time) to ``learn.path/{filename}.csv``, flushed to disk after each
    row. ``append=True`` adds to an existing file (the header only when the file is new)."""

    def __init__(self, learn: Any, filename: str = 'history', append: bool = False) -> None:
        super().__init__(learn)
        self.filename, self.path, self.append = filename, Path(self.learn.path) / f'{filename}.csv', append
        self.add_time = True
        self.file: Any = None

    def read_logged_file(self) -> Any:
        "The file as a pandas DataFrame."
        return pd.read_csv(self.path)

    def on_train_begin(self, **kwargs: Any) -> None:
        "Open the file and write the header."
        self.path.parent.mkdir(parents=True, exist_ok=True)
        add_header = not self.path.exists() or not self.append
        if self.file is not None: self.file.close()
        self.file = self.path.open('a' if self.append else 'w')
        if add_header: self.file.write(','.join(self.learn.recorder.names[:None if self.add_time else -1]) + '\n')

    def on_epoch_begin(self, **kwargs: Any) -> None:
        "Start the epoch's clock."
        if self.add_time: self.start_epoch = time()

    def on_epoch_end(self, epoch: int, smooth_loss: Any, last_metrics: Any, **kwargs: Any) -> None:
        "Write the epoch's row."
        stats = [epoch, smooth_loss] + list(last_metrics or [])
        cells = [_cell(s) for _, s in zip(self.learn.recorder.names, stats)]
        if self.add_time: cells.append(format_time(time() - self.start_epoch))
        write_row(self.file, cells)

    def on_train_end(self, **kwargs: Any) -> None:
        "Close the file."
        if self.file is not None: self.file.close()
        self.file = None
