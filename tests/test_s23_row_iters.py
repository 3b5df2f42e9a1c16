"""Round 12's candidate row-iteration forms (validation/model_selection/s23_row_iters.py): the ceil form is the
model's own row_waves, the fractional form differs only past one pass of 1,024 threads x 8 elements."""
import numpy as np
import pytest

from hwmodels import gpu
from hwmodels.gpu import GpuParams
from validation.model_selection import s23_row_iters as s23


def _params():
    return GpuParams(values={"ew.softmax.row_lat": 4e-6, "ew.softmax.row_lat_iter": 1e-6}, sm_count=132,
                     l2_bytes=50e6, provenance="test")


COLS = [4096.0, 8192.0, 10240.0, 16384.0, 24576.0]


def test_ceil_form_is_the_model_row_waves():
    P = _params()
    for rows in (1.0, 300.0, 40000.0):
        assert np.array_equal(s23.row_waves(P, "softmax", COLS, [rows] * 5), gpu.row_waves(P, "softmax", COLS, [rows] * 5))


def test_fractional_form_by_hand():
    # one wave (one row); 1,024 threads x 8 = 8,192 elements per pass: 10,240 elements are 1.25 passes (ceil: 2)
    P = _params()
    assert s23.row_waves(P, "softmax", COLS, [1.0] * 5).tolist() == pytest.approx([4e-6, 4e-6, 5e-6, 5e-6, 6e-6])
    frac = s23.row_waves(P, "softmax", COLS, [1.0] * 5, "fractional")
    assert frac.tolist() == pytest.approx([4e-6, 4e-6, 4.25e-6, 5e-6, 6e-6])
    with pytest.raises(ValueError, match="expected 'ceil' or 'fractional'"):
        s23.row_waves(P, "softmax", COLS, [1.0] * 5, "round")


def test_row_iters_patches_the_model_only_inside_the_block():
    P, keep = _params(), gpu.row_waves
    with s23.row_iters("fractional"):
        assert gpu.row_waves(P, "softmax", [10240.0], [1.0]).tolist() == pytest.approx([4.25e-6])
    assert gpu.row_waves is keep
