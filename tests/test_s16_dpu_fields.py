"""Session 16 (helper h16e): DotProductUnit errors name the file's full field, so an override's error names
the override (hwmodels.accelerators.blame), and an unknown format among the rate keys is one error naming
file, field, value and what was expected (it was a bare FormatError)."""

import pytest

from hwmodels.accelerators import config_for
from hwmodels.arith import DotProductUnit
from hwmodels.spec import HardwareError, UnsupportedFormatError, load_hw

FORMATS = "['mxfp8_e4m3', 'mxfp8_e5m2', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp4', 'mxint8', 'bf16']"


def _err(overrides):
    with pytest.raises(HardwareError) as e:
        config_for(load_hw("mx_systolic_128", overrides=overrides))
    return e


def test_unknown_rate_format_names_the_override_field_value_and_expected():
    e = _err({"accelerator.pe.rates": {"foo": 2}})
    assert str(e.value) == ("override accelerator.pe.rates (applied to mx_systolic_128.yaml): got a rate for 'foo', "
                            "not a registered number format (`cosim list formats`); expected a rate keyed by one of "
                            f"the unit's formats {FORMATS}")


def test_rate_errors_are_blamed_on_the_override():
    """A rate for a format the unit lacks, and a bad rate value: both name the override (before: the file
    'with overrides ...' and a relative 'rates' / 'rates.mxfp4' field)."""
    e = _err({"accelerator.pe.rates": {"fp32": 2}})
    assert isinstance(e.value, UnsupportedFormatError)
    assert str(e.value).startswith("override accelerator.pe.rates (applied to mx_systolic_128.yaml): got a rate for "
                                   f"'fp32'; expected one of the unit's formats {FORMATS}")
    e = _err({"accelerator.pe.rates": {"mxfp4": -1}})
    assert str(e.value) == ("override accelerator.pe.rates.mxfp4 (applied to mx_systolic_128.yaml): got -1; expected "
                            "MACs per lane per cycle > 0")


def test_a_unit_built_in_code_names_its_own_fields():
    with pytest.raises(HardwareError, match=r"^dpu: formats: got 'foo', not a registered number format"):
        DotProductUnit(("bf16", "foo"))
    with pytest.raises(HardwareError, match=r"^dpu: lanes: got 0; expected a positive integer$"):
        DotProductUnit(("bf16",), lanes=0)
