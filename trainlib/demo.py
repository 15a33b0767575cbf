"""The demo: a small CNN learns to tell handwritten 3s from 7s.

The data is scikit-learn's digits (8x8 images, shipped with the package, so it runs offline), cut
down to 3s and 7s like fastai's MNIST_SAMPLE. It trains with ``fit_one_cycle``, prints the epoch
table, and writes the loss and schedule plots as PNG files.

Run: ``python -m trainlib.demo [--epochs 5] [--lr 1e-2] [--out demo_output]``.
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from trainlib import CrossEntropyLossFlat, DataLoaders, Learner, accuracy

__all__ = ['digits_3_vs_7', 'simple_cnn', 'main']


def digits_3_vs_7(valid_pct: float = 0.2, seed: int = 42) -> tuple[TensorDataset, TensorDataset]:
    "scikit-learn's 8x8 digits, 3s (label 0) and 7s (label 1), split into train and valid."
    from sklearn.datasets import load_digits
    digits = load_digits()
    keep = np.isin(digits.target, (3, 7))
    x = torch.tensor(digits.images[keep], dtype=torch.float32).unsqueeze(1) / 16.
    y = torch.tensor(digits.target[keep] == 7, dtype=torch.long)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_valid = int(len(x) * valid_pct)
    return TensorDataset(x[idx[n_valid:]], y[idx[n_valid:]]), TensorDataset(x[idx[:n_valid]], y[idx[:n_valid]])


def simple_cnn() -> nn.Module:
    "Two convolutions, global pooling, a linear head with 2 outputs."
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))


def main(argv: list[str] | None = None) -> Learner:
    "Train the demo model, print the table and write the plots; returns the Learner."
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--epochs', type=int, default=6)
    parser.add_argument('--lr', type=float, default=3e-2)
    parser.add_argument('--out', default='demo_output', help='folder for the PNG plots')
    args = parser.parse_args(argv)
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    train_ds, valid_ds = digits_3_vs_7()
    dls = DataLoaders.from_dsets(train_ds, valid_ds, bs=32, device='cpu', vocab=['3', '7'])
    learn = Learner(dls, simple_cnn(), loss_func=CrossEntropyLossFlat(), metrics=accuracy)
    print(f'{len(train_ds)} training and {len(valid_ds)} validation images (3s vs 7s, 8x8)')
    learn.fit_one_cycle(args.epochs, args.lr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    learn.recorder.plot_loss(skip_start=0).figure.savefig(out / 'loss.png')
    learn.recorder.plot_sched().savefig(out / 'schedule.png')
    label, _, probs = learn.predict(valid_ds[0][0])
    print(f'first validation image: predicted {label} (p={probs.max():.3f}), actually {"37"[int(valid_ds[0][1])]}')
    print(f'plots written to {out / "loss.png"} and {out / "schedule.png"}')
    return learn


if __name__ == '__main__':
    main()
