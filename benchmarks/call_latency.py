"""µs per call of the Learner's one-shot entry points: ``validate()``, ``get_preds()``, ``predict(item)``.

Run by hand (about a minute; fastai's column needs an interpreter that has it)::

    /work/main/.venv/bin/python benchmarks/call_latency.py --peer-python /tmp/trainlib-oracle/fa2/bin/python

Each call runs the fit-level events around one pass over a validation loader of one batch
(``Linear(10, 10)``, 64 items, CPU, one thread), so what it measures is the library's fixed cost per
call: adding and removing the callbacks that gather predictions, the events, the dispatch. This is
what a loop of ``predict`` calls (serving, a notebook cell over a few items) pays per item. fastai runs
the same calls in a subprocess of ``--peer-python`` (its ``get_preds`` is given the loader; its
``predict`` needs fastai's own loaders, so it is not timed). A figure is the fastest of ``--repeats``
runs of ``--calls`` calls, after a warm-up.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
CALLS = ('validate', 'get_preds', 'predict')


def _data() -> tuple:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(640, 10, generator=g), torch.randint(0, 10, (640,), generator=g)
    return x, y, DataLoader(TensorDataset(x, y), batch_size=64), DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64)


def trainlib_calls() -> dict[str, Callable[[], Any]]:
    "The calls on a trainlib Learner."
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    import trainlib as tl
    x, _, train, valid = _data()
    learn = tl.Learner(tl.DataLoaders(train, valid, device='cpu'), nn.Linear(10, 10), loss_func=nn.CrossEntropyLoss())
    return {'validate': learn.validate, 'get_preds': learn.get_preds, 'predict': lambda: learn.predict(x[0])}


def fastai_calls() -> dict[str, Callable[[], Any]]:
    "The same calls on a fastai 2 Learner (no predict: it needs fastai's loaders)."
    from fastai.basics import DataLoaders, Learner
    _, _, train, valid = _data()
    learn = Learner(DataLoaders(train, valid), nn.Linear(10, 10), loss_func=nn.CrossEntropyLoss())
    return {'validate': learn.validate, 'get_preds': lambda: learn.get_preds(dl=valid)}


def measure(calls: dict, n_calls: int, repeats: int) -> dict[str, float]:
    "µs per call: the fastest of ``repeats`` runs of ``n_calls`` calls, after a warm-up."
    torch.set_num_threads(1)
    out = {}
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        for name, f in calls.items():
            for _ in range(20): f()
            best = float('inf')
            for _ in range(repeats):
                start = time.perf_counter()
                for _ in range(n_calls): f()
                best = min(best, (time.perf_counter() - start) / n_calls)
            out[name] = best * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--peer-python', action='append', default=[], help='an interpreter that has fastai 2')
    p.add_argument('--calls', type=int, default=200)
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--worker', choices=['fastai'], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        print(json.dumps(measure(fastai_calls(), a.calls, a.repeats)))
        return
    results = {'trainlib': measure(trainlib_calls(), a.calls, a.repeats)}
    for py in a.peer_python:
        cmd = [py, __file__, '--worker', 'fastai', '--calls', str(a.calls), '--repeats', str(a.repeats)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0: results['fastai'] = json.loads(proc.stdout.strip().splitlines()[-1])
        else: print(f'fastai worker failed ({py}):\n{proc.stderr[-2000:]}', file=sys.stderr)
    libs = list(results)
    print(f'{"µs per call":<12}' + ''.join(f'{lib:>12}' for lib in libs))
    for call in CALLS:
        print(f'{call:<12}' + ''.join(f'{results[lib][call]:>12.0f}' if call in results[lib] else f'{"n/a":>12}'
                                      for lib in libs))


if __name__ == '__main__':
    main()
