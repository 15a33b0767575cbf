"""fastai-1's stock callbacks (``fastai.callbacks``), one module per fastai-1 module, as v1 callbacks on
trainlib's loop (they adapt the core's annealers; subclasses keep working as in fastai 1)."""
from .csv_logger import *
from .flat_cos_anneal import *
from .fp16 import *
from .general_sched import *
from .lr_finder import *
from .misc import *
from .mixup import *
from .one_cycle import *
from .tracker import *
from . import csv_logger, flat_cos_anneal, fp16, general_sched, lr_finder, misc, mixup, one_cycle, tracker

__all__ = [*lr_finder.__all__, *one_cycle.__all__, *general_sched.__all__, *mixup.__all__, *tracker.__all__,
           *csv_logger.__all__, *flat_cos_anneal.__all__, *misc.__all__,
           *fp16.__all__]
