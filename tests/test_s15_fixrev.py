"""Session-15 review fixes (one test per defect; each fails on the code before its fix)."""

from pathlib import Path

import pytest

from cosim.cli import main
from hwmodels.accelerators import config_for
from hwmodels.spec import FALLBACK_OPTION, UnsupportedFormatError, load_hw

VCK = Path(__file__).resolve().parents[1] / "cosim" / "configs" / "hw" / "versal_vck190.yaml"


def _vck_with_bf16_pe(tmp_path):
    text = VCK.read_text()
    assert "pe: {formats: [int8, fp32]}" in text
    bad = tmp_path / "vck_bad.yaml"
    bad.write_text(text.replace("pe: {formats: [int8, fp32]}", "pe: {formats: [int8, fp32, bf16]}"))
    return bad


def test_fpga_format_error_through_roofline_and_cycle_levels(tmp_path, capsys):
    """H3: config_for re-raised UnsupportedFormatError(source, detail, offer) with one argument,
    a TypeError; the roofline level reaches config_for through operand_unit_check."""
    bad = _vck_with_bf16_pe(tmp_path)
    args = ["simulate", "--model", "llama3_8b", "--hw", str(bad), "--weights", "int8", "--acts", "int8",
            "--kv", "int8", "--seq", "256"]
    assert main(args + ["--level", "roofline"]) == 0
    capsys.readouterr()
    assert main(args + ["--level", "cycle"]) != 0
    err = capsys.readouterr().err
    assert f"{bad}: fpga.pe.formats: got 'bf16'; the AI Engine tiles list MACs only for ['fp32', 'int8']" in err
    assert "TypeError" not in err


def test_fpga_format_error_names_the_override():
    hw = load_hw("versal_vck190", overrides={"fpga.aie.macs_per_tile": {"int8": 128}})
    with pytest.raises(UnsupportedFormatError) as ei:
        config_for(hw)
    e = ei.value
    assert e.source.endswith("versal_vck190.yaml (with overrides fpga.aie.macs_per_tile={'int8': 128})")
    assert e.detail.startswith("fpga.pe.formats: got 'fp32'; the AI Engine tiles list MACs only for ['int8']")
    assert str(e) == f"{e.source}: {e.detail}" + (e.offer.format(option=FALLBACK_OPTION) if e.offer else "")
