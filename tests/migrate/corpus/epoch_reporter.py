"Constructs with no trainlib.v2 counterpart: the progress bar, resuming hooks, forwarding **kwargs."
from fastai.basic_train import *
from fastai.callback import *


class EpochReporter(LearnerCallback):
    "Write a line per epoch under the progress bar and keep the whole state of the last batch."
    def __init__(self, learn:Learner):
        super().__init__(learn)
        self.n_params = sum(p.numel() for p in learn.model.parameters())

    def jump_to_epoch(self, epoch):
        self.start_epoch = epoch

    def on_batch_end(self, **kwargs):
        self.last_state = dict(kwargs)

    def on_epoch_end(self, epoch, smooth_loss, pbar, **kwargs):
        pbar.write(f'epoch {epoch}: train loss {smooth_loss:.4f}')
        self.val_history = self.learn.recorder.val_losses
