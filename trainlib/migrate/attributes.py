"""Rewrites of fastai-1 attributes inside callback classes: the DataBunch, the optimizer's hyper-parameters,
``learn.callbacks`` and the v1 Recorder's own fields."""
from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider

from .cst_util import embeddable, source_of, statement
from .mapping import OPT_HYPERS

__all__ = ['AttributeRewrites', 'opt_assignment']

_DATA_ATTRS = {'train_dl': 'train', 'valid_dl': 'valid', 'train_ds': 'train_ds', 'valid_ds': 'valid_ds',
               'path': 'path', 'device': 'device'}
_RECORDER_V1_ONLY = {
    'val_losses': "the v1 Recorder's val_losses: trainlib.v2 keeps `[row[1] for row in self.learn.recorder.values]`",
    'nb_batches': "the v1 Recorder's nb_batches has no trainlib.v2 counterpart (recorder.iters counts batches so far)",
    'metrics': "the v1 Recorder's metrics: trainlib.v2 keeps them in `self.learn.recorder.values` rows",
    'add_metric_names': 'adds a column to the v1 Recorder: in trainlib.v2 compute it in a Metric (or a ValueMetric) '
                        'passed in Learner(metrics=...)',
    'names': "the v1 Recorder's names: trainlib.v2 has `self.learn.recorder.metric_names`",
    'moms': "the v1 Recorder's moms: trainlib.v2 records no momentum",
}


class AttributeRewrites:
    "Mixin of the migrator (``self.todo``, ``self.data_nodes``, ``self.in_callback()`` come from it)."

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        "``self.learn.data`` -> ``self.learn.dls``, ``opt.lr`` -> ``opt.get_hyper('lr')``, v1-only fields reported."
        info = self.in_callback()
        if info is None: return updated
        attr, owner = original.attr.value, source_of(original.value).strip()
        if owner == 'self.learn' or (owner == 'self' and info.takes_learn):   # LearnerCallback forwards to learn
            if attr == 'data':
                self.data_nodes.add(original)
                return cst.parse_expression('self.learn.dls')
            if attr == 'callbacks': return cst.parse_expression('self.learn.cbs')
        if original.value in self.data_nodes:
            if attr in _DATA_ATTRS: return updated.with_changes(attr=cst.Name(_DATA_ATTRS[attr]))
            self.todo(original, f"DataBunch.{attr}: trainlib.v2's DataLoaders has no `{attr}`")
            return original
        if owner.endswith('recorder') and attr in _RECORDER_V1_ONLY:
            self.todo(original, _RECORDER_V1_ONLY[attr])
            return updated
        if _is_opt_hyper(original):
            store = self._store_statement(original)
            if store is None:
                q = self._quote(original)
                return cst.parse_expression(f"{source_of(updated.value).strip()}.get_hyper({q}{OPT_HYPERS[attr]}{q})")
            if opt_assignment(store) is None:
                self.todo(original, f'assigns the OptimWrapper property `{attr}` where the codemod cannot write '
                                    f"`opt.set_hyper('{OPT_HYPERS[attr]}', value)` for it")
        return updated

    def _store_statement(self, node: cst.CSTNode) -> cst.CSTNode | None:
        "The statement that assigns to ``node`` (through tuple targets), or None when ``node`` is read."
        parent = self.get_metadata(ParentNodeProvider, node)
        while isinstance(parent, (cst.Element, cst.StarredElement, cst.Tuple, cst.List)):
            node, parent = parent, self.get_metadata(ParentNodeProvider, parent)
        if isinstance(parent, cst.AssignTarget): return self.get_metadata(ParentNodeProvider, parent)
        if isinstance(parent, (cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor)) and parent.target is node:
            return parent
        return parent if isinstance(parent, cst.AsName) else None

    def _quote(self, node: cst.CSTNode) -> str:
        "A quote that can be written at ``node``: not the one of an enclosing f-string."
        cur = node
        while cur is not None and not isinstance(cur, cst.FormattedString):
            cur = self.get_metadata(ParentNodeProvider, cur, None)
        return '"' if cur is not None and cur.start.endswith("'") else "'"


def opt_assignment(u: cst.CSTNode) -> list | None:
    """``opt.lr = v`` -> ``opt.set_hyper('lr', v)``, ``opt.lr *= f``, ``opt.lr, opt.mom = a, b``;
    None for any other statement."""
    if isinstance(u, cst.Assign) and len(u.targets) == 1 and _is_opt_hyper(u.targets[0].target):
        opt, name = _opt_parts(u.targets[0].target)
        return [statement(f"{opt}.set_hyper('{name}', {source_of(u.value).strip()})")]
    if isinstance(u, cst.AugAssign) and _is_opt_hyper(u.target):
        opt, name = _opt_parts(u.target)
        op = source_of(u.operator).strip()[:-1].strip()
        return [statement(f"{opt}.set_hyper('{name}', {opt}.get_hyper('{name}') {op} {embeddable(u.value)})")]
    pairs = _tuple_pairs(u)
    if pairs is None: return None
    return [statement(f"{opt}.set_hyper('{name}', {embeddable(v)})") for (opt, name), v in pairs]


def _tuple_pairs(u: cst.CSTNode) -> list | None:
    "``opt.lr, opt.mom = a, b`` -> [((opt, 'lr'), a), ((opt, 'mom'), b)]; None for anything else."
    if not (isinstance(u, cst.Assign) and len(u.targets) == 1): return None
    t, v = u.targets[0].target, u.value
    if not (isinstance(t, (cst.Tuple, cst.List)) and isinstance(v, (cst.Tuple, cst.List))
            and len(t.elements) == len(v.elements)): return None
    if not all(isinstance(e, cst.Element) and _is_opt_hyper(e.value) for e in t.elements) or \
            any(isinstance(e, cst.StarredElement) for e in v.elements): return None
    return [(_opt_parts(te.value), ve.value) for te, ve in zip(t.elements, v.elements)]


def _is_opt_hyper(node: cst.BaseExpression) -> bool:
    "``<...>.opt.lr`` (or ``mom``, ``wd``, ``beta``): a fastai-1 OptimWrapper property."
    return isinstance(node, cst.Attribute) and node.attr.value in OPT_HYPERS \
        and isinstance(node.value, cst.Attribute) and node.value.attr.value == 'opt'


def _opt_parts(node: cst.Attribute) -> tuple[str, str]:
    return source_of(node.value).strip(), OPT_HYPERS[node.attr.value]
