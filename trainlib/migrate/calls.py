"""The codemod's rewrites outside the callback classes: fastai imports, ``Learner(callback_fns=...)``,
``fit(callbacks=...)``, ``learn.callbacks.append(...)`` and the constructors of learner callbacks."""
from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node

from .cst_util import dedupe_aliases, docstring_count, fix_commas, last_name, rename_kw, source_of, statement
from .mapping import KNOWN_V1_MODULES, v2_names

__all__ = ['ModuleRewrites', 'has_known_star', 'is_known_module', 'imports_fastai']

_FNS_WHY = ('callback_fns: trainlib.v2 takes callback instances, `cbs=[X(a=1)]`; only the callback classes '
            'converted in this file are rewritten')


def is_known_module(mod: str) -> bool:
    "A fastai-1 module whose names ``from trainlib.v2 import *`` stands in for."
    return mod in KNOWN_V1_MODULES or mod.startswith('fastai.callbacks.')


def has_known_star(module: cst.Module) -> bool:
    "Does ``module`` star-import a known fastai-1 module (or trainlib.v2)?"
    for st in module.body:
        if not isinstance(st, cst.SimpleStatementLine): continue
        for s in st.body:
            if isinstance(s, cst.ImportFrom) and isinstance(s.names, cst.ImportStar) and not s.relative:
                mod = get_full_name_for_node(s.module) or ''
                if is_known_module(mod) or mod == 'trainlib.v2': return True
    return False


def imports_fastai(module: cst.Module) -> bool:
    "Does ``module`` import from fastai at its top level?"
    for st in module.body:
        for s in (st.body if isinstance(st, cst.SimpleStatementLine) else ()):
            names = [s.module] if isinstance(s, cst.ImportFrom) and s.module is not None and not s.relative else \
                [a.name for a in s.names] if isinstance(s, cst.Import) else []
            if any((get_full_name_for_node(n) or '').split('.')[0] == 'fastai' for n in names): return True
    return False


def _v2_import(names: Any) -> cst.ImportFrom:
    return cst.ImportFrom(module=cst.parse_expression('trainlib.v2'),
                          names=names if isinstance(names, cst.ImportStar) else fix_commas(names))


