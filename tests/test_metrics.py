"Metrics: each function against a hand computation, and the accumulating Metric classes."
import math
from functools import partial
from types import SimpleNamespace

import pytest
import torch

from tiny import blobs_learner
from trainlib import (AccumMetric, AvgLoss, AvgMetric, AvgSmoothLoss, Metric, ValueMetric, accuracy, accuracy_multi,
                      error_rate, exp_rmspe, flatten_check, mae, mk_metric, mse, msle, rmse, top_k_accuracy)

LOGITS = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.2, 0.0], [0.3, 0.3, 0.4], [0.5, 0.1, 0.4]])
LABELS = torch.tensor([1, 1, 2, 2])             # argmax is 1, 0, 2, 0: two right
PRED = torch.tensor([1.0, 2.0, 4.0])
TARG = torch.tensor([2.0, 2.0, 1.0])            # errors -1, 0, 3


def batch(pred, *yb, loss=None):
    "What a metric reads from the Learner after a batch."
    return SimpleNamespace(pred=pred, yb=yb, loss=loss)


# ------------------------------------------------------------------------ the functions
def test_accuracy_and_error_rate():
    assert accuracy(LOGITS, LABELS).item() == 0.5
    assert error_rate(LOGITS, LABELS).item() == 0.5
    assert accuracy(LOGITS.T, LABELS, axis=0).item() == 0.5     # classes along the first axis


def test_top_k_accuracy():
    # the label's rank per row: 1st, 2nd, 1st, 2nd
    assert top_k_accuracy(LOGITS, LABELS, k=1).item() == 0.5
    assert top_k_accuracy(LOGITS, LABELS, k=2).item() == 1.0


def test_accuracy_multi():
    logits = torch.tensor([[2.0, -1.0], [-3.0, 0.5]])     # sigmoid > 0.5 where positive
    targets = torch.tensor([[1, 1], [0, 0]])
    assert accuracy_multi(logits, targets).item() == 0.5
    probs = torch.tensor([[0.9, 0.4], [0.2, 0.4]])
    assert accuracy_multi(probs, targets, thresh=0.5, sigmoid=False).item() == 0.75


def test_regression_metrics():
    assert mse(PRED, TARG).item() == pytest.approx((1 + 0 + 9) / 3)
    assert mae(PRED, TARG).item() == pytest.approx((1 + 0 + 3) / 3)
    expected_msle = sum((math.log(1 + p) - math.log(1 + t)) ** 2 for p, t in zip([1, 2, 4], [2, 2, 1])) / 3
    assert msle(PRED, TARG).item() == pytest.approx(expected_msle)
    assert mse(PRED.view(3, 1), TARG).item() == pytest.approx(10 / 3)    # shapes are flattened


def test_flatten_check_refuses_different_sizes():
    with pytest.raises(ValueError, match='expected predictions and targets of the same size, got 4 and 3'):
        mse(torch.zeros(4), torch.zeros(3))
    a, b = flatten_check(torch.zeros(2, 2), torch.zeros(4, 1))
    assert a.shape == b.shape == (4,)


# ---------------------------------------------------------------- accumulated metrics
def test_rmse_and_exp_rmspe_use_the_whole_phase_and_fastais_names():
    for m in (rmse, exp_rmspe): m.reset()
    for sl in (slice(0, 2), slice(2, 3)):      # two batches of different sizes
        rmse.accumulate(batch(PRED[sl], TARG[sl]))
        exp_rmspe.accumulate(batch(PRED[sl], TARG[sl]))
    assert rmse.value.item() == pytest.approx(math.sqrt(10 / 3))
    ratios = [(math.exp(t) - math.exp(p)) / math.exp(t) for p, t in zip([1, 2, 4], [2, 2, 1])]
    assert exp_rmspe.value.item() == pytest.approx(math.sqrt(sum(r * r for r in ratios) / 3), rel=1e-6)
    assert (rmse.name, exp_rmspe.name) == ('_rmse', '_exp_rmspe')


def test_accum_metric_applies_activation_argmax_and_threshold():
    seen = []
    def spy(preds, targs): seen.append((preds, targs)); return 0.
    m = AccumMetric(spy, dim_argmax=-1)
    m.reset(); m.accumulate(batch(LOGITS, LABELS)); m.value
    assert torch.equal(seen[-1][0], torch.tensor([1, 0, 2, 0]))
    m = AccumMetric(spy, activation=torch.sigmoid, thresh=0.5)
    m.reset(); m.accumulate(batch(torch.tensor([-1., 2.]), torch.tensor([0, 1]))); m.value
    assert torch.equal(seen[-1][0], torch.tensor([False, True]))
    assert AccumMetric(spy).name == 'spy' and AccumMetric(spy, name='custom').name == 'custom'
    empty = AccumMetric(spy)
    empty.reset()
    assert empty.value is None


