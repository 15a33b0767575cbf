"""``trainlib.migrate``: fastai-1 callbacks in, trainlib.v2 callbacks out.

The golden files (tests/migrate/expected/, reviewed by hand) are the specification of the output for
the corpus (tests/migrate/corpus/: realistic fastai-1 user callbacks, both return styles). The small
sources below pin the rules one construct at a time; the CLI tests check the modes and exit codes.
"""
import difflib
import importlib
import runpy
import sys
import textwrap
from pathlib import Path

import pytest

from trainlib.migrate import migrate_source
from trainlib.migrate.__main__ import main
from trainlib.migrate.mapping import TODO_TAG

HERE = Path(__file__).parent
CORPUS, EXPECTED = HERE / 'corpus', HERE / 'expected'
NAMES = sorted(p.stem for p in CORPUS.glob('*.py'))


def migrate(src: str):
    "Migrate a dedented snippet."
    return migrate_source(textwrap.dedent(src).lstrip('\n'), 'snippet.py')


def code_of(src: str) -> str:
    m = migrate(src)
    assert m.todos == [], m.todos
    return m.code


# ------------------------------------------------------------------------------------------ the corpus
def test_the_corpus_is_big_enough_and_every_file_has_its_golden_output():
    assert len(NAMES) >= 15
    assert NAMES == sorted(p.stem for p in EXPECTED.glob('*.py'))


@pytest.mark.parametrize('name', NAMES)
def test_corpus_file_migrates_to_its_golden_output(name, migrated):
    assert migrated(name).code == (EXPECTED / f'{name}.py').read_text()


@pytest.mark.parametrize('name', NAMES)
def test_migrating_twice_changes_nothing(name):
    expected = (EXPECTED / f'{name}.py').read_text()
    again = migrate_source(expected, f'{name}.py')
    assert again.code == expected and again.todos == []


def test_the_corpus_covers_every_v1_event_and_both_return_styles():
    corpus = ''.join((CORPUS / f'{n}.py').read_text() for n in NAMES)
    for event in ('on_train_begin', 'on_epoch_begin', 'on_batch_begin', 'on_loss_begin', 'on_backward_begin',
                  'on_backward_end', 'on_step_end', 'on_batch_end', 'on_epoch_end', 'on_train_end'):
        assert f'def {event}(' in corpus, event
    for key in ('last_input', 'last_output', 'last_loss', 'skip_step', 'skip_zero', 'skip_bwd', 'stop_epoch',
                'stop_training', 'skip_validate'):
        assert f"'{key}':" in corpus, key                                       # 1.0.47+ dict returns
    assert 'return new_input, new_target' in corpus and 'return last_output * 1.5' in corpus   # <= 1.0.46


def test_report_lists_every_untranslated_construct_with_file_line_and_why(migrated):
    todos = {n: migrated(n).todos for n in NAMES}
    assert {n for n, t in todos.items() if t} == {'epoch_reporter', 'metric_adder'}
    assert [(t.line, t.why.split(':')[0]) for t in todos['epoch_reporter']] == [
        (10, 'uses the Learner in __init__'), (12, 'fastai 1 calls jump_to_epoch when a fit resumes; trainlib.v2 '
                                                   'resumes with fit(start_epoch=...)'),
        (16, "uses **kwargs other than kwargs['key'] / kwargs.get('key')"), (19, "fastai 1's master progress bar"),
        (20, "the v1 Recorder's val_losses")]
    assert [(t.line, t.why.split(':')[0]) for t in todos['metric_adder']] == [
        (2, "add_metrics came from fastai's star import"), (12, 'adds a column to the v1 Recorder'),
        (22, 'adds a column to last_metrics')]
    assert str(todos['metric_adder'][2]).startswith('metric_adder.py:22: adds a column to last_metrics: in trainlib.v2')
    for n in ('epoch_reporter', 'metric_adder'):
        code = (EXPECTED / f'{n}.py').read_text()
        assert code.count(TODO_TAG) == len(todos[n])


def test_untranslated_code_is_left_as_it_was():
    code = (EXPECTED / 'metric_adder.py').read_text()
    assert '        return add_metrics(last_metrics, self.max_err)\n' in code
    assert "        self.learn.recorder.add_metric_names(['max_abs_err'])\n" in code