class ModuleRewrites:
    """Mixin of the migrator (``self.classes``, ``self.todo``, ``self.needed``... come from it): the rewrites
    of calls and imports."""

    # ------------------------------------------------------------------ calls
    def rewrite_call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        "``X(learn, ...)`` of a converted learner callback, ``callback_fns=``, ``callbacks=``, ``.callbacks.append``."
        name = get_full_name_for_node(original.func) or ''
        cls = self.classes.get(name)
        if cls is not None and cls.takes_learn: updated = self._drop_learn_arg(updated)
        kws = {a.keyword.value: i for i, a in enumerate(updated.args) if a.keyword is not None}
        if 'callback_fns' in kws: return self._callback_fns(original, updated, kws)
        if 'callbacks' in kws and last_name(name) in ('Learner', 'fit', 'fit_one_cycle'):
            return rename_kw(updated, 'callbacks', 'cbs')
        if isinstance(original.func, cst.Attribute) and original.func.attr.value == 'append':
            return self._append(original, updated)
        return updated

    @staticmethod
    def _drop_learn_arg(call: cst.Call) -> cst.Call:
        args = list(call.args)
        if args and args[0].keyword is None and args[0].star == '': args = args[1:]
        args = [a for a in args if not (a.keyword is not None and a.keyword.value == 'learn')]
        return call.with_changes(args=fix_commas(args))

    def _fn_to_cb(self, node: cst.BaseExpression) -> cst.BaseExpression | None:
        "``partial(X, a=1)`` or ``X`` (a converted class) -> ``X(a=1)``; None if not one of those."
        if isinstance(node, cst.Name) and node.value in self.classes: return cst.Call(func=node)
        if isinstance(node, cst.Call) and last_name(get_full_name_for_node(node.func) or '') == 'partial' and node.args:
            head = node.args[0].value
            if isinstance(head, cst.Name) and head.value in self.classes:
                return cst.Call(func=head, args=fix_commas(list(node.args[1:])))
        return None

    def _callback_fns(self, original: cst.Call, updated: cst.Call, kws: dict) -> cst.Call:
        "``Learner(..., callbacks=[a], callback_fns=[partial(X, k=1)])`` -> ``Learner(..., cbs=[a, X(k=1)])``."
        fns = updated.args[kws['callback_fns']].value
        conv = [self._fn_to_cb(e.value) for e in fns.elements] if isinstance(fns, cst.List) else [None]
        cbs_i = kws.get('callbacks')
        cbs = updated.args[cbs_i].value if cbs_i is not None else None
        if any(c is None for c in conv) or (cbs is not None and not isinstance(cbs, cst.List)):
            self.todo(original, _FNS_WHY)
            return updated
        elems = [*(cbs.elements if cbs is not None else []), *[cst.Element(c) for c in conv]]
        new_list = cst.List(elements=fix_commas(elems))
        args = [a.with_changes(keyword=cst.Name('cbs'), value=new_list) if i == kws['callback_fns'] else a
                for i, a in enumerate(updated.args) if i != cbs_i]
        return updated.with_changes(args=fix_commas(args))

    def _append(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        "``learn.callbacks.append(cb)`` / ``learn.callback_fns.append(partial(X))`` -> ``learn.add_cb(...)``."
        owner = original.func.value
        if not isinstance(owner, cst.Attribute) or owner.attr.value not in ('callbacks', 'callback_fns'): return updated
        learn_src = source_of(updated.func.value.value).strip() if isinstance(updated.func.value, cst.Attribute) else ''
        if not learn_src.split('.')[-1].endswith('learn') or len(updated.args) != 1: return updated
        arg = updated.args[0].value
        if owner.attr.value == 'callback_fns':
            arg = self._fn_to_cb(arg)
            if arg is None:
                self.todo(original, _FNS_WHY)
                return updated
        return cst.parse_expression(f'{learn_src}.add_cb({source_of(arg).strip()})')

    # ------------------------------------------------------------------ imports
    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> Any:
        "``from fastai.<v1 module> import *`` -> ``from trainlib.v2 import *`` (once); names likewise."
        if self.depth or self.cls_stack or original.relative: return updated
        mod = get_full_name_for_node(original.module) or ''
        if mod != 'fastai' and not mod.startswith('fastai.'): return updated
        if not is_known_module(mod):
            self.todo(original, f'{mod}: trainlib has no counterpart of this fastai module')
            return updated
        if isinstance(updated.names, cst.ImportStar):
            if self.star_done: return cst.RemoveFromParent()
            self.star_done, self.star_line = True, self._line(original)
            return _v2_import(cst.ImportStar())
        return self._import_names(original, updated, mod)

    def _import_names(self, original: cst.ImportFrom, updated: cst.ImportFrom, mod: str) -> Any:
        "``from fastai.x import A, B``: the names trainlib.v2 has come from it, the others stay (with a TODO)."
        keep, take = [], []
        for alias in updated.names:
            n = get_full_name_for_node(alias.name) or ''
            n = 'Callback' if n == 'LearnerCallback' and alias.asname is None else n
            if n in v2_names(): take.append(alias.with_changes(name=cst.Name(n)))
            else: keep.append(alias)
        if keep: self.todo(original, f'{", ".join(source_of(a.name) for a in keep)} from {mod}: not in trainlib.v2')
        take = [] if self.star_import else dedupe_aliases(take)
        if not keep: return _v2_import(take) if take else cst.RemoveFromParent()
        if not take: return updated
        return cst.FlattenSentinel([updated.with_changes(names=fix_commas(keep)), _v2_import(take)])

    def leave_Import(self, original: cst.Import, updated: cst.Import) -> cst.Import:
        "``import fastai...`` is reported (its uses cannot be followed)."
        if not (self.depth or self.cls_stack) and any(
                (get_full_name_for_node(a.name) or '').split('.')[0] == 'fastai' for a in original.names):
            self.todo(original, 'imports a fastai module: use `from trainlib.v2 import *`')
        return updated

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        "Import the trainlib.v2 names the rewritten code uses, when no star import brings them."
        if not self.needed or self.star_done or self.star_import: return updated
        body = list(updated.body)
        for i, st in enumerate(body):
            imp = st.body[0] if isinstance(st, cst.SimpleStatementLine) else None
            if isinstance(imp, cst.ImportFrom) and not isinstance(imp.names, cst.ImportStar) \
                    and get_full_name_for_node(imp.module or cst.Name('_')) == 'trainlib.v2':
                have = {get_full_name_for_node(a.name) for a in imp.names}
                extra = [cst.ImportAlias(cst.Name(n)) for n in sorted(self.needed - have)]
                body[i] = st.with_changes(body=[imp.with_changes(names=fix_commas([*imp.names, *extra]))])
                return updated.with_changes(body=body)
        i = docstring_count(body)
        while i < len(body) and isinstance(body[i], cst.SimpleStatementLine) and \
                isinstance(body[i].body[0], (cst.Import, cst.ImportFrom)): i += 1
        line = statement(f'from trainlib.v2 import {", ".join(sorted(self.needed))}')
        return updated.with_changes(body=body[:i] + [line] + body[i:])
