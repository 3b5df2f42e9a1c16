"""Session-13 selection (issue 11 round 8; validation/model_selection/s13_fp8ew_candidates.txt and
s13b_fp8_candidates.txt, rule RULE_round7.md): no candidate's gain was resolved, so the rule kept the current form in
every group; the candidates' code left the model and both records are frozen at the commits that have it."""
import re
import runpy
from pathlib import Path

import pytest

from cosim.calibrate import fit
from hwmodels import gpu_params

SEL = Path("validation/model_selection")
GAIN = re.compile(r"^  (.+): (p90|median) ([+-]\d+\.\d\d) vs (.+), 95 % \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\]: "
                  r"(resolved|not resolved \(not eligible\))$")
REJECTED_KEYS = ("ew.rmsnorm.mult_l2", "gemm.tile_c_fp8", "gemm.fp8_promote", "gemm.fp8_sk_multiwave")
REJECTED_SWITCHES = ("rmsnorm_l2", "gemm_fp8_tile_c", "gemm_fp8_promote", "gemm_fp8_sk_multiwave")


def _groups(record):
    """Per scored group of a record: (title, {label: validation (med, p90)}, [gain lines], chosen label)."""
    out, cur = [], None
    for line in (SEL / record).read_text().splitlines():
        if line.endswith("validation") and " fit rows" in line:
            cur = (line.split(":")[0], {}, [], None)
        elif cur and GAIN.match(line):
            cur[2].append(GAIN.match(line).groups())
        elif cur and line.startswith("chosen ("):
            out.append((cur[0], cur[1], cur[2], line.split(": ", 1)[1]))
            cur = None
        elif cur and line.count("|") == 3 and not line.startswith(("cand", "  ")):
            label, _n, _tr, va = (x.strip() for x in line.split("|"))
            cur[1][label] = tuple(float(x) for x in va.split("/"))
    return out


@pytest.mark.parametrize("record, n_groups", [("s13_fp8ew_candidates.txt", 2), ("s13b_fp8_candidates.txt", 1)])
def test_no_gain_resolved_so_the_current_form_stays(record, n_groups):
    """Eligibility by hand from the recorded intervals: a gain is resolved only when the interval's upper end is
    below 0; none is, so the choice is the current form (the first row). The recorded point difference is the
    validation table's difference (to the table's rounding)."""
    groups = _groups(record)
    assert len(groups) == n_groups
    for title, table, gains, chosen in groups:
        current = next(iter(table))
        assert chosen == current and current.startswith("A current form"), title
        assert gains, title
        for label, stat, diff, vs, lo, hi, verdict in gains:
            assert stat == "p90" and vs == current
            assert (float(hi) < 0) == (verdict == "resolved") and verdict != "resolved"
            assert float(lo) <= float(diff) <= float(hi)
            assert abs((table[label][1] - table[current][1]) - float(diff)) <= 0.1 + 1e-9


def test_recorded_numbers_by_hand():
    """The H200 elementwise p90 14.1 -> 13.9, the H100's 10.5 -> 9.4, the GEMM group's 13.2 -> 13.1."""
    ew = {g[0]: g for g in _groups("s13_fp8ew_candidates.txt")}
    gemm = _groups("s13b_fp8_candidates.txt")[0]
    assert ew["h200 elementwise fit rows"][1]["A current form (session-12)"] == (4.4, 14.1)
    assert ew["h200 elementwise fit rows"][1]["B + rmsnorm's own multiplier, input in L2"] == (4.4, 13.9)
    assert ew["h100_sxm elementwise fit rows"][1]["B + rmsnorm's own multiplier, input in L2"] == (3.7, 9.4)
    assert gemm[1]["A current form (fp8 never stream-K)"] == (4.3, 13.2)
    assert gemm[1]["B fp8 stream-K only where tiles exceed the SMs"] == (4.4, 13.1)


@pytest.mark.parametrize("script, commit", [("s13_fp8ew_candidates", "70d85aa"), ("s13b_fp8_candidates", "2023a82")])
def test_frozen_records_name_their_commits(script, commit):
    with pytest.raises(SystemExit) as e:
        runpy.run_path(str(SEL / f"{script}.py"), run_name="__main__")
    assert f"frozen record of commit {commit}" in str(e.value) and f"{script}.txt" in str(e.value)


def assert_rejected_left_the_model(keys, switches, names=()):
    """A rejected round's parameters and switches are in no parameter table, model file, calibration or term set
    (`names`: further identifiers of its code)."""
    for key in keys:
        assert key not in gpu_params.PARAMS and key not in gpu_params.OPTIONAL_PARAMS
        assert key not in gpu_params.SWITCH_PARAMS
    for path in ("hwmodels/gpu.py", "hwmodels/gpu_params.py", "hwmodels/gpu_library.py", "cosim/calibrate/fit.py",
                 "cosim/configs/hw/calibration/h200.yaml", "cosim/configs/hw/calibration/h100_sxm.yaml"):
        text = Path(path).read_text()
        for name in keys + switches + tuple(names):
            assert name.split(".", 1)[-1] not in text, (path, name)
    for terms in fit.TERM_SETS.values():
        assert not set(switches) & set(terms)


def test_rejected_candidates_left_the_model():
    assert_rejected_left_the_model(REJECTED_KEYS, REJECTED_SWITCHES)


def test_a_rejected_switch_fits_nothing():
    """Asking fit for a rejected switch adds no parameter and records no structure (the code is gone)."""
    values = {"gemm.tile_c": 0.1, "ew.rmsnorm.mult": 1.2}
    on = {s: True for s in REJECTED_SWITCHES}
    assert fit._s7_optional("gemm", [], values, on) == []
    assert fit._s7_optional("elementwise", [], values, on) == []
    assert values == {"gemm.tile_c": 0.1, "ew.rmsnorm.mult": 1.2}


def test_round_8_left_the_term_sets_as_round_7_had_them():
    assert fit.TERMS["gemm_fp8_no_stream_k"] is True and fit.TERMS["gemm_stream_k"] is True
    assert fit.TERMS["prefill_soft"] == ("cudnn", "fa2")
    assert not any(name.startswith("S13") for name in vars(fit))
