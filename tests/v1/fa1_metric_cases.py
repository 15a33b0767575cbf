"""The fixed predictions/targets and the metric cases shared by tests/oracle_scripts/fa1_metrics.py (run on
fastai 1.0.61) and tests/v1/test_v1_metrics.py (run on trainlib.v1): the same code feeds both libraries.

Nothing here imports fastai or trainlib: a case names the metric, the library's namespace supplies it."""
import warnings

import numpy as np
import torch

BATCHES = (8, 8, 4)          # the validation batches a callback metric sees, per epoch


def inputs() -> dict:
    "Every input tensor, from one seeded generator (torch's CPU generator is the same in both venvs)."
    g = torch.Generator().manual_seed(2024)
    d = {'cls_out': torch.randn(20, 4, generator=g), 'cls_targ': torch.randint(0, 4, (20,), generator=g),
         'bin_out': torch.randn(20, 2, generator=g), 'bin_targ': torch.randint(0, 2, (20,), generator=g),
         'ml_out': torch.randn(20, 5, generator=g), 'ml_targ': (torch.rand(20, 5, generator=g) > 0.5).float(),
         'reg_pred': torch.rand(20, 1, generator=g) + 0.5, 'reg_targ': torch.rand(20, 1, generator=g) + 0.5,
         'seg_out': torch.randn(4, 3, 5, 5, generator=g), 'seg_targ': torch.randint(0, 3, (4, 1, 5, 5), generator=g),
         'dice_out': torch.randn(4, 2, 5, 5, generator=g), 'dice_targ': torch.randint(0, 2, (4, 1, 5, 5), generator=g),
         'roc_score': (torch.rand(20, generator=g) * 10).round() / 10, 'roc_targ': torch.randint(0, 2, (20,), generator=g),
         'lm_out': torch.randn(4, 6, 7, generator=g), 'lm_targ': torch.randint(0, 7, (4, 6), generator=g)}
    d['dice_out'][0, 0] += 10.                       # sample 0: nothing predicted and nothing to find (union 0)
    d['dice_targ'][0] = 0
    return d


def checksum(d: dict) -> float:
    "One number that changes if any input does."
    return round(sum(float(v.double().abs().sum()) * (i + 1) for i, v in enumerate(d.values())), 6)


FUNCTION_CASES = [
    # (label, function name, input keys, kwargs)
    ('accuracy', 'accuracy', ('cls_out', 'cls_targ'), {}),
    ('error_rate', 'error_rate', ('cls_out', 'cls_targ'), {}),
    ('accuracy_thresh', 'accuracy_thresh', ('ml_out', 'ml_targ'), {}),
    ('accuracy_thresh(0.3, no sigmoid)', 'accuracy_thresh', ('ml_out', 'ml_targ'), {'thresh': 0.3, 'sigmoid': False}),
    ('top_k_accuracy(k=2)', 'top_k_accuracy', ('cls_out', 'cls_targ'), {'k': 2}),
    ('foreground_acc', 'foreground_acc', ('seg_out', 'seg_targ'), {'void_code': 0}),
    ('dice', 'dice', ('dice_out', 'dice_targ'), {}),
    ('dice(iou)', 'dice', ('dice_out', 'dice_targ'), {'iou': True}),
    ('fbeta', 'fbeta', ('ml_out', 'ml_targ'), {}),
    ('fbeta(0.5, beta=1)', 'fbeta', ('ml_out', 'ml_targ'), {'thresh': 0.5, 'beta': 1}),
    ('exp_rmspe', 'exp_rmspe', ('reg_pred', 'reg_targ'), {}),
    ('mean_absolute_error', 'mean_absolute_error', ('reg_pred', 'reg_targ'), {}),
    ('mae', 'mae', ('reg_pred', 'reg_targ'), {}),
    ('mean_squared_error', 'mean_squared_error', ('reg_pred', 'reg_targ'), {}),
    ('mse', 'mse', ('reg_pred', 'reg_targ'), {}),
    ('root_mean_squared_error', 'root_mean_squared_error', ('reg_pred', 'reg_targ'), {}),
    ('rmse', 'rmse', ('reg_pred', 'reg_targ'), {}),
    ('mean_squared_logarithmic_error', 'mean_squared_logarithmic_error', ('reg_pred', 'reg_targ'), {}),
    ('msle', 'msle', ('reg_pred', 'reg_targ'), {}),
    ('explained_variance', 'explained_variance', ('reg_pred', 'reg_targ'), {}),
    ('r2_score', 'r2_score', ('reg_pred', 'reg_targ'), {}),
    ('auc_roc_score', 'auc_roc_score', ('roc_score', 'roc_targ'), {}),
    ('roc_curve', 'roc_curve', ('roc_score', 'roc_targ'), {}),
]

