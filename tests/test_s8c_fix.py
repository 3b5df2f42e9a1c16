"""The cuDNN decode start-value fix (issue 11, session 8 third round): cuDNN's decode parameters start
where the model selection started the validated candidate (fit.INITIAL), not from FA2's fitted values,
so a key FA2's fit drove to the 1 ps floor no longer pins cuDNN's (validation/model_selection/s8c_fix.md)."""
import math

import pytest

from cosim.calibrate import fit
from hwmodels.gpu import params_for
from hwmodels.spec import load_hw

FLOOR = math.exp(fit.LOG_FLOOR)  # 1 ps


def test_decode_keys_start_from_the_selections_start_whatever_fa2_fitted():
    fa2 = {**fit.INITIAL, "attn.combine": FLOOR, "attn.dec_bw": 4.5e12, "attn.dec_floor": 9.6e-6}
    for k in ("dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine"):
        assert fit.backend_start(k, fa2) == fit.INITIAL[f"attn.{k}"], k
    assert fit.backend_start("combine", fa2) == 3e-6


def test_prefill_keys_start_from_fa2_unless_fa2_sits_at_the_floor():
    fa2 = {**fit.INITIAL, "attn.eff": 0.83, "attn.cta_overhead": FLOOR}
    assert fit.backend_start("eff", fa2) == 0.83
    assert fit.backend_start("cta_overhead", fa2) == fit.INITIAL["attn.cta_overhead"] == 2e-6


def test_committed_h200_cudnn_combine_is_fitted_off_the_floor():
    v = params_for(load_hw("h200")).values
    assert v["attn.combine"] == pytest.approx(FLOOR, rel=1e-6, abs=0)  # FA2's: the time per split carries its combine
    assert v["attn_cudnn.combine"] > 1e-7  # cuDNN's own fixed combine time, no longer FA2's floor


def test_committed_cudnn_decode_scores_the_validated_form_on_the_selections_validation_split():
    """validation/model_selection/s8c_fix.md: before the fix 5.8 / 15.9 on the validation rows, the
    validated candidate 5.0 / 15.3; the committed file (fitted on train + validation rows) 5.2 / 15.0 at the
    fix, 3.5 / 12.5 since session 9 (the KV pipeline fill chosen in s9_candidates.txt, whose validated
    candidate B scored 3.5 / 12.5 there)."""
    from validation.model_selection.s8c_fix import DEFAULT_CAL, decode_rows, score_file
    hw, tr, va = decode_rows()
    assert (len(tr), len(va)) == (1744, 438)
    _, v = score_file(DEFAULT_CAL, hw, tr, va, [])
    assert (round(v[0], 1), round(v[1], 1)) == (3.5, 12.5)
