"""Numbers for people: pinned examples and a round trip through the hardware-unit parser."""

import math

from hypothesis import given, strategies as st

from cosim import humanize as H
from hwmodels.units import parse_quantity


def test_pinned_examples():
    assert H.seconds(2.348e-07) == "235 ns"
    assert H.seconds(0.0025) == "2.5 ms"
    assert H.seconds(0.99996) == "1 s"  # never "1e+03 ms"
    assert H.nbytes(4266076288.0) == "4.27 GB"
    assert H.flops_per_s(989.4e12) == "989 TFLOP/s"
    assert H.percent(0.1234) == "12.3 %" and H.percent(1.0, 2) == "100 %"
    assert H.quantity(2e12, "bandwidth") == "2 TB/s" and H.quantity("mxfp4", None) == "mxfp4"
    assert H.si(float("nan"), "s") == "n/a" and H.si(0, "B") == "0 B" and H.si(math.inf, "s") == "inf s"
    assert H.format_name("mxfp4") == "MXFP4 (4.25 bits)" and H.format_name("nosuch") == "nosuch"
    assert H.formats_line({"weights": "mxfp4", "kv": "bf16"}) == "weights MXFP4 (4.25 bits), KV cache BF16 (16 bits)"


def test_bundled_files_show_by_name_user_files_by_path(tmp_path):
    from hwmodels.spec import load_hw
    assert H.display_source(load_hw("h100_sxm").source) == "cosim/configs/hw/h100_sxm.yaml (bundled)"
    own = tmp_path / "mine.yaml"
    assert H.display_source(own) == str(own)
    assert H.display_source(None) == "inline"


@given(st.floats(min_value=1e3, max_value=1e15), st.sampled_from(["bandwidth", "bytes"]))
def test_quantity_text_reads_back_within_rounding(value, kind):
    text = H.quantity(value, kind, digits=6)
    back = parse_quantity(text.replace("µ", "u"), kind, "<t>", "f", allow_zero=True)
    assert math.isclose(back, value, rel_tol=1e-5)
