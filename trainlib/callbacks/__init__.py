"Stock v2 callbacks."
from .core import *
from .preds import *
from .data import *
from .hooks import *
from .tracker import *
from .training import *
from .logging import *
