"""fastai-1's ``RNNTrainer``: resets the model's hidden state each epoch and adds AR/TAR regularisation."""
from __future__ import annotations

from typing import Any

import torch

from .basic_train import Learner, LearnerCallback

__all__ = ['RNNTrainer']


class RNNTrainer(LearnerCallback):
    """For a model returning ``(output, raw_outputs, dropped_outputs)``: keeps ``output`` as the prediction and adds
    ``alpha`` × activation regularisation (AR, on the last dropped output) and ``beta`` × temporal activation
    regularisation (TAR, on the last raw output) to the training loss. Calls ``model.reset()`` at each epoch."""

    def __init__(self, learn: Learner, alpha: float = 0., beta: float = 0.) -> None:
        super().__init__(learn)
        self.not_min += ['raw_out', 'out']
        self.alpha, self.beta = alpha, beta

    def on_epoch_begin(self, **kwargs: Any) -> None:
        "Reset the model's hidden state."
        self.learn.model.reset()

    def on_loss_begin(self, last_output: Any, **kwargs: Any) -> dict:
        "Keep the raw and dropped outputs; the prediction is the first output."
        self.raw_out, self.out = last_output[1], last_output[2]
        return {'last_output': last_output[0]}

    def on_backward_begin(self, last_loss: torch.Tensor, **kwargs: Any) -> dict:
        "Add the AR and TAR penalties to the training loss."
        if self.alpha != 0.: last_loss = last_loss + self.alpha * self.out[-1].float().pow(2).mean()
        h = self.raw_out[-1]
        if self.beta != 0. and len(h) > 1: last_loss = last_loss + self.beta * (h[:, 1:] - h[:, :-1]).float().pow(2).mean()
        return {'last_loss': last_loss}
