"""Session-6 model terms (issue 11) by hand, and the digests of every measured or pre-registered
microbenchmark suite (a later edit of microbench.py cannot silently change a suite; the digests
were taken before microbench's decode loops were factored into `_decode_cases`, which keeps
them identical)."""
import json
import math

import numpy as np
import pytest

import cosim
from cosim.calibrate import dataset
from cosim.calibrate.suite_digest import suite_cases, suite_digest
from hwmodels import gpu, gpu_params

# suite -> (SHA-256 of its JSON case lists, cases per list) of the suites measured before the suite table;
# heldout4's is also in validation/heldout4_rules.md, written before the suite was measured. fit5 and later are
# pinned once, in tests/test_suites.py's SUITES table.
DIGESTS = {
    "default": ("e0117c7e9401b1bdd575f577a0fc1524bde6a3e116631b8340f9bd4bab724ba1", {"attention": 219, "elementwise": 161}),
    "heldout": ("8ea840ce401eec27d1fb8a8e279a86eae6bd5a2fbb56edc54ed3ca89e778417e",
                {"attention": 174, "elementwise": 136, "gemm": 149}),
    "heldout2": ("643c2847c4ed10a4fb7d0ca6a8430617995489ff857ad26941483a266c6087c3",
                 {"attention": 156, "elementwise": 176, "gemm": 113}),
    "fit3": ("9dc347e447831f4630adebac1e702868ead367d3fb599eef670feef1d00d7de8",
             {"attention": 216, "elementwise": 212, "gemm": 24}),
    "heldout3": ("1630054fcbb0a676942295c8880f637dfcbf7e90d43e132798f2c09b162a6b5c",
                 {"attention": 162, "elementwise": 143, "gemm": 125, "e2e": 2}),
    "fit4": ("81bfb869b3eedf460c140f20e96b19d44eceb47bd61d682d6495625a52ed32c5", {"attention": 168, "elementwise": 84}),
    "heldout4": ("c5a379a7fbb13ecf5fe817f3a25c1d2e2e1dec2a2cb7f0c52f171fbbf466f592",
                 {"attention": 120, "elementwise": 140, "gemm": 120, "e2e": 2}),
}


@pytest.mark.parametrize("variant", sorted(DIGESTS))
def test_suite_case_lists_are_pinned(variant):
    digest, sizes = DIGESTS[variant]
    assert {k: len(v) for k, v in suite_cases(variant).items()} == sizes
    assert suite_digest(variant) == digest


def test_heldout4_digest_is_the_one_in_its_rules_file():
    text = open("validation/heldout4_rules.md").read()
    assert DIGESTS["heldout4"][0] in text and "202612044" in text


def test_heldout4_draws_follow_the_stated_ranges():
    c = suite_cases("heldout4")
    assert all(1 <= m <= 8192 and n % 128 == 0 and 1024 <= n <= 32768 and n * k <= 2 ** 28 for m, n, k in c["gemm"])
    pre = [x for x in c["attention"] if x[0] == "prefill"]
    dec = [x for x in c["attention"] if x[0] == "decode"]
    assert len(pre) == 40 and len(dec) == 80
    assert all(8 <= h <= 64 and h % kvh == 0 and b * L <= 24576 for _, b, h, kvh, d, L, _, _ in pre)
    assert all(2 * b * kvh * ctx * 128 * 2 <= 8e9 and 128 <= ctx <= 32768 for _, b, h, kvh, _, _, ctx, _ in dec)
    dec_e2e, pre_e2e = c["e2e"]
    assert len(dec_e2e) == 10 and len(pre_e2e) == 6


def _attn(b, h, kvh, q, kv, d, causal, impl):
    return dataset.op_from_row({"kind": "attention", "fmt": "bf16", "impl": impl, "dims": json.dumps(
        {"batch": b, "heads": h, "kv_heads": kvh, "q_len": q, "kv_len": kv, "head_dim": d, "causal": causal})})


