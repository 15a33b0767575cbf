"""What the codemod knows about the fastai-1 callback classes of a file, and the method being converted."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from .cst_util import base_names, body_lines, commented, docstring_count, has_own_return, insert_top, last_name, \
    source_of, statement
from .mapping import EVENTS

__all__ = ['ClassInfo', 'survey', 'class_facts', 'MethodCtx', 'InitCtx', 'finish_class', 'V1_BASES']

V1_BASES = frozenset(('Callback', 'LearnerCallback'))
"fastai-1's callback base classes."

_AFTER_RECORDER = "order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)"


@dataclass
class ClassInfo:
    "What the codemod knows about one fastai-1 callback class of the file."
    node: cst.ClassDef
    name: str
    bases: list[str]
    takes_learn: bool = False          # v1 __init__ receives the Learner (LearnerCallback, `learn` argument/field)
    events: set = field(default_factory=set)
    order_value: Any = None            # the `_order = ...` node, if any
    after_recorder: bool = False       # must run after the v2 Recorder (see mapping.StateRead.after_recorder)
    deferred: set = field(default_factory=set)      # flags checked later: 'stop_training', 'skip_validate'

    @property
    def before_train_eval(self) -> bool:
        "Its ``_order`` is a number below TrainEvalCallback's -10 (so it runs before train_iter is counted)."
        v = self.order_value
        neg = isinstance(v, cst.UnaryOperation) and isinstance(v.operator, cst.Minus)
        num = v.expression if neg else v
        if not isinstance(num, (cst.Integer, cst.Float)): return False
        return (-1 if neg else 1) * float(num.value) < -10

    @property
    def plain_base(self) -> bool:
        "Its bases are fastai-1's own Callback/LearnerCallback (whose event methods do nothing)."
        return all(last_name(b) in V1_BASES for b in self.bases)


def class_facts(node: cst.ClassDef) -> dict:
    "The v1 event methods of a class, its ``_order`` value, and whether it takes the Learner."
    events, order, learn_field, init_learn = set(), None, False, False
    for st in body_lines(node.body):
        if isinstance(st, cst.FunctionDef):
            if st.name.value in EVENTS: events.add(st.name.value)
            if st.name.value == '__init__':
                ps = st.params.params
                init_learn = len(ps) > 1 and ps[1].name.value == 'learn'
        elif isinstance(st, cst.SimpleStatementLine):
            for small in st.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1 \
                        and isinstance(small.targets[0].target, cst.Name) and small.targets[0].target.value == '_order':
                    order = small.value
                if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) \
                        and small.target.value == 'learn':
                    learn_field = True
    return dict(events=events, order=order, learn_field=learn_field, init_learn=init_learn)


def survey(module: cst.Module) -> dict[str, ClassInfo]:
    "The fastai-1 callback classes of ``module`` (by name), including subclasses of one another."
    classes = [st for st in module.body if isinstance(st, cst.ClassDef)]
    found: dict[str, ClassInfo] = {}
    changed = True
    while changed:
        changed = False
        for c in classes:
            name = c.name.value
            if name in found: continue
            bases, facts = base_names(c), class_facts(c)
            direct = any(last_name(b) in V1_BASES for b in bases) and (
                facts['events'] or facts['order'] is not None or facts['learn_field'] or facts['init_learn']
                or any(last_name(b) == 'LearnerCallback' for b in bases))
            parent = next((found[last_name(b)] for b in bases if last_name(b) in found), None)
            if not direct and parent is None: continue
            takes = (any(last_name(b) == 'LearnerCallback' for b in bases) or facts['learn_field'] or facts['init_learn']
                     or (parent is not None and parent.takes_learn))
            found[name] = ClassInfo(c, name, bases, takes_learn=takes, events=facts['events'],
                                    order_value=facts['order'])
            changed = True
    return found


# ---------------------------------------------------------------------------------------------- methods
@dataclass
class MethodCtx:
    "The v1 event method being converted."
    cls: ClassInfo
    func: cst.FunctionDef
    v1: str
    event: str
    depth: int
    bind: list = field(default_factory=list)        # (name, expression source) bound at the top
    access_key: dict = field(default_factory=dict)  # original access node -> the state key it reads, inline
    recorder_refs: set = field(default_factory=set)  # accesses whose value the v2 Recorder produces
    discarded: set = field(default_factory=set)      # nodes of statements left untouched


@dataclass
class InitCtx:
    "An ``__init__`` whose fastai-1 version received the Learner."
    cls: ClassInfo
    func: cst.FunctionDef
    learn_param: str | None
    depth: int



# ---------------------------------------------------------------------------------------------- class body
def finish_class(info: ClassInfo, body: list) -> tuple[list, set, list]:
    """The class body with its v2 ``order`` and the methods the deferred flags need:
    (body, trainlib.v2 names used, [(node, why)] left for a human)."""
    needed, whys = set(), []
    body = _order_line(info, body, needed, whys)
    body = _deferred_flags(info, body, needed, whys)
    return body, needed, whys


def _order_line(info: ClassInfo, body: list, needed: set, whys: list) -> list:
    "Run after the Recorder if the class stops the loop or reads the Recorder's values at after_batch/after_epoch."
    if not info.after_recorder: return body
    if info.order_value is None:
        needed.add('Recorder')
        i = docstring_count(body)
        rest = body[i:]
        if rest and isinstance(rest[0], cst.FunctionDef) and not rest[0].leading_lines:
            rest[0] = rest[0].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        return body[:i] + [statement(_AFTER_RECORDER)] + rest
    value = info.order_value
    if isinstance(value, (cst.Integer, cst.Float)) and float(value.value) > 50: return body
    why = (f'{info.name} stops the loop or reads the Recorder\'s values at after_batch/after_epoch: in trainlib.v2 '
           f'it must run after the Recorder (order > Recorder.order == 50)')
    whys.append((value, why))
    return [commented(st, why) if isinstance(st, cst.SimpleStatementLine) and isinstance(st.body[0], cst.Assign)
            and source_of(st.body[0].targets[0].target).strip() == 'order' else st for st in body]


def _method(src: str) -> cst.FunctionDef:
    return statement(src).with_changes(leading_lines=[cst.EmptyLine(indent=False)])


def _with_method(body: list, name: str, top: list) -> list:
    "``top`` statements first in method ``name`` (a new method if the class has none)."
    for i, st in enumerate(body):
        if isinstance(st, cst.FunctionDef) and st.name.value == name:
            return body[:i] + [st.with_changes(body=insert_top(st.body, top))] + body[i + 1:]
    return body + [_method(f'def {name}(self):\n    pass\n').with_changes(body=cst.IndentedBlock(body=top))]


def _deferred_flags(info: ClassInfo, body: list, needed: set, whys: list) -> list:
    """fastai 1 reads skip_validate before validating and stop_training after on_epoch_end: flags set
    elsewhere become attributes, reset in before_fit and checked in before_validate/after_epoch."""
    flags = sorted(info.deferred)
    if not flags: return body
    body = _with_method(body, 'before_fit', [statement(' = '.join(f'self._{f}' for f in flags) + ' = False')])
    if 'skip_validate' in flags:
        needed.add('CancelValidException')
        body = body + [_method('def before_validate(self):\n    if self._skip_validate: raise CancelValidException()\n')]
    if 'stop_training' not in flags: return body
    needed.add('CancelFitException')
    check = 'if self._stop_training: raise CancelFitException()'
    epoch = next((st for st in body if isinstance(st, cst.FunctionDef) and st.name.value == 'after_epoch'), None)
    if epoch is None: return body + [_method(f'def after_epoch(self):\n    {check}\n')]
    if has_own_return(epoch):
        why = (f'{info.name}: fastai 1 stops the fit at the end of the epoch in which stop_training was set; '
               f'add `{check}` at every exit of after_epoch')
        whys.append((info.node, why))
        return [commented(st, why) if st is epoch else st for st in body]
    lines = [*body_lines(epoch.body), statement(check)]
    new = epoch.with_changes(body=epoch.body.with_changes(body=lines) if isinstance(epoch.body, cst.IndentedBlock)
                             else cst.IndentedBlock(body=lines))
    return [new if st is epoch else st for st in body]
