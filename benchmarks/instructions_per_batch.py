"""Instructions per training batch, counted by valgrind: a noise-free measure of the loop's overhead.

    /work/main/.venv/bin/python benchmarks/instructions_per_batch.py [--rev REV] [--rows raw,off,bar,acc,noop10,v1,v1_0]

Timings on a shared machine move by more than one change to the hot path; instruction counts do
not. Each row runs in ``valgrind --tool=callgrind`` with instrumentation switched on (by a tiny C
helper compiled here, through callgrind's client requests) only around ``fit`` calls made after a
warm-up. A row is run twice, with fits of 50 and of 150 batches (``Linear(10, 10)``, batch size 64,
precomputed batches, one thread): the difference divided by the 200 extra batches is the count per
batch, per-fit work cancelling out. ``--rev`` measures the ``trainlib`` of a git revision instead of
the work tree. Needs valgrind (``apt-get install valgrind``, with its headers) and a C compiler.
Instructions are not time (cache misses and branch mispredictions cost extra), but a change that
removes instructions from the hot path shows here (repeated runs agree within about 1%). The ``bar``
row overstates the bar: its refresh is time-based, and valgrind runs ~50x slower, so it refreshes
~50x more often per batch than in a real run.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_HELPER_C = r'''
#include <valgrind/callgrind.h>
void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; CALLGRIND_TOGGLE_COLLECT; }
void cg_stop(void) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_STOP_INSTRUMENTATION; }
'''
N_FITS, SMALL, LARGE = 2, 50, 150


def _child(row: str, n_batches: int, helper: str) -> None:
    "Run under valgrind: set up ``row``, warm up, then count ``N_FITS`` fits of ``n_batches`` batches."
    import ctypes
    import gc
    from functools import partial
    import torch
    from torch import nn
    torch.set_num_threads(1)
    torch.manual_seed(0)
    batches = [(torch.randn(64, 10), torch.randint(0, 10, (64,))) for _ in range(n_batches)]
    model = nn.Linear(10, 10)
    if row == 'raw':
        loss_func, opt = nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def run() -> None:
            for xb, yb in batches:
                loss = loss_func(model(xb), yb)
                loss.backward()
                opt.step()
                opt.zero_grad()
    elif row in ('v1', 'v1_0'):
        import trainlib.v1 as v1
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from loop_overhead import _v1_noop_class, quiet
        data = v1.DataBunch(batches, batches[:1], device=torch.device('cpu'))
        noop_cls = _v1_noop_class(v1)
        cbs = [noop_cls() for _ in range(10 if row == 'v1' else 0)]
        learn = v1.Learner(data, model, loss_func=nn.CrossEntropyLoss(), wd=0., true_wd=False, bn_wd=True,
                           opt_func=partial(torch.optim.SGD, momentum=0.9), callbacks=cbs)

        def run() -> None:
            with quiet(tty=False): learn.fit(1, lr=0.01)
    else:
        import trainlib as tl
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from loop_overhead import quiet

        def noop(self: object) -> None: pass
        noop_cls = type('NoopCallback', (tl.Callback,), {e: noop for e in tl.EVENTS})
        learn = tl.Learner(tl.DataLoaders(batches, batches[:1], device='cpu'), model, loss_func=nn.CrossEntropyLoss(),
                           opt_func=partial(tl.SGD, mom=0.9), lr=0.01, metrics=tl.accuracy if row == 'acc' else None,
                           cbs=[noop_cls() for _ in range(10 if row == 'noop10' else 0)])
        learn.recorder.train_metrics = row == 'acc'

        def run() -> None:
            with quiet(tty=row in ('bar', 'acc')): learn.fit(1)
    for _ in range(3): run()
    gc.collect()
    gc.freeze()
    cg = ctypes.CDLL(helper)
    cg.cg_start()
    for _ in range(N_FITS): run()
    cg.cg_stop()


def _count(row: str, n_batches: int, helper: str, lib_root: Path, tmp: Path) -> int:
    out = tmp / f'cg.{row}.{n_batches}.out'
    env = dict(os.environ, PYTHONHASHSEED='0', PYTHONPATH=str(lib_root))
    cmd = ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--collect-atstart=no', f'--callgrind-out-file={out}',
           sys.executable, str(Path(__file__).resolve()), '--child', row, str(n_batches), helper]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    m = re.search(r'Collected : (\d+)', proc.stderr)
    if proc.returncode != 0 or m is None: raise RuntimeError(f'valgrind run failed:\n{proc.stderr[-2000:]}')
    return int(m.group(1))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == '--child':
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rev', help='measure trainlib as it is at this git revision (default: the work tree)')
    p.add_argument('--rows', default='raw,off,acc,noop10', help='comma-separated: raw, off, bar, acc, noop10, v1 (v1 Learner, 10 no-op v1 callbacks), v1_0 (no callbacks)')
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        helper = tmp / 'cgtoggle.so'
        (tmp / 'cgtoggle.c').write_text(_HELPER_C)
        subprocess.run(['cc', '-O2', '-shared', '-fPIC', '-o', str(helper), str(tmp / 'cgtoggle.c')], check=True)
        lib_root = ROOT
        if args.rev:
            lib_root = tmp / 'rev'
            lib_root.mkdir()
            archive = subprocess.run(['git', '-C', str(ROOT), 'archive', args.rev, 'trainlib'], check=True,
                                     capture_output=True)
            subprocess.run(['tar', '-x', '-C', str(lib_root)], input=archive.stdout, check=True)
        for row in [r for r in args.rows.split(',') if r]:
            small, large = (_count(row, n, str(helper), lib_root, tmp) for n in (SMALL, LARGE))
            per_batch = (large - small) / (N_FITS * (LARGE - SMALL))
            print(f'{args.rev or "work tree"}  {row:7} {per_batch:10.0f} instructions per batch', flush=True)


if __name__ == '__main__':
    main()