_AVERAGES = ['micro', 'macro', 'weighted', None]
CALLBACK_CASES = [
    # (label, class name, kwargs, output key, target key, batch sizes)
    ('R2Score', 'R2Score', {}, 'reg_pred', 'reg_targ', BATCHES),
    ('ExplainedVariance', 'ExplainedVariance', {}, 'reg_pred', 'reg_targ', BATCHES),
    ('RMSE', 'RMSE', {}, 'reg_pred', 'reg_targ', BATCHES),
    ('ExpRMSPE', 'ExpRMSPE', {}, 'reg_pred', 'reg_targ', BATCHES),
    ('ConfusionMatrix', 'ConfusionMatrix', {}, 'cls_out', 'cls_targ', BATCHES),
    ('Precision()', 'Precision', {}, 'bin_out', 'bin_targ', BATCHES),
    ('Recall()', 'Recall', {}, 'bin_out', 'bin_targ', BATCHES),
    ('FBeta()', 'FBeta', {}, 'bin_out', 'bin_targ', BATCHES),
    ('Precision(pos_label=0)', 'Precision', {'pos_label': 0}, 'bin_out', 'bin_targ', BATCHES),
    ('FBeta(pos_label=0, beta=1)', 'FBeta', {'pos_label': 0, 'beta': 1}, 'bin_out', 'bin_targ', BATCHES),
    *[(f'Precision(average={a!r})', 'Precision', {'average': a}, 'cls_out', 'cls_targ', BATCHES) for a in _AVERAGES],
    *[(f'Recall(average={a!r})', 'Recall', {'average': a}, 'cls_out', 'cls_targ', BATCHES) for a in _AVERAGES],
    *[(f'FBeta(average={a!r}, beta=1)', 'FBeta', {'average': a, 'beta': 1}, 'cls_out', 'cls_targ', BATCHES)
      for a in _AVERAGES],
    ('FBeta() on 4 classes', 'FBeta', {}, 'cls_out', 'cls_targ', BATCHES),
    ('Precision() on 4 classes', 'Precision', {}, 'cls_out', 'cls_targ', BATCHES),
    ('KappaScore()', 'KappaScore', {}, 'cls_out', 'cls_targ', BATCHES),
    ("KappaScore('linear')", 'KappaScore', {'weights': 'linear'}, 'cls_out', 'cls_targ', BATCHES),
    ("KappaScore('quadratic')", 'KappaScore', {'weights': 'quadratic'}, 'cls_out', 'cls_targ', BATCHES),
    ('MatthewsCorreff', 'MatthewsCorreff', {}, 'cls_out', 'cls_targ', BATCHES),
    ('MatthewsCorreff binary', 'MatthewsCorreff', {}, 'bin_out', 'bin_targ', BATCHES),
    ('Perplexity', 'Perplexity', {}, 'lm_out', 'lm_targ', (2, 2)),
    ('AUROC', 'AUROC', {}, 'bin_out', 'bin_targ', BATCHES),
    *[(f'MultiLabelFbeta(average={a!r})', 'MultiLabelFbeta', {'average': a}, 'ml_out', 'ml_targ', BATCHES)
      for a in ['micro', 'macro', 'weighted', 'none']],
    ('MultiLabelFbeta(beta=1, thresh=0.5)', 'MultiLabelFbeta', {'beta': 1, 'thresh': 0.5}, 'ml_out', 'ml_targ', BATCHES),
]


def describe(v):
    "Numbers rounded to 6 decimals (NaN as 'nan'); tensors and arrays as nested lists."
    if isinstance(v, (torch.Tensor, np.ndarray)): v = v.tolist()
    if isinstance(v, (list, tuple)): return [describe(o) for o in v]
    if isinstance(v, (float, np.floating)): return 'nan' if v != v else round(float(v), 6)
    return v


