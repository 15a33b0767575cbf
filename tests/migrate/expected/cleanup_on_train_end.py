"Record activation statistics with a forward hook, removed in on_train_end even when the fit fails."
from trainlib.v2 import *


class ActivationMeans(Callback):
    "The mean activation of one module for every training batch."
    def __init__(self, module_idx:int=0):
        super().__init__()
        self.module_idx = module_idx
        self.hook = None

    def _record(self, module, inp, out):
        if self.in_train: self.means.append(out.detach().mean().item())

    def before_fit(self):
        self.means = []
        self.hook = self.learn.model[self.module_idx].register_forward_hook(self._record)

    def before_batch(self):
        self.in_train = self.learn.training

    def after_fit(self):
        if self.hook is not None: self.hook.remove()
        self.hook = None
        if self.learn.exception: print(f'ActivationMeans: training failed with {self.learn.exception!r}')