def test_prefill_wave_cap_by_hand():
    """b 1, 32 heads, 512 x 512 non-causal, d 128 on FA2 (Bq 128, Bk 64): 32 x 4 = 128 CTAs on
    132 SMs, one wave; every CTA computes 8 key blocks. The session-4 form (work / SMs + tail x
    longest CTA) gave 128/132 + 1.17 = 2.1 CTA times; the greedy schedule takes ceil(128/132) =
    1 CTA time (measured 23.3 us vs 33 us predicted before the cap: +40 %). Since session 12 the H200's FA2 block
    carries its softmax cost too (attn.soft_c x 256 columns: s12_fa2_candidates.txt)."""
    hw = cosim.load_hw("h200")
    P = gpu.params_for(hw)
    t_blk = 2 * 128 * 64 * (256 + P["attn.soft_c"] * 256) / (hw.peak("bf16") / 132 * P["attn.eff"])
    t_cta = 8 * t_blk + P["attn.cta_overhead"]
    c = gpu.estimate(_attn(1, 32, 8, 512, 512, 128, False, "sdpa:FLASH_ATTENTION:gqa"), hw)
    assert math.ceil(128 / 132) == 1
    assert c.details["t_compute_s"] == pytest.approx(t_cta, rel=1e-9)
    assert c.details["isolated_s"] == pytest.approx(P["attn.floor"] + t_cta, rel=1e-9)
    assert gpu_params.ATTN_WAVE_CAP


def test_cudnn_softmax_cost_by_hand(request):
    """cuDNN block time = 2 Bq Bk (d + dv + soft_c x 256) / (peak / SMs x eff): the softmax of a
    128 x 128 block costs the same for d 64 and d 128, so d 64 runs at a lower fraction: its share
    of d 128's FLOP rate is (1 + s) / (1 + 2 s) (soft_c fitted 0.47: 0.76; measured -22 % on d 64
    causal prefill with one efficiency for both)."""
    hw = cosim.load_hw("h200")
    P = gpu.for_backend(gpu.params_for(hw), "cudnn")
    s = P["attn.soft_c"]
    assert 0.2 < s < 1.0
    t64, d64 = gpu.attention_prefill_time(P, 1, 1, 128, 128, 64, 64, False, hw.peak("bf16"), True, (128, 128))
    rate = hw.peak("bf16") / 132 * P["attn.eff"]
    assert d64["critical_path_s"] == pytest.approx(2 * 128 * 128 * (128 + s * 256) / rate + P["attn.cta_overhead"],
                                                   rel=1e-9)
    _, d128 = gpu.attention_prefill_time(P, 1, 1, 128, 128, 128, 128, False, hw.peak("bf16"), True, (128, 128))
    oh = P["attn.cta_overhead"]
    # FLOP rate of d 64 over d 128 (per block: FLOPs ~ d + dv): (1 + s) / (1 + 2 s)
    ratio = (128 / (d64["critical_path_s"] - oh)) / (256 / (d128["critical_path_s"] - oh))
    assert ratio == pytest.approx((1 + s) / (1 + 2 * s), rel=1e-9)
    # FA2 has its own (session 12, s12_fa2_candidates.txt; session 6's split did not choose it), not cuDNN's;
    # the H100's session-9 FA2 had none (the session-16 re-fit, on the H200's term set, has its own)
    fa2 = gpu.params_for(hw)
    assert 0.0 < fa2["attn.soft_c"] < s and fa2["attn_cudnn.soft_c"] == s
    assert "attn.soft_c" not in gpu.params_for(request.getfixturevalue("h100_session9")).values
    assert "attn.soft_c" in gpu.params_for(cosim.load_hw("h100_sxm")).values


def test_unaligned_unfused_attention_by_hand():
    """HF eager attention over 700 keys (700 % 8 = 4: rows of 1,400 bytes, no 16-byte loads):
    its score GEMMs and passes take unfused.unaligned_mult longer above their floors; 704 keys
    (a multiple of 8) are priced as before."""
    hw = cosim.load_hw("h200")
    P = gpu.params_for(hw)
    u = P["unfused.unaligned_mult"]
    assert 1.2 < u < 2.0  # fitted 1.59 on fit suite 4
    # a prefill (q_len > 1) takes the shared multiplier
    pre = dict((p.name, Pp) for p, Pp in gpu.unfused_scaled(_attn(4, 32, 32, 64, 700, 128, False, "unfused:hf_eager"), P))
    assert pre["qk"]["gemm.bw"] == pytest.approx(P["gemm.bw"] / u)
    # a decode (q_len 1) its own since session 10 (unfused.dec_unaligned_mult, s10_candidates.txt)
    u = P["unfused.dec_unaligned_mult"]
    assert u != P["unfused.unaligned_mult"]
    op = _attn(4, 32, 32, 1, 700, 128, False, "unfused:hf_eager")
    parts = dict((p.name, Pp) for p, Pp in gpu.unfused_scaled(op, P))
    assert parts["qk"]["gemm.bw"] == pytest.approx(P["gemm.bw"] / u)
    # the score softmax has its own multiplier since the session-7 second round (unfused.softmax_mult)
    assert parts["softmax"]["ew.softmax_warp.mult"] == pytest.approx(P["ew.softmax_warp.mult"] * P["unfused.softmax_mult"] * u)
    aligned = dict((p.name, Pp) for p, Pp in gpu.unfused_scaled(_attn(4, 32, 32, 1, 704, 128, False, "unfused:hf_eager"), P))
    assert aligned["qk"]["gemm.bw"] == P["gemm.bw"]


