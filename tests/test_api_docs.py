"""Every public name of the core (the ``__all__`` of trainlib/*.py and trainlib/callbacks/*.py, which make up
``trainlib.v2``), of the fastai-1 layer (trainlib/v1/*.py, trainlib/v1/callbacks/*.py) and of the codemod
(trainlib/migrate/*.py), and every public method of their classes, has a docstring and type hints on its signature."""
import importlib
import inspect
import pkgutil

import pytest

import trainlib
import trainlib.callbacks
import trainlib.migrate
import trainlib.v1
import trainlib.v1.callbacks
import trainlib.v2

PENDING: set = set()      # names allowed to lack docs for now (none)


def modules_of(*pkgs):
    "The (non-package) modules of each of ``pkgs``."
    for pkg in pkgs:
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.ispkg: yield importlib.import_module(f'{pkg.__name__}.{info.name}')


def core_modules():
    "trainlib's own modules and its stock callbacks' modules (not the v1 or v2 namespaces)."
    return modules_of(trainlib, trainlib.callbacks)


def walked_modules():
    "The core's modules, the fastai-1 layer's (trainlib.v1, its stock callbacks) and the codemod's (trainlib.migrate)."
    yield from core_modules()
    yield from modules_of(trainlib.v1, trainlib.v1.callbacks, trainlib.migrate)


def own_functions(cls):
    "``(name, function)`` for the public methods and properties that ``cls`` defines in trainlib."
    for name, attr in vars(cls).items():
        if name.startswith('_'): continue
        f = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
        f = f.fget if isinstance(f, property) else f
        if inspect.isfunction(f) and f.__module__.startswith('trainlib'): yield name, f


def public_api():
    "``(qualified name, object, function or None)`` for every public name and method of the walked modules."
    for mod in walked_modules():
        names = getattr(mod, '__all__', None)
        assert names is not None, f'{mod.__name__} has no __all__'
        for name in names:
            obj = getattr(mod, name)
            qual = f'{mod.__name__}.{name}'
            if getattr(obj, '__module__', None) != mod.__name__: continue     # re-exported, or a constant
            if inspect.isclass(obj):
                yield qual, obj, None
                for meth, f in own_functions(obj): yield f'{qual}.{meth}', getattr(obj, meth), f
            elif inspect.isfunction(obj): yield qual, obj, obj


API = sorted(public_api(), key=lambda t: t[0])
OBJECTS = {name: obj for name, obj, _ in API}
FUNCTIONS = {name: f for name, _, f in API if f is not None}


def checked(name):
    return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason='pending elsewhere')) \
        if name in PENDING else name


@pytest.mark.parametrize('name', [checked(name) for name, _, _ in API])
def test_public_name_has_a_docstring(name):
    obj = OBJECTS[name]
    assert inspect.getdoc(obj), f'{name} has no docstring'


@pytest.mark.parametrize('name', list(FUNCTIONS))
def test_public_signature_has_type_hints(name):
    f = FUNCTIONS[name]
    sig = inspect.signature(f)
    bare = [p for p in sig.parameters.values() if p.name not in ('self', 'cls')
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.annotation is inspect.Parameter.empty]
    assert not bare, f'{name}: no type hint on {", ".join(p.name for p in bare)}'
    assert sig.return_annotation is not inspect.Signature.empty, f'{name}: no return type hint'


def test_the_walk_covers_the_v2_namespace():
    walked = {name for mod in core_modules() for name in mod.__all__}
    public = {n for n in dir(trainlib.v2) if not n.startswith('_') and not inspect.ismodule(getattr(trainlib.v2, n))}
    assert public - walked == set()
    assert len(API) > 300
