"""Names of heavy or optional packages (matplotlib, scipy, pandas, yaml, fastprogress) that a star import can
bind without importing them: the real module or class is loaded on first use.

Why not plain imports: fastai 1's star import binds ``plt``, ``pd``, ``master_bar``... and importing them
eagerly would add about 0.65 s to ``import trainlib.v1`` (matplotlib.pyplot ~430 ms, fastprogress ~190 ms,
measured on the CPU box with ``python -X importtime``), and would fail where an optional package (pandas)
is not installed. A missing package is an ImportError only when the name is used."""
from __future__ import annotations

import importlib
import types
from typing import Any

__all__ = ['LazyModule', 'lazy_class']


class LazyModule(types.ModuleType):
    "A stand-in for the module ``name``: imported on the first attribute access."
    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__['_lazy_target'] = None

    def _load(self) -> types.ModuleType:
        target = self.__dict__['_lazy_target']
        if target is None:
            try: target = importlib.import_module(self.__name__)
            except ImportError as e:
                raise ImportError(f'{self.__name__} is needed here but cannot be imported ({e}); install it to use it') from e
            self.__dict__['_lazy_target'] = target
        return target

    def __getattr__(self, attr: str) -> Any: return getattr(self._load(), attr)
    def __dir__(self) -> list: return dir(self._load())
    def __repr__(self) -> str: return f"<lazy module '{self.__name__}'>"


class _LazyClassMeta(type):
    "Calls, isinstance and issubclass on the stand-in go to the real class, imported on first use."
    def _load(cls) -> type:
        if cls._target is None: cls._target = getattr(importlib.import_module(cls._module), cls.__name__)
        return cls._target

    def __call__(cls, *args, **kwargs): return cls._load()(*args, **kwargs)
    def __instancecheck__(cls, obj) -> bool: return isinstance(obj, cls._load())
    def __subclasscheck__(cls, sub) -> bool: return issubclass(sub, cls._load())
    def __getattr__(cls, attr: str) -> Any: return getattr(cls._load(), attr)
    def __repr__(cls) -> str: return f"<lazy class '{cls._module}.{cls.__name__}'>"


def lazy_class(module: str, name: str) -> type:
    "A stand-in for the class ``module.name``, imported the first time it is called or checked against."
    return _LazyClassMeta(name, (), {'_module': module, '_target': None, '__module__': module})
