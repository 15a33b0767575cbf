"What the per-batch fast paths must keep: the same gradients, smoothed losses, counters and batches."
import random
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

from trainlib import (CancelBackwardException, CancelBatchException, CancelStepException, CancelTrainException, Callback,
                      OptimWrapper, noop)
from trainlib.testing import synth_learner


def _params_with_grads(requires_grad_on_grad: bool = False) -> list:
    ps = [nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2, 2)), nn.Parameter(torch.randn(1)),
          nn.Parameter(torch.randn(4))]
    ps[0].grad, ps[1].grad = torch.ones(3), torch.full((2, 2), 2.)
    ps[3].grad = torch.ones(4).to_sparse()
    if requires_grad_on_grad: ps[1].grad = (torch.ones(2, 2, requires_grad=True) * 3)
    return ps


@pytest.mark.parametrize('set_to_none', [False, True])
def test_zero_grad_leaves_the_grads_as_torch_does(set_to_none):
    ours, theirs = _params_with_grads(True), _params_with_grads(True)
    OptimWrapper(ours, opt=torch.optim.SGD, lr=0.1).zero_grad(set_to_none=set_to_none)
    torch.optim.SGD(theirs, lr=0.1).zero_grad(set_to_none=set_to_none)
    for a, b in zip(ours, theirs):
        if set_to_none or b.grad is None:
            assert a.grad is None and b.grad is None
        else:
            assert a.grad.is_sparse == b.grad.is_sparse and torch.equal(a.grad.to_dense(), b.grad.to_dense())
            assert a.grad.grad_fn is None and not a.grad.requires_grad


def test_zero_grad_drops_the_grads_by_default_and_zeroes_them_in_place_on_request():
    ps = _params_with_grads()
    OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1).zero_grad()
    assert all(p.grad is None for p in ps)
    ps = _params_with_grads()
    grad = ps[0].grad
    OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1, set_to_none=False).zero_grad()
    assert ps[0].grad is grad and torch.equal(grad, torch.zeros(3))


def _steps(set_to_none, opt_func=torch.optim.SGD, **hypers) -> list:
    """Four steps of a model whose second parameter is used only in the first batch, with the backward
    of the third batch cancelled: the parameters after each step."""
    torch.manual_seed(0)
    a, b = torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(3))
    opt = OptimWrapper([a, b], opt=opt_func, set_to_none=set_to_none, **hypers)
    out = []
    for i in range(4):
        loss = (a * a).sum() + ((b * 2).sum() if i == 0 else 0)
        if i != 2: loss.backward()
        opt.step()
        out.append([p.detach().clone() for p in (a, b)])
        opt.zero_grad()
    return out


@pytest.mark.parametrize('opt_func,hypers', [(torch.optim.SGD, dict(lr=0.1, mom=0.9, wd=0.1)),
                                             (partial(torch.optim.SGD, foreach=True), dict(lr=0.1, mom=0.9)),
                                             (torch.optim.Adam, dict(lr=0.1, wd=0.1))])
def test_dropped_grads_step_exactly_as_grads_zeroed_in_place(opt_func, hypers):
    # fastai 2 zeroes in place: a parameter that had a gradient keeps being stepped (momentum, decay) when
    # a batch leaves it without one. Dropping the grads (the default, faster) gives the same numbers.
    dropped, in_place, torch_way = (_steps(s, opt_func, **hypers) for s in (None, False, True))
    for d, z in zip(dropped, in_place):
        assert all(torch.equal(x, y) for x, y in zip(d, z))
    assert torch.equal(torch_way[1][1], torch_way[0][1])      # torch's semantics: b is no longer stepped
    assert not torch.equal(dropped[1][1], dropped[0][1])      # fastai's: momentum still moves it


def test_zero_grad_goes_through_an_optimizer_that_overrides_it():
    calls = []

    class Counting(torch.optim.SGD):
        def zero_grad(self, set_to_none=True):
            calls.append(set_to_none)
            super().zero_grad(set_to_none=set_to_none)

    OptimWrapper(_params_with_grads(), opt=Counting, lr=0.1).zero_grad()
    OptimWrapper(_params_with_grads(), opt=Counting, lr=0.1, set_to_none=False).zero_grad()
    assert calls == [True, False]


