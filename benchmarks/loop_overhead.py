"""How much a training loop costs on top of a raw PyTorch loop: µs per training batch, and the ratio.

Run by hand (with the peers about 6 minutes on an Intel Xeon, 14 on an AMD EPYC; ``--rounds 5`` for a
quicker, noisier look)::

    /work/main/.venv/bin/python benchmarks/loop_overhead.py \\
        --peer-python /tmp/trainlib-oracle/fa2/bin/python --peer-python /tmp/peer-venv/bin/python

What is timed, and how
----------------------
* Two workloads, one thread (``torch.set_num_threads(1)``), CPU, synthetic 10-class data, cross-entropy,
  torch's SGD with momentum 0.9 and no weight decay everywhere:
  ``tiny`` = ``Linear(10, 10)``, batch size 64; ``medium`` = MLP 256-512-512-10, batch size 256.
* Every row iterates the same torch ``DataLoader`` (one per workload, shuffled), which fetches each
  batch with one indexing of the tensors (a ``BatchSampler`` as its sampler, ``batch_size=None``)
  rather than item by item, so that data loading does not hide the loop's cost. It is wrapped in
  :class:`TimedLoader`, which notes the time when iteration starts and when the loader is exhausted.
  A row's figure is that span divided by the number of batches: the **training batch loop only**.
  Per-fit and per-epoch work (creating the optimizer, ``before_fit``, ``before_train``, opening a
  bar, the validation phase on its one batch, the epoch's table row) is outside the span, so it is
  excluded; everything per batch (the data loading, the events, the callbacks, time-based bar
  refreshes, the optimizer) is inside it. Lightning prefetches one batch ahead, so its loader runs
  out before its last batch is trained: for it the span ends at the later of exhaustion and the end
  of the last ``on_train_batch_end``.
* Rows: the raw loop (forward, loss, backward, ``opt.step()``, ``opt.zero_grad()``, which in torch 2
  drops the gradients; trainlib drops them too, with fastai 2's updates, see ``trainlib/optim.py``); the v2
  Learner with its default callbacks with the bar on (stdout replaced by a null stream that says it
  is a terminal, so the bar code runs) and off (stdout a null stream that is no terminal: the
  default callbacks are all there, the bar is not drawn, as in a CI log); with the ``accuracy``
  metric computed on the training batches (``recorder.train_metrics = True``: metrics on the
  validation set only would be outside the span); with 10 no-op callbacks implementing every event
  (bar off).
  Rows for ``trainlib.v1`` are skipped with a note while ``trainlib.v1`` lacks what they need.
* Each row keeps its own model (same initial weights) and optimizer for the whole run. After one
  warm-up epoch per row, ``--rounds`` rounds: in each, every row (in an order that rotates by one
  every round) runs right after a run of the raw loop of its own, ``gc.collect()`` before each
  epoch, outside the span. A run is the fastest of ``--repeats`` epochs back to back. Figures are
  medians over rounds; a row's ratio is the median over rounds of its time over the raw run just
  before it; the per-extra-callback cost is the median over rounds of (10 no-op row - bar off row)
  / 10, two rows that run one after the other in most rounds, printed with a 95% interval for that median
  (a seeded percentile bootstrap over the rounds). Why: on a shared virtual machine the time the
  hypervisor takes away from this CPU still counts as this thread's CPU time, and it only ever adds,
  in bursts (the raw loop was seen at 250 and at 480 µs a batch within the hour): the fastest of a
  few epochs filters bursts, pairing each row with an adjacent raw run cancels slower drifts.
  Even so the spread stays wide on such a machine (the script prints the IQR);
  ``benchmarks/instructions_per_batch.py`` gives noise-free instruction counts.
* Peers (never dependencies): fastai 2 and Lightning run the same workloads in a subprocess of an
  interpreter that has them (``--peer-python``, repeatable; this interpreter is tried too), each
  with its own raw loop in that process as its reference. fastai: ``OptimWrapper`` over torch's SGD,
  bar off = ``ProgressCallback`` removed. Lightning: one ``Trainer`` per epoch (built outside the
  span) without logger, checkpointing, model summary or validation; its accuracy row logs a
  torchmetrics ``MulticlassAccuracy`` per epoch from ``training_step``; its no-op callbacks override
  the batch-level hooks.
"""
from __future__ import annotations

import argparse
import gc
import io
import json
import random
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
SIZES = {'tiny': dict(dims=(10, 10), bs=64, n_batches=50),
         'medium': dict(dims=(256, 512, 512, 10), bs=256, n_batches=6)}
