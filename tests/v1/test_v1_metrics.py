"""trainlib.v1's metrics against fastai 1.0.61 (tests/golden/fa1_metrics.json, made by
tests/oracle_scripts/fa1_metrics.py on the fixed cases of fa1_metric_cases.py): every function, every
callback metric over two epochs of three validation batches, and Learner fits with metrics."""
import json
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

import fa1_metric_cases as mc
import trainlib.v1 as v1
from trainlib.v1 import metrics as m

GOLDEN = json.loads((Path(__file__).parents[1] / 'golden' / 'fa1_metrics.json').read_text().split('\n', 1)[1])
NS = vars(v1)
D = mc.inputs()
# Where trainlib answers differently on purpose (see MIGRATION.md): case -> why.
DEVIATIONS = {
    'KappaScore()': 'fastai 1 crashes (no attribute x); trainlib gives the unweighted kappa',
    'FBeta() on 4 classes': "fastai 1's value changes after the first epoch; trainlib keeps the macro value",
}


def close(got, want):
    "Equal to fastai's six decimals (one unit of the last decimal for float32 noise)."
    if isinstance(want, list): return isinstance(got, list) and len(got) == len(want) and all(map(close, got, want))
    if want == 'nan' or got == 'nan': return got == want
    return isinstance(got, (int, float)) and abs(got - want) <= 1.5e-6


def test_inputs_are_the_oracles():
    assert mc.checksum(D) == GOLDEN['checksum']


@pytest.mark.parametrize('label,name,keys,kwargs', mc.FUNCTION_CASES, ids=[c[0] for c in mc.FUNCTION_CASES])
def test_functions_match_fastai_1(label, name, keys, kwargs):
    assert close(mc.run_function(NS, name, keys, kwargs, D), GOLDEN['functions'][label])


@pytest.mark.parametrize('case', [c for c in mc.CALLBACK_CASES if c[0] not in DEVIATIONS], ids=lambda c: c[0])
def test_callback_metrics_match_fastai_1(case):
    label, name, kwargs, out_key, targ_key, sizes = case
    got, want = mc.run_callback(NS, name, kwargs, out_key, targ_key, sizes, D), GOLDEN['callbacks'][label]
    assert close(got['epochs'], want['epochs']) and got['warnings'] == want['warnings'] and 'error' not in got


def test_function_names_are_fastai_1s_columns():
    "AverageMetric names a column after the function: the short aliases keep the long names."
    assert [f.__name__ for f in (m.mae, m.mse, m.rmse, m.msle)] == [
        'mean_absolute_error', 'mean_squared_error', 'root_mean_squared_error', 'mean_squared_logarithmic_error']
    assert v1.AverageMetric(partial(m.top_k_accuracy, k=1)).name == 'top_k_accuracy'


def test_kappa_score_unweighted_works_and_is_cohens_kappa():
    got = mc.run_callback(NS, 'KappaScore', {}, 'cls_out', 'cls_targ', mc.BATCHES, D)
    want = cohen_kappa_score(D['cls_targ'].numpy(), D['cls_out'].argmax(-1).numpy())
    assert got['epochs'] == [[round(want, 6)]] * 2
    assert 'no attribute' in GOLDEN['callbacks']['KappaScore()']['error']            # fastai 1's crash
    for weights in ('linear', 'quadratic'):
        want = cohen_kappa_score(D['cls_targ'].numpy(), D['cls_out'].argmax(-1).numpy(), weights=weights)
        assert close(GOLDEN['callbacks'][f'KappaScore({weights!r})']['epochs'][0], [round(want, 6)])
    with pytest.raises(ValueError, match='KappaScore: unknown weights .cubic.'): m.KappaScore(weights='cubic')


def test_fbeta_binary_on_four_classes_is_macro_at_every_epoch():
    got = mc.run_callback(NS, 'FBeta', {}, 'cls_out', 'cls_targ', mc.BATCHES, D)
    want = GOLDEN['callbacks']['FBeta() on 4 classes']
    assert close(got['epochs'][0], want['epochs'][0]) and got['epochs'][1] == got['epochs'][0]
    assert want['epochs'][1] != want['epochs'][0]                                      # fastai 1 drifts
    assert got['warnings'] == want['warnings']                                         # one warning per epoch
    fb = m.FBeta()
    fb.on_train_begin()
    fb.on_train_end()
    assert fb.average == 'binary'


def test_bad_averages_fail_when_the_metric_is_created():
    with pytest.raises(ValueError, match="FBeta: average must be one of"): m.FBeta(average='mikro')
    with pytest.raises(ValueError, match="MultiLabelFbeta: average must be one of"): m.MultiLabelFbeta(average='all')
    r2 = m.R2Score()
    r2.on_epoch_begin()
    with pytest.raises(ValueError, match='R2Score.on_batch_end: expected as many predictions as targets, got 6 and 3'):
        r2.on_batch_end(last_output=torch.ones(3, 2), last_target=torch.ones(3))