def test_zero_grad_goes_through_torch_with_foreach_and_under_the_profiler():
    ps = _params_with_grads()
    OptimWrapper(ps, opt=partial(torch.optim.SGD, foreach=True), lr=0.1).zero_grad()
    assert all(p.grad is None or not p.grad.to_dense().any() for p in ps)
    ps = _params_with_grads()
    opt = OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1)
    with torch.profiler.profile() as prof: opt.zero_grad()
    assert any('zero_grad' in e.name for e in prof.events())
    assert ps[0].grad is None


def _scopes_opened(monkeypatch) -> list:
    "The names of the profiler scopes torch opens from now on (torch's step wrapper opens one per step)."
    opened, real = [], torch.autograd.profiler.record_function
    def counting(name, *args, **kwargs):
        opened.append(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(torch.autograd.profiler, 'record_function', counting)
    return opened


@pytest.mark.parametrize('opt_func', [torch.optim.SGD, torch.optim.Adam, partial(torch.optim.SGD, foreach=True)])
def test_step_skips_torchs_profiler_scope_with_the_same_update(monkeypatch, opt_func):
    opened = _scopes_opened(monkeypatch)
    ours, theirs = (_params_with_grads()[:3] for _ in range(2))
    for p, q in zip(ours, theirs): p.data.copy_(q)
    OptimWrapper(ours, opt=opt_func, lr=0.1).step()
    assert opened == []
    opt_func(theirs, lr=0.1).step()
    assert opened and 'Optimizer.step' in opened[0]           # the probe sees torch's own scope
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_step_goes_through_torchs_wrapper_under_the_profiler():
    ps = _params_with_grads()[:3]
    opt = OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1)
    with torch.profiler.profile() as prof: opt.step()
    assert any('Optimizer.step#SGD.step' in e.name for e in prof.events())


def test_step_runs_the_optimizers_and_the_global_step_hooks():
    ps = _params_with_grads()[:3]
    opt = OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1)
    seen = []
    pre = opt.opt.register_step_pre_hook(lambda o, args, kwargs: seen.append('pre'))
    post = opt.opt.register_step_post_hook(lambda o, args, kwargs: seen.append('post'))
    opt.step()
    pre.remove(); post.remove()
    glob = register_optimizer_step_post_hook(lambda o, args, kwargs: seen.append('global'))
    try: opt.step()
    finally: glob.remove()
    opt.step()
    assert seen == ['pre', 'post', 'global']


def test_step_keeps_an_lr_scheduler_informed(recwarn):
    # torch's LR schedulers patch ``opt.step`` to notice the step: a scheduler step after it must not warn.
    ps = _params_with_grads()[:3]
    opt = OptimWrapper(ps, opt=torch.optim.SGD, lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt.opt, step_size=1)
    opt.step()
    sched.step()
    assert not [w for w in recwarn if 'lr_scheduler.step()' in str(w.message)]
    assert opt.opt.param_groups[0]['lr'] == pytest.approx(0.01)


_JOINABLE = [torch.optim.SGD, partial(torch.optim.SGD, momentum=0.9, nesterov=True), torch.optim.Adam,
             partial(torch.optim.Adam, amsgrad=True), torch.optim.AdamW, torch.optim.RMSprop, torch.optim.Adamax,
             torch.optim.NAdam, torch.optim.RAdam]


def _v1_layer(opt_func, wrapped: bool, lrs=(0.1, 0.1)):
    """fastai 1's torch groups for one layer group: its weights, then its no-wd companion (the biases), both
    decayed by torch (``true_wd=False, bn_wd=True``). Wrapped (the v1 face) or the torch optimizer alone."""
    torch.manual_seed(0)
    w, b = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4))
    groups = [{'params': [w], 'lr': lrs[0]}, {'params': [b], 'lr': lrs[1]}]
    if wrapped: return OptimWrapper(opt_func(groups, weight_decay=0.1), wd=0.1, true_wd=False, bn_wd=True), [w, b]
    return opt_func(groups, weight_decay=0.1), [w, b]


