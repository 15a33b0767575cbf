"""Training helpers written the fastai-1 way, as a user would (a corpus file for tests/v1/test_v1_imports.py).

Its one fastai import line (`from fastai.torch_core import *`) became the trainlib one below; nothing else
changed. The callbacks follow fastai-1's protocol by duck typing (all ten events, keyword state, dict
returns), so they need no v1 class: tests/oracle_scripts/record_fa1_corpus.py runs this very file in a real
fastai 1.0.61 fit.
"""
from trainlib.v1.imports import *

__all__ = ['EventDefaults', 'LossHistory', 'GradNormTracker', 'LossWarmup', 'TinyNet', 'flat_mse', 'freeze_first',
           'lr_groups', 'history_cb']


class EventDefaults():
    "The fastai-1 events as no-ops, so a callback only writes the ones it needs."
    _order = 0
    def on_train_begin(self, **kwargs:Any)->None: pass
    def on_epoch_begin(self, **kwargs:Any)->None: pass
    def on_batch_begin(self, **kwargs:Any)->None: pass
    def on_loss_begin(self, **kwargs:Any)->None: pass
    def on_backward_begin(self, **kwargs:Any)->None: pass
    def on_backward_end(self, **kwargs:Any)->None: pass
    def on_step_end(self, **kwargs:Any)->None: pass
    def on_batch_end(self, **kwargs:Any)->None: pass
    def on_epoch_end(self, **kwargs:Any)->None: pass
    def on_train_end(self, **kwargs:Any)->None: pass
    def jump_to_epoch(self, epoch:int)->None: pass


@dataclass
class LossHistory(EventDefaults):
    "Keep every `every`-th raw and smoothed training loss and each epoch's validation loss; save them to `path`."
    every:int = 1
    path:Optional[PathOrStr] = None
    losses:List[float] = field(default_factory=list)
    smooth:List[float] = field(default_factory=list)
    val_losses:List[Optional[float]] = field(default_factory=list)

    def on_train_begin(self, **kwargs:Any)->None:
        self.losses, self.smooth, self.val_losses = [], [], []

    def on_batch_end(self, last_loss:Rank0Tensor, iteration:int, train:bool, **kwargs:Any)->None:
        if not train or iteration % self.every: return
        self.losses.append(float(to_np(last_loss)))
        self.smooth.append(float(ifnone(kwargs.get('smooth_loss'), last_loss)))

    def on_epoch_end(self, last_metrics:MetricsList, **kwargs:Any)->None:
        val = first_el(listify(last_metrics))
        self.val_losses.append(None if val is None else round(float(val), 6))

    def on_train_end(self, **kwargs:Any)->None:
        if self.path is None: return
        dest = Path(self.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        np.save(dest, np.array(self.losses, dtype=np.float32))


class GradNormTracker(EventDefaults):
    "Record the global gradient norm after each backward pass, and clip it to `max_norm` when given."
    _order = -5
    def __init__(self, model:nn.Module, max_norm:Optional[float]=None):
        self.model,self.max_norm,self.norms = model,max_norm,[]

    def on_backward_end(self, **kwargs:Any)->None:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if not params: return
        norm = torch.stack([p.grad.detach().norm() for p in params]).norm()
        self.norms.append(norm.item())
        if self.max_norm is not None: nn.utils.clip_grad_norm_(params, self.max_norm)


@dataclass
class LossWarmup(EventDefaults):
    "Scale the loss from `start` up to 1 over the first `n_iter` training batches."
    n_iter:int = 10
    start:float = 0.1

    def on_backward_begin(self, last_loss:Rank0Tensor, iteration:int, **kwargs:Any)->Dict[str,Any]:
        scale = self.start + (1 - self.start) * min(1., iteration / self.n_iter)
        return {'last_loss': last_loss * scale}


class TinyNet(Module):
    "A two-layer net written the fastai-1 way: no `super().__init__()`."
    def __init__(self, n_in:int, n_hidden:int=8, n_out:int=1):
        self.layers = nn.Sequential(nn.Linear(n_in, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))

    def forward(self, x:Tensor)->Tensor: return self.layers(x)


def flat_mse(out:Tensor, targ:Tensor)->Rank0Tensor:
    "MSE on flattened output and target."
    return F.mse_loss(*flatten_check(out, targ))


def freeze_first(model:nn.Module, n:int=1)->ModuleList:
    "Freeze the first `n` layers of `model`; returns them."
    layers = flatten_model(model)[:n]
    for l in layers: requires_grad(l, False)
    return layers


def lr_groups(lr:Union[float,slice], n_groups:int)->np.ndarray:
    "One learning rate per layer group, the way fastai-1 spreads a slice."
    if not isinstance(lr, slice): return np.array(listify(lr, n_groups))
    if lr.start: return even_mults(lr.start, lr.stop, n_groups)
    return np.array([lr.stop / 10] * (n_groups - 1) + [lr.stop])


history_cb = partial(LossHistory, every=2)
