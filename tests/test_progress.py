"""ProgressCallback: the epoch table in fastai's format, bars only on a terminal or in a notebook (where the
table is HTML), switches, logger restored."""
import io
import re
import sys
import types

import pytest

from tiny import blobs_learner
from trainlib import Callback, ProgressCallback, accuracy, defaults, progress_disabled, set_progress, top_k_accuracy
from trainlib.progress import format_row


class FakeTerminal(io.StringIO):
    "A stdout that says it is a terminal."
    def isatty(self): return True


def output_of(fit, stdout):
    "What ``fit()`` writes to ``stdout``."
    old, sys.stdout = sys.stdout, stdout
    try: fit()
    finally: sys.stdout = old
    return stdout.getvalue()


@pytest.fixture
def restore_progress_switch():
    old = defaults.show_progress
    yield
    defaults.show_progress = old


def expected_row(epoch, values, widths):
    return ''.join(cell.ljust(w + 2) for cell, w in zip([str(epoch)] + [f'{v:.6f}' for v in values] + ['00:00'],
                                                         widths))


def test_without_a_terminal_only_the_table_is_printed_in_fastais_format(capsys):
    learn = blobs_learner(metrics=accuracy)
    learn.fit(2)
    out = capsys.readouterr().out
    assert '\r' not in out
    lines = out.splitlines()
    assert lines[0] == 'epoch     train_loss  valid_loss  accuracy  time    '
    widths = [8, 10, 10, 8, 8]
    assert lines[1:] == [expected_row(i, row, widths) for i, row in enumerate(learn.recorder.values)]
    assert lines[1].startswith('0         ') and lines[1].endswith('00:00     ')


def test_long_metric_names_set_their_own_column_width(capsys):
    learn = blobs_learner(metrics=lambda inp, targ: top_k_accuracy(inp, targ, k=1))
    learn.metrics[0].func.__name__ = 'top_1_accuracy'
    learn.fit(1)
    header, row = capsys.readouterr().out.splitlines()
    assert header == 'epoch     train_loss  valid_loss  top_1_accuracy  time    '
    assert row == expected_row(0, learn.recorder.values[0], [8, 10, 10, 14, 8])


def test_format_row():
    header, widths = format_row(['epoch', 'train_loss', 'time'], None)
    assert header == 'epoch     train_loss  time    ' and widths == [8, 10, 8]
    assert format_row(['0', '1.500000', '00:01'], widths)[0] == '0         1.500000    00:01     '


def screen(out):
    "The lines a terminal shows for ``out``: ``\\r`` goes back to the start of the line, text overwrites."
    lines = []
    for raw in out.split('\n'):
        cells, col = [], 0
        for ch in raw:
            if ch == '\r': col = 0; continue
            cells[col:col + 1] = [ch]
            col += 1
        lines.append(''.join(cells).rstrip())
    return lines


def test_on_a_terminal_bars_are_redrawn_in_place_and_the_table_lines_stay_whole(restore_progress_switch,
                                                                               monkeypatch):
    set_progress(True)
    monkeypatch.setattr(ProgressCallback, 'refresh_every', 0.)      # refresh the bar at every batch
    learn = blobs_learner(metrics=accuracy)
    out = output_of(lambda: learn.fit(2), FakeTerminal())
    assert '\rEpoch 1/2 : |' in out and '\rEpoch 2/2 : |' in out and '100.00% [3/3' in out
    header = 'epoch     train_loss  valid_loss  accuracy  time    '
    rows = [expected_row(i, row, [8, 10, 10, 8, 8]) for i, row in enumerate(learn.recorder.values)]
    assert screen(out) == [header.rstrip()] + [r.rstrip() for r in rows] + ['']
    for row in rows: assert f'\r{row}\n' in out          # each row is written whole, after its bar is wiped
    comments = re.findall(r'\[3/3 [0-9:<]+\.\.\. (\d\.\d{4})\]', out)   # full training bars: smoothed loss
    assert comments == [f'{learn.recorder.losses[i]:.4f}' for i in (2, 5)]


