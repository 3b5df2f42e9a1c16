"""The direct GGUF reader (cosim.functional.checkpoint.gguf_fast) gives exactly what the
`gguf` package gives: the same metadata values and types, the same tensors bit for bit,
and it hands every file it does not handle back to the package."""

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.checkpoint_helpers import tiny_weights, write_tiny_gguf

gguf = pytest.importorskip("gguf")

from cosim.functional.checkpoint.gguf_fast import GGUF_TYPES, dequantize_fast, parse_gguf  # noqa: E402
from cosim.functional.checkpoint.gguf_file import _read_gguf_package, read_gguf  # noqa: E402


def _same(a, b):
    fa, ta, ya = a
    fb, tb, yb = b
    assert list(fa) == list(fb) and fa == fb
    assert all(type(fa[k]) is type(fb[k]) for k in fa)
    assert list(ta) == list(tb) and ya == yb
    for k in ta:
        assert ta[k].dtype == tb[k].dtype == np.float32 and ta[k].shape == tb[k].shape
        assert np.array_equal(ta[k].view(np.uint32), tb[k].view(np.uint32)), k  # bit for bit, NaN payloads too


@pytest.mark.parametrize("qtype", ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"])
def test_fast_reader_equals_the_gguf_package(tmp_path, qtype):
    path = write_tiny_gguf(tmp_path / f"m_{qtype}.gguf", tiny_weights(3), qtype)
    assert parse_gguf(path) is not None  # read directly, not through the fallback
    _same(read_gguf(path), _read_gguf_package(path))


def test_fast_reader_equals_the_package_on_the_bundled_checkpoint():
    from cosim.functional.checkpoint.loader import bundled_checkpoint_path
    try:
        path, _ = bundled_checkpoint_path("smollm2_135m")
    except Exception as e:  # the checkpoint package is optional
        pytest.skip(f"bundled checkpoint not installed ({e})")
    fields, tensors, types = read_gguf(path)
    assert len(fields["tokenizer.ggml.tokens"]) == 49152 and set(types.values()) == {"Q4_1", "F32", "Q8_0"}
    _same((fields, tensors, types), _read_gguf_package(path))


@settings(max_examples=40, deadline=None)
@example(kind="Q4_1", blocks=2, seed=1479343)  # a block whose scale and min are both NaN
@given(kind=st.sampled_from(["Q4_0", "Q4_1", "Q8_0", "F16", "BF16"]), blocks=st.integers(1, 9),
       seed=st.integers(0, 2 ** 32 - 1))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # random bytes hold NaN and Inf scales
def test_dequantization_is_the_packages_on_any_bytes(kind, blocks, seed):
    """Random block bytes (any scale, NaN and Inf included): the same float32 bits. Where a block's
    scale and min are both NaN, IEEE 754 leaves open whose payload d*q + m carries (numba's compiled
    order and numpy's can pick different ones), so there a NaN is only required to be a NaN."""
    code = next(c for c, (name, _, _) in GGUF_TYPES.items() if name == kind)
    _, per_block, block_bytes = GGUF_TYPES[code]
    n = blocks * (32 // per_block)  # whole 32-value rows for the element types too
    raw = np.random.default_rng(seed).integers(0, 256, size=n * block_bytes, dtype=np.uint8)
    ref = gguf.quants.dequantize(raw.reshape(1, -1), getattr(gguf.GGMLQuantizationType, kind)).reshape(-1)
    got = dequantize_fast(raw, code)
    assert got.dtype == np.float32 and got.shape == ref.shape
    ref = np.asarray(ref, dtype=np.float32)
    both_nan = np.zeros(ref.shape, dtype=bool)
    if kind == "Q4_1":
        scales = raw.reshape(blocks, block_bytes)[:, :4].copy().view("<f2")  # (blocks, 2): d, m
        both_nan = np.repeat(np.isnan(scales).all(axis=1), per_block)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    assert np.array_equal(got.view(np.uint32)[~both_nan], ref.view(np.uint32)[~both_nan])


def test_files_the_fast_reader_declines_go_to_the_package(tmp_path):
    path = write_tiny_gguf(tmp_path / "m.gguf", tiny_weights(1), "F32")
    data = bytearray(path.read_bytes())
    data[4:8] = (1).to_bytes(4, "little")  # GGUF v1: not read directly
    old = tmp_path / "v1.gguf"
    old.write_bytes(bytes(data))
    assert parse_gguf(old) is None
    swapped = tmp_path / "be.gguf"  # a big-endian file's version reads byte-swapped
    data[4:8] = (3).to_bytes(4, "big")
    swapped.write_bytes(bytes(data))
    assert parse_gguf(swapped) is None
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(path.read_bytes()[:200])
    assert parse_gguf(truncated) is None
