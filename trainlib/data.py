"""``DataLoaders``: the training and validation loaders of a Learner, over plain torch data.

Any iterable with a length that yields tuples (or lists) of tensors is a loader; a torch
``DataLoader`` is the usual one. Batches are split into inputs and targets by ``n_inp``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler

from .utils import default_device, to_device

__all__ = ['DataLoaders', 'sequential_loader', 'prediction_loader', 'loader_dataset']


def loader_dataset(dl: Any) -> Any:
    "The dataset behind a loader (``dl.dataset``), or None."
    return getattr(dl, 'dataset', None)


def _own_batches(dl: Any) -> bool:
    "Does ``dl`` draw its batches from a batch_sampler of the user's (not a plain in-order one)?"
    if not isinstance(dl, DataLoader) or dl.batch_sampler is None or dl.batch_size is not None: return False
    bs = dl.batch_sampler
    return not (isinstance(bs, BatchSampler) and isinstance(bs.sampler, SequentialSampler) and not bs.drop_last)


def loader_like(dl: DataLoader, **how: Any) -> DataLoader:
    """A DataLoader over ``dl``'s dataset with its collate function, workers, timeout and random generator, batched
    as ``how`` says (which may also give other collate functions, workers...)."""
    args = {'collate_fn': dl.collate_fn, 'num_workers': dl.num_workers, 'pin_memory': dl.pin_memory,
            'worker_init_fn': dl.worker_init_fn, 'timeout': dl.timeout, 'generator': dl.generator,
            'multiprocessing_context': dl.multiprocessing_context, **how}
    if args['num_workers'] > 0 and dl.num_workers > 0:      # (options that need workers)
        args.setdefault('prefetch_factor', dl.prefetch_factor)
        args.setdefault('persistent_workers', dl.persistent_workers)
    return DataLoader(dl.dataset, **args)


def sequential_loader(dl: Any) -> Any:
    """A loader over the same data as ``dl`` in order, keeping every item (no shuffle, no drop_last).

    Returns ``dl`` itself when it already is one; a torch DataLoader is rebuilt with its batch size,
    collate function and workers; any other loader is used as it is."""
    if not isinstance(dl, DataLoader) or dl.batch_sampler is None: return dl   # (the dataset yields batches)
    if _own_batches(dl):
        raise ValueError('sequential_loader: the DataLoader uses a custom batch_sampler, whose order is its own; '
                         'use prediction_loader (what get_preds runs) to put its results back in order')
    if dl.batch_size is None or (isinstance(dl.sampler, SequentialSampler) and not dl.drop_last): return dl
    return loader_like(dl, batch_size=dl.batch_size, shuffle=False, drop_last=False)


def prediction_loader(dl: Any, reorder: bool = True) -> tuple[Any, torch.Tensor | None]:
    """The loader ``get_preds`` runs for ``dl``, and the permutation that puts its results in dataset order
    (None when they already are). A shuffling or dropping loader is remade in order. A loader with a
    batch_sampler of its own (say, batches sorted by length) keeps its batches: with ``reorder`` they are
    drawn once and the permutation is returned; without, the results come in the sampler's order."""
    if not _own_batches(dl): return sequential_loader(dl), None
    if not reorder: return dl, None
    batches = [list(b) for b in dl.batch_sampler]
    return loader_like(dl, batch_sampler=batches), torch.tensor([i for b in batches for i in b]).argsort()


class DataLoaders:
    """The loaders of a Learner: ``dls[0]`` (``train``), ``dls[1]`` (``valid``), more if given.

    ``device``: where batches go (default: CUDA when available). ``n_inp``: how many elements of a
    batch are inputs (default: all but the last). ``vocab``: the class names, by index, that
    ``Learner.predict`` decodes a class prediction into."""

    def __init__(self, *loaders: Any, path: str | Path = '.', device: Any = None, n_inp: int | None = None,
                 vocab: Sequence | None = None) -> None:
        self.loaders = list(loaders)
        self.path = Path(path)
        self.device = torch.device(device) if device is not None else default_device()
        self.n_inp = n_inp
        self.vocab = vocab

    def __getitem__(self, i: int) -> Any:
        try: return self.loaders[i]
        except IndexError:
            raise IndexError(f'DataLoaders has {len(self.loaders)} loader(s): there is no dls[{i}]'
                             f'{" (the validation loader)" if i == 1 else ""}') from None
    def __len__(self) -> int: return len(self.loaders)

    @property
    def train(self) -> Any:
        "The training loader."
        return self[0]

    @property
    def valid(self) -> Any:
        "The validation loader."
        return self[1]

    @property
    def train_ds(self) -> Any:
        "The training dataset."
        return loader_dataset(self.train)

    @property
    def valid_ds(self) -> Any:
        "The validation dataset."
        return loader_dataset(self.valid)

    def one_batch(self, i: int = 0) -> Any:
        "The first batch of loader ``i``, on ``device``."
        return to_device(next(iter(self[i])), self.device)

    def cpu(self) -> 'DataLoaders':
        "Send batches to the CPU from now on."
        self.device = torch.device('cpu')
        return self

    def to(self, device: Any) -> 'DataLoaders':
        "Send batches to ``device`` from now on."
        self.device = torch.device(device)
        return self

    def new_empty(self) -> 'DataLoaders':
        "A DataLoaders with the same settings and no data (what ``export`` keeps)."
        return DataLoaders(path=self.path, device=self.device, n_inp=self.n_inp, vocab=self.vocab)

    @classmethod
    def from_dsets(cls, *dsets: Dataset, bs: int = 64, shuffle_train: bool = True, drop_last_train: bool | None = None,
                   num_workers: int = 0, path: str | Path = '.', device: Any = None, n_inp: int | None = None,
                   vocab: Sequence | None = None, **kwargs: Any) -> 'DataLoaders':
        """Loaders over datasets: the first shuffled (and dropping its last partial batch, as fastai
        does), the others in order. ``kwargs`` go to every torch DataLoader."""
        if not dsets: raise ValueError('DataLoaders.from_dsets needs at least one dataset')
        drop = shuffle_train if drop_last_train is None else drop_last_train
        loaders = [DataLoader(ds, batch_size=bs, shuffle=(i == 0 and shuffle_train), drop_last=(i == 0 and drop),
                              num_workers=num_workers, **kwargs) for i, ds in enumerate(dsets)]
        return cls(*loaders, path=path, device=device, n_inp=n_inp, vocab=vocab)

    def __repr__(self) -> str:
        return f'DataLoaders({len(self.loaders)} loaders, device={self.device})'