def _step(opt, ps, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for p in ps: p.grad = torch.randn(p.shape, generator=gen)
    opt.step()


@pytest.fixture
def groups_stepped(monkeypatch):
    "How many groups, and which, each torch step of the joinable optimizers ran on (their ``_init_group``, once a group)."
    seen: list = []
    for cls in {torch.optim.SGD, torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adamax, torch.optim.NAdam,
                torch.optim.RAdam}:
        def spy(self, group, *args, _real=cls._init_group, **kwargs):
            seen.append([id(p) for p in group['params']])
            return _real(self, group, *args, **kwargs)
        monkeypatch.setattr(cls, '_init_group', spy)
    return seen


@pytest.mark.parametrize('opt_func', _JOINABLE)
def test_v1_weights_and_their_no_wd_companion_step_as_one_group_with_the_same_update(opt_func, groups_stepped):
    ours, ps = _v1_layer(opt_func, wrapped=True)
    theirs, qs = _v1_layer(opt_func, wrapped=False)
    groups, lists = ours.opt.param_groups, [g['params'] for g in ours.opt.param_groups]
    for seed in range(3):
        groups_stepped.clear()
        _step(ours, ps, seed)
        assert groups_stepped == [[id(p) for p in ps]]            # one group, both parameters
        _step(theirs, qs, seed)
        assert all(torch.equal(p, q) for p, q in zip(ps, qs))
    assert ours.opt.param_groups is groups and [g['params'] for g in groups] == lists   # as they were
    mine, ref = ours.opt.state_dict(), theirs.state_dict()
    assert [{k: v for k, v in g.items() if k not in ('do_wd', 'wd')} for g in mine['param_groups']] == ref['param_groups']
    assert all(torch.equal(mine['state'][i][k], ref['state'][i][k]) for i in ref['state'] for k in ref['state'][i])


def test_v1_groups_step_apart_once_a_value_differs_even_when_written_into_torchs_group(groups_stepped):
    ours, ps = _v1_layer(torch.optim.SGD, wrapped=True)
    theirs, qs = _v1_layer(torch.optim.SGD, wrapped=False, lrs=(0.1, 0.5))
    ours.opt.param_groups[1]['lr'] = 0.5                     # behind the wrapper's back
    _step(ours, ps, 0); _step(theirs, qs, 0)
    assert len(groups_stepped) == 4 and all(torch.equal(p, q) for p, q in zip(ps, qs))
    ours.lr = 0.5                                            # the wrapper writes one object into both
    groups_stepped.clear()
    _step(ours, ps, 1)
    assert len(groups_stepped) == 1


def test_a_failing_joined_step_leaves_the_optimizers_groups_in_place():
    ours, (w, b) = _v1_layer(torch.optim.Adam, wrapped=True)
    groups = ours.opt.param_groups
    w.grad, b.grad = torch.ones(4, 3), torch.ones(4).to_sparse()
    with pytest.raises(RuntimeError, match='sparse'):
        ours.step()
    assert ours.opt.param_groups is groups and [g['params'] for g in groups] == [[w], [b]]


def test_v1_adam_groups_still_step_as_one_through_a_one_cycle(groups_stepped):
    from trainlib.v1 import Learner as V1Learner
    from trainlib.v1.basic_data import DataBunch
    torch.manual_seed(0)
    batches = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(4)]
    learn = V1Learner(DataBunch(batches, batches[:1], device=torch.device('cpu')), nn.Linear(3, 1),
                      loss_func=nn.MSELoss())          # fastai 1's default: Adam, weights and biases apart
    learn.fit_one_cycle(1, 0.01)                        # lr and betas written before every batch
    groups = learn.opt.opt.param_groups
    assert len(groups) == 2 and groups[0]['betas'] is groups[1]['betas']
    assert len(groups_stepped) == 4 and all(len(ids) == 2 for ids in groups_stepped)


class _Watch(Callback):
    "Keeps, after each training batch, what callbacks can read then."
    order = 55

    def before_fit(self): self.seen = []

    def after_batch(self):
        if self.training:
            self.seen.append((self.smooth_loss.clone(), self.train_iter, self.pct_train,
                              self.loss.detach().clone()))


def _reference_smooth(losses: list, beta: float = 0.98) -> list:
    "fastai's AvgSmoothLoss, step by step: ``val = lerp(loss, val, beta)``, value ``val / (1 - beta**n)``."
    val, out = torch.tensor(0.), []
    for i, loss in enumerate(losses, 1):
        val = torch.lerp(loss.mean(), val, beta)
        out.append(val / (1 - beta ** i))
    return out


def _one_element_mse(pred, targ):
    return F.mse_loss(pred, targ).reshape(1)


