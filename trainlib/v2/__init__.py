"""The fastai-2-style public API: ``from trainlib.v2 import *``."""
from ..events import *
from ..callback import Callback, CallbackError
from ..callbacks import *
from ..data import *
from ..learner import Learner, load_learner
from ..losses import *
from ..metrics import *
from ..optim import *
from ..progress import ProgressCallback, set_progress, progress_disabled
from ..recorder import Recorder, History
from ..schedule import *
from ..lr_finder import *
from ..utils import (defaults, noop, listify, detuplify, default_device, to_device, to_detach, find_bs,
                     replacing_yield, tensor, even_mults, trainable_params)
