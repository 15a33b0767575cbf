"""``python -m trainlib.migrate [--diff | --write | --check] PATH...``: migrate fastai-1 callbacks.

PATHs are Python files or directories (searched for ``*.py``). Modes:
  --diff   (default) print a unified diff of the changes to stdout;
  --write  rewrite the files in place;
  --check  change nothing, exit 1 if any file would change.
The report (stderr) lists every construct left untouched, as ``path:line: why``; the code carries a
``# TODO(trainlib.migrate): why`` comment there.

Exit codes: 0 done (with --check: nothing would change); 1 (--check only) some file would change;
2 bad usage, a path that does not exist, a file that is not valid Python, or libcst is missing.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Iterable, Sequence

from . import Migration, migrate_source
from .report import format_todos, summary

__all__ = ['main', 'EXIT_OK', 'EXIT_WOULD_CHANGE', 'EXIT_ERROR']

EXIT_OK, EXIT_WOULD_CHANGE, EXIT_ERROR = 0, 1, 2


def _files(paths: Sequence[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if p.is_dir(): out.extend(sorted(q for q in p.rglob('*.py') if q.is_file()))
        elif p.is_file(): out.append(p)
        else: raise FileNotFoundError(f'trainlib.migrate: {p}: no such file or directory')
    return out


def _diff(m: Migration) -> str:
    return ''.join(difflib.unified_diff(m.source.splitlines(keepends=True), m.code.splitlines(keepends=True),
                                        fromfile=f'a/{m.path}', tofile=f'b/{m.path}'))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='python -m trainlib.migrate', description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split('\n\n', 1)[1])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--diff', dest='mode', action='store_const', const='diff', help='print a unified diff (default)')
    mode.add_argument('--write', dest='mode', action='store_const', const='write', help='rewrite the files in place')
    mode.add_argument('--check', dest='mode', action='store_const', const='check',
                      help='exit 1 if any file would change')
    p.add_argument('paths', nargs='+', metavar='PATH', help='Python files or directories')
    p.set_defaults(mode='diff')
    return p


def _migrate_all(files: Iterable[Path]) -> list[Migration]:
    out = []
    for f in files:
        try: source = f.read_text(encoding='utf-8')
        except UnicodeDecodeError as e: raise ValueError(f'trainlib.migrate: {f}: not UTF-8 text ({e})') from None
        try: out.append(migrate_source(source, str(f)))
        except SyntaxError as e: raise ValueError(f'trainlib.migrate: {e}') from None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    "Run the CLI; returns the exit code."
    args = _parser().parse_args(argv)
    try: results = _migrate_all(_files(args.paths))
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(e, file=sys.stderr)
        return EXIT_ERROR
    changed = [m for m in results if m.changed]
    for m in changed:
        if args.mode == 'diff': sys.stdout.write(_diff(m))
        elif args.mode == 'write': Path(m.path).write_text(m.code, encoding='utf-8')
    todos = [t for m in results for t in m.todos]
    sys.stderr.write(format_todos(todos))
    verb = {'diff': 'would change', 'check': 'would change', 'write': 'rewritten'}[args.mode]
    sys.stderr.write(summary(len(results), len(changed), len(todos), verb))
    return EXIT_WOULD_CHANGE if args.mode == 'check' and changed else EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
