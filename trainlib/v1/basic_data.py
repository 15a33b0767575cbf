"""fastai-1's ``DataBunch`` over plain torch data, as core ``DataLoaders`` (``dls[0]`` train, ``dls[1]`` valid).

Unlike fastai 1, importing this changes nothing in torch (no patched ``DataLoader``), and
``DataBunch.create`` uses ``num_workers=0`` unless asked (fastai 1 took every CPU, up to 16).
"""
from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler

from ..data import DataLoaders, loader_like
from ..persistence import atomic_save
from ..utils import default_device, on_device, to_detach, to_device
from .core import listify

__all__ = ['DataBunch', 'DeviceDataLoader', 'DatasetType', 'load_data']

DatasetType = Enum('DatasetType', 'Train Valid Test Single Fix')
"Which data a Learner method works on: ``Train`` (shuffled), ``Valid``, ``Test``, ``Single``, ``Fix`` (train in order)."
_WHAT = {DatasetType.Train: 'training set', DatasetType.Valid: 'validation set', DatasetType.Test: 'test set',
         DatasetType.Single: 'single-item loader', DatasetType.Fix: 'training set in order'}
_ATTR = {t: f'data.{t.name.lower()}_dl' for t in DatasetType}


def _batching(dl: DataLoader) -> dict:
    "How ``dl`` batches, as DataLoader arguments: ``batch_size``, ``shuffle``, ``drop_last``, or its own samplers."
    if dl.batch_size is None: return {'batch_sampler': dl.batch_sampler} if dl.batch_sampler is not None else {'batch_size': None}
    how = {'batch_size': dl.batch_size, 'drop_last': dl.drop_last}
    if type(dl.sampler) is RandomSampler: how['shuffle'] = True
    elif type(dl.sampler) is SequentialSampler: how['shuffle'] = False
    else: how['sampler'] = dl.sampler
    return how


class DeviceDataLoader:
    """A loader whose batches are moved to ``device`` and then passed through ``tfms``. Attributes it lacks come
    from the DataLoader it wraps (``num_workers``, ``sampler``, ``drop_last``, ``collate_fn``...), then from its
    dataset, as in fastai 1."""

    def __init__(self, dl: Any, device: Any, tfms: Any = None) -> None:
        self.dl, self.device, self.tfms = dl, torch.device(device), listify(tfms)

    @classmethod
    def create(cls, dataset: Dataset, bs: int = 64, shuffle: bool = False, device: Any = None, tfms: Any = None,
               num_workers: int = 0, collate_fn: Callable | None = None, **kwargs: Any) -> 'DeviceDataLoader':
        """A DataLoader over ``dataset`` (batch size ``bs``; other DataLoader arguments in ``kwargs``) whose batches go
        to ``device`` (default ``defaults.device``) through ``tfms``."""
        if collate_fn is not None: kwargs['collate_fn'] = collate_fn
        return cls(DataLoader(dataset, batch_size=bs, shuffle=shuffle, num_workers=num_workers, **kwargs),
                   default_device() if device is None else device, tfms)

    def new(self, **kwargs: Any) -> 'DeviceDataLoader':
        """A loader over the same dataset, to the same device through the same tfms, with the DataLoader arguments
        in ``kwargs`` changed (``batch_size``, ``shuffle``, ``drop_last``, ``num_workers``...)."""
        if not isinstance(self.dl, DataLoader):
            raise TypeError(f'DeviceDataLoader.new: the wrapped loader is a {type(self.dl).__name__}, not a torch '
                            f'DataLoader whose arguments could be changed')
        return DeviceDataLoader(loader_like(self.dl, **{**_batching(self.dl), **kwargs}), self.device, list(self.tfms))

    def __getattr__(self, k: str) -> Any:
        d = self.__dict__
        if k.startswith('__') or 'dl' not in d: raise AttributeError(k)
        for source in (d['dl'], getattr(d['dl'], 'dataset', None)):
            try: return getattr(source, k)
            except AttributeError: pass
        raise AttributeError(f"'DeviceDataLoader' object has no attribute {k!r} (nor has the "
                             f"{type(d['dl']).__name__} it wraps, or that loader's dataset)")

    def __len__(self) -> int: return len(self.dl)

    def __iter__(self) -> Iterator[Any]:
        device = self.device
        for b in self.dl:
            if not on_device(b, device): b = to_device(b, device)
            for f in self.tfms: b = f(b)
            yield b

    @property
    def dataset(self) -> Any:
        "The dataset of the wrapped loader."
        return getattr(self.dl, 'dataset', None)

    @property
    def batch_size(self) -> Any:
        "The batch size of the wrapped loader."
        return getattr(self.dl, 'batch_size', None)

    def add_tfm(self, tfm: Callable) -> None:
        "Apply ``tfm`` to every batch from now on."
        self.tfms.append(tfm)

    def remove_tfm(self, tfm: Callable) -> None:
        "Stop applying ``tfm``."
        if tfm in self.tfms: self.tfms.remove(tfm)

    def __repr__(self) -> str: return f'DeviceDataLoader({self.dl!r}, device={self.device})'


