"""fastai-1's ``Learner.export``/``load_learner``, ``purge`` and ``destroy``, for any data.

fastai 1 exported the data-block state of the validation set and rebuilt the data from it, so a Learner
on plain torch datasets could not be exported (AttributeError). Here the export holds what the Learner
needs to predict and to train again once it is given data: the model (saved from the CPU), ``opt_func``,
``loss_func``, ``metrics``, the settings (``true_wd, bn_wd, wd, train_bn, model_dir, add_time, silent``),
``callback_fns``, the layer groups and the state of ``learn.callbacks`` (their ``get_state()``, so
``exclude`` lists are honoured, as in fastai 1). ``load_learner`` gives it an empty :class:`DataBunch`
(optionally with a ``test`` set). The file is written atomically; loading it unpickles, which runs code:
load only files you trust.
"""
from __future__ import annotations

import gc
import io
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..persistence import atomic_save
from .basic_data import DataBunch
from .core import defaults, is_pathlike, split_kwargs_by_func
from .torch_core import ModelOnCPU, rank_distrib

__all__ = ['export', 'load_learner', 'load_callback', 'purge', 'destroy', 'DestroyedLearner']

_EXPORTED = ('opt_func', 'loss_func', 'metrics', 'true_wd', 'bn_wd', 'wd', 'train_bn', 'model_dir', 'callback_fns',
             'add_time', 'silent')


def _cb_state(learn: Any) -> dict:
    return {type(cb): cb.get_state() for cb in learn.callbacks}


def export(learn: Any, file: str | Path | io.IOBase = 'export.pkl', destroy: bool = False) -> None:
    "Save what ``load_learner`` needs to ``learn.path/file`` (or the open binary ``file``); ``destroy`` the Learner after."
    if rank_distrib(): return
    state = {a: getattr(learn, a) for a in _EXPORTED}
    state['cb_state'] = _cb_state(learn)
    with ModelOnCPU(learn.model) as m:
        state.update(model=m, layer_groups=learn.layer_groups, cls=type(learn))
        atomic_save(state, Path(learn.path) / file if is_pathlike(file) else file)
    if destroy: learn.destroy()


def load_callback(class_func: type, state: dict, learn: Any) -> Any:
    "A callback of class ``class_func`` from its ``get_state()``: ``__init__`` arguments first, the rest set after."
    from .basic_train import LearnerCallback
    init_kwargs, others = split_kwargs_by_func(dict(state), class_func.__init__)
    res = class_func(learn, **init_kwargs) if issubclass(class_func, LearnerCallback) else class_func(**init_kwargs)
    for k, v in others.items(): setattr(res, k, v)
    return res


def load_learner(path: str | Path, file: str | Path | io.IOBase = 'export.pkl', test: Dataset | None = None,
                 tfm_y: Any = None, **db_kwargs: Any) -> Any:
    """The Learner exported to ``path/file``, on an empty :class:`DataBunch` at ``path`` (``test``: a dataset for
    ``get_preds(DatasetType.Test)``, batched with ``db_kwargs`` such as ``bs``). Runs the pickle: trusted files only."""
    if tfm_y is not None:
        raise ValueError('load_learner: tfm_y transforms the targets of a data-block test ItemList; trainlib.v1 has '
                         'no data block: pass `test` as a torch Dataset whose items are ready')
    source = Path(path) / file if is_pathlike(file) else file
    state = torch.load(source, map_location='cpu' if defaults.device == torch.device('cpu') else None, weights_only=False)
    if not isinstance(state, dict) or 'cls' not in state:
        raise ValueError(f'load_learner: {source} was not written by Learner.export (trainlib.v1)')
    model, cb_state, cls = state.pop('model'), state.pop('cb_state'), state.pop('cls')
    callback_fns = state.pop('callback_fns')
    test_dl = None if test is None else DataLoader(test, batch_size=db_kwargs.pop('bs', 64), **db_kwargs)
    learn = cls(DataBunch(None, None, test_dl=test_dl, path=path, device=defaults.device), model, **state)
    learn.callback_fns = callback_fns
    learn.callbacks = [load_callback(c, s, learn) for c, s in cb_state.items()]
    return learn


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available(): torch.cuda.empty_cache()


def purge(learn: Any, clear_opt: bool = True) -> Any:
    """Free what training left behind: the last batch, its output and loss, the gradients, and the optimizer
    (with its running state) when ``clear_opt``; the model, the data and the settings stay. Returns ``learn``."""
    learn._end_cleanup()
    learn.loss_grad = None
    for p in learn.model.parameters(): p.grad = None
    if clear_opt: learn.opt = None
    _free_memory()
    return learn


class DestroyedLearner:
    "What a Learner becomes after ``destroy()``: every attribute or method is a clear error."

    def __getattribute__(self, name: str) -> Any:
        if name.startswith('__') and name.endswith('__'): return object.__getattribute__(self, name)
        raise RuntimeError(f'this Learner was destroyed (learn.destroy()): it has no `{name}` any more; '
                           f'create a new Learner (or load_learner an exported one)')

    def __repr__(self) -> str: return 'DestroyedLearner (this Learner object self-destroyed)'


def destroy(learn: Any) -> None:
    "Free everything the Learner holds; the object is left as a :class:`DestroyedLearner` (any use is an error)."
    learn.__dict__.clear()
    learn.__class__ = DestroyedLearner
    _free_memory()
    print('this Learner object self-destroyed - it still exists, but no longer usable')