@pytest.mark.parametrize('loss_func', [None, _one_element_mse])
def test_smooth_loss_counters_and_recorder_losses_per_batch(loss_func):
    watch = _Watch()
    learn = synth_learner(n_trn=5, cbs=watch)
    if loss_func is not None: learn.loss_func = loss_func
    learn.logger = noop
    learn.fit(2, lr=0.01)
    seen = watch.seen
    expected = _reference_smooth([s[3] for s in seen])
    assert [s[0].item() for s in seen] == [e.item() for e in expected]           # bit for bit
    assert [v.item() for v in learn.recorder.losses] == [e.item() for e in expected]
    assert learn.smooth_loss.item() == expected[-1].item()
    assert [s[1] for s in seen] == list(range(1, 11))
    assert [s[2] for s in seen] == pytest.approx([i / 10 for i in range(1, 11)])
    assert learn.recorder.values[-1][0] == pytest.approx(expected[-1].item())


def test_learner_drops_grads_between_batches():
    grads = []

    class Peek(Callback):
        def before_batch(self):
            if self.training: grads.append(self.model.a.grad)

    learn = synth_learner(n_trn=3, cbs=Peek())
    learn.logger = noop
    learn.fit(1)
    assert grads == [None, None, None]


def test_smooth_loss_is_the_last_recorded_loss_and_survives_export(tmp_path):
    learn = synth_learner(n_trn=4)
    learn.logger = noop
    learn.fit(1)
    first = learn.smooth_loss
    assert first is learn.recorder.losses[-1] and len(learn.recorder.losses) == 4
    learn.fit(1)
    assert learn.smooth_loss is learn.recorder.losses[-1] and learn.smooth_loss is not first
    learn2 = torch.load(learn.export(tmp_path / 'l.pkl'), weights_only=False)
    assert learn2.smooth_loss.item() == learn.smooth_loss.item()


def test_callbacks_before_the_recorder_see_the_previous_batch_smooth_loss():
    seen = []

    class Early(Callback):
        order = 40                                   # before Recorder (50) in after_batch

        def after_batch(self):
            if self.training: seen.append(self.smooth_loss)

    learn = synth_learner(n_trn=3, cbs=Early())
    learn.logger = noop
    learn.fit(1)
    last = learn.recorder.losses[-1]
    learn.fit(1)
    losses = learn.recorder.losses
    assert seen[0] is None and seen[3] is last and seen[4] is losses[0] and seen[5] is losses[1]


class _Trace(Callback):
    "Records every event of training batch 1, and whether the parameters moved and the grads at its end."
    order = -1000

    def __init__(self, raise_at: str, exc: type) -> None: self.raise_at, self.exc, self.events = raise_at, exc, []

    def __call__(self, event_name: str):
        learn = self.learn
        if learn.training and learn.iter == 1 and event_name in INNER_EVENTS:
            if event_name == 'before_batch': self.before = [p.detach().clone() for p in learn.model.parameters()]
            self.events.append(event_name)
            if event_name == 'after_batch':
                self.moved = any(not torch.equal(a, p) for a, p in zip(self.before, learn.model.parameters()))
                self.grads = [None if p.grad is None else p.grad.abs().sum().item() for p in learn.model.parameters()]
            if event_name == self.raise_at:
                self.events.append('!!')
                raise self.exc


INNER_EVENTS = ('before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_cancel_backward',
                'after_backward', 'before_step', 'after_cancel_step', 'after_step', 'after_cancel_batch', 'after_batch')
FULL = ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step', 'after_step',
        'after_batch']


@pytest.mark.parametrize('raise_at, exc, events, moved, grads_dropped', [
    # the batch-level sequences of ../shared/oracle/fa2_trace.txt (fastai 2.8.12), section 2 and 3
    ('after_pred', CancelBatchException, ['before_batch', 'after_pred', '!!', 'after_cancel_batch', 'after_batch'],
     False, True),
    ('before_backward', CancelBackwardException,
     ['before_batch', 'after_pred', 'after_loss', 'before_backward', '!!', 'after_cancel_backward', 'after_backward',
      'before_step', 'after_step', 'after_batch'], True, True),
    ('before_step', CancelStepException,
     ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step', '!!',
      'after_cancel_step', 'after_step', 'after_batch'], False, True),
    ('before_step', CancelBatchException,
     ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step', '!!',
      'after_cancel_batch', 'after_batch'], False, False),
    (None, None, FULL, True, True),
])
def test_batch_level_events_under_each_cancel_exception(raise_at, exc, events, moved, grads_dropped):
    trace = _Trace(raise_at, exc)
    learn = synth_learner(n_trn=3, cbs=trace)
    learn.logger = noop
    learn.fit(1, lr=0.1)
    assert trace.events == events
    assert trace.moved == moved                  # momentum moves the params even when backward is cancelled
    assert (trace.grads == [None, None]) == grads_dropped   # zero_grad is skipped when the batch is cancelled


