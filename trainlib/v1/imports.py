"""The generic namespace fastai-1 code gets from ``from fastai.torch_core import *`` (and so from
``from fastai.basics import *``): stdlib modules, torch/numpy, typing names, fastai's type aliases and the
helpers of ``fastai.core``/``fastai.torch_core``.

A fastai-1 callback module runs once its fastai import lines become ``from trainlib.v1 import *``.
tests/golden/fa1_star_names.txt lists every name (recorded from fastai 1.0.61) and says which ones this
module provides, which ones trainlib.v1 proper provides (Learner, Callback, ...) and which are left out.
matplotlib.pyplot, scipy, pandas, yaml and the fastprogress bars are bound lazily: imported on first use.
"""
import abc
import bz2
import collections
import concurrent
import concurrent.futures
import csv
import functools
import gc
import gzip
import hashlib
import html
import importlib
import inspect
import io
import itertools
import json
import math
import mimetypes
import numbers
import operator
import os
import pathlib
import pickle
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import typing
import warnings
import weakref
from abc import abstractmethod, abstractproperty
from collections import Counter, OrderedDict, defaultdict, namedtuple
from collections.abc import Iterable, Sized
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from copy import copy, deepcopy
from dataclasses import InitVar, dataclass, field
from enum import Enum, IntEnum
from functools import partial, reduce
from io import BufferedWriter, BytesIO
from numbers import Number
from operator import attrgetter, itemgetter
from pathlib import Path
from pdb import set_trace
from types import SimpleNamespace
from typing import (Any, AnyStr, Callable, Collection, Dict, Hashable, Iterator, List, Mapping, NewType, Optional,
                    Sequence, Tuple, TypeVar, Union)
from warnings import warn

import numpy as np
import torch
import torch.nn.functional as F
from numpy import cos, exp, log, sin, tan, tanh
from torch import ByteTensor, DoubleTensor, FloatTensor, HalfTensor, LongTensor, ShortTensor, Tensor, as_tensor, nn, optim
from torch.nn.utils import spectral_norm, weight_norm
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, TensorDataset

from . import aliases, core, torch_core
from .aliases import *
from .core import *
from .lazy import LazyModule, lazy_class
from .torch_core import *

plt = LazyModule('matplotlib.pyplot')
scipy = LazyModule('scipy')
pd = LazyModule('pandas')
yaml = LazyModule('yaml')
master_bar = lazy_class('fastprogress.fastprogress', 'master_bar')
progress_bar = lazy_class('fastprogress.fastprogress', 'progress_bar')
MasterBar, ProgressBar = aliases.MasterBar, aliases.ProgressBar

_MODULES = ['abc', 'bz2', 'collections', 'concurrent', 'csv', 'functools', 'gc', 'gzip', 'hashlib', 'html',
            'importlib', 'inspect', 'io', 'itertools', 'json', 'math', 'mimetypes', 'numbers', 'operator', 'os',
            'pathlib', 'pickle', 'random', 're', 'shutil', 'subprocess', 'sys', 'tarfile', 'tempfile', 'typing',
            'warnings', 'weakref', 'np', 'torch', 'F', 'nn', 'optim', 'plt', 'scipy', 'pd', 'yaml']
_STDLIB_NAMES = ['abstractmethod', 'abstractproperty', 'Counter', 'OrderedDict', 'defaultdict', 'namedtuple',
                 'Iterable', 'Sized', 'ProcessPoolExecutor', 'ThreadPoolExecutor', 'contextmanager', 'copy',
                 'deepcopy', 'InitVar', 'dataclass', 'field', 'Enum', 'IntEnum', 'partial', 'reduce',
                 'BufferedWriter', 'BytesIO', 'Number', 'attrgetter', 'itemgetter', 'Path', 'set_trace',
                 'SimpleNamespace', 'warn']
_TYPING_NAMES = ['Any', 'AnyStr', 'Callable', 'Collection', 'Dict', 'Hashable', 'Iterator', 'List', 'Mapping',
                 'NewType', 'Optional', 'Sequence', 'Tuple', 'TypeVar', 'Union']
_ARRAY_NAMES = ['cos', 'exp', 'log', 'sin', 'tan', 'tanh', 'ByteTensor', 'DoubleTensor', 'FloatTensor', 'HalfTensor',
                'LongTensor', 'ShortTensor', 'Tensor', 'as_tensor', 'spectral_norm', 'weight_norm', 'BatchSampler',
                'DataLoader', 'Dataset', 'Sampler', 'TensorDataset', 'master_bar', 'progress_bar', 'MasterBar',
                'ProgressBar']

__all__ = _MODULES + _STDLIB_NAMES + _TYPING_NAMES + _ARRAY_NAMES + core.__all__ + torch_core.__all__ + aliases.__all__
