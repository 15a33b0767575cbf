"""trainlib.v1.imports: the generic names fastai-1 code gets from fastai's star imports.

Golden files (recorded with fastai 1.0.61, see their headers):
- fa1_star_names.txt: every name fastai-1 modules read from star imports, and which ones this module provides;
- fa1_helpers.txt: what fastai-1's helpers return on a set of cases (evaluated here in trainlib's namespace);
- fa1_corpus_run.txt: tests/v1/corpus/fa1_style_callbacks.py run in a real fastai-1 fit.
"""
import ast
import builtins
import importlib.util
import inspect
import json
import symtable
import sys
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import trainlib.v1.imports as v1imports
from trainlib.v1.lazy import LazyModule, lazy_class

HERE = Path(__file__).parent
GOLDEN = HERE.parent / 'golden'
CORPUS = HERE / 'corpus' / 'fa1_style_callbacks.py'
if str(HERE) not in sys.path: sys.path.insert(0, str(HERE))
from fa1_describe import describe  # noqa: E402  (shared with tests/oracle_scripts/record_fa1_helpers.py)


def star_namespace() -> dict:
    ns = {}
    exec('from trainlib.v1.imports import *', ns)
    return ns


def inventory() -> list:
    "Rows of fa1_star_names.txt as dicts."
    cols = ['name', 'kind', 'origin', 'via', 'section', 'used_by', 'note']
    lines = (GOLDEN / 'fa1_star_names.txt').read_text().splitlines()
    return [dict(zip(cols, l.split('\t'))) for l in lines if not l.startswith('#')]


def names_in(section: str) -> set:
    return {r['name'] for r in inventory() if r['section'] == section}


def kind_matches(kind: str, obj) -> bool:
    if kind == 'module': return inspect.ismodule(obj)
    if kind == 'class': return isinstance(obj, type)
    if kind == 'function': return callable(obj) and not isinstance(obj, type)
    if kind == 'typing alias': return type(obj).__module__ == 'typing' or obj is typing.Any or isinstance(obj, type)
    return not callable(obj)


def test_inventory_records_what_fastai_code_reads():
    rows = inventory()
    used = [r for r in rows if r['used_by'] != '-']
    assert len(used) == 141 and len(rows) == 424
    by_name = {r['name']: r for r in rows}
    assert by_name['listify']['origin'] == 'fastai.core' and 'callback' in by_name['listify']['used_by'].split(',')
    assert by_name['Rank0Tensor']['kind'] == 'typing alias'
    assert by_name['LearnerCallback']['section'] == 'v1'
    assert by_name['raiseValueError']['section'] == 'fastai-bug'


def test_every_generic_name_is_star_importable_with_its_kind():
    ns = star_namespace()
    generic = [r for r in inventory() if r['section'] == 'generic']
    missing = [r['name'] for r in generic if r['name'] not in ns]
    assert missing == []
    wrong_kind = [(r['name'], r['kind']) for r in generic if not kind_matches(r['kind'], ns[r['name']])]
    assert wrong_kind == []


def test_all_is_exactly_the_generic_inventory():
    assert len(v1imports.__all__) == len(set(v1imports.__all__))
    assert set(v1imports.__all__) == names_in('generic')
    assert not set(v1imports.__all__) & (names_in('v1') | names_in('not-provided') | names_in('out-of-scope'))


def read_cases() -> tuple:
    setups, cases = [], []
    for line in (GOLDEN / 'fa1_helpers.txt').read_text().splitlines():
        kind, *rest = line.split('\t')
        if kind == 'setup': setups.append(json.loads(rest[0]))
        elif kind == 'case': cases.append((json.loads(rest[0]), json.loads(rest[1])))
    return setups, cases


