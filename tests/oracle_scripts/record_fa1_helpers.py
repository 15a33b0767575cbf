#!/usr/bin/env python
"""Record what fastai 1.0.61's generic helpers and type aliases return, for tests/v1/test_v1_imports.py.

Run with the fastai 1.0.61 oracle venv:
    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/record_fa1_helpers.py > tests/golden/fa1_helpers.txt

Every case is evaluated in the namespace `from fastai.torch_core import *` gives, in order (some cases change
state that later ones read), with fastai.basic_train imported (it adds lr, wd... to `defaults`). The test evaluates the same code in `from trainlib.v1.imports import *`.
Output lines (tab separated, code and description JSON-encoded):  setup <code>  |  case <code> <description>
A case that raises is described as `raises <ExceptionType>`.
"""
import json
import sys
import typing
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'v1'))
from fa1_describe import describe  # noqa: E402

import fastai  # noqa: E402
import fastai.basic_train  # noqa: E402,F401  (sets defaults.lr, wd, extra_callbacks, extra_callback_fns)
import fastai.torch_core as fa_torch_core  # noqa: E402

SETUP = [
    "torch.manual_seed(0)",
    "m1 = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4)), nn.Linear(4, 1))",
    "class WithLooseParam(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.lin = nn.Linear(2, 2)\n"
    "        self.scale = nn.Parameter(torch.ones(2))\n"
    "    def forward(self, x): return self.lin(x) * self.scale",
    "class NoSuper(Module):\n"
    "    def __init__(self, n): self.lin = nn.Linear(n, 1)\n"
    "    def forward(self, x): return self.lin(x)",
    "def none_reduce(loss_func, out, targ):\n"
    "    with NoneReduceOnCPU(loss_func) as lf: return lf(out, targ)",
    "def on_cpu(model):\n"
    "    with ModelOnCPU(model) as m: return one_param(m).device",
    "tg = torch.tensor([1., 2.], requires_grad=True)",
]

