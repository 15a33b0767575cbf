"""The libcst transformer that rewrites fastai-1 callback classes as trainlib.v2 callbacks.

``migrate_module(source, path)`` returns the new source and the constructs it left for a human.
The rules are the tables of :mod:`~trainlib.migrate.mapping` (events, state keys) and
:mod:`~trainlib.migrate.returns` (return values); this module walks the tree, converts the event
methods of the classes :func:`~trainlib.migrate.classes.survey` found, and marks with a TODO comment
what it cannot translate. Rewrites outside the methods live in the mixins of
:mod:`~trainlib.migrate.calls` and :mod:`~trainlib.migrate.attributes`.
"""
from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.helpers import get_full_name_for_node
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider, ScopeProvider

from .attributes import AttributeRewrites, opt_assignment
from .calls import ModuleRewrites, has_known_star, imports_fastai
from .classes import ClassInfo, InitCtx, MethodCtx, class_facts, finish_class, survey
from .cst_util import base_names, body_lines, commented, fix_commas, insert_top, is_atomic, last_name, literal, \
    only_pass, source_of, statement, string_value
from .imports import add_star_extras, free_names
from .mapping import EVENTS, state_read
from .report import Todo
from .returns import plan_updates, return_updates

__all__ = ['migrate_module']

_LEARN_IN_INIT = ('uses the Learner in __init__: a trainlib.v2 callback gets `self.learn` when it is added to the '
                  'Learner; move this to before_fit')