# Where trainlib answers differently on purpose: code -> trainlib's description.
DEVIATIONS = {
    # plain bools where fastai leaks numpy bools out of its equality helpers
    'recurse_eq([np.array([1, 2]), 3], [np.array([1, 2]), 3])': 'True',
    'recurse_eq([1, 2], [1, 3])': 'False',
    'ItemBase(3) == ItemBase(3)': 'True',
    # a Python float where fastai returns numpy.float64 (also a float)
    '(set_all_seed(1), uniform(0, 1), uniform_int(0, 10), uniform(0, 1, (2,)), uniform(2), rand_bool(1.), log_uniform(1, 1))':
        'tuple[None, 0.134364, 1, tensor[float32](2,)=[0.757632, 0.279311], 2.0, True, 1.0]',
}


def test_helpers_answer_like_fastai_1():
    setups, cases = read_cases()
    assert len(cases) > 200
    ns = star_namespace()
    for code in setups: exec(code, ns)
    wrong = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                  # the int32 upgrade warning, checked below
        for code, expected in cases:
            try: got = describe(eval(code, ns))
            except Exception as e: got = f'raises {type(e).__name__}'
            if got != DEVIATIONS.get(code, expected): wrong.append(f'{code}: got {got}, fastai {expected}')
    assert wrong == []


def test_int32_data_is_upgraded_with_a_warning():
    with pytest.warns(UserWarning, match='Tensor is int32: upgrading to int64'):
        assert v1imports.tensor(np.array([1], dtype=np.int32)).dtype is torch.int64


def test_listify_errors_name_the_mismatch():
    ns = star_namespace()
    with pytest.raises(ValueError, match='got 2 items where 3 were expected'): ns['listify']([1, 2], 3)
    with pytest.raises(ValueError, match='got 0 items where 2 were expected'): ns['listify'](None, 2)


def test_edge_cases_where_fastai_fails_work():
    ns = star_namespace()
    assert ns['even_mults'](1e-3, 1e-2, 1).tolist() == [1e-2]
    assert ns['func_args'](ns['partial'](lambda a, b, c: 0, 1)) == ('b', 'c')
    assert ns['to_device']([torch.ones(1), 3], 'cpu')[1] == 3
    assert ns['to_half']([torch.ones(1), 'label'])[1] == 'label'
    assert ns['set_bn_eval'](torch.nn.Sequential(torch.nn.BatchNorm1d(2, affine=False))) is None


def test_try_save_writes_to_path_and_to_a_stream(tmp_path):
    ns = star_namespace()
    ns['try_save']({'a': torch.ones(2)}, tmp_path, 'w.pth')
    assert torch.load(tmp_path / 'w.pth')['a'].tolist() == [1., 1.]
    buf = ns['BytesIO']()
    ns['try_save']({'b': 1}, file=buf)
    buf.seek(0)
    assert torch.load(buf) == {'b': 1}
    with pytest.raises(OSError, match="Can't write"): ns['try_save']({}, tmp_path / 'missing', 'x.pth')


def test_try_save_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    ns = star_namespace()
    ns['try_save']({'a': torch.ones(2)}, tmp_path, 'w.pth')
    good = (tmp_path / 'w.pth').read_bytes()

    def failing_save(obj, f, **kwargs):
        f.write(b'half a checkpoint')
        raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError, match='disk full'):
        ns['try_save']({'a': torch.zeros(2)}, tmp_path, 'w.pth')
    assert (tmp_path / 'w.pth').read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ['w.pth']


HEAVY = ('matplotlib', 'scipy', 'pandas', 'yaml', 'fastprogress')


