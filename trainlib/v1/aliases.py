"""The type aliases fastai-1 code writes in its annotations (``Floats``, ``Rank0Tensor``, ``OptOptimizer``...).

Real ``typing`` objects, so annotations using them evaluate, compose (``Optional[Floats]``) and can be
inspected with ``typing.get_type_hints``. The pandas ones (``OptDataFrame``, ``DataFrameOrChunks``) are left
out: pandas is not a trainlib dependency.
"""
from __future__ import annotations

from io import BufferedWriter, BytesIO
from numbers import Number
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, NewType, Optional, Tuple, Union

import numpy as np
from torch import Tensor, nn, optim

from .core import ItemBase
from .lazy import lazy_class

__all__ = [
    # fastai.core
    'AnnealFunc', 'ArgStar', 'BatchSamples', 'FilePathList', 'Floats', 'ImgLabel', 'ImgLabels', 'IntsOrStrs',
    'KeyFunc', 'KWArgs', 'ListOrItem', 'ListRules', 'ListSizes', 'NPArrayableList', 'NPArrayList', 'NPArrayMask',
    'NPImage', 'OptListOrItem', 'OptRange', 'OptStrTuple', 'OptStats', 'PathOrStr', 'PathLikeOrBinaryStream',
    'PBar', 'Point', 'Points', 'Sizes', 'SplitArrayList', 'StartOptEnd', 'StrList', 'Tokens', 'OptStrList',
    'TfmList',
    # fastai.torch_core
    'AffineMatrix', 'BoolOrTensor', 'FloatOrTensor', 'IntOrTensor', 'ItemsList', 'LambdaFunc', 'LayerFunc',
    'ModuleList', 'NPArray', 'OptOptimizer', 'ParamList', 'Rank0Tensor', 'SplitFunc', 'SplitFuncOrIdxList',
    'TensorOrNumber', 'TensorOrNumList', 'TensorImage', 'TensorImageSize', 'Tensors', 'Weights', 'AffineFunc',
    'HookFunc', 'LogitTensorImage', 'LossFunction', 'MetricFunc', 'MetricFuncList', 'MetricsList', 'OptLossFunc',
    'OptMetrics', 'OptSplitFunc', 'PixelFunc', 'LightingFunc']

MasterBar = lazy_class('fastprogress.fastprogress', 'MasterBar')
ProgressBar = lazy_class('fastprogress.fastprogress', 'ProgressBar')

# Numbers, lists and paths
AnnealFunc = Callable[[Number, Number, float], Number]
ArgStar = Collection[Any]
BatchSamples = Collection[Tuple[Collection[int], int]]
FilePathList = Collection[Path]
Floats = Union[float, Collection[float]]
ImgLabel = str
ImgLabels = Collection[ImgLabel]
IntsOrStrs = Union[int, Collection[int], str, Collection[str]]
KeyFunc = Callable[[int], int]
KWArgs = Dict[str, Any]
ListOrItem = Union[Collection[Any], int, float, str]
ListRules = Collection[Callable[[str], str]]
ListSizes = Collection[Tuple[int, int]]
NPArrayableList = Collection[Union[np.ndarray, list]]
NPArrayList = Collection[np.ndarray]
NPArrayMask = np.ndarray
NPImage = np.ndarray
OptListOrItem = Optional[ListOrItem]
OptRange = Optional[Tuple[float, float]]
OptStrTuple = Optional[Tuple[str, str]]
OptStats = Optional[Tuple[np.ndarray, np.ndarray]]
PathOrStr = Union[Path, str]
PathLikeOrBinaryStream = Union[PathOrStr, BufferedWriter, BytesIO]
PBar = Union[MasterBar, ProgressBar]
Point = Tuple[float, float]
Points = Collection[Point]
Sizes = List[List[int]]
SplitArrayList = List[Tuple[np.ndarray, np.ndarray]]
StartOptEnd = Union[float, Tuple[float, float]]
StrList = Collection[str]
Tokens = Collection[Collection[str]]
OptStrList = Optional[StrList]
TfmList = Union[Callable, Collection[Callable]]

# Tensors, models and training
AffineMatrix = Tensor
BoolOrTensor = Union[bool, Tensor]
FloatOrTensor = Union[float, Tensor]
IntOrTensor = Union[int, Tensor]
ItemsList = Collection[Union[Tensor, ItemBase, 'ItemsList', float, int]]
LambdaFunc = Callable[[Tensor], Tensor]
LayerFunc = Callable[[nn.Module], None]
ModuleList = Collection[nn.Module]
NPArray = np.ndarray
OptOptimizer = Optional[optim.Optimizer]
ParamList = Collection[nn.Parameter]
Rank0Tensor = NewType('OneEltTensor', Tensor)
SplitFunc = Callable[[nn.Module], List[nn.Module]]
SplitFuncOrIdxList = Union[Callable, Collection[ModuleList]]
TensorOrNumber = Union[Tensor, Number]
TensorOrNumList = Collection[TensorOrNumber]
TensorImage = Tensor
TensorImageSize = Tuple[int, int, int]
Tensors = Union[Tensor, Collection['Tensors']]
Weights = Dict[str, Tensor]
AffineFunc = Callable[[KWArgs], AffineMatrix]
HookFunc = Callable[[nn.Module, Tensors, Tensors], Any]
LogitTensorImage = TensorImage
LossFunction = Callable[[Tensor, Tensor], Rank0Tensor]
MetricFunc = Callable[[Tensor, Tensor], TensorOrNumber]
MetricFuncList = Collection[MetricFunc]
MetricsList = Collection[TensorOrNumber]
OptLossFunc = Optional[LossFunction]
OptMetrics = Optional[MetricsList]
OptSplitFunc = Optional[SplitFunc]
PixelFunc = Callable[[TensorImage, ArgStar, KWArgs], TensorImage]
LightingFunc = Callable[[LogitTensorImage, ArgStar, KWArgs], LogitTensorImage]