class _Migrator(AttributeRewrites, ModuleRewrites, cst.CSTTransformer):
    "The walk over one module: converts the fastai-1 callback classes ``survey`` found, collects the TODOs."
    METADATA_DEPENDENCIES = (ScopeProvider, PositionProvider, ParentNodeProvider)

    def __init__(self, path: str, classes: dict[str, ClassInfo], star_import: bool, fastai_file: bool) -> None:
        super().__init__()
        self.path, self.classes, self.star_import, self.fastai_file = path, classes, star_import, fastai_file
        self.by_node = {c.node: c for c in classes.values()}
        self.todos: list[Todo] = []
        self.comments: dict[cst.CSTNode, list[str]] = {}      # original statement -> TODO reasons
        self.replace: dict[cst.CSTNode, cst.BaseExpression] = {}   # original read of v1 state -> its v2 expression
        self.data_nodes: set = set()
        self.drop: set = set()
        self.needed: set[str] = set()
        self.cls_stack: list[ClassInfo | None] = []
        self.depth = 0
        self.method: MethodCtx | None = None
        self.init: InitCtx | None = None
        self.star_done, self.star_line = False, 0

    # ------------------------------------------------------------------ reporting
    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _statement_of(self, node: cst.CSTNode) -> cst.CSTNode:
        cur = node
        while not isinstance(cur, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            cur = self.get_metadata(ParentNodeProvider, cur)
        return cur

    def todo(self, node: cst.CSTNode, why: str, at: cst.CSTNode | None = None) -> None:
        "Report ``node`` as untranslated and mark its statement (or ``at``) with a TODO comment."
        self.todos.append(Todo(self.path, self._line(node), why))
        self.comments.setdefault(at if at is not None else self._statement_of(node), []).append(why)

    def on_leave(self, original_node: cst.CSTNode, updated_node: Any) -> Any:
        "Every node: its own rewrite, then the TODO comments waiting for it."
        res = super().on_leave(original_node, updated_node)
        reasons = self.comments.pop(original_node, None)
        if not reasons or isinstance(res, cst.RemovalSentinel): return res
        if isinstance(res, cst.FlattenSentinel):
            nodes = list(res.nodes)
            return cst.FlattenSentinel([commented(nodes[0], *reasons), *nodes[1:]])
        return commented(res, *reasons)

    def in_callback(self) -> ClassInfo | None:
        "The converted class the walk is in (its body or one of its methods), or None."
        ctx = self.method or self.init
        if ctx is not None: return ctx.cls
        return next((c for c in reversed(self.cls_stack) if c is not None), None)

    # ------------------------------------------------------------------ classes
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        "Enter a class; report a fastai-1-looking class that derives from something else."
        info = self.by_node.get(node)
        self.cls_stack.append(info)
        if info is not None or self.depth or len(self.cls_stack) > 1 or not self.fastai_file: return
        v1_methods = sorted(class_facts(node)['events'])
        if v1_methods and node.bases:
            self.todo(node, f"{node.name.value} derives from {', '.join(base_names(node))}, not from fastai-1's "
                            f'Callback/LearnerCallback: port it to the trainlib.v2 counterpart of its base by hand '
                            f'(it defines {", ".join(v1_methods)})', at=node)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        "``LearnerCallback`` -> ``Callback``, then the v2 order and the deferred-flag methods."
        info = self.cls_stack.pop()
        if info is None: return updated
        bases = []
        for arg in updated.bases:
            if last_name(get_full_name_for_node(arg.value) or '') == 'LearnerCallback':
                arg = arg.with_changes(value=cst.Name('Callback'))
                self.needed.add('Callback')
            bases.append(arg)
        body, needed, whys = finish_class(info, body_lines(updated.body))
        self.needed |= needed
        self.todos += [Todo(self.path, self._line(node), why) for node, why in whys]
        return updated.with_changes(bases=bases, body=updated.body.with_changes(body=body))

    def _direct_class(self) -> ClassInfo | None:
        "The converted class whose body the walk is directly in (not inside one of its methods)."
        if self.depth or len(self.cls_stack) != 1: return None
        return self.cls_stack[0]

    def _class_body_line(self, updated: cst.SimpleStatementLine) -> Any:
        "``_order = k`` -> ``order = k``; the dataclass field ``learn: Learner`` goes."
        small = []
        for st in updated.body:
            if isinstance(st, cst.Assign) and len(st.targets) == 1 and isinstance(st.targets[0].target, cst.Name) \
                    and st.targets[0].target.value == '_order':
                st = st.with_changes(targets=[st.targets[0].with_changes(target=cst.Name('order'))])
            if isinstance(st, cst.AnnAssign) and isinstance(st.target, cst.Name) and st.target.value == 'learn':
                continue
            small.append(st)
        return updated.with_changes(body=small) if small else cst.RemoveFromParent()

    # ------------------------------------------------------------------ event methods
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        "Enter a method: an event method or the ``__init__`` of a learner callback starts a conversion."
        info = self._direct_class()
        if info is not None:
            name = node.name.value
            if name in EVENTS: self._start_method(info, node)
            elif name in ('__init__', '__post_init__') and info.takes_learn: self._start_init(info, node)
            elif name == 'jump_to_epoch':
                self.todo(node, 'fastai 1 calls jump_to_epoch when a fit resumes; trainlib.v2 resumes with '
                                'fit(start_epoch=...): read self.learn.epoch in before_epoch instead', at=node)
        self.depth += 1

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> Any:
        "Finish the conversion this method started (new name, no arguments, bindings)."
        self.depth -= 1
        if self.method is not None and self.method.func is original:
            ctx, self.method = self.method, None
            return self._finish_method(ctx, updated)
        if self.init is not None and self.init.func is original:
            ctx, self.init = self.init, None
            return self._finish_init(ctx, updated)
        return updated

    def _assignments(self, param: cst.Param) -> list:
        return list(self.get_metadata(ScopeProvider, param.name).assignments[param.name.value])

    def _start_method(self, info: ClassInfo, node: cst.FunctionDef) -> None:
        ctx = self.method = MethodCtx(info, node, node.name.value, EVENTS[node.name.value], self.depth)
        ps = node.params
        for p in [*ps.params[1:], *ps.kwonly_params]: self._param(ctx, p)
        if isinstance(ps.star_kwarg, cst.Param): self._kwargs(ctx, ps.star_kwarg)
        if isinstance(ps.star_arg, cst.Param):
            for a in self._assignments(ps.star_arg):
                for r in a.references:
                    self.todo(r.node, f'fastai 1 passes its state as keywords, never in *{ps.star_arg.name.value}')

    def _param(self, ctx: MethodCtx, p: cst.Param) -> None:
        """A v1 state argument: its reads become the v2 expression, inline, or bound to the same name at the
        top of the method when the argument is reassigned or the expression is not a simple attribute."""
        name, assignments = p.name.value, self._assignments(p)
        refs = [r.node for a in assignments if isinstance(a.node, cst.Param) for r in a.references]
        if not refs: return
        read = state_read(name, ctx.event, ctx.cls.before_train_eval)
        if read.why is not None:
            for r in refs: self.todo(r, read.why)
            return
        if len(assignments) > 1 or not is_atomic(read.expr):
            ctx.cls.after_recorder |= read.after_recorder
            ctx.bind.append((name, read.expr))
            return
        expr = cst.parse_expression(read.expr)
        for r in refs:
            if read.after_recorder: ctx.recorder_refs.add(r)
            item = self._item_read(r, read)
            self.replace.update([item] if item is not None else [(r, expr)])
            ctx.access_key[r] = name

    def _item_read(self, ref: cst.CSTNode, read: Any) -> tuple | None:
        "``last_metrics[0]`` -> ``self.learn.recorder.values[-1][1]`` rather than ``...[1:][0]``."
        parent = self.get_metadata(ParentNodeProvider, ref)
        if read.item is None or not (isinstance(parent, cst.Subscript) and parent.value is ref
                                     and len(parent.slice) == 1 and isinstance(parent.slice[0].slice, cst.Index)):
            return None
        value = parent.slice[0].slice.value
        neg = isinstance(value, cst.UnaryOperation) and isinstance(value.operator, cst.Minus)
        num = value.expression if neg else value
        if not isinstance(num, cst.Integer): return None
        i = -int(num.value) if neg else int(num.value) + read.item[1]
        return parent, cst.parse_expression(f'{read.item[0]}[{i}]')

    def _kwargs(self, ctx: MethodCtx, p: cst.Param) -> None:
        "``kwargs['key']`` and ``kwargs.get('key')`` read the state like a named argument."
        kw = p.name.value
        for a in self._assignments(p):
            for r in a.references:
                parent = self.get_metadata(ParentNodeProvider, r.node)
                target, key = self._kwargs_read(r.node, parent)
                if target is None:
                    if isinstance(parent, cst.Arg) and parent.star == '**' and \
                            _super_event(self.get_metadata(ParentNodeProvider, parent)) is not None: continue
                    self.todo(r.node, f"uses **{kw} other than {kw}['key'] / {kw}.get('key'): trainlib.v2 events "
                                      f'take no arguments; read the state from self.learn')
                    continue
                read = state_read(key, ctx.event, ctx.cls.before_train_eval)
                if read.why is not None:
                    self.todo(r.node, read.why)
                    continue
                if read.after_recorder: ctx.recorder_refs.add(target)
                self.replace[target] = cst.parse_expression(read.expr if is_atomic(read.expr) else f'({read.expr})')
                ctx.access_key[target] = key

    def _kwargs_read(self, node: cst.CSTNode, parent: cst.CSTNode) -> tuple:
        "(the node to replace, the state key) for ``kwargs['key']`` / ``kwargs.get('key', ...)``."
        if isinstance(parent, cst.Subscript) and parent.value is node and len(parent.slice) == 1:
            idx = parent.slice[0].slice
            if isinstance(idx, cst.Index) and string_value(idx.value) is not None:
                return parent, string_value(idx.value)
        if isinstance(parent, cst.Attribute) and parent.attr.value == 'get':
            call = self.get_metadata(ParentNodeProvider, parent)
            if isinstance(call, cst.Call) and call.func is parent and call.args \
                    and string_value(call.args[0].value) is not None:
                return call, string_value(call.args[0].value)
        return None, None

    def _finish_method(self, ctx: MethodCtx, updated: cst.FunctionDef) -> Any:
        if ctx.recorder_refs - ctx.discarded: ctx.cls.after_recorder = True
        if only_pass(updated.body) and not only_pass(ctx.func.body) and not ctx.bind:
            return cst.RemoveFromParent()      # nothing left to do in v2 (e.g. `return False` from on_backward_end)
        first = updated.params.params[:1]
        params = cst.Parameters(params=[first[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)] if first else [])
        binds = [statement(f'{name} = {expr}') for name, expr in ctx.bind]
        body = insert_top(updated.body, binds) if binds else updated.body
        returns = updated.returns
        if returns is not None and source_of(returns.annotation).strip() != 'None': returns = None
        return updated.with_changes(name=cst.Name(ctx.event), params=params, body=body, returns=returns)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        "A read of a v1 state argument -> its v2 expression."
        return self.replace.get(original, updated)

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript) -> cst.BaseExpression:
        "``kwargs['key']`` (or ``last_metrics[i]``) -> its v2 expression."
        return self.replace.get(original, updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        "``self.learn`` in ``__init__`` is reported (it is None there in v2); then :class:`AttributeRewrites`."
        if self.init is not None and source_of(original) == 'self.learn' and not self._in_super_init(original):
            self.todo(original, _LEARN_IN_INIT)
        return super().leave_Attribute(original, updated)

    def _in_super_init(self, node: cst.CSTNode) -> bool:
        arg = self.get_metadata(ParentNodeProvider, node)
        call = self.get_metadata(ParentNodeProvider, arg) if isinstance(arg, cst.Arg) else None
        return isinstance(call, cst.Call) and _is_super_init(call)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        "``kwargs.get('key')``, ``super().__init__(learn)``, then the calls of :class:`ModuleRewrites`."
        if original in self.replace: return self.replace[original]
        f = original.func
        if self.in_callback() is not None and isinstance(f, cst.Attribute) and f.attr.value in EVENTS \
                and source_of(f.value) == 'self':
            self.todo(original, f'calls the fastai-1 event method {f.attr.value}, now {EVENTS[f.attr.value]} '
                                f'(which takes no arguments and reads the state from self.learn)')
        if self.in_callback() is not None and _is_super_init(original):
            if source_of(original.func.value) in ('LearnerCallback', 'Callback'):
                return cst.parse_expression('super().__init__()')
            learn = self.init.learn_param if self.init is not None else None
            args = [a for a in updated.args if not (isinstance(a.value, cst.Name) and a.value.value == learn)
                    and source_of(a.value).strip() != 'self.learn']
            return updated.with_changes(args=fix_commas(args))
        return self.rewrite_call(original, updated)

    # ------------------------------------------------------------------ __init__ of learner callbacks
    def _start_init(self, info: ClassInfo, node: cst.FunctionDef) -> None:
        ps = node.params.params
        learn = ps[1] if node.name.value == '__init__' and len(ps) > 1 and (
            ps[1].name.value == 'learn' or any(last_name(b) == 'LearnerCallback' for b in info.bases)) else None
        self.init = InitCtx(info, node, learn.name.value if learn is not None else None, self.depth)
        if learn is None: return
        for a in self._assignments(learn):
            for r in a.references:
                if not self._init_use_ok(r.node): self.todo(r.node, _LEARN_IN_INIT)

    def _init_use_ok(self, node: cst.CSTNode) -> bool:
        "``super().__init__(learn)`` and ``self.learn = learn`` have a v2 meaning (nothing to do)."
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, cst.Arg): return self._in_super_init(node)
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 \
                and source_of(parent.targets[0].target).strip() == 'self.learn':
            self.drop.add(parent)
            return True
        return False

    def _finish_init(self, ctx: InitCtx, updated: cst.FunctionDef) -> cst.FunctionDef:
        if ctx.learn_param is None: return updated
        ps = [p for p in updated.params.params if p.name.value != ctx.learn_param]
        if ps: ps[-1] = ps[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(params=updated.params.with_changes(params=ps))

    # ------------------------------------------------------------------ statements
    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine) -> Any:
        "Class-body lines (``_order``, ``learn`` field), else returns, super calls and optimizer assignments."
        if self._direct_class() is not None: return self._class_body_line(updated)
        lines = self._statement_lines(original, updated)
        if lines is None: return updated
        if not lines: return cst.RemoveFromParent()
        lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
        return lines[0] if len(lines) == 1 else cst.FlattenSentinel(lines)

    def leave_SimpleStatementSuite(self, original: cst.SimpleStatementSuite,
                                   updated: cst.SimpleStatementSuite) -> Any:
        "The statements after ``if x:`` on one line, as for a line (a block if an ``if`` replaces one)."
        lines = self._statement_lines(original, updated)
        if lines is None: return updated
        if not lines: return updated.with_changes(body=[cst.Pass()])
        small = [s for line in lines if isinstance(line, cst.SimpleStatementLine) for s in line.body]
        if len(small) == len(lines) and len(small) <= len(original.body):      # still one short line
            return updated.with_changes(body=[s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT) for s in small])
        return cst.IndentedBlock(body=lines)

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        "A block whose statements all went gets a ``pass``."
        return updated if updated.body else updated.with_changes(body=[statement('pass')])

    def _statement_lines(self, original: Any, updated: Any) -> list | None:
        "The lines replacing the small statements of a line (or of a one-line suite); None if none changes."
        lines, small, changed = [], [], False
        for o, u in zip(original.body, updated.body):
            repl = [] if o in self.drop else self._small_statement(o, u, original)
            if repl is None:
                small.append(u.with_changes(semicolon=cst.MaybeSentinel.DEFAULT))
                continue
            changed = True
            if small: lines.append(cst.SimpleStatementLine(body=small))
            lines.extend(repl)
            small = []
        if small: lines.append(cst.SimpleStatementLine(body=small))
        return lines if changed else None

    def _small_statement(self, o: cst.BaseSmallStatement, u: cst.BaseSmallStatement, line: Any) -> list | None:
        "Replacement lines for one small statement, or None to keep it (as rewritten)."
        ctx = self.method
        ev = _super_event(o.value if isinstance(o, (cst.Expr, cst.Return)) else None)
        if ev is not None and (ctx is not None or self.init is not None):
            cls = (ctx or self.init).cls          # fastai 1's own event methods do nothing: drop the call
            new = [] if cls.plain_base else [statement(f'super().{EVENTS[ev]}()')]
            return new if isinstance(o, cst.Expr) or ctx is None else self._then_return(ctx, line, new)
        if self.in_callback() is not None and isinstance(o, (cst.Assign, cst.AugAssign)):
            if _copies_learner_attr(o): return []
            return opt_assignment(u)
        if isinstance(o, cst.Return) and ctx is not None and self.depth == ctx.depth + 1:
            return self._translate_return(ctx, o, u, line)
        return None

    # ------------------------------------------------------------------ returns
    def _ends_method(self, ctx: MethodCtx, line: cst.CSTNode) -> bool:
        "Does the method end after ``line`` (the original line or suite of a return), through if/else/with ends?"
        node = line
        while True:
            parent = self.get_metadata(ParentNodeProvider, node)
            if parent is ctx.func: return True
            if isinstance(parent, cst.IndentedBlock) and parent.body[-1] is not node: return False
            if not isinstance(parent, (cst.IndentedBlock, cst.If, cst.Else, cst.With)): return False
            node = parent

    def _then_return(self, ctx: MethodCtx, line: cst.CSTNode, stmts: list, stops: bool = False) -> list:
        "``stmts`` then ``return``, unless the method ends there anyway or ``stmts`` always raise."
        if stops or self._ends_method(ctx, line): return stmts
        return stmts + [statement('return')]

    def _translate_return(self, ctx: MethodCtx, o: cst.Return, u: cst.Return, line: Any) -> list | None:
        if o.value is None: return None
        if literal(o.value) is None: return self._then_return(ctx, line, [])
        if self._names_a_dict(o.value):
            return self._untouched(ctx, o, f'returns `{o.value.value}`, a dict built earlier: return the dict literal '
                                           f'itself so that its keys can be translated')
        updates, why = return_updates(ctx.event, o.value, u.value)
        if why is not None: return self._untouched(ctx, o, why)
        if updates is None: return self._then_return(ctx, line, [])       # a literal fastai ignored in this event
        plan = plan_updates(ctx.event, updates, ctx.access_key)
        if isinstance(plan, str): return self._untouched(ctx, o, plan)
        self.needed |= plan.needed
        ctx.cls.deferred |= plan.deferred
        ctx.cls.after_recorder |= plan.after_recorder
        return self._then_return(ctx, line, [statement(s) for s in plan.stmts], plan.stops)

    def _names_a_dict(self, value: cst.BaseExpression) -> bool:
        "Is ``value`` a local name that the method binds to a dict display or a ``dict(...)`` call?"
        if not isinstance(value, cst.Name): return False
        for a in self.get_metadata(ScopeProvider, value).assignments[value.value]:
            target = a.node
            parent = self.get_metadata(ParentNodeProvider, target, None) if isinstance(target, cst.CSTNode) else None
            assign = self.get_metadata(ParentNodeProvider, parent, None) if isinstance(parent, cst.AssignTarget) else None
            rhs = assign.value if isinstance(assign, cst.Assign) else None
            if isinstance(rhs, cst.Dict) or (isinstance(rhs, cst.Call) and source_of(rhs.func) == 'dict'): return True
        return False

    def _untouched(self, ctx: MethodCtx, o: cst.Return, why: str) -> list:
        "Keep the original return statement, with a TODO."
        self.todo(o, why)

        class _All(cst.CSTVisitor):
            def on_visit(self, node: cst.CSTNode) -> bool:
                ctx.discarded.add(node)
                return True
        o.visit(_All())
        return [cst.SimpleStatementLine(body=[o])]


