"""Session 15: one operand-format rule at the roofline and cycle levels on an accelerator (int4
weights the PE has no unit for are said, never silently priced as bf16), and a sweep row's
`notes` column (the point's distinct notes: the trace's and the level's per-op fallbacks)."""

from pathlib import Path

import pytest

from cosim.simulate import simulate
from workloads.builder import build_trace

SCOUT = str(Path("tests/data/hf_configs/llama4_scout_17b_16e.json").resolve())
INT4 = ("weights in int4_g128: the PE has no int4_g128 unit, priced as bf16 MACs (the matrix unit's int4_g128 -> "
        "bf16 conversion is not charged; a dequantize op in the trace, e.g. a recipe's, is priced as its own row)")


def _unit_notes(rep):
    return [n for n in rep.notes if "unit, priced as" in n]


@pytest.mark.parametrize("hw", ["tpu_v4_like_128", "alveo_u280"])
def test_roofline_and_cycle_give_the_same_operand_note(hw):
    t = build_trace("llama3_8b", "decode", 1, 512, weights="int4_g128")
    # was: the cycle level said so, the roofline priced the same GEMMs at bf16 without a word
    assert _unit_notes(simulate(t, hw, level="roofline")) == _unit_notes(simulate(t, hw, level="cycle")) == [INT4]
    # the per-op path (ops built, as a recipe's trace is priced) says the same as the template's
    from hwmodels.roofline import estimate_trace
    assert INT4 in estimate_trace(t.ops, simulate.__globals__["_resolve"](hw))[1]


def test_no_operand_note_where_the_pe_has_the_unit():
    # tpu_v4_like_128's PE computes int8: int8 weights need no word (the rule the cycle level applies)
    t = build_trace("llama3_8b", "decode", 1, 512, weights="int8")
    assert _unit_notes(simulate(t, "tpu_v4_like_128", level="roofline")) == []
    assert _unit_notes(simulate(t, "tpu_v4_like_128", level="cycle")) == []
    # a GPU has no PE model: its format table is the unit test (session 17: was silent on a GPU; the
    # GPU cases are in tests/test_notes17.py) -- h100_sxm lists int8, so int8 weights need no word either
    assert _unit_notes(simulate(t, "h100_sxm", level="roofline")) == []


def _sweep(tmp_path, base, axis):
    from cosim.dse import sweep
    spec = {"name": "s", "base": {"phase": "decode", "batch": 1, "seq": 128, **base}, "axes": [{"grid": axis}],
            "require_memory_fit": False, "output": str(tmp_path / "o")}
    return sweep(spec, quiet=True, write=False)


def test_sweep_rows_carry_their_notes(tmp_path):
    from cosim.dse.evaluate import NOTES_SEP
    df = _sweep(tmp_path, {"hw": "tpu_v4_like_128", "weights": "int4_g128", "model": "llama3_8b"},
                {"model": [SCOUT, "llama3_8b"]})
    notes = dict(zip(["scout" if "llama4" in m else "llama" for m in df["model"]], df["notes"]))
    assert notes["llama"] == INT4
    scout = notes["scout"].split(NOTES_SEP)
    assert scout[0].startswith("text-only pricing:") and "871,932,416 parameters" in scout[0] and scout[-1] == INT4
    # the transformers defaults the published config leaves out (import notes) reach the row too
    assert [n.split(":")[0] for n in scout[1:-1]] == ["no_rope_layers / no_rope_layer_interval absent",
                                                      "attn_temperature_tuning absent"]
    # the cycle level's vectorised variants say the same
    df = _sweep(tmp_path, {"hw": "tpu_v4_like_128", "weights": "int4_g128", "level": "cycle", "model": "llama3_8b"},
                {"hw.clock": [0.9e9, 1.0e9]})
    assert list(df["notes"]) == [INT4, INT4]


def test_a_point_without_notes_has_none(tmp_path):
    df = _sweep(tmp_path, {"hw": "h200", "model": "llama3_8b"}, {"batch": [1, 2]})
    assert df["notes"].isna().all()