LR, MOM, N_NOOP = 0.01, 0.9, 10
TARGETS = {'tiny': 1.10, 'medium': 1.02}
V1_TARGET, PER_CB_TARGET = 1.25, 1.0
clock: Callable[[], float] = time.thread_time
"The clock of every span: this thread's CPU time (``--clock wall`` for ``time.perf_counter``)."


class Skip(Exception):
    "A row that cannot run here (the library lacks what it needs); the message says why."


# ====================================================================== the workload
class TimedLoader:
    "Wrap a loader; note when iteration starts (``start``) and when the loader is exhausted (``stop``)."
    def __init__(self, dl: DataLoader) -> None:
        self.dl, self.dataset, self.start, self.stop = dl, dl.dataset, None, None

    def __len__(self) -> int: return len(self.dl)

    def __iter__(self) -> Iterator:
        self.start = self.stop = None
        self.start = clock()
        yield from self.dl
        self.stop = clock()

    def us_per_batch(self, stop: float | None = None) -> float:
        "The span of the last pass in µs per batch (``stop`` overrides the end when later)."
        end = max(self.stop or 0., stop or 0.)
        return (end - self.start) * 1e6 / len(self.dl)


class Workload:
    "The data (a shuffled train loader, a one-batch valid loader) and model shape of one size."
    def __init__(self, size: str) -> None:
        cfg = SIZES[size]
        self.size, self.dims, self.bs, self.n_batches = size, cfg['dims'], cfg['bs'], cfg['n_batches']
        g = torch.Generator().manual_seed(0)
        n = self.bs * self.n_batches
        x, y = torch.randn(n, self.dims[0], generator=g), torch.randint(0, self.dims[-1], (n,), generator=g)
        ds = TensorDataset(x, y)
        sampler = BatchSampler(RandomSampler(ds, generator=torch.Generator().manual_seed(1)), self.bs, drop_last=True)
        self.train = TimedLoader(DataLoader(ds, sampler=sampler, batch_size=None))
        self.valid = DataLoader(TensorDataset(x[:self.bs], y[:self.bs]), batch_size=self.bs)

    def model(self) -> nn.Module:
        "A fresh model, with the same initial weights every time."
        torch.manual_seed(0)
        layers: list = []
        for i, (a, b) in enumerate(zip(self.dims[:-1], self.dims[1:])):
            if i: layers.append(nn.ReLU())
            layers.append(nn.Linear(a, b))
        return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


class _NullStream(io.TextIOBase):
    "Swallows writes; ``isatty()`` says what it was told, so bar code runs as in a terminal."
    def __init__(self, tty: bool) -> None: self.tty = tty
    def write(self, s: str) -> int: return len(s)
    def isatty(self) -> bool: return self.tty


@contextmanager
def quiet(tty: bool) -> Iterator[None]:
    "stdout and stderr to a null stream (one that claims to be a terminal when ``tty``)."
    with redirect_stdout(_NullStream(tty)), redirect_stderr(_NullStream(tty)): yield


def _epoch(run: Callable[[], float], repeats: int = 1) -> float:
    "The fastest of ``repeats`` epochs of ``run`` (µs per batch), each after a garbage collection."
    best = float('inf')
    for _ in range(repeats):
        gc.collect()
        best = min(best, run())
    return best


