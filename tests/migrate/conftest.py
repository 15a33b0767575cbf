"The corpus of fastai-1 callbacks and its migration, computed once for the codemod and equivalence tests."
from functools import lru_cache
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CORPUS, EXPECTED = HERE / 'corpus', HERE / 'expected'


@lru_cache(maxsize=None)
def _migrated(name: str):
    from trainlib.migrate import migrate_source
    return migrate_source((CORPUS / f'{name}.py').read_text(), f'{name}.py')


@pytest.fixture
def migrated():
    "``migrated(name)``: the Migration of ``corpus/<name>.py`` (cached for the session)."
    return _migrated
