"""Quantity parser: hand-checkable conversions, refusals that name file/field/value/unit,
and hypothesis round-trips."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmodels.units import BASE_UNIT, KINDS, format_quantity, parse_quantity
from workloads.io import InputError

SRC, FLD = "hw.yaml", "memory.hbm.bandwidth"


def p(text, kind, **kw):
    return parse_quantity(text, kind, SRC, FLD, **kw)


@pytest.mark.parametrize("text,kind,value", [
    ("3.35 TB/s", "bandwidth", 3.35e12),
    ("819 GiB/s", "bandwidth", 819 * 2**30),
    ("100 Gbit/s", "bandwidth", 12.5e9),
    ("80 GB", "bytes", 80e9),
    ("80 GiB", "bytes", 80 * 2**30),
    ("50 MiB", "bytes", 50 * 2**20),
    ("228 KB", "bytes", 228e3),        # vendors' KB is 1000 B; KiB is 1024
    ("228 KiB", "bytes", 228 * 1024),
    ("270 Mbit", "bytes", 270e6 / 8),
    ("989.4 TFLOP/s", "flops", 989.4e12),
    ("989.4 TFLOPS", "flops", 989.4e12),
    ("1978.9 TOP/s", "flops", 1978.9e12),
    ("9 POPS", "flops", 9e15),
    ("1.83 GHz", "frequency", 1.83e9),
    ("700 W", "power", 700.0),
    ("1.2 kW", "power", 1200.0),
    ("0.283 pJ", "energy_per_flop", 0.283e-12),
    ("0.283 pJ/FLOP", "energy_per_flop", 0.283e-12),
    ("5.5 pJ/bit", "energy_per_byte", 44e-12),
    ("0.993 pJ/B", "energy_per_byte", 0.993e-12),
    ("10 pJ", "energy", 10e-12),
    ("2 us", "time", 2e-6),
    ("8.92 µs", "time", 8.92e-6),
    ("814 mm2", "area", 814e-6),
    ("3960 um^2", "area", 3960e-12),
    ("1e12 B/s", "bandwidth", 1e12),
    ("  .5 GHz ", "frequency", 0.5e9),
])
def test_hand_checked_conversions(text, kind, value):
    assert p(text, kind) == pytest.approx(value, rel=1e-15, abs=0)


def test_decimal_text_is_exact():
    # Exact decimal scaling: the float equals the literal a reader would write.
    assert p("989.4 TFLOP/s", "flops") == 989.4e12
    assert p("66.9 TFLOP/s", "flops") == 66.9e12
    assert p("3.35 TB/s", "bandwidth") == 3.35e12


@pytest.mark.parametrize("text,kind,why", [
    ("3.35 TB", "bandwidth", "'TB' is a bytes unit"),
    ("3.35 TB/s", "bytes", "'TB/s' is a bandwidth unit"),
    ("3.35 Tb/s", "bandwidth", "write bits as"),
    ("-3.35 TB/s", "bandwidth", "positive"),
    ("0 TB/s", "bandwidth", "positive"),
    ("fast", "bandwidth", "could not read a number"),
    ("3.35", "bandwidth", "unit is missing"),
    ("3.35 parsecs", "bandwidth", "unknown unit 'parsecs'"),
    ("3350 PB/s", "bandwidth", "plausible range"),   # 3.35e18 B/s: a unit slip
    ("80 TB", "bytes", None),                         # 8e13 B is allowed (a big pool)
    ("1.83 THz", "frequency", "plausible range"),
    ("0.283 nJ", "energy_per_flop", None),            # in range for this parser; the loader's TDP check catches it
    ("1e400 B/s", "bandwidth", "B/s"),                # overflows to inf
])
def test_refusals_name_file_field_value_and_unit(text, kind, why):
    if why is None:
        assert p(text, kind) > 0
        return
    with pytest.raises(InputError) as e:
        p(text, kind)
    msg = str(e.value)
    assert SRC in msg and FLD in msg and repr(text) in msg and BASE_UNIT[kind] in msg
    assert why in msg


@pytest.mark.parametrize("value", [None, True, [3.35], {"v": 1}, 3.35e12])
def test_non_text_refused(value):
    with pytest.raises(InputError) as e:
        p(value, "bandwidth")
    assert SRC in str(e.value) and FLD in str(e.value)


def test_numbers_only_when_allowed_and_then_in_base_units():
    assert p(3.35e12, "bandwidth", allow_number=True) == 3.35e12
    with pytest.raises(InputError, match="unit written as text"):
        p(3.35e12, "bandwidth")


def test_zero_only_when_allowed():
    assert p("0 W", "power", allow_zero=True) == 0.0
    with pytest.raises(InputError, match="positive"):
        p("0 W", "power")
    with pytest.raises(InputError, match="non-negative"):
        p("-1 W", "power", allow_zero=True)


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown kind"):
        p("1 W", "watts")


_PLAUSIBLE = {"flops": (1e9, 1e18), "bandwidth": (1e6, 1e16), "bytes": (1.0, 1e15),
              "frequency": (1e6, 1e10), "power": (1e-3, 1e6), "energy": (1e-15, 1.0),
              "energy_per_byte": (1e-15, 1e-8), "energy_per_flop": (1e-15, 1e-8),
              "time": (1e-12, 1e3), "area": (1e-12, 1e-2)}


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(KINDS), frac=st.floats(0, 1))
def test_format_then_parse_round_trips(kind, frac):
    lo, hi = _PLAUSIBLE[kind]
    value = math.exp(math.log(lo) + frac * (math.log(hi) - math.log(lo)))
    assert p(format_quantity(value, kind), kind) == value


@settings(max_examples=200, deadline=None)
@given(x=st.decimals(min_value="1", max_value="999", places=3),
       prefix=st.sampled_from([("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12),
                               ("Ki", 2.0**10), ("Mi", 2.0**20), ("Gi", 2.0**30)]))
def test_prefixes_scale_bandwidth_and_bytes_alike(x, prefix):
    name, factor = prefix
    bw = p(f"{x} {name}B/s", "bandwidth")
    size = p(f"{x} {name}B", "bytes")
    assert bw == size == pytest.approx(float(x) * factor, rel=1e-12)
    if name in ("M", "G", "T"):  # bits take SI prefixes only (kbit/s is below the floor)
        assert p(f"{x} {name}bit", "bytes") == pytest.approx(size / 8, rel=1e-12)
        assert p(f"{x} {name}bit/s", "bandwidth") == pytest.approx(bw / 8, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=30), kind=st.sampled_from(KINDS))
def test_arbitrary_text_is_a_value_or_an_input_error(text, kind):
    try:
        v = p(text, kind)
    except InputError as e:
        assert SRC in str(e) and FLD in str(e)
    else:
        assert math.isfinite(v) and v > 0