# ------------------------------------------------------------------------------------------ the rules
def test_state_arguments_become_learner_attributes_per_event():
    code = code_of('''
        class C(Callback):
            def on_batch_end(self, last_loss, iteration, num_batch, epoch, **kwargs): self.seen = (last_loss, num_batch, epoch)
            def on_backward_begin(self, last_loss, **kwargs): self.l = last_loss
            def on_train_end(self, epoch, exception, **kwargs): self.done = (epoch, exception)
        ''')
    assert 'self.seen = (self.learn.loss, self.learn.iter, self.learn.epoch)' in code
    assert 'self.l = self.learn.loss_grad' in code
    assert '    def after_fit(self):\n        epoch = self.learn.epoch + 1\n' in code
    assert 'self.done = (epoch, self.learn.exception)' in code


def test_a_reassigned_argument_is_bound_once_at_the_top():
    code = code_of('''
        class C(Callback):
            def on_loss_begin(self, last_output, **kwargs):
                "Clamp."
                last_output = last_output.clamp(-1, 1)
                return {'last_output': last_output}
        ''')
    assert code.endswith('    def after_pred(self):\n        "Clamp."\n        last_output = self.learn.pred\n'
                         '        last_output = last_output.clamp(-1, 1)\n        self.learn.pred = last_output\n')


def test_iteration_at_after_batch_is_the_batch_just_done():
    code = code_of('''
        class C(Callback):
            def on_batch_end(self, iteration, **kwargs): self.its.append(iteration)
        ''')
    assert 'iteration = self.learn.train_iter - 1 if self.learn.training else self.learn.train_iter\n' in code
    code = code_of('''
        class Early(Callback):
            _order = -20
            def on_batch_end(self, iteration, **kwargs): self.its.append(iteration)
        ''')
    assert 'def after_batch(self): self.its.append(self.learn.train_iter)' in code    # before TrainEvalCallback


def test_a_return_before_the_end_keeps_its_control_flow():
    code = code_of('''
        class C(Callback):
            def on_loss_begin(self, last_output, train, **kwargs):
                if train: return {'last_output': last_output * 2}
                self.valid_calls += 1
        ''')
    assert ('        if self.learn.training:\n            self.learn.pred = self.learn.pred * 2\n            return\n'
            '        self.valid_calls += 1\n') in code


def test_the_method_keeps_no_useless_return_but_loops_keep_theirs():
    code = code_of('''
        class C(Callback):
            def on_batch_end(self, last_loss, **kwargs):
                for cb in self.others:
                    if cb.stop: return {'stop_epoch': True}
                if last_loss > 3: return {'stop_epoch': self.hard}
                else: return {'stop_epoch': False}
        ''')
    assert ('        for cb in self.others:\n'
            '            if cb.stop: raise CancelTrainException() if self.learn.training else CancelValidException()\n'
            '        if self.learn.loss > 3:\n'
            '            if self.hard: raise CancelTrainException() if self.learn.training else CancelValidException()\n'
            '        else: pass\n') in code


def test_a_flag_computed_from_the_state_sees_it_before_the_return_replaces_it():
    code = code_of('''
        class C(Callback):
            def on_backward_begin(self, last_loss, **kwargs):
                return {'last_loss': last_loss * 2, 'skip_bwd': last_loss > 10}
        ''')
    assert ('        self.learn.loss_grad, skip_bwd = self.learn.loss_grad * 2, self.learn.loss_grad > 10\n'
            '        if skip_bwd: raise CancelBackwardException()\n') in code


def test_returns_whose_meaning_is_unknown_are_reported():
    m = migrate('''
        class C(Callback):
            def on_train_begin(self, **kwargs):
                res = {'epoch': self.start} if self.start else None
                return res
            def on_batch_begin(self, last_input, **kwargs):
                out = dict(last_input=last_input * 2)
                return out
            def on_epoch_begin(self, **kwargs): return 'ignored'
        ''')
    assert [(t.line, t.why) for t in m.todos] == [
        (4, "returns `res` from on_train_begin: fastai >= 1.0.47 reads a dict of state updates there (e.g. "
            "{'epoch': k} to resume), fastai <= 1.0.46 ignored it"),
        (7, 'returns `out`, a dict built earlier: return the dict literal itself so that its keys can be translated')]
    assert '        return res\n' in m.code and 'before_epoch' not in m.code      # nothing left to do there


def test_learner_attributes_copied_on_the_callback_and_calls_of_v1_events():
    m = migrate('''
        class C(LearnerCallback):
            def on_train_begin(self, **kwargs):
                self.opt = self.learn.opt
                self.on_epoch_begin(epoch=0)
        ''')
    assert 'self.opt =' not in m.code and m.code.endswith('\n        self.on_epoch_begin(epoch=0)\n')
    assert [(t.line, t.why.split(' (')[0]) for t in m.todos] == [
        (4, 'calls the fastai-1 event method on_epoch_begin, now before_epoch')]