def test_accum_metric_with_an_sklearn_style_function():
    def first_arg_is_target(y_true, y_pred, weight=1.0):
        assert type(y_true).__module__ == 'numpy'
        return weight * float((y_true == y_pred).mean())
    m = AccumMetric(first_arg_is_target, dim_argmax=-1, to_np=True, invert_arg=True, weight=2.0)
    m.reset()
    m.accumulate(batch(LOGITS[:3], LABELS[:3]))
    m.accumulate(batch(LOGITS[3:], LABELS[3:]))
    assert m.value == 1.0


def test_avg_metric_weights_batches_by_their_size():
    m = AvgMetric(accuracy)
    m.reset()
    m.accumulate(batch(LOGITS[:3], LABELS[:3]))         # 2 of 3 right
    m.accumulate(batch(LOGITS[3:], LABELS[3:]))         # 0 of 1 right
    assert m.value.item() == 0.5 and m.name == 'accuracy'  # not (2/3 + 0) / 2
    m.reset()
    assert m.value is None


def test_avg_metric_over_a_ragged_last_batch_equals_the_whole_set():
    learn = blobs_learner(n_valid=20, bs=16, metrics=accuracy)   # batches of 16 and 4
    x, y = learn.dls.valid_ds.tensors
    with torch.no_grad(): expected = accuracy(learn.model(x), y).item()
    _, acc = learn.validate()
    assert acc == pytest.approx(expected, abs=1e-6)


def test_avg_loss_weights_batches_by_their_size():
    m = AvgLoss()
    m.reset()
    m.accumulate(batch(None, torch.zeros(3), loss=torch.tensor(2.0)))
    m.accumulate(batch(None, torch.zeros(1), loss=torch.tensor(6.0)))
    assert m.value.item() == 3.0 and m.name == 'loss'


def test_avg_smooth_loss_is_a_debiased_moving_average():
    m = AvgSmoothLoss(beta=0.9)
    losses = [4.0, 2.0, 3.0]
    val = 0.
    for i, loss in enumerate(losses, 1):
        m.accumulate(batch(None, loss=torch.tensor([loss, loss])))
        val = 0.9 * val + 0.1 * loss
        assert m.value.item() == pytest.approx(val / (1 - 0.9 ** i))
    assert m.value.item() != pytest.approx(sum(losses) / 3)
    m.reset()
    assert m.count == 0 and m.val.item() == 0.


def test_value_metric_reads_a_value_computed_elsewhere():
    def last_lr(): return 0.1
    assert ValueMetric(last_lr).value == 0.1 and ValueMetric(last_lr).name == 'last_lr'
    assert ValueMetric(last_lr, 'lr').name == 'lr'


# ----------------------------------------------------------------------------- mk_metric
def test_mk_metric_turns_functions_and_classes_into_metrics():
    class Counter(Metric):
        def reset(self): self.n = 0
        def accumulate(self, learn): self.n += 1
        @property
        def value(self): return self.n
    assert isinstance(mk_metric(accuracy), AvgMetric) and mk_metric(accuracy).func is accuracy
    assert isinstance(mk_metric(Counter), Counter) and mk_metric(Counter).name == 'counter'
    counter = Counter()
    assert mk_metric(counter) is counter
    assert mk_metric(rmse) is rmse


def test_mk_metric_errors():
    with pytest.raises(TypeError, match=r'metrics: expected a function \(pred, \*targets\) -> value or a Metric, '
                                        r"got 'accuracy'"):
        mk_metric('accuracy')
    with pytest.raises(TypeError, match='metrics: expected a function'):
        blobs_learner(metrics=[accuracy, 3])

    def my_acc(pred): return pred.mean()
    with pytest.raises(TypeError) as info:
        blobs_learner(metrics=[my_acc])          # when the Learner is built, not after a training epoch
    assert str(info.value) == ('metrics: `my_acc(pred)` cannot be called as a metric, with the predictions and the '
                               'targets: expected `def my_acc(pred, targ)`')


def test_mk_metric_takes_a_metric_of_several_targets_or_any_arguments():
    def two_targets(pred, y1, y2): return (pred.argmax(-1) == y1).float().mean()
    def anything(*args): return args[0].mean()
    by_axis = partial(accuracy, axis=-1)
    assert [mk_metric(f).func for f in (two_targets, anything, by_axis)] == [two_targets, anything, by_axis]


def test_a_metric_without_value_says_so():
    class Unfinished(Metric): pass
    with pytest.raises(NotImplementedError, match='Unfinished must define `value`'):
        Unfinished().value
