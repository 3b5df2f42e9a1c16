"""Session-12 FA2 prefill selection (issue 11 round 7; validation/model_selection/s12_fa2_candidates.txt, rule
RULE_round7.md): the H200 set gives FA2 prefill its own head-dim-independent softmax cost (attn.soft_c); the H100's
and the base set do not; the record's choice follows the round-7 rule; the script is a frozen record."""
import re
import runpy

import pytest

from cosim.calibrate import fit
from hwmodels import gpu
from hwmodels.gpu import GpuParams

RECORD = "validation/model_selection/s12_fa2_candidates.txt"


def _group(title):
    """(rows (label, params, train (med, p90), validation (med, p90)), {label: (gain, lo, hi, resolved)}, chosen)."""
    lines = open(RECORD).read().splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(title))
    rows, gains = [], {}
    for line in lines[i + 2:]:
        if line.startswith("chosen"):
            return rows, gains, line.split(": ", 1)[1]
        if line.startswith("  "):
            label = line.strip().split(": ")[0]
            d, lo, hi = (float(x) for x in re.findall(r"[+-]\d+\.\d+", line)[:3])
            gains[label] = (d, lo, hi, "not resolved" not in line)
            continue
        label, n, tr, va = (x.strip() for x in line.split("|"))
        num = [float(x) for x in re.findall(r"\d+\.\d", tr + " " + va)]
        rows.append((label, int(n), tuple(num[:2]), tuple(num[2:])))
    raise AssertionError(f"{title}: no chosen line")


def test_h200_record_by_hand():
    """A misses on the median only (5.1 > 5, 13.8 <= 15): the median is the target. B, F, E, G resolved (interval
    below 0), C, D not. Lowest median among A and the eligible: F 3.2; B's 3.7 is within 1 point with 7 parameters,
    not 8: B."""
    rows, gains, chosen = _group("h200 FA2 prefill")
    by = {r[0][0]: r for r in rows}
    assert by["A"][3] == (5.1, 13.8) and by["A"][3][0] > 5.0 and by["A"][3][1] <= 15.0
    assert {k[0] for k, g in gains.items() if g[3]} == {"B", "F", "E", "G"}
    for g in gains.values():
        assert g[3] == (g[2] < 0)
    eligible = [by["A"]] + [by[k[0]] for k, g in gains.items() if g[3]]
    best = min(eligible, key=lambda r: r[3][0])
    assert best[0].startswith("F") and best[3][0] == 3.2
    pick = min((r for r in eligible if r[3][0] <= best[3][0] + 1.0), key=lambda r: (r[1], r[3][0]))
    assert pick[0].startswith("B") and chosen == pick[0] and by["B"][1:] == (7, (4.6, 15.5), (3.7, 13.4))


def test_h100_record_keeps_its_form():
    """H100 FA2 prefill meets the goal (3.5 / 8.2): the p90 is the target; no candidate's gain is resolved."""
    rows, gains, chosen = _group("h100_sxm FA2 prefill")
    assert rows[0][3] == (3.5, 8.2) and not any(g[3] for g in gains.values()) and chosen.startswith("A ")


def test_frozen_record_names_its_commit():
    with pytest.raises(SystemExit) as e:
        runpy.run_path("validation/model_selection/s12_fa2_candidates.py", run_name="__main__")
    assert "frozen record of commit c82c00a" in str(e.value) and "s12_fa2_candidates.txt" in str(e.value)


def test_the_switch():
    """prefill_soft names the backends whose prefill fits soft_c: cuDNN and FA2 in the H200 set (session 12), cuDNN
    in the base set (S12_FA2_OFF, the session-11 form), none in the H100's."""
    assert fit.S12_FA2_TERMS == {"prefill_soft": ("cudnn", "fa2")} and fit.S12_FA2_OFF == {"prefill_soft": ("cudnn",)}
    assert fit.TERMS["prefill_soft"] == ("cudnn", "fa2") and fit.terms_for("h200")[1]["prefill_soft"] == ("cudnn", "fa2")
    assert fit.BASE_TERMS["prefill_soft"] == ("cudnn",) and fit.TERMS_BY_HW["h100_sxm"]["prefill_soft"] == ()
    for terms, want in ((fit.TERMS, ["attn.soft_c"]), (fit.BASE_TERMS, []), (fit.TERMS_BY_HW["h100_sxm"], [])):
        values = {}
        names = fit._prefill_optional("attn.", "fa2", {**terms, "ragged": ()}, values)
        assert names == want and values == ({"attn.soft_c": 0.3} if want else {})
    assert "s12_fa2_candidates" in fit.TERM_SET_DESC["h200"]


# 132 SMs at 1 TFLOP/s each (peak 132 TFLOP/s), efficiency 0.5: 5e11 FLOP/s per SM
VALUES = {"attn.eff": 0.5, "attn.cta_overhead": 1e-6, "attn.floor": 5e-6, "attn.tail": 1.0}


def _t(values, d, causal=False, q=128):
    P = GpuParams(values=values, sm_count=132, l2_bytes=50 * 2 ** 20, provenance="test")
    return gpu.attention_prefill_time(P, 1, 1, q, q, d, d, causal, 132e12)


@pytest.mark.parametrize("d, blk", [(64, 128), (128, 64)])
def test_fa2_soft_c_by_hand(d, blk):
    """One 128-row query block over 128 keys (one CTA, one wave: the wave cap keeps its own time). FA2's blocks:
    128 x 128 at d 64, 128 x 64 at d 128 (two key blocks). Block time 2 x 128 x Bk x (d + dv + soft_c x 256) /
    5e11: d 64 with soft_c 0.5: 2 x 128 x 128 x 256 / 5e11 = 16.777216 us (8.388608 us without); d 128: two
    blocks of 2 x 128 x 64 x 384 / 5e11 = 12.582912 us each (8.388608 us without). Time = floor 5 us + blocks x
    block time + CTA overhead 1 us."""
    n = 128 // blk
    with_soft = _t({**VALUES, "attn.soft_c": 0.5}, d)
    without = _t(VALUES, d)
    assert with_soft == pytest.approx(5e-6 + n * 2 * 128 * blk * (2 * d + 128) / 5e11 + 1e-6, rel=1e-12)
    assert without == pytest.approx(5e-6 + n * 2 * 128 * blk * 2 * d / 5e11 + 1e-6, rel=1e-12)
    assert {64: 22.777216e-6, 128: 31.165824e-6}[d] == pytest.approx(with_soft, rel=1e-12)