def test_the_learner_used_while_the_callback_is_built_is_reported():
    m = migrate('''
        from dataclasses import dataclass
        class A(LearnerCallback):
            def __init__(self, learn, name='h'):
                super().__init__(learn)
                self.file = self.learn.path/name
        @dataclass
        class B(LearnerCallback):
            learn: Learner
            def __post_init__(self):
                super().__init__(self.learn)
                self.model_name = self.learn.model.__class__.__name__
        ''')
    assert [t.line for t in m.todos] == [5, 11] and all('uses the Learner in __init__' in t.why for t in m.todos)
    assert "    def __init__(self, name='h'):\n        super().__init__()\n" in m.code
    assert '    def __post_init__(self):\n        super().__init__()\n' in m.code and 'learn: Learner' not in m.code


def test_legacy_input_returns_that_are_not_tuple_literals_are_unpacked():
    code = code_of('''
        class C(Callback):
            def on_batch_begin(self, last_input, last_target, **kwargs):
                return self.transform(last_input, last_target)
        ''')
    assert ('        last_input, last_target = self.transform(self.learn.x, self.learn.y)\n'
            '        self.learn.xb, self.learn.yb = (last_input,), (last_target,)\n') in code


def test_several_inputs_and_dict_calls():
    code = code_of('''
        class C(Callback):
            def on_batch_begin(self, last_input, **kwargs): return dict(last_input=[last_input, last_input * 2])
        ''')
    assert 'def before_batch(self): self.learn.xb = (self.learn.x, self.learn.x * 2)' in code


def test_flags_become_exceptions_where_fastai_read_them():
    code = code_of('''
        class C(Callback):
            def on_backward_begin(self, **kwargs): return {'skip_bwd': self.skip}
            def on_backward_end(self, **kwargs): return {'skip_step': True}
            def on_step_end(self, **kwargs): return {'skip_zero': self.keep}
            def on_batch_end(self, **kwargs): return {'stop_epoch': self.stop}
            def on_epoch_end(self, **kwargs): return {'stop_training': self.done}
        ''')
    for line in ('def before_backward(self):\n        if self.skip: raise CancelBackwardException()',
                 'def before_step(self): raise CancelStepException()',
                 'def after_step(self):\n        if self.keep: raise CancelBatchException()',
                 'def after_batch(self):\n        if self.stop: raise CancelTrainException() if self.learn.training '
                 'else CancelValidException()',
                 'def after_epoch(self):\n        if self.done: raise CancelFitException()',
                 'order = Recorder.order + 1'):
        assert line in code, line


def test_stop_training_before_the_epoch_end_is_checked_after_it():
    code = code_of('''
        class C(Callback):
            def on_batch_end(self, **kwargs): return {'stop_training': True}
            def on_epoch_end(self, **kwargs): self.epochs += 1
        ''')
    assert ('    def after_epoch(self): \n' not in code and
            '    def after_epoch(self):\n        self.epochs += 1\n        if self._stop_training: raise '
            'CancelFitException()\n') in code
    assert '    def before_fit(self):\n        self._stop_training = False\n' in code


def test_flags_fastai_reads_elsewhere_are_left_with_a_todo():
    m = migrate('''
        class C(Callback):
            def on_batch_begin(self, **kwargs): return {'stop_epoch': True}
            def on_backward_end(self, **kwargs): return {'skip_zero': True}
            def on_backward_begin(self, smooth_loss, **kwargs): self.s = smooth_loss
        ''')
    assert [t.line for t in m.todos] == [2, 3, 4]
    assert 'returns stop_epoch from on_batch_begin' in m.todos[0].why
    assert 'returns skip_zero from on_backward_end' in m.todos[1].why
    assert 'smooth_loss' in m.todos[2].why
    assert "    def before_batch(self): return {'stop_epoch': True}" in m.code


def test_explicit_order_below_the_recorder_is_reported():
    m = migrate('''
        class Early(Callback):
            _order = 5
            def on_epoch_end(self, **kwargs): return {'stop_training': True}
        class Late(Callback):
            _order = 70
            def on_epoch_end(self, **kwargs): return {'stop_training': True}
        ''')
    assert [(t.line, t.why.split(':')[0]) for t in m.todos] == [
        (2, 'Early stops the loop or reads the Recorder\'s values at after_batch/after_epoch')]
    assert '    order = 70\n' in m.code