def _dataset_of(loader: str, doc: str) -> property:
    "A read-only property: the dataset of the DataBunch's loader ``loader`` (None without that loader)."
    def dataset(self: Any) -> Any: return getattr(getattr(self, loader), 'dataset', None)
    dataset.__doc__ = doc
    return property(dataset)


def _wrap(dl: Any, device: Any, tfms: list) -> Any:
    if dl is None or isinstance(dl, DeviceDataLoader): return dl
    return DeviceDataLoader(dl, device, list(tfms))


class DataBunch(DataLoaders):
    """The train and valid loaders (and optional ``fix_dl``, ``test_dl``) of a fastai-1 Learner.

    ``train_dl``/``valid_dl`` are the core's ``dls[0]``/``dls[1]``; batches go to ``device``."""

    def __init__(self, train_dl: Any, valid_dl: Any, fix_dl: Any = None, test_dl: Any = None, device: Any = None,
                 dl_tfms: Any = None, path: str | Path = '.', collate_fn: Callable | None = None,
                 no_check: bool = False) -> None:
        device = torch.device(device) if device is not None else default_device()
        tfms = listify(dl_tfms)
        super().__init__(_wrap(train_dl, device, tfms), _wrap(valid_dl, device, tfms), path=path, device=device)
        self.fix_dl, self.test_dl = _wrap(fix_dl, device, tfms), _wrap(test_dl, device, tfms)
        self.single_dl = _wrap(DataLoader(valid_dl.dataset, batch_size=1), device, tfms) \
            if getattr(valid_dl, 'dataset', None) is not None else None

    @classmethod
    def create(cls, train_ds: Dataset, valid_ds: Dataset, test_ds: Dataset | None = None, path: str | Path = '.',
               bs: int = 64, val_bs: int | None = None, num_workers: int = 0, dl_tfms: Any = None,
               device: Any = None, collate_fn: Callable | None = None, no_check: bool = False,
               **dl_kwargs: Any) -> 'DataBunch':
        """Loaders over datasets: train shuffled and dropping its last partial batch; valid, fix (train in
        order) and test in order, with ``val_bs`` (default ``bs``)."""
        val_bs = bs if val_bs is None else val_bs
        if collate_fn is not None: dl_kwargs['collate_fn'] = collate_fn

        def dl(ds: Any, b: int, train: bool = False) -> Any:
            if ds is None: return None
            return DataLoader(ds, batch_size=b, shuffle=train, drop_last=train, num_workers=num_workers, **dl_kwargs)
        return cls(dl(train_ds, bs, True), dl(valid_ds, val_bs), fix_dl=dl(train_ds, val_bs), test_dl=dl(test_ds, val_bs),
                   device=device, dl_tfms=dl_tfms, path=path)

    # ------------------------------------------------------------------ loaders and datasets
    @property
    def train_dl(self) -> Any:
        "The training loader (shuffled)."
        return self.loaders[0]

    @train_dl.setter
    def train_dl(self, dl: Any) -> None: self.loaders[0] = _wrap(dl, self.device, [])

    @property
    def valid_dl(self) -> Any:
        "The validation loader (None: no validation)."
        return self.loaders[1]

    @valid_dl.setter
    def valid_dl(self, dl: Any) -> None: self.loaders[1] = _wrap(dl, self.device, [])

    def dl(self, ds_type: DatasetType = DatasetType.Valid) -> Any:
        "The loader for ``ds_type`` (None when the DataBunch has none)."
        return {DatasetType.Train: self.train_dl, DatasetType.Valid: self.valid_dl, DatasetType.Test: self.test_dl,
                DatasetType.Single: self.single_dl, DatasetType.Fix: self.fix_dl}[ds_type]

    def _needed_dl(self, ds_type: DatasetType, who: str) -> Any:
        "The loader for ``ds_type``, or a ValueError naming ``who`` and the data this DataBunch lacks."
        dl = self.dl(ds_type)
        if dl is None:
            hint = ': give DataBunch.create a test_ds' if ds_type is DatasetType.Test else ''
            raise ValueError(f'{who}({ds_type}): the DataBunch has no {_WHAT[ds_type]} ({_ATTR[ds_type]} is None){hint}')
        return dl

    @property
    def dls(self) -> list:
        "Every loader there is (train, valid, fix, test, single)."
        return [d for d in (self.train_dl, self.valid_dl, self.fix_dl, self.test_dl, self.single_dl) if d is not None]

    train_ds = _dataset_of('train_dl', 'The training dataset.')
    valid_ds = _dataset_of('valid_dl', 'The validation dataset.')
    test_ds = _dataset_of('test_dl', 'The test dataset (None without one).')
    fix_ds = _dataset_of('fix_dl', 'The dataset of ``fix_dl`` (the training set, in order).')
    single_ds = _dataset_of('single_dl', 'The dataset of ``single_dl`` (the validation set, one item per batch).')

    @property
    def empty_val(self) -> bool:
        "True when there is no validation data (fit then skips validation)."
        return self.valid_dl is None or self.valid_ds is None or len(self.valid_ds) == 0

    @property
    def c(self) -> Any:
        "The number of outputs the data asks for (``train_ds.c``)."
        return self.train_ds.c

    @property
    def loss_func(self) -> Callable:
        "The loss the data suggests: ``train_ds.y.loss_func``, else ``F.nll_loss`` (as fastai 1)."
        return getattr(getattr(self.train_ds, 'y', None), 'loss_func', F.nll_loss)

    @property
    def batch_size(self) -> Any:
        "The training batch size."
        return self.train_dl.batch_size

    @batch_size.setter
    def batch_size(self, v: int) -> None:
        """New train, valid and test loaders with batch size ``v``, each otherwise as it was (sampler, shuffle,
        drop_last, workers), as fastai 1; ``fix_dl`` and ``single_dl`` stay as they are."""
        self.train_dl = self.train_dl.new(batch_size=v)
        if self.valid_dl is not None: self.valid_dl = self.valid_dl.new(batch_size=v)
        if self.test_dl is not None: self.test_dl = self.test_dl.new(batch_size=v)

    def add_tfm(self, tfm: Callable) -> None:
        "Apply ``tfm`` to the batches of every loader."
        for dl in self.dls: dl.add_tfm(tfm)

    def remove_tfm(self, tfm: Callable) -> None:
        "Stop applying ``tfm``."
        for dl in self.dls: dl.remove_tfm(tfm)

    def one_batch(self, ds_type: DatasetType = DatasetType.Train, detach: bool = True, denorm: bool = True,
                  cpu: bool = True) -> tuple:
        "The first batch ``(x, y)`` of the ``ds_type`` loader (detached and on the CPU unless asked)."
        x, y = next(iter(self._needed_dl(ds_type, 'one_batch')))
        if detach: x, y = to_detach(x, cpu=cpu), to_detach(y, cpu=cpu)
        return x, y

    def save(self, file: Any = 'data_save.pkl') -> None:
        """Pickle the datasets (train, valid, test) to ``path/file`` (or the open binary ``file``), atomically, for
        :func:`load_data` (fastai 1 could only save data-block data)."""
        datasets = {'train_ds': self.train_ds, 'valid_ds': self.valid_ds, 'test_ds': self.test_ds}
        atomic_save(datasets, self.path / file if isinstance(file, (str, Path)) else file)

    def __repr__(self) -> str:
        return f'DataBunch;\n\nTrain: {self.train_ds};\n\nValid: {self.valid_ds};\n\nTest: {self.test_ds}'


def load_data(path: str | Path, file: Any = 'data_save.pkl', bs: int = 64, val_bs: int | None = None,
              num_workers: int = 0, dl_tfms: Any = None, device: Any = None, collate_fn: Callable | None = None,
              no_check: bool = False, **kwargs: Any) -> DataBunch:
    """A DataBunch at ``path`` over the datasets :meth:`DataBunch.save` wrote to ``path/file`` (or read from the open
    binary ``file``), with loaders as :meth:`DataBunch.create` makes them. Unpickles: trusted files only."""
    source = Path(path) / file if isinstance(file, (str, Path)) else file
    ds = torch.load(source, map_location='cpu', weights_only=False)
    return DataBunch.create(ds['train_ds'], ds['valid_ds'], test_ds=ds['test_ds'], path=path, bs=bs, val_bs=val_bs,
                            num_workers=num_workers, dl_tfms=dl_tfms, device=device, collate_fn=collate_fn,
                            no_check=no_check, **kwargs)
