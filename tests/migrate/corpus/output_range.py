"Squash the model's predictions into the range of the targets."
from fastai.basic_train import *
from fastai.callback import *
from fastai.torch_core import *


class OutputRange(Callback):
    "Map the raw output through a scaled sigmoid so predictions stay inside `(low, high)`."
    def __init__(self, low:float, high:float):
        self.low,self.high = low,high

    def on_loss_begin(self, last_output:Tensor, **kwargs:Any)->Dict[str,Tensor]:
        "Rescale the output before the loss (and the metrics) see it."
        return {'last_output': torch.sigmoid(last_output) * (self.high - self.low) + self.low}
