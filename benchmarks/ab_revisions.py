"""A/B the per-batch overhead of two versions of trainlib in one process: a git revision and the work tree.

    /work/main/.venv/bin/python benchmarks/ab_revisions.py HEAD~1 --rounds 60 --rows bar,off,acc,noop10

For measuring one change to the hot path, where the noise between two separate runs of
``loop_overhead.py`` on a shared machine is larger than the change. The revision's ``trainlib`` is
extracted with ``git archive`` into a temporary folder and imported as ``trainlib_before``; both
versions train the tiny workload (``Linear(10, 10)``, batch size 64) on the same precomputed batches
(no data loading, so the overhead is all that differs from the raw loop), epochs interleaved with a
raw torch loop, thread CPU time. Printed per row: the 10th percentile and the median of µs/batch,
and the overhead over the raw loop as the median of per-round differences and as p10 - p10.
Rows: ``bar`` (default callbacks, bar on), ``off`` (bar off), ``acc`` (accuracy on the training
batches), ``noop10`` (10 no-op callbacks, bar off; adds ``off`` and the per-callback cost).
"""
from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
N_BATCHES, N_NOOP = 200, 10


def _load_revision(rev: str, folder: Path) -> Any:
    "Import trainlib as it is at ``rev``, under the name ``trainlib_before``."
    archive = subprocess.run(['git', '-C', str(ROOT), 'archive', rev, 'trainlib'], check=True, capture_output=True)
    subprocess.run(['tar', '-x', '-C', str(folder)], input=archive.stdout, check=True)
    (folder / 'trainlib').rename(folder / 'trainlib_before')
    sys.path.insert(0, str(folder))
    import trainlib_before
    return trainlib_before


class _Batches:
    "The precomputed batches, noting (thread CPU time) when a pass starts and ends."
    def __init__(self, batches: list) -> None: self.batches, self.start, self.stop = batches, 0., 0.
    def __len__(self) -> int: return len(self.batches)

    def __iter__(self):
        self.start = time.thread_time()
        yield from self.batches
        self.stop = time.thread_time()

    def us(self) -> float: return (self.stop - self.start) * 1e6 / len(self.batches)


def _raw(batches: list) -> Callable[[], float]:
    torch.manual_seed(0)
    model, loss_func = nn.Linear(10, 10), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = _Batches(batches)

    def run() -> float:
        for xb, yb in data:
            loss = loss_func(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return data.us()
    return run


def _learner(tl: Any, batches: list, kind: str) -> Callable[[], float]:
    from loop_overhead import quiet

    def noop(self: Any) -> None: pass
    noop_cls = type('NoopCallback', (tl.Callback,), {e: noop for e in tl.EVENTS})
    data = _Batches(batches)
    torch.manual_seed(0)
    learn = tl.Learner(tl.DataLoaders(data, batches[:1], device='cpu'), nn.Linear(10, 10),
                       loss_func=nn.CrossEntropyLoss(), opt_func=partial(tl.SGD, mom=0.9), lr=0.01,
                       metrics=tl.accuracy if kind == 'acc' else None,
                       cbs=[noop_cls() for _ in range(N_NOOP if kind == 'noop10' else 0)])
    learn.recorder.train_metrics = kind == 'acc'
    bar = kind in ('bar', 'acc')

    def run() -> float:
        with quiet(tty=bar): learn.fit(1)
        return data.us()
    return run


def _q(v: list, p: float) -> float:
    v = sorted(v)
    return v[int(p * (len(v) - 1))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('rev', nargs='?', default='HEAD', help='the "before" revision (default HEAD)')
    p.add_argument('--rounds', type=int, default=60)
    p.add_argument('--rows', default='bar,off', help='comma-separated: bar, off, acc, noop10')
    args = p.parse_args()
    kinds = [k for k in args.rows.split(',') if k]
    if 'noop10' in kinds and 'off' not in kinds: kinds.append('off')
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        before = _load_revision(args.rev, Path(tmp))
        import trainlib as after
        torch.manual_seed(0)
        batches = [(torch.randn(64, 10), torch.randint(0, 10, (64,))) for _ in range(N_BATCHES)]
        rows = {'raw': _raw(batches)}
        for k in kinds:
            rows[f'before {k}'] = _learner(before, batches, k)
            rows[f'after  {k}'] = _learner(after, batches, k)
        for run in rows.values(): run(); run()
        gc.collect(); gc.freeze()
        labels, times = list(rows), {k: [] for k in rows}
        for r in range(args.rounds):
            for j in range(len(labels)):
                label = labels[(r + j) % len(labels)]
                times[label].append(rows[label]())
    base = times['raw']
    print(f'{args.rev} -> work tree: {args.rounds} rounds of {N_BATCHES} batches, Linear(10,10), bs 64, µs/batch')
    for label, ts in times.items():
        diff = [a - b for a, b in zip(ts, base)]
        print(f'{label:14} p10 {_q(ts, .1):7.1f}  median {statistics.median(ts):7.1f} | overhead over raw: '
              f'median of differences {statistics.median(diff):6.1f}, p10 - p10 {_q(ts, .1) - _q(base, .1):6.1f}')
    for side in ('before', 'after '):
        if f'{side} noop10' in times:
            a, b = times[f'{side} noop10'], times[f'{side} off']
            print(f'{side} per extra no-op callback: median {statistics.median((x - y) / N_NOOP for x, y in zip(a, b)):.2f}'
                  f', p10 - p10 {(_q(a, .1) - _q(b, .1)) / N_NOOP:.2f} µs/batch')


if __name__ == '__main__':
    main()