def test_decode_transfer_keeps_sm_bound_bandwidth():
    """H100 -> H200 (same 132 SMs and 1980 MHz): every bandwidth scales by 4.8 / 3.35, except
    FA2's multi-CTA no-split decode bandwidth, which is SM-bound and carries over unchanged."""
    from cosim.calibrate.transfer import transferred_spec
    h100 = gpu.params_for(cosim.load_hw("h100_sxm"))
    t = gpu.params_for(transferred_spec("h200", "h100_sxm", 132))
    r = 4.8e12 / h100.reference_bandwidth
    assert t["attn.dec_bw"] == pytest.approx(h100["attn.dec_bw"] * r, rel=1e-6)
    assert t["attn.dec_bw_multi"] == pytest.approx(h100["attn.dec_bw_multi"], rel=1e-6)


def test_fa2_split_heuristic_over_twice_the_sms():
    """flash_api.cpp calls num_splits_heuristic with 2 x SMs: 20 x 8 = 160 CTAs < 0.8 x 264 split
    (the session-4 form, 160 >= 0.8 x 132, did not: +48 % at 20 x 8 heads, 10,000 keys)."""
    assert gpu.fa2_num_splits(160, 132, 79) == 1
    assert gpu.fa2_num_splits(160, 264, 79) > 1
    hw = cosim.load_hw("h200")
    _, det = gpu.attention_decode_time(gpu.params_for(hw), 20, 48, 8, 1, 10000, 128, 128, details=True,
                                       split_sms_x=2)
    assert det["splits"] == gpu.fa2_num_splits(160, 264, math.ceil(10000 / 128)) > 1
    assert np.isfinite(det["t_cta_stream"])


@pytest.fixture(scope="module")
def heldout4():
    from cosim.validate import validate
    return validate("h200", "validation/h200_runs.csv", split="test4", include_unreliable=True)


