"""Session-7 second-round terms (issue 11; fit suite 6, chosen on the validation split:
validation/model_selection/s7b_candidates.txt): the rules by hand, how hwmodels.gpu prices them when a
calibration carries their parameter, and which calibrations carry them."""
import dataclasses
import json
import math

import pytest

import cosim
from cosim.calibrate import dataset, fit
from hwmodels import gpu


def _P(**extra):
    P = gpu.params_for(cosim.load_hw("h200"))
    return dataclasses.replace(P, values={**P.values, **extra})


def test_decode_cta_time_is_paid_once_per_wave():
    """FA2 decode, b128 h32/32 kv256: 4096 CTAs without split-KV -> 32 waves of 132 SMs; the per-wave
    CTA time adds 32 x lat to the CTA stream (which then binds over the aggregate bandwidth)."""
    P0 = _P()
    P0 = dataclasses.replace(P0, values={k: v for k, v in P0.values.items() if k != "attn.dec_cta_lat"})
    P1 = _P(**{"attn.dec_cta_lat": 1e-6})
    args = (128, 32, 32, 1, 256, 128, 128)
    t0, d0 = gpu.attention_decode_time(P0, *args, details=True)
    t1, d1 = gpu.attention_decode_time(P1, *args, details=True)
    assert d0["splits"] == 1 and d0["ctas"] == 4096 and math.ceil(4096 / 132) == 32
    assert d1["t_cta_stream"] - d0["t_cta_stream"] == pytest.approx(32e-6)


def _attn(b, h, kvh, q, kv, causal=True):
    return dataset.op_from_row({"kind": "attention", "fmt": "bf16", "impl": "unfused:hf_eager", "dims": json.dumps(
        {"batch": b, "heads": h, "kv_heads": kvh, "q_len": q, "kv_len": kv, "head_dim": 128, "causal": causal})})


def test_score_softmax_takes_its_own_multiplier():
    P = _P(**{"unfused.softmax_mult": 3.0, "unfused.score_mult": 2.0})
    scaled = {p.name: (p, Pp) for p, Pp in gpu.unfused_scaled(_attn(1, 8, 8, 4096, 4096), P)}
    key = lambda p: f"ew.{gpu.ew_regime(P, p.kind, float(p.dims['cols']))}.mult"  # noqa: E731
    p, Pp = scaled["softmax"]
    assert Pp[key(p)] == pytest.approx(P[key(p)] * 3.0)
    p, Pp = scaled["scale"]
    assert Pp[key(p)] == pytest.approx(P[key(p)] * 2.0)


def test_calibrations_carry_the_chosen_second_round_terms_only(h100_session9):
    """H200: FA2's per-wave CTA time and the score softmax's multiplier (chosen); not cuDNN's CTA time
    (rejected). H100's session-9 fit: none (its split chose none; the session-16 re-fit takes the H200's set)."""
    h200 = gpu.params_for(cosim.load_hw("h200")).values
    h100 = gpu.params_for(h100_session9).values
    chosen = ("attn.dec_cta_lat", "unfused.softmax_mult")
    rejected = ("attn_cudnn.dec_cta_lat",)
    assert all(k in h200 for k in chosen) and not any(k in h200 for k in rejected)
    assert not any(k in h100 for k in chosen + rejected)
    assert 1e-7 < h200["attn.dec_cta_lat"] < 1e-5 and 0.3 < h200["unfused.softmax_mult"] < 10
    assert fit.TERMS_BY_HW["h100_sxm"]["dec_cta_lat"] == () and not fit.TERMS_BY_HW["h100_sxm"]["unfused_softmax"]