# ====================================================================== rows: raw torch
def raw_row(wl: Workload) -> Callable[[], float]:
    "The reference: forward, loss, backward, step, zero_grad (torch's default: drop the gradients) over the loader."
    model, loss_func = wl.model(), nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOM)

    def run() -> float:
        model.train()
        for xb, yb in wl.train:
            loss = loss_func(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
        return wl.train.us_per_batch()
    return run


# ====================================================================== rows: trainlib v2
def _import_trainlib() -> Any:
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    import trainlib
    return trainlib


def _v2_noop_class() -> type:
    from trainlib.callback import Callback
    from trainlib.events import EVENTS

    def noop(self) -> None: pass
    return type('NoopCallback', (Callback,), {e: noop for e in EVENTS})


def v2_row(wl: Workload, bar: bool = True, metric: bool = False, n_noop: int = 0) -> Callable[[], float]:
    "The v2 Learner with its default callbacks (plus a training metric or no-op callbacks)."
    tl = _import_trainlib()
    noop_cls = _v2_noop_class()
    learn = tl.Learner(tl.DataLoaders(wl.train, wl.valid, device='cpu'), wl.model(), loss_func=nn.CrossEntropyLoss(),
                       opt_func=partial(tl.SGD, mom=MOM), lr=LR, metrics=tl.accuracy if metric else None,
                       cbs=[noop_cls() for _ in range(n_noop)])
    learn.recorder.train_metrics = metric

    def run() -> float:
        with quiet(tty=bar): learn.fit(1)
        return wl.train.us_per_batch()
    return run


# ====================================================================== rows: trainlib v1
def _v1_api() -> Any:
    _import_trainlib()
    try: import trainlib.v1 as v1
    except ImportError as e: raise Skip(f'trainlib.v1 cannot be imported ({e})') from None
    missing = [n for n in ('Learner', 'Callback', 'DataBunch') if not hasattr(v1, n)]
    if missing: raise Skip(f'trainlib.v1 has no {", ".join(missing)} yet')
    return v1


def _v1_noop_class(v1: Any) -> type:
    names = ('on_train_begin', 'on_epoch_begin', 'on_batch_begin', 'on_loss_begin', 'on_backward_begin',
             'on_backward_end', 'on_step_end', 'on_batch_end', 'on_epoch_end', 'on_train_end')

    def noop(self, **kwargs: Any) -> None: pass
    return type('NoopV1Callback', (v1.Callback,), {n: noop for n in names})


def _v1_learner(wl: Workload, v1: Any, cbs: list) -> Any:
    data = v1.DataBunch(wl.train, wl.valid, device=torch.device('cpu'))
    return v1.Learner(data, wl.model(), loss_func=nn.CrossEntropyLoss(), wd=0., true_wd=False, bn_wd=True,
                      opt_func=partial(torch.optim.SGD, momentum=MOM), callbacks=cbs)


def _v1_run(wl: Workload, learn: Any) -> Callable[[], float]:
    def run() -> float:
        with quiet(tty=False): learn.fit(1, lr=LR)
        return wl.train.us_per_batch()
    return run


def v1_noop_row(wl: Workload) -> Callable[[], float]:
    "The v1 Learner with 10 no-op v1 callbacks."
    v1 = _v1_api()
    cls = _v1_noop_class(v1)
    return _v1_run(wl, _v1_learner(wl, v1, [cls() for _ in range(N_NOOP)]))


def v1_mixed_row(wl: Workload) -> Callable[[], float]:
    "The v1 Learner with 5 no-op v1 callbacks and 5 no-op v2 callbacks in one list."
    v1 = _v1_api()
    v1_cls, v2_cls = _v1_noop_class(v1), _v2_noop_class()
    half = N_NOOP // 2
    return _v1_run(wl, _v1_learner(wl, v1, [v1_cls() for _ in range(half)] + [v2_cls() for _ in range(half)]))


"The raw loop zeroing gradients as fastai 2 and trainlib do: the like-with-like reference for their rows."

ROWS: list[tuple[str, Callable[[Workload], Callable[[], float]]]] = [
    ('raw torch loop', raw_row),
    ('v2 default cbs, bar on', partial(v2_row, bar=True)),
    ('v2 default cbs, bar off', partial(v2_row, bar=False)),
    (f'v2 + {N_NOOP} no-op cbs, bar off', partial(v2_row, bar=False, n_noop=N_NOOP)),    # right after "bar off"
    ('v2 + accuracy (train metric), bar on', partial(v2_row, bar=True, metric=True)),
    (f'v1 + {N_NOOP} no-op v1 cbs', v1_noop_row),
    (f'v1 + {N_NOOP // 2} v1 + {N_NOOP // 2} v2 no-op cbs', v1_mixed_row),
]
"(label, factory): a factory builds a row's runner for a workload or raises Skip."


# ====================================================================== rows: fastai 2 (subprocess)
def fastai_rows() -> list:
    "fastai 2 rows: default callbacks with and without the bar, accuracy, 10 no-op callbacks."
    from fastai.basics import Callback, DataLoaders, Learner, OptimWrapper, accuracy
    from fastai.callback.progress import ProgressCallback
    from fastai.callback.core import event

    def noop(self) -> None: pass
    noop_cls = type('NoopCallback', (Callback,), {e: noop for e in event.__dict__ if not e.startswith('_')})

    def row(wl: Workload, bar: bool = True, metric: bool = False, n_noop: int = 0) -> Callable[[], float]:
        learn = Learner(DataLoaders(wl.train, wl.valid), wl.model(), loss_func=nn.CrossEntropyLoss(),
                        opt_func=partial(OptimWrapper, opt=torch.optim.SGD, momentum=MOM), lr=LR,
                        metrics=accuracy if metric else None, cbs=[noop_cls() for _ in range(n_noop)])
        learn.recorder.train_metrics = metric
        if not bar: learn.remove_cb(ProgressCallback)

        def run() -> float:
            with quiet(tty=bar): learn.fit(1)
            return wl.train.us_per_batch()
        return run
    return [('raw torch loop', raw_row), ('fastai default cbs, bar on', partial(row, bar=True)),
            ('fastai default cbs, bar off', partial(row, bar=False)),
            (f'fastai + {N_NOOP} no-op cbs, bar off', partial(row, bar=False, n_noop=N_NOOP)),
            ('fastai + accuracy (train metric), bar on', partial(row, metric=True))]


# ====================================================================== rows: Lightning (subprocess)
def lightning_rows() -> list:
    "Lightning rows: bar on and off, accuracy (torchmetrics), 10 no-op callbacks."
    import logging
    import warnings
    import lightning as L
    import torch.nn.functional as F
    from torchmetrics.classification import MulticlassAccuracy
    logging.getLogger('lightning').setLevel(logging.ERROR)
    logging.getLogger('lightning.pytorch').setLevel(logging.ERROR)
    warnings.filterwarnings('ignore')

    class Module(L.LightningModule):
        def __init__(self, net: nn.Module, n_classes: int, metric: bool) -> None:
            super().__init__()
            self.net, self.metric = net, metric
            self.acc = MulticlassAccuracy(num_classes=n_classes) if metric else None

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            out = self.net(x)
            if self.metric:
                self.acc(out, y)
                self.log('acc', self.acc, on_step=False, on_epoch=True)
            return F.cross_entropy(out, y)

        def configure_optimizers(self) -> Any: return torch.optim.SGD(self.parameters(), lr=LR, momentum=MOM)

    class LastBatchEnd(L.Callback):
        "Notes when the last training batch ended (Lightning's loader runs out one batch early)."
        t = 0.
        def on_train_batch_end(self, *args: Any) -> None: self.t = clock()

    hooks = ('on_train_batch_start', 'on_before_backward', 'on_after_backward', 'on_before_optimizer_step',
             'on_before_zero_grad', 'on_train_batch_end', 'on_train_epoch_start', 'on_train_epoch_end',
             'on_fit_start', 'on_fit_end', 'on_train_start', 'on_train_end')

    def noop(self, *args: Any, **kwargs: Any) -> None: pass
    noop_cls = type('NoopCallback', (L.Callback,), {h: noop for h in hooks})

    def row(wl: Workload, bar: bool = True, metric: bool = False, n_noop: int = 0) -> Callable[[], float]:
        module = Module(wl.model(), wl.dims[-1], metric)
        noops = [noop_cls() for _ in range(n_noop)]

        def run() -> float:
            last = LastBatchEnd()
            with quiet(tty=bar):
                trainer = L.Trainer(max_epochs=1, accelerator='cpu', devices=1, logger=False,
                                    enable_checkpointing=False, enable_model_summary=False,
                                    enable_progress_bar=bar, limit_val_batches=0, num_sanity_val_steps=0,
                                    callbacks=[last] + noops)
                trainer.fit(module, train_dataloaders=wl.train)
            return wl.train.us_per_batch(stop=last.t)
        return run
    return [('raw torch loop', raw_row), ('Lightning, bar on', partial(row, bar=True)),
            ('Lightning, bar off', partial(row, bar=False)),
            (f'Lightning + {N_NOOP} no-op cbs, bar off', partial(row, bar=False, n_noop=N_NOOP)),
            ('Lightning + accuracy (torchmetrics), bar on', partial(row, metric=True))]


PEERS = {'fastai': ('fastai', fastai_rows), 'lightning': ('lightning', lightning_rows)}
"peer name -> (module that must be importable, function returning its rows)."


# ====================================================================== measuring
def measure(rows: list, sizes: list[str], rounds: int, repeats: int = 3) -> dict:
    """``{size: {'times': {label: [µs per round]}, 'raw': {label: [µs of its raw run]}, 'skipped': {label: why}}}``.

    The first row is the raw loop: in each round every other row runs right after a raw run of its own
    (``raw[label]``), the pair being its ratio for that round."""
    torch.set_num_threads(1)
    out = {}
    for size in sizes:
        wl = Workload(size)
        runners, skipped = {}, {}
        for label, factory in rows:
            try: runners[label] = factory(wl)
            except Skip as e: skipped[label] = str(e)
        labels = list(runners)
        for label in labels: _epoch(runners[label])                  # warm-up
        gc.collect()
        gc.freeze()                                                   # later collections skip the set-up
        ref, others = labels[0], labels[1:]
        times: dict = {label: [] for label in labels}
        raw: dict = {label: [] for label in others}
        for r in range(rounds):
            for k in range(len(others)):
                label = others[(k + r) % len(others)]
                raw[label].append(_epoch(runners[ref], repeats))
                times[label].append(_epoch(runners[label], repeats))
        times[ref] = [t for label in others for t in raw[label]]
        out[size] = {'times': times, 'raw': raw, 'skipped': skipped}
    return out


def summarise(result: dict, noop_label: str | None, base_label: str | None) -> dict:
    "Medians, ratios to the raw run paired with each round, and the per-extra-callback cost."
    times, raw = result['times'], result.get('raw', {})
    res = {}
    for label, ts in times.items():
        refs = raw.get(label)
        ratios = sorted(t / r for t, r in zip(ts, refs)) if refs else [1.0] * len(ts)
        q1, q3 = (statistics.quantiles(ratios, n=4)[::2] if len(ratios) > 1 else (ratios[0], ratios[0]))
        res[label] = {'us': statistics.median(ts), 'ratio': statistics.median(ratios), 'q1': q1, 'q3': q3}
    if noop_label in times and base_label in times:
        # the two rows of the same round (they run one after the other in most rounds)
        per_round = [(a - b) / N_NOOP for a, b in zip(times[noop_label], times[base_label])]
        res['_per_cb'] = statistics.median(per_round)
        res['_per_cb_ci'] = median_interval(per_round)
    return res


def median_interval(xs: list[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    "A 95% interval for the median of ``xs`` (percentile bootstrap, seeded): how far this run's figure can be trusted."
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


# ====================================================================== peers
def _peer_interpreters(extra: list[str]) -> dict:
    "peer name -> an interpreter that can import it (this one first)."
    found = {}
    for py in [sys.executable] + extra:
        for name, (module, _) in PEERS.items():
            if name in found: continue
            probe = f'import importlib.util,sys; sys.exit(0 if importlib.util.find_spec({module!r}) else 1)'
            try: ok = subprocess.run([py, '-c', probe], capture_output=True, timeout=120).returncode == 0
            except (OSError, subprocess.TimeoutExpired): ok = False
            if ok: found[name] = py
    return found


def run_peer(py: str, name: str, sizes: list[str], rounds: int, clock_name: str, repeats: int) -> dict:
    "Run the ``name`` rows in a subprocess of ``py``; its measurements come back as JSON."
    cmd = [py, str(Path(__file__).resolve()), '--worker', name, '--sizes', ','.join(sizes), '--rounds', str(rounds), '--repeats', str(repeats),
           '--clock', clock_name]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0: raise RuntimeError(f'{name} worker failed:\n{proc.stderr[-3000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ====================================================================== report
def _machine() -> str:
    model = next((ln.split(':', 1)[1].strip() for ln in Path('/proc/cpuinfo').read_text().splitlines()
                  if ln.startswith('model name')), '?') if Path('/proc/cpuinfo').exists() else '?'
    import os
    return f'{os.cpu_count()} CPUs, {model}, torch {torch.__version__}, Python {sys.version.split()[0]}'


def _cells(m: dict | None) -> str:
    if m is None: return f'{"-":>18}{"-":>8}{"":>14}'
    return f'{m["us"]:18.1f}{m["ratio"]:8.3f}  ({m["q1"]:.2f}-{m["q3"]:.2f})'


def print_table(title: str, result: dict, sizes: list[str], noop_label: str, base_label: str) -> None:
    "One table: a row per configuration, µs/batch and ratio to raw per size."
    print(f'\n{title}')
    summaries = {s: summarise(result[s], noop_label, base_label) for s in sizes}
    labels = list(dict.fromkeys(l for s in sizes for l in result[s]['times']))
    head = f'{"":44}' + ''.join(f'{s + " µs/batch":>18}{"ratio":>8}{"(IQR)":>14}' for s in sizes)
    print(head)
    for label in labels:
        cells = ''.join(_cells(summaries[s].get(label)) for s in sizes)
        print(f'{label:44}{cells}')
    for s in sizes:
        if '_per_cb' in summaries[s]:
            lo, hi = summaries[s]['_per_cb_ci']
            print(f'  {s}: cost per extra no-op callback: {summaries[s]["_per_cb"]:.2f} µs/batch (95% interval {lo:.2f} to {hi:.2f})')
        for label, why in result[s]['skipped'].items(): print(f'  {s}: skipped "{label}": {why}')


def print_targets(res: dict, sizes: list[str]) -> None:
    "Each target of the issue, its measured value, met or not."
    print('\ntargets (ratios: medians over rounds of row / adjacent raw run; per callback: median over rounds of (10 no-op row - bar off row) / 10)')
    rows = []
    for s in sizes:
        rows.append((f'{s}: v2 default cbs, bar on', 'v2 default cbs, bar on', TARGETS[s]))
    if 'tiny' in sizes: rows.append(('tiny: v1 Learner + 10 v1 cbs', f'v1 + {N_NOOP} no-op v1 cbs', V1_TARGET))
    for title, label, target in rows:
        m = summarise(res[title.split(':')[0]], None, None).get(label)
        if m is None: print(f'  {title:40} skipped'); continue
        print(f'  {title:40} ratio {m["ratio"]:.3f} (IQR {m["q1"]:.2f}-{m["q3"]:.2f}), target <= {target:.2f}: '
              f'{"met" if m["ratio"] <= target else "NOT met"}')
    for s in sizes:
        summary = summarise(res[s], f'v2 + {N_NOOP} no-op cbs, bar off', 'v2 default cbs, bar off')
        if '_per_cb' not in summary: continue
        per_cb, (lo, hi) = summary['_per_cb'], summary['_per_cb_ci']
        note = '' if s == 'tiny' else ' (not resolvable: a batch here is thousands of µs and varies by more than 10 µs)'
        if s == 'tiny' and lo <= PER_CB_TARGET < hi: note = ' (the 95% interval spans the target: this run cannot settle it)'
        verdict = ('met' if per_cb <= PER_CB_TARGET else 'NOT met') if s == 'tiny' else 'see tiny'
        print(f'  {s + ": per extra no-op callback":40} {per_cb:.2f} µs/batch (95% interval {lo:.2f} to {hi:.2f}), '
              f'target <= {PER_CB_TARGET:.0f} µs: {verdict}{note}')


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--rounds', type=int, default=9, help='interleaved rounds per row (median taken)')
    p.add_argument('--repeats', type=int, default=3, help="epochs per row per round (the fastest is the round's figure)")
    p.add_argument('--sizes', default='tiny,medium', help='comma-separated: tiny, medium')
    p.add_argument('--peer-python', action='append', default=[], help='an interpreter with fastai 2 or Lightning')
    p.add_argument('--no-peers', action='store_true', help='skip fastai / Lightning')
    p.add_argument('--clock', choices=('cpu', 'wall'), default='cpu',
                   help="cpu: this thread's CPU time (robust to other processes); wall: perf_counter")
    p.add_argument('--worker', choices=sorted(PEERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    global clock
    clock = time.thread_time if args.clock == 'cpu' else time.perf_counter
    sizes = [s for s in args.sizes.split(',') if s]
    if args.worker:
        res = measure(PEERS[args.worker][1](), sizes, args.rounds, args.repeats)
        print(json.dumps(res))
        return
    print(f'machine: {_machine()}; torch threads: 1; rounds: {args.rounds} x {args.repeats} repeats; clock: {args.clock}')
    print('sizes: ' + '; '.join(f'{s}: dims {SIZES[s]["dims"]}, bs {SIZES[s]["bs"]}, {SIZES[s]["n_batches"]} batches/epoch'
                                for s in sizes))
    res = measure(ROWS, sizes, args.rounds, args.repeats)
    print_table('trainlib (ratio = median over rounds of row / the raw run just before it)', res, sizes,
                f'v2 + {N_NOOP} no-op cbs, bar off', 'v2 default cbs, bar off')
    print_targets(res, sizes)
    if args.no_peers: return
    found = _peer_interpreters(args.peer_python)
    for name in PEERS:
        if name not in found:
            print(f'\n{name}: not importable by this interpreter or any --peer-python; skipped')
            continue
        peer = run_peer(found[name], name, sizes, args.rounds, args.clock, args.repeats)
        label = 'fastai' if name == 'fastai' else 'Lightning'
        base = f'{label} default cbs, bar off' if name == 'fastai' else 'Lightning, bar off'
        print_table(f'{label} ({found[name]}; its own raw loop in its process)', peer, sizes,
                    f'{label} + {N_NOOP} no-op cbs, bar off', base)


if __name__ == '__main__':
    main()