def _moved(cb: Callback) -> bool:
    learn = synth_learner(n_trn=2, cbs=cb)
    learn.logger = noop
    start = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, lr=0.1)
    return any(not torch.equal(a, p) for a, p in zip(start, learn.model.parameters()))


def test_a_loss_changed_in_place_in_before_backward_is_not_back_propagated():
    # as in fastai 2: learn.loss is a copy of learn.loss_grad, which backward uses
    class ZeroInPlace(Callback):
        def before_backward(self): self.learn.loss.mul_(0)

    assert _moved(ZeroInPlace())


@pytest.mark.parametrize('copies', [True, False])
def test_learn_loss_is_a_copy_only_when_a_listener_between_loss_and_backward_wants_one(copies):
    seen = []
    class Between(Callback):
        copies_loss = copies
        def before_backward(self): seen.append((self.learn.loss is self.learn.loss_grad,
                                                torch.equal(self.learn.loss, self.learn.loss_grad)))
    learn = synth_learner(n_trn=2, cbs=Between())
    learn.logger = noop
    learn.fit(1, lr=0.1)
    assert seen == [(not copies, True)] * 2
    assert (learn._train_cbs.copy_loss, learn._valid_cbs.copy_loss) == (copies, copies)
    learn.add_cb(Callback(after_loss=lambda cb: None))        # any other listener there wants the copy
    assert learn._train_cbs.copy_loss


@pytest.mark.parametrize('reads', [False, True])
def test_the_copy_is_made_only_when_a_callback_reads_the_loss_before_backward(reads):
    # fastai clones learn.loss for every batch; a copy nobody read before backward could not differ from
    # loss_grad, so trainlib makes it at the first read of either (see the note in trainlib.events)
    read = []
    class Listener(Callback):
        def after_loss(self):
            if reads and self.training: read.append(self.learn.loss_grad.item())

    plain, _ = _losses_and_moved()
    seen, _ = _losses_and_moved(Listener())
    assert [s[:2] for s in seen] == [p[:2] for p in plain]          # the values, as computed
    assert [s[2] for s in seen] == [not reads] * 3                   # one tensor, unless read before backward
    assert read == ([p[1] for p in plain] if reads else [])


def test_a_batch_cancelled_before_backward_shows_its_loss_and_a_copy():
    seen = []
    class Cancel(Callback):
        def after_loss(self): raise CancelBatchException()       # reads neither loss

    class Look(Callback):
        def after_batch(self):
            if not self.training: return
            loss, grad = self.learn.loss, self.learn.loss_grad
            seen.append((loss is grad, torch.equal(loss, F.mse_loss(self.pred, *self.yb)), grad.requires_grad))

    learn = synth_learner(n_trn=2, cbs=[Cancel(), Look()])
    learn.logger = noop
    learn.fit(1)
    assert seen == [(False, True, True)] * 2


def test_a_loss_func_giving_a_number_is_read_as_that_number_in_after_loss():
    seen = []
    class Read(Callback):
        def after_loss(self): seen.append(self.learn.loss)          # nothing to copy: the number itself

    learn = synth_learner(n_val=2, cbs=Read(), default_cbs=False)        # the Recorder averages tensors only
    learn.loss_func, learn.logger = (lambda pred, y: 0.5), noop
    learn.validate()
    assert seen == [0.5, 0.5] and learn.loss_grad == 0.5


@pytest.mark.parametrize('mode', [torch.no_grad, torch.inference_mode])
def test_a_loss_first_read_under_no_grad_is_still_the_copy_with_its_graph(mode):
    # the copy is made at the first read: it must be the one fastai makes right after the loss
    class LogLoss(Callback):
        def after_loss(self):
            with mode(): self.logged = self.loss.item()

    class Penalty(Callback):                     # fastbook style: learn.loss += ..., back-propagated (deviation 5)
        order = 1
        def after_loss(self):
            if self.training: self.learn.loss += 1e-3 * sum(p.pow(2).sum() for p in self.model.parameters())

    def weights(*cbs):
        torch.manual_seed(0); random.seed(0)
        learn = synth_learner(n_trn=3, cbs=list(cbs))
        learn.logger = noop
        learn.fit(1, lr=0.1)
        return [p.detach().clone() for p in learn.model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(weights(LogLoss(), Penalty()), weights(Penalty())))