CASES = [
    # listify / ifnone / first_el and the listy predicates
    "listify(None)", "listify('a')", "listify(3)", "listify(3, [1, 2])", "listify([1, 2])", "listify((1, 2))",
    "listify(3, 4)", "listify([5], 3)", "listify('ab', [1, 2])", "listify({'a': 1, 'b': 2})", "listify(range(3))",
    "listify(torch.tensor([1., 2.]))", "listify(torch.tensor(3.))", "listify(np.array([1, 2]))",
    "listify(np.array(5))", "type(listify(x for x in [1, 2])[0]).__name__", "listify([1, 2], 2)",
    "ifnone(None, 3)", "ifnone(0, 3)", "ifnone(False, 1)",
    "first_el([[1, 2], 3])", "first_el({'a': [4], 'b': 5})", "first_el(5)", "first_el((torch.tensor([1.]),))",
    "is_listy([1])", "is_listy((1,))", "is_listy(range(2))", "is_listy(torch.tensor([1]))", "is_listy('ab')",
    "is_tuple((1,))", "is_tuple([1])", "is_dict({})", "is_pathlike('a')", "is_pathlike(Path('a'))", "is_pathlike(1)",
    # small core helpers
    "range_of([4, 5, 6])", "arange_of('abc')", "trange_of([1, 2])", "even_mults(1e-5, 1e-3, 3)",
    "even_mults(1e-4, 1e-2, 5)", "camel2snake('HTTPServerCallback')", "camel2snake('LRFinder')",
    "camel2snake('OneCycleScheduler')", "camel2snake('MixUpCallback')",
    "func_args(lambda a, b=1, *c, d=2, **e: 0)", "has_arg(lambda x, y: 0, 'y')", "has_arg(lambda x, y: 0, 'z')",
    "split_kwargs_by_func({'a': 1, 'z': 2}, lambda a, b: 0)", "show_some([1, 2, 3, 4, 5, 6, 7])", "show_some([])",
    "show_some(['a', 'b'], sep='|')", "list(chunks([1, 2, 3, 4, 5], 2))", "recurse(lambda x: x * 2, [1, (2, 3), {'a': 4}])",
    "compose([lambda x: x + 1, lambda x: x * 2])(3)", "array(x for x in [1, 2])", "array([1.5, 2])",
    "repr(PrettyString('a\\nb'))", "join_path('f.txt', 'dir')", "join_paths(['a', 'b'], 'd')", "noop(4)",
    "recurse_eq([np.array([1, 2]), 3], [np.array([1, 2]), 3])", "recurse_eq([1, 2], [1, 3])",
    "ItemBase([1, 2])", "repr(ItemBase([1, 2]))", "ItemBase(3) == ItemBase(3)", "to_data([ItemBase(1), 2])",
    "sorted(vars(defaults))", "defaults.lr", "defaults.wd", "defaults.cmap", "defaults.silent",
    "defaults.return_fig", "defaults.extra_callbacks", "defaults.extra_callback_fns",
    # tensors
    "tensor([1, 2])", "tensor(1, 2, 3)", "tensor([])", "tensor(3.5)", "tensor([[1., 2.]])",
    "tensor(np.array([1, 2], dtype=np.int32))", "tensor(np.array([1., 2.]))",
    "to_detach([tg, (tg,), {'k': tg}])", "to_detach(tg, cpu=False)", "to_cpu((tg, 1))", "to_np(tg)",
    "to_half([torch.ones(2), torch.tensor([1, 2])])", "to_float([torch.ones(2).half(), torch.tensor([1, 2], dtype=torch.int32)])",
    "to_device([tg, {'a': tg}], torch.device('cpu'))", "to_device(tg, None)",
    "grab_idx([torch.arange(6).view(3, 2), torch.arange(3)], 1)", "grab_idx(torch.arange(6).view(2, 3), 2, batch_first=False)",
    "logit(torch.tensor([0., 0.5, 1.]))", "logit_(torch.tensor([0.25]))",
    "try_int(torch.tensor(3.))", "try_int(np.array([1]))", "try_int('7')", "try_int('x')", "try_int(2.5)", "try_int([1])",
    "flatten_check(torch.zeros(2, 3), torch.ones(6))", "np_func(np.sqrt)(torch.tensor([4., 9.]))",
    "data_collate([(torch.tensor([1.]), 0), (torch.tensor([2.]), 1)])", "batch_to_half([torch.ones(1), torch.tensor([1])])",
    "add_metrics([torch.tensor(1.)], torch.tensor(2.))", "add_metrics(None, [1, 2])",
    "add_metrics([np.float32(0.5)], torch.tensor([3., 4.]))", "remove_module_load({'module.a': 1, 'module.b': 2})",
    "num_distrib()", "rank_distrib()",
    "(set_all_seed(1), uniform(0, 1), uniform_int(0, 10), uniform(0, 1, (2,)), uniform(2), rand_bool(1.), log_uniform(1, 1))",
    # models
    "flatten_model(m1)", "flatten_model(WithLooseParam())", "flatten_model(nn.ReLU())", "first_layer(m1)",
    "last_layer(m1)", "children(m1)", "num_children(m1)", "range_children(m1)", "has_params(nn.ReLU())",
    "has_params(m1)", "in_channels(m1)", "children_and_parameters(WithLooseParam())",
    "split_model(m1, [m1[2]])", "split_model_idx(m1, [2, 4])", "split_model(splits=[[m1[0], m1[1]], [m1[2]]])",
    "[[tuple(p.shape) for p in g] for g in split_no_wd_params(split_model_idx(m1, [3]))]",
    "[[tuple(p.shape) for p in g] for g in get_param_groups(split_model_idx(m1, [3]))]",
    "[tuple(p.shape) for p in trainable_params(m1)]",
    "requires_grad(m1)", "requires_grad(nn.ReLU())", "requires_grad(m1[0], False)", "requires_grad(m1[0])",
    "[p.requires_grad for p in m1.parameters()]", "requires_grad(m1[0], True)",
    "(requires_grad(m1[1], False), set_bn_eval(m1), m1[1].training, requires_grad(m1[1], True))",
    "[p.dtype for p in model2half(nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1))).parameters()]",
    "[p.dtype for p in bn2float(nn.Sequential(nn.Linear(1, 1), nn.BatchNorm1d(1)).half()).parameters()]",
    "[init_default(nn.Linear(2, 2), nn.init.ones_).weight, init_default(nn.Linear(2, 2), nn.init.ones_).bias]",
    "(apply_init(m1, nn.init.ones_), m1[0].weight, m1[0].bias, m1[1].weight, m1[3][1].weight)",
    "get_model(nn.DataParallel(m1)) is m1", "get_model(m1) is m1", "on_cpu(m1)",
    "none_reduce(nn.MSELoss(), torch.tensor([1., 2.]), torch.tensor([1., 4.]))",
    "none_reduce(F.mse_loss, torch.tensor([1., 2.]), torch.tensor([1., 4.]))",
    "bool(is_pool_type(nn.MaxPool2d(2)))", "bool(is_pool_type(nn.Linear(1, 1)))",
    "NoSuper(3)", "NoSuper(3)(torch.ones(2, 3)).shape", "isinstance(NoSuper(2), nn.Module)",
    "(AdamW.func.__name__, AdamW.keywords)",
    "ParameterModule(nn.Parameter(torch.ones(1)))(5)", "one_param(m1).shape",
    "[c.__name__ for c in bn_types]",
    "[c.__name__ for c in no_wd_types]", "[c.__name__ for c in bias_types]",
    # names that are plain re-exports
    "Path('a/b').name", "partial(max, 3)(5)", "F.relu(torch.tensor([-1., 1.]))", "np.float32(1.5)",
    "math.floor(2.5)", "copy([1])", "deepcopy({'a': [1]})", "reduce(lambda a, b: a + b, [1, 2, 3])",
    "itemgetter(1)([4, 5])", "attrgetter('real')(3)", "namedtuple('P', 'x y')(1, 2)", "Counter('aab')['a']",
    "defaultdict(int)['x']", "OrderedDict(a=1)", "isinstance([], Iterable)", "isinstance([], Sized)",
    "LongTensor([1]).dtype", "FloatTensor([1]).dtype", "as_tensor([1., 2.])", "float(exp(0))",
]


def alias_cases() -> list:
    "Every typing alias of the generic namespace except the pandas ones (described by their str)."
    ns = vars(fa_torch_core)
    names = [n for n, o in ns.items() if not n.startswith('_') and (type(o).__module__ == 'typing' or o is typing.Any)]
    return [n for n in sorted(names) if 'pandas' not in str(ns[n])] + \
           ['Rank0Tensor.__name__', 'Rank0Tensor.__supertype__', 'Rank0Tensor(torch.tensor(1.))']


def main():
    warnings.simplefilter('ignore')
    ns = {}
    exec('from fastai.torch_core import *', ns)
    print(f'# fastai {fastai.__version__}: generic helpers and type aliases, evaluated in `from fastai.torch_core import *`')
    print('# produced by tests/oracle_scripts/record_fa1_helpers.py with /tmp/trainlib-oracle/fa1/bin/python')
    for code in SETUP:
        exec(code, ns)
        print(f'setup\t{json.dumps(code)}')
    for code in CASES + alias_cases():
        try: out = describe(eval(code, ns))
        except Exception as e: out = f'raises {type(e).__name__}'
        print(f'case\t{json.dumps(code)}\t{json.dumps(out)}')


if __name__ == '__main__':
    main()
