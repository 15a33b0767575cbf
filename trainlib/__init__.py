"""trainlib: one PyTorch training loop, with fastai-2 callbacks (``trainlib.v2``, also here) and
fastai-1 callbacks (``trainlib.v1``) running side by side."""
from .v2 import *

__version__ = '0.1.0'
