"""A version-neutral text description of a value, shared by the fastai-1 oracle script that records
tests/golden/fa1_helpers.txt and by the test that compares trainlib.v1.imports against it.
(numpy 1 and 2 print scalars differently and module paths differ, so plain reprs can't be compared.)"""
import re
import typing
from pathlib import PurePath

import numpy as np
import torch
from torch import nn

_MODULE_PREFIX = re.compile(r'\b(fastai\.torch_core|fastai\.core|trainlib\.v1\.aliases|trainlib\.v1\.core)\.')


def _num(x):
    return round(x, 6) if isinstance(x, float) else x


def _values(t):
    vals = t.tolist()
    return [_num(v) for v in vals] if isinstance(vals, list) and vals and not isinstance(vals[0], list) else vals


def describe(x) -> str:
    "Type and value of ``x``, the same text whatever numpy/fastai/trainlib produced it."
    if isinstance(x, torch.Tensor):
        grad = ',grad' if x.requires_grad else ''
        return f'tensor[{str(x.dtype)[6:]}{grad}]{tuple(x.shape)}={_values(x.detach().float() if x.dtype is torch.float16 else x.detach())}'
    if isinstance(x, np.ndarray): return f'ndarray[{x.dtype}]{x.shape}={_values(x)}'
    if isinstance(x, np.generic): return f'np.{type(x).__name__}({_num(x.item())})'
    if isinstance(x, nn.Module):
        kids = list(x.children())
        return type(x).__name__ + (f"({','.join(describe(c) for c in kids)})" if kids else '')
    if isinstance(x, (list, tuple)): return f"{type(x).__name__}[{', '.join(describe(o) for o in x)}]"
    if isinstance(x, dict): return '{' + ', '.join(f'{k!r}: {describe(v)}' for k, v in x.items()) + '}'
    if isinstance(x, float): return repr(_num(x))
    if isinstance(x, PurePath): return f'Path({str(x)!r})'
    if isinstance(x, (bool, int, str, type(None), range, slice, torch.dtype, torch.device)): return repr(x)
    if isinstance(x, type): return f'class {x.__module__}.{x.__qualname__}'
    if type(x).__module__ == 'typing' or x is typing.Any: return _MODULE_PREFIX.sub('', str(x))
    return f'<{type(x).__name__}>'
