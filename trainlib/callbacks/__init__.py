"Stock v2 callbacks."
from .core import *
from .preds import *
from .data import *
from .fp16 import *
from .hooks import *
from .logging import *
from .tracker import *
from .training import *