def test_heldout4_figures_as_published(heldout4):
    """Scored once after the session-6 freeze (4d5243a; docs/gpu-validation.md) at 5.1 / 18.6; since
    session 7 a SEEN suite, re-scored with the session-7 model (chosen on fit-split validation, not
    on these rows; session-7 model 4.5 / 16.2, its second round 4.4 / 15.2), now with the session-8
    model, its second round (4.4 / 14.2), third (cuDNN decode start fixed, 4.5 / 14.0), the session-9 model
    (4.1 / 13.3; unfused decode 9.1 / 19.2), the session-10 model (unfused decode's own unaligned multiplier:
    4.0 / 12.8, bf16 GEMM 4.4 / 12.7, unfused decode 6.4 / 14.8), the session-11 model (fp8 GEMMs without
    stream-K, unfused fit order: 3.9 / 12.5, FA2 prefill 5.0 / 10.3) and the session-12 model (FA2 prefill's own
    soft_c; re-pinned after the heldout13 freeze, nothing chosen on it: 3.9 / 12.4) and the round-10 model
    (session 18, the measured-residual correction as s19 chose it; re-pinned after the heldout16 freeze, nothing
    chosen on it: 3.2 / 10.2, fp8 GEMM and unfused decode now met) and the round-11 model (session 19, HF eager
    prefill's measured-residual correction compared within the KV length's alignment class as s20 chose it;
    re-pinned after the heldout17 freeze, nothing chosen on it: 3.1 / 9.8, HF eager prefill now met, so every
    class is): pinned so that any later change that moves them is seen."""
    a = {k: v["analytical"] for k, v in heldout4.classes.items()}
    assert a["all"]["n"] == 851
    # 3.9 / 12.4 -> 3.2 / 10.2 (round 10, session 18: the measured-residual correction as s19 chose it; a seen suite
    # re-scored, nothing chosen on it); 3.2 / 10.2 -> 3.1 / 9.8 (round 11, session 19: HF eager prefill's
    # measured-residual correction as s20 chose it; a seen suite re-scored, nothing chosen on it); 3.1 / 9.8 -> 3.0 /
    # 9.5 (round 13, session 21: s24's elementwise terms, both calibrations re-fitted; seen, nothing chosen on it)
    # -> 3.1 / 9.4 (round 19, session 27: the H200's FA2 prefill priced with round 18's form, 3.5 / 10.9 -> 4.8 / 9.5;
    # seen, nothing chosen on it)
    assert (round(a["all"]["median"], 1), round(a["all"]["p90"], 1)) == (3.1, 9.4)
    met = {k for k, v in a.items() if v["n"] and v["median"] <= 5.0 and v["p90"] <= 15.0}
    # fp8 GEMM 6.7 / 15.2 -> 4.4 / 10.1 and unfused decode 5.6 / 12.0 -> 3.2 / 8.9: both now met (round 10,
    # session 18: the measured-residual correction as s19 chose it; a seen suite re-scored, nothing chosen on it);
    # HF eager prefill 6.4 / 18.3 -> 3.7 / 9.2: now met, the last class missed (round 11, session 19: HF eager
    # prefill's measured-residual correction as s20 chose it; a seen suite re-scored, nothing chosen on it)
    assert met == {"gemm_bf16", "gemm_fp8", "attention_prefill", "attention_prefill_cudnn", "attention_prefill_fa2",
                   "attention_prefill_unfused", "attention_decode", "attention_decode_cudnn", "attention_decode_fa2",
                   "attention_decode_unfused", "elementwise", "all"}
    # bf16 GEMM 4.7 / 12.8 -> 3.1 / 9.8, unfused decode 5.6 / 12.0 -> 3.2 / 8.9 (round 10, session 18: the
    # measured-residual correction as s19 chose it; a seen suite re-scored, nothing chosen on it); FA2 prefill
    # unchanged (no H200 correction for it in round 10); round 11 moves HF eager prefill alone (pinned below)
    assert (round(a["gemm_bf16"]["median"], 1), round(a["gemm_bf16"]["p90"], 1)) == (3.1, 9.8)
    # unfused decode 3.2 / 8.9 -> 3.4 / 8.7 (round 13's re-fit)
    assert (round(a["attention_decode_unfused"]["median"], 1), round(a["attention_decode_unfused"]["p90"], 1)) == (3.4, 8.7)
    # FA2 prefill 3.5 / 10.9 -> 4.8 / 9.5 (round 19, session 27: round 18's form on the H200; seen, nothing chosen)
    assert (round(a["attention_prefill_fa2"]["median"], 1), round(a["attention_prefill_fa2"]["p90"], 1)) == (4.8, 9.5)
    # HF eager prefill 6.4 / 18.3 -> 3.7 / 9.2 (round 11, session 19: HF eager prefill's measured-residual correction
    # compared within the KV length's alignment class, as s20 chose it; a seen suite re-scored, nothing chosen on it)
    # 3.7 / 9.2 -> 3.3 / 9.1 (round 13's re-fit: HF eager's softmax and casts are elementwise parts)
    assert (round(a["attention_prefill_unfused"]["median"], 1),
            round(a["attention_prefill_unfused"]["p90"], 1)) == (3.3, 9.1)


def test_heldout4_graph_decode_end_to_end(heldout4):
    from cosim.validate import ape, summarize
    # session-6 model: 2.5, 1.6, 2.5; session-7 model: 2.7, 1.7, 1.7; its second round 2.8, 1.6, 1.9;
    # session 8: 2.5, 1.8, 2.0; its second round 2.9, 1.3, 1.7; third 2.9, 1.3, 1.5; session 9: 2.6, 1.0, 1.3;
    # session 11: 2.5, 1.3, 1.1 (session 12 the same); 2.5, 1.3, 1.1 -> 2.4, 1.8, 1.2 (round 10, session 18: the
    # measured-residual correction as s19 chose it; a seen suite re-scored, nothing chosen on it); 2.4, 1.8, 1.2 ->
    # 2.7, 1.6, 1.3 (round 13, session 21: s24's elementwise terms, both calibrations re-fitted; seen)
    for fusion, want in (("eager", 2.7), ("engine", 1.6), ("engine_fused", 1.3)):
        g = [r for r in heldout4.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        s = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert s["n"] == 20 and round(s["median"], 1) == want and s["median"] <= 4.0, (fusion, s)