def run_function(ns: dict, name: str, keys: tuple, kwargs: dict, d: dict):
    "What the function returns on the fixed inputs, or the error it raises."
    try: return describe(ns[name](*[d[k] for k in keys], **kwargs))
    except Exception as e: return f'raises {type(e).__name__}'


def run_callback(ns: dict, name: str, kwargs: dict, out_key: str, targ_key: str, sizes: tuple, d: dict,
                 n_epochs: int = 2) -> dict:
    """Drive a callback metric as fastai's handler does for a validation-only view: on_train_begin, then per
    epoch on_epoch_begin, on_batch_end per batch, on_epoch_end; the values it adds (or its ``metric``) per epoch."""
    res = {'epochs': [], 'warnings': []}
    out, targ = d[out_key], d[targ_key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            cb = ns[name](**kwargs)
            cb.on_train_begin(n_epochs=n_epochs, pbar=None, metrics=[cb], metrics_names=[name])
            for epoch in range(n_epochs):
                cb.on_epoch_begin(epoch=epoch)
                start = 0
                for bs in sizes:
                    cb.on_batch_end(last_output=out[start:start + bs], last_target=targ[start:start + bs], train=False,
                                    epoch=epoch)
                    start += bs
                ret = cb.on_epoch_end(last_metrics=[np.float32(0.5)], epoch=epoch)
                added = ret['last_metrics'][1:] if ret is not None else None
                res['epochs'].append(describe(added if added is not None else getattr(cb, 'metric', None)))
            cb.on_train_end(exception=False)
        except Exception as e:
            res['error'] = f'{type(e).__name__}: {e}'
    res['warnings'] = [str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)]
    return res


# ---------------------------------------------------------------- the fit scenarios (a Learner on a TensorDataset)
def fit_data(seed: int = 0, n_train: int = 24, n_valid: int = 20):
    "Two-class problem: 3 shuffled train batches of 8 (drop_last) and valid batches of 8, 8, 4."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_train + n_valid, 4, generator=g)
    y = (x[:, 0] + x[:, 1] - x[:, 2] > 0).long()
    tds = torch.utils.data.TensorDataset
    return tds(x[:n_train], y[:n_train]), tds(x[n_train:], y[n_train:])


def fit_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


class SplitLoss(torch.nn.Module):
    "Cross-entropy that also publishes two parts for LossMetrics (``metric_names``, ``metrics``)."
    metric_names = ['sq_err', 'abs_err']

    def forward(self, out, targ):
        p = out.softmax(-1)[:, 1]
        self.metrics = {'sq_err': ((p - targ.float()) ** 2).mean(), 'abs_err': (p - targ.float()).abs().mean()}
        return torch.nn.functional.cross_entropy(out, targ)


def run_fit(ns: dict, metrics: list, callback_fns: list = (), loss_func=None, epochs: int = 2, lr: float = 1e-2,
            tmp: str = '.') -> dict:
    """``Learner(...).fit(epochs, lr)`` with ``metrics`` in library namespace ``ns``, then ``learn.validate()``:
    what a callback sees in ``last_metrics`` at each on_epoch_end, the Recorder's names/metrics/val_losses."""
    seen = []

    class Spy(ns['Callback']):
        _order = 100
        def on_epoch_end(self, last_metrics, **kwargs): seen.append(describe(list(last_metrics)))

    train_ds, valid_ds = fit_data()
    data = ns['DataBunch'].create(train_ds, valid_ds, bs=8, num_workers=0, path=tmp, device=torch.device('cpu'))
    learn = ns['Learner'](data, fit_model(), loss_func=loss_func or torch.nn.CrossEntropyLoss(), metrics=metrics,
                          callback_fns=list(callback_fns), add_time=False, silent=True)
    torch.manual_seed(1)
    learn.fit(epochs, lr, callbacks=[Spy()])
    r = learn.recorder
    return {'last_metrics': seen, 'names': list(r.names), 'metrics': describe([list(m) for m in r.metrics]),
            'val_losses': describe(r.val_losses), 'validate': describe(list(learn.validate()))}
