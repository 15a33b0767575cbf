"Record activation statistics with a forward hook, removed in on_train_end even when the fit fails."
from fastai.basic_train import *
from fastai.callback import *


class ActivationMeans(LearnerCallback):
    "The mean activation of one module for every training batch."
    def __init__(self, learn:Learner, module_idx:int=0):
        super().__init__(learn)
        self.module_idx = module_idx
        self.hook = None

    def _record(self, module, inp, out):
        if self.in_train: self.means.append(out.detach().mean().item())

    def on_train_begin(self, **kwargs):
        self.means = []
        self.hook = self.learn.model[self.module_idx].register_forward_hook(self._record)

    def on_batch_begin(self, train, **kwargs):
        self.in_train = train

    def on_train_end(self, exception, **kwargs):
        if self.hook is not None: self.hook.remove()
        self.hook = None
        if exception: print(f'ActivationMeans: training failed with {exception!r}')