def test_super_calls_of_fastai_bases_go_and_those_of_converted_bases_follow():
    code = code_of('''
        class Base(LearnerCallback):
            def on_epoch_end(self, **kwargs):
                super().on_epoch_end(**kwargs)
                self.n += 1
        class Child(Base):
            def __init__(self, learn, k):
                super().__init__(learn)
                self.k = k
            def on_epoch_end(self, **kwargs): return super().on_epoch_end(**kwargs)
        ''')
    assert '    def after_epoch(self):\n        self.n += 1\n' in code
    assert '    def __init__(self, k):\n        super().__init__()\n' in code
    assert '    def after_epoch(self): super().after_epoch()\n' in code


def test_optimizer_hyper_parameters():
    code = code_of('''
        class C(LearnerCallback):
            def on_batch_begin(self, **kwargs):
                self.learn.opt.lr = self.learn.opt.lr * 0.5
                self.opt.mom -= 0.01
                self.b = self.opt.beta
        ''')
    assert "self.learn.opt.set_hyper('lr', self.learn.opt.get_hyper('lr') * 0.5)" in code
    assert "self.opt.set_hyper('mom', self.opt.get_hyper('mom') - 0.01)" in code
    assert "self.b = self.opt.get_hyper('sqr_mom')" in code


def test_learner_calls_callback_fns_and_callbacks():
    code = code_of('''
        from functools import partial
        from fastai.basic_train import *
        class Clip(LearnerCallback):
            def __init__(self, learn, clip=1.): super().__init__(learn); self.clip = clip
            def on_backward_end(self, **kwargs): pass
        def train(data, model, other):
            learn = Learner(data, model, callbacks=[other], callback_fns=[partial(Clip, clip=0.1), Clip])
            learn.callbacks.append(Clip(learn, clip=2.))
            learn.callback_fns.append(partial(Clip, clip=3.))
            learn.fit(1, 1e-3, callbacks=[Clip(learn)])
        ''')
    assert 'learn = Learner(data, model, cbs=[other, Clip(clip=0.1), Clip()])' in code
    assert ('    learn.add_cb(Clip(clip=2.))\n    learn.add_cb(Clip(clip=3.))\n'
            '    learn.fit(1, 1e-3, cbs=[Clip()])') in code
    assert '    def __init__(self, clip=1.): super().__init__(); self.clip = clip\n' in code


def test_callback_fns_of_other_classes_are_reported():
    m = migrate('''
        from fastai.basic_train import *
        def train(data, model): return Learner(data, model, callback_fns=[ShowGraph])
        ''')
    assert [(t.line, t.why.split(':')[0]) for t in m.todos] == [
        (1, "ShowGraph came from fastai's star import"), (2, 'callback_fns')]
    assert 'callback_fns=[ShowGraph]' in m.code


def test_imports():
    m = migrate('''
        from fastai.callback import Callback, LearnerCallback
        from fastai.basic_data import DataBunch, DatasetType
        from fastai.vision import *
        import fastai.basic_train
        class C(LearnerCallback):
            def on_epoch_end(self, **kwargs): return {'stop_training': True}
        ''')
    assert m.code.startswith(
        'from trainlib.v2 import Callback, CancelFitException, Recorder\n'
        '# TODO(trainlib.migrate): DataBunch, DatasetType from fastai.basic_data: not in trainlib.v2\n'
        'from fastai.basic_data import DataBunch, DatasetType\n'
        '# TODO(trainlib.migrate): fastai.vision: trainlib has no counterpart of this fastai module\n'
        'from fastai.vision import *\n'
        '# TODO(trainlib.migrate): imports a fastai module: use `from trainlib.v2 import *`\n'
        'import fastai.basic_train\n')
    assert [t.line for t in m.todos] == [2, 3, 4]


def test_names_the_code_needs_are_imported_when_there_is_no_fastai_import():
    code = code_of('''
        """A module."""
        import torch
        class C(Callback):
            def on_backward_end(self, **kwargs): return {'skip_step': True}
        ''')
    assert code.startswith('"""A module."""\nimport torch\nfrom trainlib.v2 import CancelStepException\n')


def test_classes_deriving_from_other_fastai_classes_are_reported():
    m = migrate('''
        from fastai.callbacks.tracker import TrackerCallback
        class Saver(TrackerCallback):
            def on_epoch_end(self, epoch, **kwargs): self.learn.save(f'e{epoch}')
        ''')
    assert [t.line for t in m.todos] == [2] and 'derives from TrackerCallback' in m.todos[0].why
    assert 'def on_epoch_end(self, epoch, **kwargs)' in m.code


