"""Memory: ``get_preds(save_preds=...)`` streams, and training keeps no graphs or tensors from epoch to epoch.

    /work/main/.venv/bin/python benchmarks/memory.py

1. Streaming. Each run is a fresh process that builds a Learner and a validation loader of ``n``
   batches made on the fly (so the data itself takes no memory), runs ``get_preds`` once on one
   batch (warm-up), notes its peak RSS (``ru_maxrss``), runs ``get_preds`` on all ``n`` batches and
   reports how much the peak grew. With ``save_preds`` (a folder) the growth must not depend on
   ``n``: 10x and 100x the data are compared. Without it, every prediction is kept, which is shown
   for contrast (the growth is then about ``n`` times the size of one batch of predictions).
2. Epochs. One process trains the medium MLP (256-512-512-10, batch size 256, 40 batches an epoch)
   for 20 epochs; a callback reads the current RSS (``VmRSS`` of ``/proc/self/status``) after each
   epoch. The headline is the RSS as the process holds it: after epoch 20 it must be within 5% of
   after epoch 2. The same fit on the v1 Learner follows, and a third run reads the RSS after
   ``malloc_trim(0)`` at each epoch (what is really retained) for reference. Any small tensor kept per batch between the large short-lived
   activations fragments glibc's heap, and the untrimmed figure then grows (it did by 5% to 60%
   over 18 epochs while the Recorder kept one 0-d tensor per batch; its smoothed losses now live
   in device buffers of 256 values, and so do the v1 smoother's).
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))              # this checkout's trainlib, not an installed one
BS, N_IN, N_OUT = 256, 64, 1024          # one batch of predictions: 256 x 1024 float32 = 1 MiB


class OnTheFly:
    "``n`` batches of random inputs and class targets, made when iterated (no data held in memory)."
    def __init__(self, n: int) -> None: self.n = n
    def __len__(self) -> int: return self.n

    def __iter__(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(self.n):
            yield torch.randn(BS, N_IN, generator=g), torch.randint(0, N_OUT, (BS,), generator=g)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_mib() -> float:
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'): return int(line.split()[1]) / 1024
    raise RuntimeError('no VmRSS in /proc/self/status')


def _learner(model: nn.Module, valid: object, train: object = None) -> object:
    import trainlib as tl
    learn = tl.Learner(tl.DataLoaders(train if train is not None else valid, valid, device='cpu'), model,
                       loss_func=nn.CrossEntropyLoss(), opt_func=partial(tl.SGD, mom=0.9), lr=0.01)
    learn.remove_cb(tl.ProgressCallback)
    learn.logger = tl.noop
    return learn


def stream_child(n: int, save: bool) -> None:
    "In a fresh process: peak RSS growth of get_preds over ``n`` batches (printed as JSON)."
    torch.set_num_threads(1)
    learn = _learner(nn.Linear(N_IN, N_OUT), OnTheFly(n))
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {'save_preds': Path(tmp) / 'preds'} if save else {}
        learn.get_preds(dl=OnTheFly(1), **kwargs)
        before = _peak_mib()
        learn.get_preds(dl=OnTheFly(n), **kwargs)
        written = len(list((Path(tmp) / 'preds').glob('*.pt'))) if save else 0
    print(json.dumps({'n': n, 'save': save, 'growth_mib': _peak_mib() - before, 'files': written}))


def _stream(n: int, save: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), '--stream-child', str(n), '1' if save else '0']
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _malloc_trim() -> None:
    "Give glibc's free heap pages back to the OS (a no-op where there is no glibc)."
    import ctypes
    try: ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError): pass


def epochs_rss(n_epoch: int = 20, trim: bool = False, v1: bool = False) -> list[float]:
    "RSS (MiB) after each epoch of training the medium MLP (after ``malloc_trim`` when ``trim``; the v1 Learner when ``v1``)."
    import trainlib as tl
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x, y = torch.randn(40 * BS, 256), torch.randint(0, 10, (40 * BS,))
    from torch.utils.data import DataLoader, TensorDataset
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    rss: list[float] = []
    def after_epoch(*args: object, **kwargs: object) -> None:
        if trim: _malloc_trim()
        rss.append(_current_mib())
    if v1:
        from trainlib.v1 import Callback, DataBunch, Learner
        data = DataBunch.create(TensorDataset(x, y), TensorDataset(x[:4 * BS], y[:4 * BS]), bs=BS, device='cpu')
        probe = type('Probe', (Callback,), {'on_epoch_end': after_epoch})()
        Learner(data, model, loss_func=nn.CrossEntropyLoss(), silent=True).fit(n_epoch, 0.01, callbacks=[probe])
        return rss
    train = DataLoader(TensorDataset(x, y), batch_size=BS, shuffle=True)
    valid = DataLoader(TensorDataset(x[:4 * BS], y[:4 * BS]), batch_size=BS)
    _learner(model, valid, train).fit(n_epoch, cbs=tl.Callback(after_epoch=after_epoch))
    return rss


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == '--stream-child':
        stream_child(int(sys.argv[2]), sys.argv[3] == '1')
        return
    base = 4
    batch_mib = BS * N_OUT * 4 / 2 ** 20
    print(f'1. get_preds on a validation set of n batches of {BS} (predictions: {batch_mib:.0f} MiB a batch); '
          f'peak RSS growth over a warm-up on one batch')
    for save in (True, False):
        for n in (10 * base, 100 * base) if save else (10 * base,):
            r = _stream(n, save)
            how = f'save_preds=folder ({r["files"]} files)' if save else 'kept in memory       '
            print(f'   {how}  n = {n:4d} ({n * BS:6d} items, {n * batch_mib:5.0f} MiB of predictions): '
                  f'peak RSS +{r["growth_mib"]:7.1f} MiB')
    print('2. training the 256-512-512-10 MLP for 20 epochs (target: RSS after 20 within 5% of RSS after 2)')
    for trim, v1 in ((False, False), (False, True), (True, False)):
        rss = epochs_rss(trim=trim, v1=v1)
        growth = (rss[-1] - rss[1]) / rss[1] * 100
        verdict = '' if trim else ' (target met)' if abs(growth) <= 5 else ' (TARGET MISSED)'
        how = '(reference) after malloc_trim(0)' if trim else 'v1 Learner, as the process holds it' if v1 else \
            'as the process holds it'
        print(f'   RSS {how:35}: epoch 2 {rss[1]:.1f} MiB, epoch 20 {rss[-1]:.1f} MiB ({growth:+.2f}%){verdict}; '
              f'each epoch: ' + ' '.join(f'{v:.0f}' for v in rss))


if __name__ == '__main__':
    main()
