"""Small libcst helpers of the codemod: node <-> source, statements, comments, suites, argument lists."""
from __future__ import annotations

from typing import Any, Sequence

import libcst as cst
from libcst.helpers import get_full_name_for_node

from .mapping import TODO_TAG

__all__ = ['source_of', 'embeddable', 'is_atomic', 'string_value', 'literal', 'RUNTIME', 'statement', 'comment_lines',
           'commented', 'only_pass', 'body_lines', 'docstring_count', 'insert_top', 'has_own_return', 'base_names',
           'last_name', 'fix_commas', 'dedupe_aliases', 'rename_kw']


def source_of(node: cst.CSTNode) -> str:
    "The source code of ``node``."
    return cst.Module(body=[]).code_for_node(node)


def embeddable(node: cst.BaseExpression) -> str:
    "Source of ``node`` that can be embedded anywhere in an expression."
    src = source_of(node).strip()
    bare_tuple = isinstance(node, cst.Tuple) and not node.lpar
    return f'({src})' if bare_tuple or '\n' in src or isinstance(node, (cst.Lambda, cst.NamedExpr)) else src


def is_atomic(src: str) -> bool:
    "Can the expression ``src`` replace a name anywhere without parentheses?"
    return isinstance(cst.parse_expression(src), (cst.Name, cst.Attribute, cst.Subscript, cst.Call))


def string_value(node: cst.CSTNode) -> str | None:
    "The value of a plain string literal, else None."
    return node.evaluated_value if isinstance(node, cst.SimpleString) else None


RUNTIME = object()
"What :func:`literal` returns for an expression whose value is only known at run time."


def literal(node: cst.BaseExpression) -> Any:
    "True/False/None for those literals, else :data:`RUNTIME`."
    if isinstance(node, cst.Name) and node.value in ('True', 'False', 'None'):
        return {'True': True, 'False': False, 'None': None}[node.value]
    return RUNTIME


def statement(src: str) -> cst.BaseStatement:
    "A statement node from its source."
    return cst.parse_statement(src if src.endswith('\n') else src + '\n')


def comment_lines(reasons: Sequence[str], existing: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    "TODO comment lines for ``reasons``, except those already in ``existing``."
    have = {line.comment.value for line in existing if line.comment is not None}
    out = []
    for why in reasons:
        text = f'{TODO_TAG} {why}'
        if text not in have:
            out.append(cst.EmptyLine(comment=cst.Comment(text)))
            have.add(text)
    return out


def commented(node: Any, *whys: str) -> Any:
    "``node`` with a TODO comment line above it for each reason (not repeated if already there)."
    return node.with_changes(leading_lines=[*node.leading_lines, *comment_lines(whys, node.leading_lines)])


def only_pass(body: cst.BaseSuite) -> bool:
    "Is the suite empty or just ``pass``?"
    lines = body_lines(body)
    return not lines or (len(lines) == 1 and isinstance(lines[0], cst.SimpleStatementLine)
                         and all(isinstance(s, cst.Pass) for s in lines[0].body))


def body_lines(body: cst.BaseSuite) -> list[cst.BaseStatement]:
    "The statements of a suite (a one-line suite becomes one line)."
    if isinstance(body, cst.SimpleStatementSuite): return [cst.SimpleStatementLine(body=body.body)]
    return list(body.body)


def docstring_count(lines: Sequence[cst.BaseStatement]) -> int:
    "1 if the first of ``lines`` is a docstring, else 0."
    first = lines[0] if lines else None
    if isinstance(first, cst.SimpleStatementLine) and len(first.body) == 1 and isinstance(first.body[0], cst.Expr) \
            and isinstance(first.body[0].value, (cst.SimpleString, cst.ConcatenatedString)): return 1
    return 0


def insert_top(body: cst.BaseSuite, stmts: Sequence[cst.BaseStatement]) -> cst.IndentedBlock:
    "``body`` with ``stmts`` first (after the docstring)."
    lines = body_lines(body)
    i = docstring_count(lines)
    new = lines[:i] + list(stmts) + lines[i:]
    return body.with_changes(body=new) if isinstance(body, cst.IndentedBlock) else cst.IndentedBlock(body=new)


def has_own_return(node: cst.CSTNode) -> bool:
    "Does ``node`` contain a return statement of its own (not of a nested function)?"
    found = []

    class _V(cst.CSTVisitor):
        def visit_FunctionDef(self, n: cst.FunctionDef) -> bool: return n is node
        def visit_Lambda(self, n: cst.Lambda) -> bool: return False
        def visit_Return(self, n: cst.Return) -> None: found.append(n)
    node.visit(_V())
    return bool(found)


def base_names(cls: cst.ClassDef) -> list[str]:
    "The dotted names of the bases of a class."
    return [(get_full_name_for_node(a.value) or '') for a in cls.bases]


def last_name(name: str) -> str:
    "``a.b.C`` -> ``C``."
    return name.rsplit('.', 1)[-1]


def fix_commas(items: list) -> list:
    "Items of an argument/element/alias list with commas between them and none after the last."
    out = []
    for i, it in enumerate(items):
        last = i == len(items) - 1
        comma = cst.MaybeSentinel.DEFAULT if last else (
            it.comma if isinstance(it.comma, cst.Comma) else cst.Comma(whitespace_after=cst.SimpleWhitespace(' ')))
        out.append(it.with_changes(comma=comma))
    return out


def dedupe_aliases(aliases: list) -> list:
    "Import aliases without repeats."
    seen, out = set(), []
    for a in aliases:
        key = source_of(a.name) + (a.asname and source_of(a.asname) or '')
        if key in seen: continue
        seen.add(key)
        out.append(a)
    return out


def rename_kw(call: cst.Call, old: str, new: str) -> cst.Call:
    "``call`` with its keyword argument ``old`` renamed ``new``."
    return call.with_changes(args=[a.with_changes(keyword=cst.Name(new)) if a.keyword is not None and
                                   a.keyword.value == old else a for a in call.args])