def test_code_without_fastai_callbacks_is_untouched():
    src = 'import torch\n\nclass Net(torch.nn.Module):\n    def on_batch_end(self): pass  # not a callback\n'
    m = migrate_source(src)
    assert m.code == src and m.todos == []


def test_invalid_python_is_a_syntax_error_naming_the_file():
    with pytest.raises(SyntaxError, match='bad.py: not valid Python'): migrate_source('def (:\n', 'bad.py')


def test_a_missing_libcst_is_a_clear_import_error_and_exit_code_2(monkeypatch, tmp_path, capsys):
    import trainlib
    monkeypatch.setattr(trainlib, 'migrate', trainlib.migrate)         # put back after the test
    for mod in [m for m in sys.modules if m.split('.')[0] == 'libcst' or m.startswith('trainlib.migrate')]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, 'libcst', None)
    fresh = importlib.import_module('trainlib.migrate')
    with pytest.raises(ImportError, match=r"needs libcst.*pip install 'trainlib\[migrate\]'"):
        fresh.migrate_source('x = 1\n')
    (tmp_path / 'x.py').write_text('x = 1\n')
    assert importlib.import_module('trainlib.migrate.__main__').main([str(tmp_path / 'x.py')]) == 2
    assert 'needs libcst' in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the CLI
@pytest.fixture
def files(tmp_path):
    "A v1 callback file, an already migrated one, both in a package directory."
    pkg = tmp_path / 'pkg' / 'sub'
    pkg.mkdir(parents=True)
    v1 = pkg / 'noise.py'
    v1.write_text((CORPUS / 'input_noise.py').read_text())
    done = tmp_path / 'pkg' / 'done.py'
    done.write_text((EXPECTED / 'input_noise.py').read_text())
    return v1, done


def test_cli_default_is_a_unified_diff_and_changes_nothing(files, capsys):
    v1, done = files
    before = v1.read_text()
    assert main([str(v1), str(done)]) == 0
    out, err = capsys.readouterr()
    expected = ''.join(difflib.unified_diff(before.splitlines(True), (EXPECTED / 'input_noise.py').read_text()
                                            .splitlines(True), f'a/{v1}', f'b/{v1}'))
    assert out == expected and v1.read_text() == before
    assert err == 'trainlib.migrate: 1 of 2 file(s) would change\n'


def test_cli_write_rewrites_in_place_and_check_then_passes(files, capsys):
    v1, _ = files
    assert main(['--check', str(v1.parent.parent)]) == 1
    assert v1.read_text() == (CORPUS / 'input_noise.py').read_text()
    assert main(['--write', str(v1.parent.parent)]) == 0
    assert v1.read_text() == (EXPECTED / 'input_noise.py').read_text()
    capsys.readouterr()
    assert main(['--check', str(v1.parent.parent)]) == 0
    assert capsys.readouterr() == ('', 'trainlib.migrate: 0 of 2 file(s) would change\n')


def test_cli_reports_untranslated_constructs_on_stderr(tmp_path, capsys):
    f = tmp_path / 'metric_adder.py'
    f.write_text((CORPUS / 'metric_adder.py').read_text())
    assert main(['--write', str(f)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{f}:2: add_metrics came from fastai's star import: trainlib.v2 does not provide it"
    assert [line.split(': ')[0] for line in err[:3]] == [f'{f}:2', f'{f}:12', f'{f}:22']
    assert err[3] == ('trainlib.migrate: 1 of 1 file(s) rewritten; 3 construct(s) left for you '
                      '(marked `TODO(trainlib.migrate)`)')


@pytest.mark.parametrize('content, words', [(None, 'no such file or directory'),
                                            ('def (:\n', 'not valid Python')])
def test_cli_bad_input_exits_2_naming_the_file(tmp_path, capsys, content, words):
    f = tmp_path / 'x.py'
    if content is not None: f.write_text(content)
    assert main(['--check', str(f)]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and words in err


def test_cli_modes_are_exclusive(capsys):
    with pytest.raises(SystemExit) as e: main(['--write', '--check', 'x.py'])
    assert e.value.code == 2


def test_python_dash_m_runs_the_cli(files, monkeypatch, capsys):
    v1, _ = files
    monkeypatch.setattr(sys, 'argv', ['trainlib.migrate', '--check', str(v1)])
    monkeypatch.delitem(sys.modules, 'trainlib.migrate.__main__')
    with pytest.raises(SystemExit) as e: runpy.run_module('trainlib.migrate', run_name='__main__')
    assert e.value.code == 1
