"""Issue 15, functional core: blocked encode/decode give the same bytes as one-shot
packing, sizes in QTensor files are checked against the data present, and the numeric
edge cases the fuzzing found."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cosim.functional as F
from cosim.functional import stream
from cosim.functional.qtensor import QTensor, _decode_whole, _pack_parts
from cosim.functional.quantize import quantize_parts

FAMILIES = ["mxfp4", "mxint8", "mxfp6_e3m2", "nvfp4", "bfp16", "mx6", "int4_g128", "int4_g32_zp", "fp8_e4m3",
            "bf16", "fp32", "int8", "fp4_e2m1"]


@pytest.mark.parametrize("fmt", FAMILIES)
@pytest.mark.parametrize("shape,axis", [((37, 70), -1), ((13, 40, 3), 1), ((1000,), 0)])
def test_blocked_packing_is_byte_identical(monkeypatch, fmt, shape, axis):
    x = (np.random.default_rng(3).standard_normal(shape) * 3).astype(np.float32)
    sat = True if fmt in ("fp8_e4m3", "fp4_e2m1") else None  # what encode does for formats without Inf
    whole = _pack_parts(quantize_parts(x, fmt, axis=axis, saturate=sat), {})
    monkeypatch.setattr(stream, "CHUNK_ELEMENTS", 64)  # many blocks, ragged last one
    q = F.encode(x, fmt, axis=axis)
    for k in ("codes", "scales", "micro", "zero_points"):
        a, b = getattr(q, k), getattr(whole, k)
        assert (a is None) == (b is None) and (a is None or np.array_equal(a, b)), k
    np.testing.assert_array_equal(F.decode(q), _decode_whole(whole))
    np.testing.assert_array_equal(F.decode(q), F.quantize(x, fmt, axis=axis, saturate=sat))


def _saved(tmp_path, q, **header_changes):
    arrays = {k: getattr(q, k) for k in ("codes", "scales", "micro", "zero_points") if getattr(q, k) is not None}
    header = dict(fmt=q.fmt, shape=list(q.shape), axis=q.axis, block_size=q.block_size,
                  tensor_scale=q.tensor_scale, meta={}, version=1)
    header.update(header_changes)
    arrays.update(header_changes.pop("_arrays", {}))
    header.pop("_arrays", None)
    p = tmp_path / "q.npz"
    np.savez(p, header=np.array(json.dumps(header)), **arrays)
    return p


@pytest.mark.parametrize("change,needle", [
    ({"shape": [-4, 8]}, "shape"),
    ({"shape": [1 << 20, 1 << 12]}, "needs exactly"),  # a 1 KB file claiming a 4 Gi-element tensor
    ({"shape": "abc"}, "shape"),
    ({"block_size": 10 ** 12}, "block"),
    ({"fmt": "mxfp5"}, "fmt"),
    ({"axis": 7}, "axis"),
    ({"_arrays": {"codes": np.zeros(3, np.uint8)}}, "needs exactly"),  # truncated codes
])
def test_bad_qtensor_files_are_refused_before_allocating(tmp_path, change, needle):
    q = F.encode(np.ones((4, 64), np.float32), "mxfp4")
    with pytest.raises(ValueError, match=needle):
        QTensor.load(_saved(tmp_path, q, **change))


def test_npy_header_claiming_more_than_its_bytes_is_refused(tmp_path):
    import zipfile
    p = tmp_path / "bomb.npz"
    hdr = {"descr": "<f8", "fortran_order": False, "shape": (1 << 29,)}
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, hdr)
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("codes.npy", buf.getvalue() + b"\0" * 16)
        z.writestr("header.npy", b"")
    with pytest.raises(ValueError, match="claims shape"):
        QTensor.load(p)


def test_truncated_codes_in_memory_are_refused():
    q = F.encode(np.ones((4, 64), np.float32), "mxfp4")
    q.codes = q.codes[:-5]
    with pytest.raises(ValueError, match="truncated"):
        F.decode(q)


def test_int8_of_a_subnormal_only_input_has_no_nan():
    x = np.array([0.0, 1e-45, -3e-45, 0.0], dtype=np.float32)
    y = F.quantize(x, "int8")
    assert not np.isnan(y).any() and y[0] == 0 and y[3] == 0
    np.testing.assert_array_equal(y, x)  # multiples of the smallest subnormal are exact


@pytest.mark.parametrize("bad", ["no", "false", 0.0, 1])
def test_saturate_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="saturate"):
        F.quantize(np.ones(4, np.float32), "fp8_e4m3", saturate=bad)


def test_huge_block_size_refused():
    with pytest.raises(ValueError, match="block_size"):
        F.quantize(np.ones(8, np.float32), "mxfp4", block_size=10 ** 12)