def test_callback_metrics_keep_their_data_on_the_device_until_the_epoch_ends():
    "No host sync per batch: the confusion matrix and the collected tensors stay where the outputs are."
    cm = m.ConfusionMatrix()
    cm.on_train_begin(); cm.on_epoch_begin()
    cm.on_batch_end(last_output=D['cls_out'][:8].to(torch.float64), last_target=D['cls_targ'][:8])
    cm.on_epoch_end()
    assert cm.metric.sum() == 8 and cm.metric.device == D['cls_out'].device
    r2 = m.R2Score()
    r2.on_epoch_begin()
    r2.on_batch_end(last_output=D['reg_pred'][:8], last_target=D['reg_targ'][:8])
    r2.on_epoch_end(last_metrics=[None])
    assert r2.preds.shape == (8, 1) and r2.targs.shape == (8, 1)


@pytest.mark.parametrize('scenario', ['fit accuracy FBeta', 'fit many', 'fit LossMetrics'])
def test_learner_fit_with_metrics_matches_fastai_1(scenario, tmp_path):
    "last_metrics (what a callback sees), the Recorder's names and metrics, and learn.validate() on a TensorDataset."
    want = GOLDEN[scenario]
    metrics = {'fit accuracy FBeta': lambda: [m.accuracy, m.FBeta()],
               'fit many': lambda: [m.error_rate, m.Precision(), m.Recall(), m.KappaScore(weights='quadratic'),
                                    m.MatthewsCorreff(), m.AUROC(), m.ConfusionMatrix(),
                                    partial(m.top_k_accuracy, k=1)],
               'fit LossMetrics': lambda: [m.accuracy]}[scenario]()
    extra = {'callback_fns': [m.LossMetrics], 'loss_func': mc.SplitLoss()} if scenario == 'fit LossMetrics' else {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        got = mc.run_fit(NS, metrics, tmp=str(tmp_path), **extra)
    assert got['names'] == want['names']
    for key in ('last_metrics', 'metrics', 'val_losses', 'validate'):
        assert close(got[key], want[key]), (key, got[key], want[key])


def test_loss_metrics_without_names_warns_and_adds_nothing(tmp_path):
    train_ds, valid_ds = mc.fit_data()
    data = v1.DataBunch.create(train_ds, valid_ds, bs=8, path=tmp_path, device='cpu')
    learn = v1.Learner(data, mc.fit_model(), loss_func=torch.nn.CrossEntropyLoss(), callback_fns=[m.LossMetrics],
                       silent=True)
    with pytest.warns(UserWarning, match='LossMetrics requested but no loss_func.metric_names provided'):
        learn.fit(1, 1e-2)
    assert learn.recorder.names[3:] == ['time'] and learn.recorder.metrics == []


def test_multi_label_fbeta_none_makes_a_column_per_label():
    got = mc.run_callback(NS, 'MultiLabelFbeta', {'average': 'none'}, 'ml_out', 'ml_targ', mc.BATCHES, D)
    assert len(got['epochs'][0]) == D['ml_targ'].shape[1]
    assert np.isclose(np.mean(got['epochs'][0]), GOLDEN['callbacks']["MultiLabelFbeta(average='macro')"]['epochs'][0][0],
                      atol=1e-6)


def test_fbeta_keeps_its_average_after_learn_validate(tmp_path):
    "fastai 1 leaves FBeta per-class after a learn.validate() (a column per class from then on); trainlib does not."
    fastai_first, fastai_second, fastai_fit = GOLDEN['validate twice with FBeta']
    train_ds, valid_ds = mc.fit_data()
    data = v1.DataBunch.create(train_ds, valid_ds, bs=8, path=tmp_path, device='cpu')
    learn = v1.Learner(data, mc.fit_model(), loss_func=torch.nn.CrossEntropyLoss(), metrics=[m.accuracy, m.FBeta()],
                       silent=True)
    first, second = mc.describe(list(learn.validate())), mc.describe(list(learn.validate()))
    assert close(first, fastai_first) and second == first and len(fastai_second) == 4
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    fit = mc.describe([list(v) for v in learn.recorder.metrics])
    assert close(fit, [[fastai_fit[0][0], fastai_fit[0][2]]])              # fastai's extra column dropped


def test_callback_metrics_read_nothing_back_to_the_host_per_batch(monkeypatch, tmp_path):
    "Tensor reads made by trainlib code during a fit with callback metrics happen at epoch ends, never per batch."
    import sys
    where = []
    def counting(name):
        orig = getattr(torch.Tensor, name)
        def f(self, *a, **k):
            frame = sys._getframe(1)
            if '/trainlib/' in frame.f_code.co_filename: where.append(frame.f_code.co_name)
            return orig(self, *a, **k)
        return f
    for name in ('item', 'cpu', 'tolist', '__float__', '__bool__', 'numpy', '__int__'):
        monkeypatch.setattr(torch.Tensor, name, counting(name))
    # the smoothed loss as on a GPU (SmoothenValue smooths CPU tensors on the host, no sync there)
    monkeypatch.setattr(v1.SmoothenValue, '_on_host', staticmethod(lambda device: False))
    metrics = [m.FBeta(), m.KappaScore(), m.MatthewsCorreff(), m.AUROC(), m.ConfusionMatrix(), m.Precision(average=None)]
    mc.run_fit(NS, metrics, tmp=str(tmp_path))
    assert where.count('weighted_loss_mean') == 6  # cpu() + numpy() of the validation loss: 2 epochs + validate()
    # the only other reads: the v1 Recorder turning each epoch's row into numbers for its v2 face (once per epoch)
    assert set(where) == {'weighted_loss_mean', '_number'} and where.count('_number') <= 2 * 9
