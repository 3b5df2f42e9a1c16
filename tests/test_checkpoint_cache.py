"""The disk cache of loaded bundled checkpoints (cosim.functional.checkpoint.cache): a
second load reads back exactly what the first built, without parsing the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosim.functional.checkpoint import cache
from cosim.functional.checkpoint.loader import Checkpoint


def _ck(path):
    rng = np.random.default_rng(0)
    return Checkpoint("tiny", path, {"layers": 2}, {"embed": rng.standard_normal((5, 3)).astype(np.float32),
                                                     "norm": np.arange(3, dtype=np.float32)},
                      None, "gguf (F32 x2)", "baseline = the float32 GGUF weights")


def test_second_load_is_read_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path / "c"))
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x" * 10)
    calls = []

    def build():
        calls.append(1)
        return _ck(f)
    a = cache.cached_checkpoint(f, build, Checkpoint)
    b = cache.cached_checkpoint(f, build, Checkpoint)
    assert calls == [1]  # built once
    assert (b.name, b.path, b.config, b.file_format, b.baseline_note) == (a.name, a.path, a.config, a.file_format,
                                                                          a.baseline_note)
    assert list(b.tensors) == list(a.tensors)
    for k in a.tensors:
        assert type(b.tensors[k]) is np.ndarray and b.tensors[k].dtype == np.float32
        assert np.array_equal(a.tensors[k], b.tensors[k])
    b.tensors["norm"][0] = 99.0  # copy-on-write: the cache entry keeps its values
    assert cache.cached_checkpoint(f, build, Checkpoint).tensors["norm"][0] == 0.0
    f.write_bytes(b"y" * 11)  # a changed file is a new entry
    cache.cached_checkpoint(f, build, Checkpoint)
    assert calls == [1, 1]


def test_cache_off_and_damaged_entries(tmp_path, monkeypatch):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x")
    calls = []

    def build():
        calls.append(1)
        return _ck(f)
    monkeypatch.delenv("COSIM_CACHE_DIR", raising=False)
    assert cache.cache_root() is None  # opt-in: nothing is written unless asked
    monkeypatch.setenv("COSIM_CACHE_DIR", "")
    assert cache.cache_root() is None
    cache.cached_checkpoint(f, build, Checkpoint)
    cache.cached_checkpoint(f, build, Checkpoint)
    assert calls == [1, 1]
    monkeypatch.setenv("COSIM_CACHE_DIR", str(tmp_path / "c"))
    cache.cached_checkpoint(f, build, Checkpoint)
    entry = next((tmp_path / "c" / "checkpoints").iterdir())
    (entry / "0.npy").write_bytes(b"garbage")
    ck = cache.cached_checkpoint(f, build, Checkpoint)  # rebuilt, not an error
    assert len(calls) == 4 and np.array_equal(ck.tensors["norm"], np.arange(3, dtype=np.float32))
    assert Path(entry).exists()