def _copies_learner_attr(o: cst.BaseSmallStatement) -> bool:
    """``self.opt = self.learn.opt``: a v2 callback reads ``self.opt`` from its Learner already (and
    assigning it would shadow the Learner's, with a warning)."""
    if not (isinstance(o, cst.Assign) and len(o.targets) == 1): return False
    t = o.targets[0].target
    return isinstance(t, cst.Attribute) and source_of(t.value) == 'self' and \
        source_of(o.value).strip() == f'self.learn.{t.attr.value}'


def _super_event(call: Any) -> str | None:
    "``super().on_xxx(...)`` -> 'on_xxx'."
    if not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute): return None
    if source_of(call.func.value) != 'super()' or call.func.attr.value not in EVENTS: return None
    return call.func.attr.value


def _is_super_init(call: cst.Call) -> bool:
    f = call.func
    return isinstance(f, cst.Attribute) and f.attr.value == '__init__' and \
        source_of(f.value) in ('super()', 'LearnerCallback', 'Callback')


def _star_leftovers(new: cst.Module, original: MetadataWrapper, migrator: _Migrator) -> cst.Module:
    "Import the standard names fastai's star import provided; mark the fastai-only ones it provided."
    new, left = add_star_extras(new)
    left = sorted(left & free_names(original))
    if not left: return new
    why = f"{', '.join(left)} came from fastai's star import: trainlib.v2 does not provide {'them' if len(left) > 1 else 'it'}"
    migrator.todos.append(Todo(migrator.path, migrator.star_line, why))
    return new.with_changes(body=[commented(st, why) if isinstance(st, cst.SimpleStatementLine)
                                  and isinstance(st.body[0], cst.ImportFrom) and isinstance(st.body[0].names, cst.ImportStar)
                                  and source_of(st.body[0].module) == 'trainlib.v2' else st for st in new.body])


def migrate_module(source: str, path: str = '<string>') -> tuple[str, list[Todo]]:
    "Rewrite the fastai-1 callbacks of ``source``: (new source, untranslated constructs)."
    try: module = cst.parse_module(source)
    except cst.ParserSyntaxError as e:
        raise SyntaxError(f'{path}: not valid Python: {str(e).splitlines()[0]}') from None
    classes, fastai_file = survey(module), imports_fastai(module)
    if not classes and not fastai_file: return source, []       # neither fastai-1 callbacks nor fastai imports
    wrapper = MetadataWrapper(module)
    migrator = _Migrator(path, survey(wrapper.module), has_known_star(wrapper.module), fastai_file)
    new = wrapper.visit(migrator)
    if migrator.star_done: new = _star_leftovers(new, wrapper, migrator)
    return new.code, sorted(set(migrator.todos))
