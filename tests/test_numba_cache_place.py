"""README's "Nothing is cached unless you ask" was not true of numba's compiled kernels; docs/speed.md
now says where they go. Pin the documented place to numba's own choice for a cosim kernel."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_numba_kernel_cache_is_where_the_docs_say():
    numba = pytest.importorskip("numba")
    from cosim.functional import kernels
    text = (ROOT / "docs" / "speed.md").read_text()
    assert "`cosim/functional/__pycache__/`" in text and "`NUMBA_CACHE_DIR=DIR`" in text
    disp = next(getattr(kernels, n) for n in dir(kernels) if isinstance(getattr(kernels, n), numba.core.registry.CPUDispatcher))
    assert disp._cache.__class__.__name__ == "FunctionCache"
    path = Path(disp._cache._cache_path)
    pkg = Path(kernels.__file__).resolve().parent / "__pycache__"
    if os.environ.get("NUMBA_CACHE_DIR"):
        assert str(path).startswith(os.environ["NUMBA_CACHE_DIR"])
    elif os.access(pkg.parent, os.W_OK):
        assert path.resolve() == pkg
    else:  # read-only install: numba's user-wide cache folder
        assert path.resolve() != pkg
