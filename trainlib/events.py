"""The events of the training loop, the exceptions that steer it, and the old event names.

This is the one place where every event is documented. ``Learner.fit`` runs, in this order::

    before_fit                                   # n_epoch, opt set; TrainEvalCallback resets counters
    for epoch in range(n_epoch):                 # learn.epoch
        before_epoch
        # ---- training phase (learn.dl = dls.train, learn.training = True)
        before_train
        for iter, batch in enumerate(dl):        # learn.iter, learn.n_iter = len(dl)
            # learn.xb, learn.yb = batch split by n_inp, already on the model's device
            before_batch                         # change learn.xb / learn.yb here
            learn.pred = model(*xb)
            after_pred                           # change learn.pred here
            learn.loss_grad = loss_func(pred, *yb); learn.loss = loss_grad.clone()   # (*)
            after_loss                           # change learn.loss_grad (what backward uses)
            before_backward; loss_grad.backward(); after_backward     # gradients are ready
            before_step;     opt.step();          after_step
            opt.zero_grad()                      # skipped when the batch is cancelled, or once if learn.skip_zero_grad (**)
            after_batch                          # Recorder: smooth_loss; TrainEval: train_iter, pct_train
        after_train
        # ---- validation phase (torch.no_grad, learn.dl = dls.valid, learn.training = False)
        before_validate
        for iter, batch in enumerate(dl):
            before_batch; after_pred; after_loss; after_batch      # no backward, no step
        after_validate
        after_epoch                              # metrics are final; Recorder logs the row
    after_fit                                    # ALWAYS runs, also when the fit fails

``after_create`` fires once, at the end of ``Learner.__init__``, to the callbacks present then.

(*) The copy is made only when a callback listening to ``after_loss`` or ``before_backward`` (the only
events that could change ``learn.loss`` before backward) reads ``learn.loss`` or ``learn.loss_grad`` there:
at that first read. Otherwise ``learn.loss`` is ``loss_grad``, the same tensor (the copy could not differ).
(**) The v2 optimizers drop the gradients (``p.grad`` is None between batches) and give a zero one
back at the next step to each parameter that had one: the updates of fastai 2's in-place zeroing.
A level nobody listens to (no ``before_X``, ``after_cancel_X`` or ``after_X``) runs its function alone.

Control flow: a callback raises one of the ``Cancel*Exception`` below. Level X (fit, epoch,
train, validate, batch, backward, step) catches only its own exception, raised in ``before_X`` or
anywhere inside X, then fires ``after_cancel_X`` and ``after_X`` and goes on:

=====================  =====================================================================
exception               skips                                          continues with
=====================  =====================================================================
CancelBatchException    the rest of the batch (and opt.zero_grad)      after_cancel_batch, after_batch, next batch
CancelBackwardException the backward pass                              after_cancel_backward, after_backward, the step
CancelStepException     the optimizer step                             after_cancel_step, after_step, zero_grad
CancelTrainException    the rest of the training phase                 after_cancel_train, after_train, validation
CancelValidException    the rest of the validation phase               after_cancel_validate, after_validate, after_epoch
CancelEpochException    the rest of the epoch                          after_cancel_epoch, after_epoch, next epoch
CancelFitException      the rest of the fit                            after_cancel_fit, after_fit
=====================  =====================================================================

An exception raised in ``after_X`` belongs to the level around X. Any other exception (or a
Cancel exception that no level catches) leaves the loop at once: no more ``after_*`` events,
except ``after_fit``, which always runs with ``learn.exception`` set to the failure; the
original exception is then re-raised unchanged, with a note naming the callback and the event.

Callbacks changed during an event: one switched off (``run = False``) or removed by an earlier callback
of the same event is skipped for the rest of that event; one added there hears the events after it.
``after_fit`` is cleanup, so a callback removed during it (as a callback that manages a helper removes
the helper) still gets its ``after_fit``, as in fastai, and with its Learner: it is detached
(``self.learn`` None) when ``after_fit`` ends. One switched off does not, and every callback's ``run``
is True again after it.

The names of the fastbook chapter (``begin_fit``, ``begin_epoch``, ``begin_train``,
``begin_batch``, ``begin_validate``) still work as method names, with a DeprecationWarning.

Order: in every event the callbacks run by ``order`` (lower first; ties keep the order they were
added in), moved as little as ``run_before``/``run_after`` require. fastai-1 callbacks
(:mod:`trainlib.v1`) sit on the same scale: one with ``_order = k`` runs at ``order = 55 + k``, so
each generation keeps its own arrangement (v1: metrics first, the v1 Recorder before the others;
v2: TrainEval, Recorder, then Progress, schedulers and trackers) and the two interleave usefully:

=======  ===========================================  =============================================
order    v2 callbacks (``trainlib``)                  v1 callbacks (``trainlib.v1``, ``_order``)
=======  ===========================================  =============================================
-inf                                                  the v1 state is written; v1 metrics run
-20      ActivationStats
-10      TrainEvalCallback
-9       TerminateOnNaNCallback
0        a v2 callback's default; GatherPreds
         (added last, after get_preds' ``cbs``)
6 .. 11  GradientAccumulation 6,
         CastToTensor 9, MixedPrecision 10,
         GradientClip 11
35                                                    TrackEpochCallback, LossMetrics (-20)
45                                                    Recorder (-10): sees smooth_loss and the
                                                      metrics before the callbacks below it
50       Recorder: logs the epoch's row
55                                                    a v1 callback's default (0): it sees the v2
                                                      Recorder's row, and its lr changes at
                                                      on_batch_end come after the v2 Recorder took
                                                      the batch's lr
60 .. 63 ProgressCallback, ParamScheduler, LRFinder,
         CSVLogger 60; trackers 60-63 (they read the
         row of either Recorder)
70       SkipToEpoch
1054                                                  MixedPrecision (999)
+inf                                                  v1 counters; v1 flags become Cancel exceptions
=======  ===========================================  =============================================
"""
from __future__ import annotations