@pytest.mark.parametrize('copies', [True, False])
def test_validate_under_inference_mode_with_a_listener_after_the_loss(copies):
    seen = []
    class Listener(Callback):
        copies_loss = copies
        def after_loss(self): seen.append(float(self.learn.loss))

    learn = synth_learner(n_val=2, cbs=Listener())
    learn.logger = noop
    with torch.inference_mode(): valid_loss, = learn.validate()
    assert len(seen) == 2 and valid_loss == pytest.approx(sum(seen) / 2, rel=1e-5)    # two equal-size batches


@pytest.mark.parametrize('stop', [KeyboardInterrupt, CancelTrainException])
def test_a_batch_left_before_backward_leaves_both_losses_in_place(stop):
    # the copy waits for a reader only within its batch: after it, both names are plain attributes again
    plain = []
    class Stop(Callback):
        def before_backward(self): raise stop()
        def after_train(self): plain.append({'loss', 'loss_grad'} <= vars(self.learn).keys())

    learn = synth_learner(n_trn=2, cbs=Stop())
    learn.logger = noop
    try: learn.fit(1)
    except KeyboardInterrupt: pass
    assert plain == ([] if stop is KeyboardInterrupt else [True])
    assert {'loss', 'loss_grad'} <= vars(learn).keys() and learn.__dict__['_loss_pending'] is None
    if stop is KeyboardInterrupt:                # no cleanup after a failure, as in fastai: the copy stays
        assert learn.loss is not learn.loss_grad and torch.equal(learn.loss, learn.loss_grad)


def test_validate_run_from_after_loss_leaves_the_training_loss_to_the_next_event():
    seen = []
    class ValidateMidBatch(Callback):
        def after_loss(self):
            if self.training and self.iter == 0: self.learn.validate()   # a nested pass: its own losses

    class Look(Callback):
        def before_backward(self):
            loss, grad = self.learn.loss, self.learn.loss_grad
            seen.append((loss is grad, torch.equal(loss, F.mse_loss(self.pred, *self.yb)), grad.requires_grad))

    learn = synth_learner(n_trn=2, cbs=[ValidateMidBatch(), Look()])
    learn.logger = noop
    start = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, lr=0.1)
    assert seen == [(False, True, True)] * 2
    assert any(not torch.equal(a, p) for a, p in zip(start, learn.model.parameters()))


class _AfterBackward(Callback):
    "Notes, at each training batch's after_backward: both losses' values and whether they are one tensor."
    def __init__(self): self.seen = []
    def after_backward(self):
        loss, grad = self.learn.loss, self.learn.loss_grad
        self.seen.append((loss.item(), grad.item(), loss is grad))


def _losses_and_moved(*cbs: Callback) -> tuple:
    "What ``_AfterBackward`` saw in a seeded 3-batch fit with ``cbs``; whether the weights moved."
    torch.manual_seed(0); random.seed(0)
    watch = _AfterBackward()
    learn = synth_learner(n_trn=3, cbs=[*cbs, watch])
    learn.logger = noop
    start = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, lr=0.1)
    return watch.seen, any(not torch.equal(a, p) for a, p in zip(start, learn.model.parameters()))


@pytest.mark.parametrize('event', ['after_loss', 'before_backward'])
def test_loss_grad_scaled_in_place_leaves_the_recorded_loss_as_computed(event):
    def halve(cb): cb.learn.loss_grad /= 2           # GradientAccumulation's way in fastai 2
    plain, _ = _losses_and_moved()
    halved, _ = _losses_and_moved(Callback(**{event: halve}))
    assert halved[0] == (plain[0][0], plain[0][1] / 2, False)


def test_a_loss_set_in_after_loss_without_reading_either_one():
    class SetGrad(Callback):            # sets loss_grad, reads neither: learn.loss stays the computed loss
        def after_loss(self): self.learn.loss_grad = (self.pred * 0).sum()

    class SetLoss(Callback):            # sets learn.loss, reads neither: that loss is back-propagated
        def after_loss(self): self.learn.loss = (self.pred * 0).sum()

    plain, _ = _losses_and_moved()
    set_grad, moved_grad = _losses_and_moved(SetGrad())
    set_loss, moved_loss = _losses_and_moved(SetLoss())
    assert set_grad[0] == (plain[0][0], 0., False) and set_loss[0] == (0., 0., True)
    assert not moved_grad and not moved_loss