def test_heavy_modules_are_stand_ins_until_first_use():
    ns = star_namespace()
    assert all(isinstance(ns[n], LazyModule) for n in ('plt', 'scipy', 'pd', 'yaml'))
    assert all(type(ns[n]).__name__ == '_LazyClassMeta' for n in ('master_bar', 'progress_bar', 'MasterBar', 'ProgressBar'))
    pkg = Path(v1imports.__file__).parent
    for f in ('imports.py', 'aliases.py', 'core.py', 'torch_core.py', 'lazy.py'):
        tree = ast.parse((pkg / f).read_text())
        mods = [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
        mods += [n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in mods if m.split('.')[0] in HEAVY], f


def test_lazy_stand_ins_say_what_is_missing():
    missing = LazyModule('no_such_package_xyz')
    with pytest.raises(ImportError, match='no_such_package_xyz is needed here but cannot be imported'): missing.thing
    od = lazy_class('collections', 'OrderedDict')
    assert isinstance(od(a=1), od) and issubclass(dict, od) is False and od(a=1)['a'] == 1


def load_corpus():
    spec = importlib.util.spec_from_file_location('fa1_style_callbacks', CORPUS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_corpus_reads_only_star_imported_names():
    top = symtable.symtable(CORPUS.read_text(), str(CORPUS), 'exec')
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used = set()

    def walk(t):
        used.update(s.get_name() for s in t.get_symbols() if s.is_referenced() and (s.is_global() or t is top))
        for c in t.get_children(): walk(c)
    walk(top)
    free = used - bound - set(dir(builtins))
    assert free and free <= set(v1imports.__all__)


def test_corpus_classes_define_and_their_annotations_resolve():
    c = load_corpus()
    assert all(hasattr(c, n) for n in c.__all__)
    hints = typing.get_type_hints(c.LossHistory.on_batch_end)
    assert hints['last_loss'] is v1imports.Rank0Tensor and hints['return'] is type(None)
    assert typing.get_type_hints(c.LossWarmup.on_backward_begin)['return'] == typing.Dict[str, typing.Any]
    assert typing.get_type_hints(c.LossHistory)['path'] == typing.Optional[v1imports.PathOrStr]


def corpus_golden() -> dict:
    lines = (GOLDEN / 'fa1_corpus_run.txt').read_text().splitlines()
    return {k: json.loads(v) for k, v in (l.split('\t') for l in lines if not l.startswith('#'))}


def test_corpus_helpers_match_the_fastai_run():
    c, gold = load_corpus(), corpus_golden()
    assert np.round(c.lr_groups(slice(1e-4, 1e-2), 3), 6).tolist() == gold['lr_groups(slice(1e-4, 1e-2), 3)']
    assert np.round(c.lr_groups(slice(None, 1e-2), 3), 6).tolist() == gold['lr_groups(slice(None, 1e-2), 3)']
    assert c.lr_groups(1e-3, 2).tolist() == gold['lr_groups(1e-3, 2)']
    net = c.TinyNet(2)
    assert [type(l).__name__ for l in c.freeze_first(net, 1)] == gold['freeze_first(TinyNet(2), 1)']
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]


def test_corpus_callbacks_save_their_history(tmp_path):
    c = load_corpus()
    hist = c.history_cb(path=tmp_path / 'runs' / 'losses.npy')
    hist.on_train_begin()
    for i, loss in enumerate([0.5, 0.4, 0.3]):
        hist.on_batch_end(last_loss=torch.tensor(loss), smooth_loss=torch.tensor(loss + 1), iteration=i, train=True)
    hist.on_batch_end(last_loss=torch.tensor(9.), iteration=3, train=False)
    hist.on_epoch_end(last_metrics=[np.float32(0.25), torch.tensor(0.9)])
    hist.on_epoch_end(last_metrics=[None])
    hist.on_train_end()
    assert hist.losses == pytest.approx([0.5, 0.3]) and hist.smooth == pytest.approx([1.5, 1.3])
    assert hist.val_losses == [0.25, None]
    assert np.load(tmp_path / 'runs' / 'losses.npy').tolist() == pytest.approx([0.5, 0.3])


def test_every_v1_name_fastai_code_expects_is_star_importable_from_trainlib_v1():
    "The 'v1' section of fa1_star_names.txt: what fastai-1 code gets from fastai's star imports beyond the generic names."
    ns = {}
    exec('from trainlib.v1 import *', ns)
    assert sorted(names_in('v1') - set(ns)) == []
