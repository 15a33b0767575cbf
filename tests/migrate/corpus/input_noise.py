"Add Gaussian noise to the inputs of the training batches (fastai >= 1.0.47 dict returns)."
from fastai.basic_train import *
from fastai.callback import *
from fastai.torch_core import *


class InputNoise(Callback):
    "Regularize by adding `std`-scaled Gaussian noise to each training input."
    def __init__(self, std:float=0.1):
        self.std = std

    def on_batch_begin(self, last_input:Tensor, train:bool, **kwargs:Any)->Dict[str,Tensor]:
        if not train: return
        noise = torch.randn_like(last_input) * self.std
        return {'last_input': last_input + noise}