@pytest.mark.parametrize('copies', [True, False])
@pytest.mark.parametrize('change', ['replace', 'in_place'])
def test_a_loss_changed_in_after_loss_is_the_one_back_propagated(change, copies):
    # without a copy (copies_loss=False) learn.loss is loss_grad itself: changed in place, it is what backward sees
    class ZeroLoss(Callback):
        copies_loss = copies
        def after_loss(self):
            if not self.training: return
            if change == 'replace': self.learn.loss = self.loss * 0
            else: self.learn.loss.mul_(0)

    assert not _moved(ZeroLoss()) and _moved(Callback())


class _Sub(torch.Tensor):
    "A tensor subclass, as fastai's TensorBase, that CastToTensor turns into a plain tensor."


def test_cast_to_tensor_turns_subclasses_into_plain_tensors_and_leaves_plain_batches_alone():
    seen = []

    class Peek(Callback):
        order = 10                                   # right after CastToTensor

        def before_batch(self): seen.append((type(self.xb), [type(t) for t in self.xb + self.yb], self.xb))

    x, y = torch.randn(4, 1), torch.randn(4, 1)
    learn = synth_learner(cbs=Peek())
    learn.logger = noop
    learn.get_preds(dl=[(x.as_subclass(_Sub), y)])
    learn.get_preds(dl=[[x, y]])
    assert seen[0][:2] == (tuple, [torch.Tensor, torch.Tensor])
    assert seen[1][0] is tuple and seen[1][2][0] is x          # list batches become tuples, tensors untouched


def test_get_hyper_reads_torch_keys_and_fastai_names():
    opt = OptimWrapper([nn.Parameter(torch.randn(2))], opt=torch.optim.Adam, lr=0.1, mom=0.8, sqr_mom=0.9, wd=0.5)
    assert (opt.get_hyper('lr'), opt.get_hyper('mom'), opt.get_hyper('sqr_mom'), opt.get_hyper('wd')) == (0.1, 0.8, 0.9, 0.5)
    assert opt.get_hyper('eps') == opt.param_groups[0]['eps']
    with pytest.raises(KeyError): opt.get_hyper('no_such_hyper')


def test_avg_metric_gives_the_batch_size_weighted_mean_without_grad():
    from trainlib import AvgMetric, accuracy, mse
    learn = synth_learner(n_trn=1)
    preds = [torch.randn(3, 4, requires_grad=True), torch.randn(2, 4, requires_grad=True)]
    targs = [torch.randint(0, 4, (3,)), torch.randint(0, 4, (2,))]
    for func in (accuracy, lambda p, t: mse(p.sum(1), t.float())):
        m = AvgMetric(func)
        m.reset()
        for p, t in zip(preds, targs):
            learn.pred, learn.yb = p, (t,)
            m.accumulate(learn)
        expected = (func(preds[0], targs[0]) * 3 + func(preds[1], targs[1]) * 2) / 5
        assert not m.value.requires_grad and m.value.item() == pytest.approx(expected.item())


def test_flatten_check_flattens_non_contiguous_tensors_and_checks_sizes():
    from trainlib import flatten_check
    a, b = torch.arange(6.).view(2, 3).t(), torch.arange(6.)
    fa, fb = flatten_check(a, b)
    assert fa.tolist() == [0., 3., 1., 4., 2., 5.] and fb.tolist() == b.tolist()
    with pytest.raises(ValueError, match='same size, got 6 and 5'): flatten_check(a, torch.arange(5.))


def test_a_fit_stopped_between_the_loss_and_backward_keeps_its_loss_and_the_copy():
    class Boom(Callback):
        def after_loss(self): raise ValueError('boom')

    learn = synth_learner(n_trn=2, cbs=Boom())
    learn.logger = noop
    with pytest.raises(ValueError, match='boom'):
        learn.fit(1)
    # as in fastai 2 (no _end_cleanup after a failure): the batch's loss_grad, and learn.loss its copy
    assert type(learn.loss_grad.grad_fn).__name__ == 'MseLossBackward0'
    assert learn.loss is not learn.loss_grad and torch.equal(learn.loss, learn.loss_grad)