__all__ = ['event', 'EVENTS', 'INNER_LOOP_EVENTS', 'LEGACY_EVENT_NAMES', 'CancelException',
           'CancelFitException', 'CancelEpochException', 'CancelTrainException',
           'CancelValidException', 'CancelBatchException', 'CancelBackwardException',
           'CancelStepException', 'CANCEL_EXCEPTIONS']

EVENTS: tuple[str, ...] = (
    'after_create',
    'before_fit', 'before_epoch', 'before_train', 'before_batch', 'after_pred', 'after_loss',
    'before_backward', 'after_cancel_backward', 'after_backward',
    'before_step', 'after_cancel_step', 'after_step',
    'after_cancel_batch', 'after_batch', 'after_cancel_train', 'after_train',
    'before_validate', 'after_cancel_validate', 'after_validate',
    'after_cancel_epoch', 'after_epoch', 'after_cancel_fit', 'after_fit')
"All 24 events, in the order they can first occur."

INNER_LOOP_EVENTS: frozenset[str] = frozenset((
    'before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_cancel_backward',
    'after_backward', 'before_step', 'after_step', 'after_cancel_batch', 'after_batch'))
"The events that ``run_train`` / ``run_valid`` filter (``after_cancel_step`` is not one of them)."

LEGACY_EVENT_NAMES: dict[str, str] = {
    'begin_fit': 'before_fit', 'begin_epoch': 'before_epoch', 'begin_train': 'before_train',
    'begin_batch': 'before_batch', 'begin_validate': 'before_validate'}
"fastbook's event names, still accepted as callback methods (deprecated)."


class _EventNames:
    "``event.before_fit == 'before_fit'``: the event names as attributes, for tab completion."
    def __init__(self, names): self.__dict__.update({n: n for n in names})
    def __iter__(self): return iter(EVENTS)
    def __repr__(self): return f'event({", ".join(EVENTS)})'


event = _EventNames(EVENTS)


class CancelException(Exception):
    "Base class of the exceptions a callback raises to skip part of the loop."


class CancelFitException(CancelException):
    "Stop training: go to ``after_cancel_fit`` and ``after_fit``."


class CancelEpochException(CancelException):
    "Skip the rest of this epoch: go to ``after_cancel_epoch`` and ``after_epoch``."


class CancelTrainException(CancelException):
    "Skip the rest of the training phase: go to ``after_cancel_train`` and ``after_train``."


class CancelValidException(CancelException):
    "Skip the rest of the validation phase: go to ``after_cancel_validate`` and ``after_validate``."


class CancelBatchException(CancelException):
    "Skip the rest of this batch: go to ``after_cancel_batch`` and ``after_batch``."


class CancelBackwardException(CancelException):
    "Skip the backward pass: go to ``after_cancel_backward`` and ``after_backward``."


class CancelStepException(CancelException):
    "Skip the optimizer step: go to ``after_cancel_step`` and ``after_step``."


CANCEL_EXCEPTIONS = (CancelFitException, CancelEpochException, CancelTrainException,
                     CancelValidException, CancelBatchException, CancelBackwardException,
                     CancelStepException)
