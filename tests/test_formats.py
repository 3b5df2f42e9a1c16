import pytest
from hypothesis import given, strategies as st

from workloads.formats import FormatError, get_format, list_formats


@pytest.mark.parametrize("name,bits", [
    ("fp32", 32), ("bf16", 16), ("fp16", 16), ("fp8_e4m3", 8), ("fp4_e2m1", 4), ("int8", 8),
    ("mxfp4", 4.25), ("mxfp8_e4m3", 8.25), ("mxfp6_e3m2", 6.25), ("mxint8", 8.25),  # 8/32 scale bits
    ("nvfp4", 4.5),  # E4M3 scale per 16: 4 + 8/16
    ("msfp12", 4.5), ("msfp16", 8.5),  # 8-bit exponent per 16
    ("mx4", 4.0), ("mx6", 6.0), ("mx9", 9.0),  # 8 exp + 8 microexp bits per 16
    ("int4_g128", 4 + 16 / 128), ("int4_g128_zp", 4 + 20 / 128), ("int2_g32", 2 + 16 / 32),
    ("bfp_m5_b32", 6 + 8 / 32), ("bfp12_b32", 4 + 8 / 32), ("mxfp8_e4m3_b16", 8.5),
])
def test_bits_per_element_includes_scale_overhead(name, bits):
    assert get_format(name).bits_per_element == pytest.approx(bits)


def test_element_parameters_match_ocp_table():
    assert get_format("fp8_e4m3").max_normal == 448.0
    assert get_format("fp8_e5m2").max_normal == 57344.0
    assert get_format("fp6_e3m2").max_normal == 28.0
    assert get_format("fp6_e2m3").max_normal == 7.5
    assert get_format("fp4_e2m1").max_normal == 6.0
    assert get_format("mxint8").max_normal == 127 / 64
    assert get_format("fp16").min_normal == 2.0 ** -14
    assert get_format("mxfp4").element == "fp4_e2m1"
    assert get_format("mxfp4") .scale_format == "e8m0"


def test_aliases_and_case():
    assert get_format("MXFP4").bits_per_element == get_format("mxfp4_e2m1").bits_per_element


@pytest.mark.parametrize("bad", ["mxfp5", "fp7", "", "int4_g0", "bfp_m0_b16", "int9_g128"])
def test_unknown_format_lists_close_matches(bad):
    with pytest.raises(FormatError) as e:
        get_format(bad)
    assert repr(bad) in str(e.value)  # every message names the bad name


def test_close_match_hint():
    with pytest.raises(FormatError, match="did you mean.*mxfp4"):
        get_format("mxfp5")


def test_registry_covers_issue_list():
    names = {f.name for f in list_formats()}
    for n in ["fp32", "tf32", "bf16", "fp16", "fp8_e4m3", "fp8_e5m2", "fp6_e3m2", "fp6_e2m3", "fp4_e2m1",
              "int8", "int4", "int2", "mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4",
              "mxint8", "nvfp4", "msfp12", "msfp16", "bfp16", "mx4", "mx6", "mx9", "int4_g128"]:
        assert n in names


@given(m=st.integers(1, 23), b=st.integers(1, 256))
def test_parametric_bfp_bits(m, b):
    f = get_format(f"bfp_m{m}_b{b}")
    assert f.bits_per_element == pytest.approx(1 + m + 8 / b)
    assert f.block_size == b


@given(bits=st.integers(2, 8), g=st.integers(1, 1024), zp=st.booleans())
def test_parametric_int_group_bits(bits, g, zp):
    f = get_format(f"int{bits}_g{g}" + ("_zp" if zp else ""))
    assert f.bits_per_element == pytest.approx(bits + (16 + (bits if zp else 0)) / g)
