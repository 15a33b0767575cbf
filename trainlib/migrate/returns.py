"""What a fastai-1 callback's return value becomes in trainlib.v2: assignments to ``self.learn`` and raises.

fastai >= 1.0.47 reads a dict of state updates (``{'last_input': x, 'stop_training': True}``);
fastai <= 1.0.46 read a positional value whose meaning depends on the event (the new
``(input, target)``, output or loss; a truthy flag). Both become the same v2 code. Functions here
are pure: they take the (original and already rewritten) return value and give a :class:`Plan`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
from libcst.helpers import get_full_name_for_node

from .cst_util import RUNTIME, embeddable, last_name, literal, source_of, string_value
from .mapping import EVENTS, FLAG_KEYS, LEGACY_RETURN

__all__ = ['Plan', 'METRIC_WHY', 'return_updates', 'plan_updates']

METRIC_WHY = ('adds a column to last_metrics: in trainlib.v2 compute it in a Metric (or a ValueMetric reading this '
              'callback) passed in Learner(metrics=...)')
"Why a callback that adds a metric column is left for a human."

_TARGETS = {'last_input': ('before_batch', 'self.learn.xb'), 'last_target': ('before_batch', 'self.learn.yb'),
            'last_output': ('after_pred', 'self.learn.pred'), 'last_loss': ('before_backward', 'self.learn.loss_grad')}
_V1_OF = {v2: v1 for v1, v2 in EVENTS.items()}


@dataclass
class Plan:
    "The v2 statements (sources) that replace a return, and what they need from the class and the module."
    stmts: list = field(default_factory=list)
    stops: bool = False                            # the statements always raise: no `return` after them
    needed: set = field(default_factory=set)       # trainlib.v2 names they use
    deferred: set = field(default_factory=set)     # flags checked in another event ('skip_validate', 'stop_training')
    after_recorder: bool = False                   # they must run after the v2 Recorder


def return_updates(event: str, ov: cst.BaseExpression, uv: cst.BaseExpression) -> tuple:
    """``([(key, original value, rewritten value)], None)`` for a return in ``event``; ``(None, None)`` when
    fastai ignored the value there; ``(None, why)`` when it cannot be read."""
    if isinstance(ov, cst.Dict):
        if not all(isinstance(e, cst.DictElement) and string_value(e.key) is not None for e in ov.elements):
            return None, 'returns a dict whose keys are not all string literals: write one return per state key'
        return [(string_value(o.key), o.value, u.value) for o, u in zip(ov.elements, uv.elements)], None
    if isinstance(ov, cst.Call) and source_of(ov.func) == 'dict' and all(a.keyword for a in ov.args):
        return [(o.keyword.value, o.value, u.value) for o, u in zip(ov.args, uv.args)], None
    if isinstance(ov, cst.Call) and last_name(get_full_name_for_node(ov.func) or '') == 'add_metrics':
        return None, METRIC_WHY
    key = LEGACY_RETURN.get(event)
    if key is None:
        if isinstance(ov, (cst.BaseString, cst.Integer, cst.Float)) or literal(ov) is not RUNTIME: return None, None
        example = " (e.g. {'epoch': k} to resume)" if event == 'before_fit' else ''
        return None, (f'returns `{source_of(ov).strip()}` from {_V1_OF[event]}: fastai >= 1.0.47 reads a dict of state '
                      f'updates there{example}, fastai <= 1.0.46 ignored it')
    if key != 'inputs': return [(key, ov, uv)], None
    if isinstance(ov, (cst.Tuple, cst.List)) and len(ov.elements) == 2 and not any(
            isinstance(e, cst.StarredElement) for e in ov.elements):
        return [('last_input', ov.elements[0].value, uv.elements[0].value),
                ('last_target', ov.elements[1].value, uv.elements[1].value)], None
    return [('unpack', ov, uv)], None


def _batch_value(o: cst.BaseExpression, u: cst.BaseExpression) -> str:
    "The tuple ``learn.xb``/``learn.yb`` takes for a v1 input/target (a list or tuple literal: several of them)."
    if isinstance(o, (cst.Tuple, cst.List)) and isinstance(u, (cst.Tuple, cst.List)):
        return f'({", ".join(embeddable(e.value) for e in u.elements)}{"," if len(u.elements) == 1 else ""})'
    return f'({embeddable(u)},)'


def _deferred(key: str, event: str) -> bool:
    "A flag fastai 1 reads at another event than ``event``: it becomes an attribute checked there."
    return key == 'skip_validate' or (key == 'stop_training' and event != 'after_epoch')


def plan_updates(event: str, updates: list, unchanged: dict) -> Plan | str:
    """The plan for the state updates of one return in ``event`` (the TODO reason if there is none).
    ``unchanged`` maps the nodes that read a state key unchanged to that key (handing it back is a no-op).

    All the values are computed in one assignment, in the order of the return (a flag computed from the
    loss sees the loss before it is replaced, as in fastai); then the exception is raised."""
    plan, items, raising = Plan(), [], {}          # items: (target, value source or None for a raising flag)
    for key, o, u in updates:
        if key == 'unpack':
            plan.stmts.append(f'last_input, last_target = {source_of(u).strip()}')
            items += [('self.learn.xb', '(last_input,)'), ('self.learn.yb', '(last_target,)')]
        elif key in _TARGETS:
            at, target = _TARGETS[key]
            if event != at: return f'returns `{key}` from {_V1_OF[event]}: fastai 1 only uses it from {_V1_OF[at]}'
            if unchanged.get(o) == key: continue
            items.append((target, _batch_value(o, u) if key in ('last_input', 'last_target') else embeddable(u)))
        elif key in FLAG_KEYS and _deferred(key, event):
            plan.deferred.add(key)
            plan.after_recorder |= key == 'stop_training'
            items.append((f'self._{key}', embeddable(u)))
        elif key in FLAG_KEYS:
            raising[key] = u
            items.append((key, None))
        elif key == 'last_metrics': return METRIC_WHY
        else: return f'returns `{key}`: trainlib.v2 has no loop state a callback sets for it (see MIGRATION.md)'
    exc = _exception(event, raising) if raising else None
    if raising and exc is None:
        return (f'returns {", ".join(sorted(raising))} from {_V1_OF[event]}: fastai 1 acts on '
                f'{"these flags" if len(raising) > 1 else "this flag"} at another point of the loop, and no '
                f'trainlib.v2 Cancel exception raised here does the same')
    local = next(iter(raising), None)
    cond = raising.get(local)
    if cond is not None and literal(cond) is RUNTIME and any(v is not None for _, v in items):
        # computed in the same assignment, in the order of the return: it sees the state before it is replaced
        items = [(t, embeddable(cond) if t == local else v) for t, v in items]
        cond = cst.Name(local)
    items = [(t, v) for t, v in items if v is not None]
    if any(not t.startswith('self._') for t, _ in items):       # state or a local: one assignment, in order
        plan.stmts.append(f'{", ".join(t for t, _ in items)} = {", ".join(v for _, v in items)}')
    else: plan.stmts += [f'{t} = {v}' for t, v in items]          # only flags for later events
    if exc is not None:
        plan.after_recorder |= event in ('after_batch', 'after_epoch')
        plan.needed.update(n for n in exc.replace('(', ' ').replace(')', ' ').split() if n.startswith('Cancel'))
        _add_raise(plan, exc, cond)
    return plan


def _exception(event: str, flags: dict) -> str | None:
    "The exception that does what ``flags`` did when returned from ``event`` (None: there is none)."
    keys = frozenset(flags)
    if keys == {'skip_step', 'skip_zero'}:
        # skip the step and keep the gradients: CancelBatchException skips opt.step() and zero_grad
        same = source_of(flags['skip_step']).strip() == source_of(flags['skip_zero']).strip()
        return 'CancelBatchException()' if event == 'before_step' and same else None
    return {('stop_training', 'after_epoch'): 'CancelFitException()',
            ('stop_epoch', 'after_batch'): 'CancelTrainException() if self.learn.training else CancelValidException()',
            ('skip_bwd', 'before_backward'): 'CancelBackwardException()',
            ('skip_step', 'before_step'): 'CancelStepException()',
            ('skip_zero', 'after_step'): 'CancelBatchException()',   # after the step, CancelBatch skips zero_grad
            }.get((next(iter(keys)), event)) if len(keys) == 1 else None


def _add_raise(plan: Plan, exc: str, value: cst.BaseExpression) -> None:
    "``raise exc`` when ``value`` is true (always for ``True``, never for ``False``/``None``)."
    c = literal(value)
    if c is True:
        plan.stmts.append(f'raise {exc}')
        plan.stops = True
    elif c not in (False, None):
        line = f'if {embeddable(value)}: raise {exc}'
        plan.stmts.append(line if len(line) <= 100 else f'if {embeddable(value)}:\n    raise {exc}')