def test_the_bar_comment_is_read_from_the_device_only_at_a_refresh(restore_progress_switch, monkeypatch):
    set_progress(True)
    monkeypatch.setattr(ProgressCallback, 'refresh_every', 1e9)      # no refresh during this fit
    learn = blobs_learner()
    out = output_of(lambda: learn.fit(1), FakeTerminal())
    assert '[0/3 00:00<?]' in out and '[1/3' not in out and '...' not in out
    row = expected_row(0, learn.recorder.values[0], [8, 10, 10, 8])
    assert screen(out) == ['epoch     train_loss  valid_loss  time', row.rstrip(), '']


class ZMQInteractiveShell:
    "What ``get_ipython()`` returns in a Jupyter kernel."


@pytest.fixture
def notebook(monkeypatch):
    "A stand-in for a Jupyter kernel: ``IPython.display.display`` records what each output area shows."
    shown = []

    class Output:
        def __init__(self, obj): self.content = obj; shown.append(self)
        def update(self, obj): self.content = obj

    ipython = types.ModuleType('IPython')
    ipython.get_ipython = ZMQInteractiveShell
    display = types.ModuleType('IPython.display')
    display.display = lambda obj, display_id=False: Output(obj)
    display.HTML = lambda text: text
    ipython.display = display
    monkeypatch.setitem(sys.modules, 'IPython', ipython)
    monkeypatch.setitem(sys.modules, 'IPython.display', display)
    return shown


def test_in_a_notebook_the_epoch_table_is_an_html_table(notebook, capsys, restore_progress_switch):
    from fasthtml.common import to_xml
    set_progress(True)
    learn = blobs_learner(metrics=accuracy)
    learn.fit(2)
    assert capsys.readouterr().out == ''
    bars = [o for o in notebook if not isinstance(o.content, str)]        # (the first output is fastprogress' CSS)
    assert len(bars) == 1                                                  # one output area, updated in place
    html = to_xml(bars[0].content)
    assert html.count('<table class="fastprogress">') == 1 and '<progress' not in html    # bars gone, table kept
    assert re.findall(r'<th>(.*?)</th>', html) == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']
    cells = [[str(i)] + [f'{v:.6f}' for v in row] + ['00:00'] for i, row in enumerate(learn.recorder.values)]
    assert re.findall(r'<td>(.*?)</td>', html) == [c for row in cells for c in row]


def test_set_progress_false_turns_the_bars_off_everywhere(restore_progress_switch):
    set_progress(False)
    learn = blobs_learner()
    out = output_of(lambda: learn.fit(1), FakeTerminal())
    assert '\r' not in out and out.splitlines()[0] == 'epoch     train_loss  valid_loss  time    '
    assert len(out.splitlines()) == 2


def test_progress_disabled_is_temporary(restore_progress_switch):
    set_progress(True)
    learn = blobs_learner()
    with progress_disabled():
        out = output_of(lambda: learn.fit(1), FakeTerminal())
        assert defaults.show_progress is False
    assert '\r' not in out and defaults.show_progress is True


def test_no_bar_removes_the_table_and_bars_for_the_block(capsys):
    learn = blobs_learner()
    with learn.no_bar():
        assert not any(isinstance(cb, ProgressCallback) for cb in learn.cbs)
        learn.fit(1)
    out = capsys.readouterr().out
    assert out.startswith('[0, ') and out.rstrip().endswith("'00:00']")      # the bare logger: print(list)
    assert isinstance(learn.progress, ProgressCallback)


def test_nothing_is_printed_when_the_logger_is_silenced(capsys):
    learn = blobs_learner()
    with learn.no_logging():
        learn.fit(1)
    assert capsys.readouterr().out == ''
    assert learn.logger is print


def test_the_logger_is_restored_after_a_failed_fit(capsys):
    failing = Callback(after_epoch=lambda cb: 1 / 0)
    learn = blobs_learner(cbs=failing)
    with pytest.raises(ZeroDivisionError):
        learn.fit(1)
    assert learn.logger is print                # fastai would leave its table writer there
    learn.remove_cb(failing)
    learn.fit(1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == lines[1] == 'epoch     train_loss  valid_loss  time    ' and len(lines) == 3
    custom = []
    learn.logger = custom.append
    with pytest.raises(ZeroDivisionError):
        learn.fit(1, cbs=Callback(before_validate=lambda cb: 1 / 0))
    assert learn.logger == custom.append
