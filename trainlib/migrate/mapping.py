"""The translation tables of the codemod: fastai-1 events, state keys and return values -> trainlib.v2.

Pure data and small lookups (no libcst), so the rules can be read and tested on their own. Every
choice where fastai 1 and fastai 2 do not line up one-to-one is written next to the rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ['EVENTS', 'BATCH_EVENTS', 'StateRead', 'state_read', 'FLAG_KEYS', 'LEGACY_RETURN', 'OPT_HYPERS',
           'KNOWN_V1_MODULES', 'v2_names', 'TODO_TAG']

TODO_TAG = '# TODO(trainlib.migrate):'
"The prefix of the comments the codemod leaves where a construct needs a human."

EVENTS: dict[str, str] = {
    'on_train_begin': 'before_fit',
    'on_epoch_begin': 'before_epoch',
    'on_batch_begin': 'before_batch',         # training and validation, in both versions
    'on_loss_begin': 'after_pred',            # training and validation, in both versions
    # v1's on_backward_begin fires in training only, right before backward: before_backward is exactly
    # that (after_loss also fires in validation), and CancelBackwardException (skip_bwd) is only
    # caught when raised from before_backward.
    'on_backward_begin': 'before_backward',
    # v1's on_backward_end is its "before step" hook (gradient clipping lives there). before_step is
    # the same point of the loop, and CancelStepException (skip_step) is only caught when raised there.
    'on_backward_end': 'before_step',
    'on_step_end': 'after_step',
    'on_batch_end': 'after_batch',
    'on_epoch_end': 'after_epoch',            # after validation in both versions
    'on_train_end': 'after_fit',
}
"fastai-1 callback method -> the trainlib.v2 event it becomes."

BATCH_EVENTS = frozenset(('before_batch', 'after_pred', 'before_backward', 'before_step', 'after_step',
                          'after_batch'))
"The v2 events that happen inside a batch."

_GRAD_EVENTS = frozenset(('before_backward', 'before_step', 'after_step'))


@dataclass(frozen=True)
class StateRead:
    """How a read of a fastai-1 state key translates in one event: ``expr`` (Python source) or, when
    there is no faithful translation, ``why`` (the reason written in the TODO)."""
    expr: str | None = None
    why: str | None = None
    after_recorder: bool = False   # the value is only current once the v2 Recorder (order 50) has run
    item: tuple | None = None      # (base, offset): ``key[i]`` reads ``base[i + offset]``


_FLAG_READ = ("fastai-1 flags have no state in trainlib.v2 (a callback raises a Cancel exception instead), "
              "so reading `{key}` has no equivalent")

_STATE: dict[str, str] = {
    # v1 hands the input as the loader gives it: the tensor itself for a one-input model, which is
    # what learn.x (detuplify(learn.xb)) gives; learn.y likewise for the target.
    'last_input': 'self.learn.x',
    'last_target': 'self.learn.y',
    'last_output': 'self.learn.pred',
    'n_epochs': 'self.learn.n_epoch',
    'train': 'self.learn.training',
    'exception': 'self.learn.exception',     # v1: the Exception or False; trainlib: the Exception or None
    'metrics': 'self.learn.metrics',          # v1: the functions; v2: their AvgMetric wrappers
    'last_metrics': 'self.learn.recorder.values[-1][1:]',   # [valid_loss, *metrics], as v1's layout
}

_UNTRANSLATABLE: dict[str, str] = {
    'pbar': "fastai 1's master progress bar: trainlib.v2's is `self.learn.progress.mbar`, "
            "which is None when bars are off",
    'metrics_names': "the metric names: trainlib.v2's Recorder builds `self.learn.recorder.metric_names` "
                     "in its before_fit (order 50)",
}
for _k in ('stop_training', 'stop_epoch', 'skip_step', 'skip_zero', 'skip_bwd', 'skip_validate'):
    _UNTRANSLATABLE[_k] = _FLAG_READ.format(key=_k)


def state_read(key: str, event: str, before_train_eval: bool = False) -> StateRead:
    """The translation of reading fastai-1 state ``key`` inside the v2 ``event`` a v1 method became
    (``before_train_eval``: the callback's order is below TrainEvalCallback's -10)."""
    if key == 'last_metrics':
        return StateRead(_STATE[key], after_recorder=(event == 'after_epoch'),
                         item=('self.learn.recorder.values[-1]', 1))
    if key in _STATE: return StateRead(_STATE[key])
    if key in _UNTRANSLATABLE: return StateRead(why=_UNTRANSLATABLE[key])
    if key == 'last_loss':
        # The loss being back-propagated is loss_grad; learn.loss is the raw loss the Recorder records
        # (v1 also smooths the raw loss, but its on_batch_end last_loss is the modified one).
        return StateRead('self.learn.loss_grad' if event in _GRAD_EVENTS else 'self.learn.loss')
    if key == 'smooth_loss':
        if event in _GRAD_EVENTS:
            return StateRead(why='fastai 1 adds the batch to smooth_loss before on_backward_begin; trainlib.v2 '
                                 'adds it in the Recorder\'s after_batch, so here it still holds the previous '
                                 'batch: read `self.learn.smooth_loss` in after_batch instead')
        return StateRead('self.learn.smooth_loss', after_recorder=(event == 'after_batch'))
    if key == 'iteration':
        # TrainEvalCallback (order -10) counts the batch in after_batch, before this callback runs;
        # fastai 1 counts it after every on_batch_end.
        if event == 'after_batch' and not before_train_eval:
            return StateRead('self.learn.train_iter - 1 if self.learn.training else self.learn.train_iter')
        return StateRead('self.learn.train_iter')
    if key == 'num_batch':
        if event in BATCH_EVENTS: return StateRead('self.learn.iter')
        return StateRead(why="fastai 1's num_batch counts this epoch's training batches; at epoch level "
                             "trainlib.v2 has no such counter (learn.iter is the index in the current phase)")
    if key == 'epoch':
        # At on_train_end fastai 1 has counted the last epoch; v2's learn.epoch is still its index.
        return StateRead('self.learn.epoch + 1' if event == 'after_fit' else 'self.learn.epoch')
    return StateRead(why=f'`{key}` is not a fastai-1 state key: the Learner never passed it')


FLAG_KEYS = frozenset(('stop_training', 'stop_epoch', 'skip_step', 'skip_zero', 'skip_bwd', 'skip_validate'))
"The state keys a fastai-1 callback returns to steer the loop."

LEGACY_RETURN: dict[str, str] = {
    'before_batch': 'inputs',        # (last_input, last_target)
    'after_pred': 'last_output',
    'before_backward': 'last_loss',
    'before_step': 'skip_step',
    'after_step': 'skip_zero',
    'after_batch': 'stop_epoch',
    'after_epoch': 'stop_training',
}
"What a non-dict return value meant in fastai <= 1.0.46, per (translated) event; other events ignored it."

OPT_HYPERS: dict[str, str] = {'lr': 'lr', 'mom': 'mom', 'wd': 'wd', 'beta': 'sqr_mom'}
"fastai-1 OptimWrapper properties -> trainlib.v2 hyper-parameter names (get_hyper/set_hyper)."

KNOWN_V1_MODULES = frozenset((
    'fastai', 'fastai.basics', 'fastai.basic_train', 'fastai.basic_data', 'fastai.callback', 'fastai.callbacks',
    'fastai.train', 'fastai.torch_core', 'fastai.core', 'fastai.metrics', 'fastai.callbacks.general_sched',
    'fastai.callbacks.tracker', 'fastai.callbacks.hooks', 'fastai.callbacks.misc', 'fastai.callbacks.one_cycle',
    'fastai.callbacks.lr_finder', 'fastai.callbacks.csv_logger', 'fastai.callbacks.mixup',
    'fastai.callbacks.loss_metrics'))
"The fastai-1 modules whose names ``from trainlib.v2 import *`` stands in for."


@lru_cache(maxsize=1)
def v2_names() -> frozenset[str]:
    "The public names of ``trainlib.v2`` (what ``from trainlib.v2 import *`` brings)."
    import trainlib.v2 as v2
    names = getattr(v2, '__all__', None) or [n for n in vars(v2) if not n.startswith('_')]
    return frozenset(names)
