"""Saving and loading: atomic checkpoints, weights loaded without running code, whole-Learner export."""
from __future__ import annotations

import io
import os
import pickle
import warnings
from pathlib import Path
from typing import IO, Any, Callable

import numpy as np
import torch

__all__ = ['atomic_write', 'atomic_save', 'save_model', 'load_model', 'plain_state']


def plain_state(o: Any) -> Any:
    "Copy of a (nested) state dict with numpy scalars and arrays turned into Python numbers and tensors."
    if isinstance(o, dict): return {k: plain_state(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return type(o)(plain_state(v) for v in o)
    if isinstance(o, np.generic): return o.item()
    if isinstance(o, np.ndarray): return torch.from_numpy(o)
    return o


def atomic_write(file: str | os.PathLike, write: Callable[[IO[bytes]], Any], mkdir: bool = True) -> None:
    """Write ``file`` with ``write(f)`` so that it is never left half-written: into a temporary file beside
    it, flushed to disk, then renamed over it (the folder is made if needed and ``mkdir``)."""
    path = Path(file)
    if mkdir: path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    try:
        with open(tmp, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, file: str | Path | io.IOBase, pickle_protocol: int = 2, mkdir: bool = True) -> None:
    """``torch.save`` that never leaves a half-written file (:func:`atomic_write`). A file object is
    written directly."""
    if not isinstance(file, (str, os.PathLike)):
        torch.save(obj, file, pickle_protocol=pickle_protocol)
        return
    atomic_write(file, lambda f: torch.save(obj, f, pickle_protocol=pickle_protocol), mkdir=mkdir)


def _bare_model(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)) else model


def save_model(file: Any, model: torch.nn.Module, opt: Any, with_opt: bool = True, pickle_protocol: int = 2) -> None:
    "Save the model's weights (and the optimizer's state) atomically, in a form ``weights_only`` loading accepts."
    state = _bare_model(model).state_dict()
    if with_opt and opt is not None: state = {'model': state, 'opt': plain_state(opt.state_dict())}
    atomic_save(state, file, pickle_protocol=pickle_protocol)


class _FastcoreList(list):
    "What a fastai checkpoint pickles as ``fastcore.foundation.L`` (its optimizer's hypers), read as a plain list."
    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, dict) and isinstance(state.get('items'), list)):
            raise pickle.UnpicklingError(f'fastcore.foundation.L: expected a state {{"items": [...]}}, '
                                         f'got {type(state).__name__}')
        self[:] = state['items']


def load_weights_only(file: Any, device: Any) -> Any:
    """``torch.load(file, weights_only=True)`` (no code runs) that also reads fastai's checkpoints, whose
    optimizer part holds fastcore ``L`` lists (read as plain lists; fastcore is not imported)."""
    with torch.serialization.safe_globals([(_FastcoreList, 'fastcore.foundation.L')]):
        return torch.load(file, map_location=device, weights_only=True)


def load_model(file: Any, model: torch.nn.Module, opt: Any, with_opt: bool = True, device: Any = None,
               strict: bool = True) -> None:
    "Load weights saved by :func:`save_model` (or by fastai's ``learn.save``) without running code."
    if isinstance(device, int): device = torch.device('cuda', device)
    elif device is None: device = 'cpu'
    state = load_weights_only(file, device)
    has_opt = isinstance(state, dict) and set(state) == {'model', 'opt'}
    _bare_model(model).load_state_dict(state['model'] if has_opt else state, strict=strict)
    if not with_opt: return
    if not has_opt:
        warnings.warn("Saved file doesn't contain an optimizer state.")
        return
    try: opt.load_state_dict(state['opt'])
    except (ValueError, KeyError, RuntimeError, TypeError):
        warnings.warn('Could not load the optimizer state.')
