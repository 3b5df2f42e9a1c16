"""Issue 11, session 4: the engine-fused kernels (bytes by hand, own calibrated parameters on
the H200, borrowed with a note on the H100), FlashAttention-2 decode with more CTAs than SMs
(by hand), the heldout3 split (never fitted, no shape shared with the fit), and its figures as
published (scored once after the freeze; validation/heldout3_rules.md)."""

from pathlib import Path

import pytest

import cosim
from cosim.calibrate import dataset
from cosim.validate import ape, e2e_profile, summarize, validate
from hwmodels import gpu

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / "validation"


def _engine_ops(hw="h200"):
    t = cosim.build_trace("llama3_8b", "prefill", 1, 512, profile="engine")
    return {op.name: op for op in t.ops}, cosim.load_hw(hw)


def test_fused_residual_rmsnorm_and_rope_bytes_by_hand():
    ops, _ = _engine_ops()
    # fused residual add + RMSNorm of 512 tokens x 4096 (bf16): reads x and the residual, writes
    # both (4 x 512 x 4096 x 2 B) plus the 4096-element weight: 16,777,216 + 8,192 B
    n = ops["attn_norm"]
    assert n.kind == "add_rmsnorm" and n.bytes == 4 * 512 * 4096 * 2 + 4096 * 2 == 16_785_408
    # fused RoPE of q (32 x 128) and k (8 x 128) of 512 tokens, in place: read + write 5120 columns
    r = ops["rope"]
    assert r.kind == "rope_fused" and r.dims["tensors"] == 1 and r.bytes == 2 * 512 * 5120 * 2 == 10_485_760


def test_fused_kernels_priced_with_their_own_parameters_on_the_h200():
    ops, hw = _engine_ops("h200")
    P = gpu.params_for(hw)
    p = P["ew.overlap_p"]
    for name, kind in (("attn_norm", "add_rmsnorm"), ("rope", "rope_fused")):
        c = gpu.estimate(ops[name], hw)
        floor, stream = P[f"ew.{kind}.floor"], P[f"ew.{kind}.mult"] * ops[name].bytes / P["ew.bw"]
        f = c.details.get("residual_factor", 1.0)  # the measured-residual correction (round 9) on the formula
        assert c.details["isolated_s"] == pytest.approx((floor ** p + stream ** p) ** (1 / p) * f, rel=1e-9)
        assert not any("not measured" in x for x in c.notes), c.notes
        assert c.details["kernels"] == 1
    # measured (fit suite 3, Triton) near streaming rate: ~1 x the compulsory bytes at ew.bw
    assert 0.9 < P["ew.add_rmsnorm.mult"] < 1.2 and 0.9 < P["ew.rope_fused.mult"] < 1.2


def test_fused_kernels_on_the_h100_borrow_and_say_so(h100_session9):
    """The H100's session-9 fit measured no fused kernels: they borrow and say so (the session-16 re-fit measured
    them in fit suite 3 on the lent H100 and prices them with their own parameters)."""
    ops, _ = _engine_ops("h100_sxm")
    hw = h100_session9
    for name in ("attn_norm", "rope"):
        assert not any("not measured" in x for x in gpu.estimate(ops[name], cosim.load_hw("h100_sxm")).notes)
    c = gpu.estimate(ops["attn_norm"], hw)
    assert any("add_rmsnorm not measured; modelled with the rmsnorm kernel's parameters" in x for x in c.notes)
    c = gpu.estimate(ops["rope"], hw)
    assert any("rope_fused not measured; modelled with the add kernel's parameters" in x for x in c.notes)


def _decode(batch, heads, kv_heads, ctx):
    return dataset.op_from_row({"kind": "attention", "fmt": "bf16", "impl": "sdpa:FLASH_ATTENTION:gqa",
                                "dims": f'{{"batch": {batch}, "heads": {heads}, "kv_heads": {kv_heads}, "q_len": 1, '
                                        f'"kv_len": {ctx}, "head_dim": 128, "causal": false}}'})


def test_fa2_decode_with_more_ctas_than_sms_by_hand():
    hw = cosim.load_hw("h200")
    P = gpu.params_for(hw)
    # b 32, 32/8 heads (GQA swapped into the query axis): 32 x 8 = 256 CTAs >= 0.8 x 132, so no
    # split-KV; 256 > 132 SMs: the KV cache (32 x 8 x 4096 x 256 x 2 B) streams at dec_bw_multi
    kv = 32 * 8 * 4096 * 256 * 2
    c = gpu.estimate(_decode(32, 32, 8, 4096), hw)
    lat = P.values.get("attn.dec_cta_lat", 0.0)  # a CTA's fixed time per wave (session 7, second round)
    t_stream = 2 * ((4096 * 256 * 2) / P["attn.cta_bw_split"] + lat)  # 2 waves of CTAs, each its head's KV
    want = P["attn.dec_floor"] + max(kv / P["attn.dec_bw_multi"], t_stream)
    assert c.details["isolated_s"] == pytest.approx(want, rel=1e-9)
    assert P["attn.dec_bw_multi"] < 0.8 * P["attn.dec_bw"]  # fitted 2.61 vs 4.47 TB/s
    # 16 x 8 = 128 CTAs < 0.8 x (2 x 132) = 211.2: FA2 splits the KV (heuristic over 2 x SMs,
    # attn.split_sms_x, session 6): 2 splits (128 x 2 / 264 = 0.97 of a wave), 256 CTAs of half
    # a head's KV each, at the ordinary bandwidth, plus the combine kernel (its fixed cost and, since
    # session 8, its time per split: it loops over the 2 splits)
    assert P["attn.split_sms_x"] == 2 and gpu.fa2_num_splits(128, 264, 32) == 2
    c = gpu.estimate(_decode(16, 32, 8, 4096), hw)
    t_stream = 2 * ((4096 * 256 * 2 / 2) / P["attn.cta_bw_split"] + lat)
    combine = P["attn.combine"] + 2 * P["attn.combine_split"]
    assert c.details["isolated_s"] == pytest.approx(
        P["attn.dec_floor"] + max(16 * 8 * 4096 * 512 / P["attn.dec_bw"], t_stream) + combine, rel=1e-9)
    # cuDNN's decode kept the session-3 form on its validation split: no multi-CTA term of its own
    assert "attn_cudnn.dec_bw_multi" not in P.values
    assert "attn.dec_bw_multi" not in gpu.for_backend(P, "cudnn").values


def test_heldout3_rows_are_never_fitted():
    row = {"suite": "heldout3"}
    assert dataset.split_of(row) == "test3"
    meas = dataset.load_ops(VAL / "h200_runs.csv")
    assert {m.row["run"] for m in meas if m.split == "test3"} == {"h200_run5"}
    e2e = dataset.load_e2e(VAL / "h200_runs.csv")
    assert {r["run"] for r in e2e if r["split"] == "test3"} == {"h200_run5"}
    assert not any(r["split"] == "fit" and r["run"] == "h200_run5" for r in e2e)


def test_heldout3_shares_no_shape_with_the_fit():
    meas = [m for m in dataset.load_ops(VAL / "h200_runs.csv") if m.op is not None]
    key = lambda m: (m.op.kind, m.op.compute_fmt, tuple(sorted(m.op.dims.items())))  # noqa: E731
    new = {key(m) for m in meas if m.split == "test3"}
    fitted = {key(m) for m in meas if m.split == "fit"}
    assert len(new) > 1000 and not new & fitted


def test_engine_fused_rows_map_to_the_engine_profile():
    assert e2e_profile({"fusion": "engine_fused", "attn_impl": "sdpa:default:gqa"}).name == "engine"
    assert e2e_profile({"fusion": "engine", "attn_impl": "sdpa:default:gqa"}).name == "engine_gemm"


@pytest.fixture(scope="module")
def heldout3():
    return validate("h200", VAL / "h200_runs.csv", split="test3", include_unreliable=True)


def test_heldout3_figures_as_published(heldout3):
    """Scored once after the session-4 freeze at 3.8 / 14.7 (docs/gpu-validation.md); since
    session 6 a SEEN suite, re-scored with the session-7 model (chosen on fit-split validation,
    not on these rows; session-6 model: 3.4 / 12.3; session-7 model 3.4 / 11.9, its second round
    3.6 / 12.1), now with the session-8 model (3.7 / 13.0; third round, cuDNN decode start fixed,
    3.7 / 12.9), the session-9 model (3.5 / 12.9), the session-10 model (unfused decode's own unaligned
    multiplier, 3.4 / 10.7), the session-11 model (fp8 GEMMs without stream-K, unfused fit order: 3.2 / 11.3)
    and the round-10 model (session 18, the measured-residual correction as s19 chose it, re-pinned after the
    heldout16 freeze, nothing chosen on it: 2.7 / 9.1) and round 13 (session 21, s24's elementwise dispatch terms,
    re-pinned after the heldout18 re-freeze, nothing chosen on it: 2.7 / 8.9): pinned so that any later change that
    moves them is seen."""
    a = {k: v["analytical"] for k, v in heldout3.classes.items()}
    assert a["all"]["n"] == 1025
    # 3.2 / 11.3 -> 2.7 / 9.1 (round 10, session 18: the measured-residual correction as s19 chose it; a seen suite
    # re-scored, nothing chosen on it); the met set, default prefill and elementwise below are unchanged by it;
    # 2.7 / 9.1 -> 2.7 / 8.9 (round 13, session 21: s24's elementwise terms; elementwise 4.6 / 14.8 -> 4.0 / 11.0)
    # -> 2.7 / 8.8 (round 19, session 27: the H200's FA2 prefill priced with round 18's form, 5.6 / 15.9 -> 4.2 / 12.1,
    # now met; seen, nothing chosen on it)
    assert (round(a["all"]["median"], 1), round(a["all"]["p90"], 1)) == (2.7, 8.8)
    met = {k for k, v in a.items() if v["n"] and v["median"] <= 5.0 and v["p90"] <= 15.0}
    assert met == {"gemm_bf16", "gemm_fp8", "attention_prefill", "attention_prefill_cudnn", "attention_decode",
                   "attention_decode_cudnn", "attention_decode_fa2", "elementwise", "all",
                   "attention_prefill_unfused", "attention_decode_unfused",  # unfused met since session 10 (seen)
                   "attention_prefill_fa2"}  # since round 19
    assert (round(a["attention_prefill"]["median"], 1), round(a["attention_prefill"]["p90"], 1)) == (1.8, 5.4)
    assert (round(a["elementwise"]["median"], 1), round(a["elementwise"]["p90"], 1)) == (4.0, 11.0)


def test_heldout3_graph_decode_end_to_end(heldout3):
    for fusion in ("eager", "engine", "engine_fused"):
        g = [r for r in heldout3.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        s = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert s["n"] == 20 and s["median"] <= 4.0, (fusion, s)


def test_vectorised_variants_price_the_new_terms_like_estimate():
    """Sweeps (hwmodels.gpu.evaluate_variants) give what estimate_trace gives on each variant
    spec for traces that use the session-4 terms: softmax row waves (hf_eager's unfused softmax),
    the fused kinds (engine), FA2 decode with more CTAs than SMs (batch 32)."""
    import numpy as np
    from hwmodels.spec import load_hw

    hw = load_hw("h200")
    bws = np.array([3.0e12, 4.8e12, 8.0e12])
    for profile, phase, batch in (("hf_eager", "prefill", 2), ("engine", "decode", 8), ("eager+fa2", "decode", 32)):
        tr = cosim.build_trace("llama3_8b", phase, batch, 2048, profile=profile)
        r = gpu.evaluate_variants(tr.ops, hw, {"memory.hbm.bandwidth": bws})
        for i, bw in enumerate(bws):
            costs, _ = gpu.estimate_trace(tr.ops, load_hw("h200", overrides={"memory.hbm.bandwidth": float(bw)}))
            assert r["total_latency_s"][i] == pytest.approx(sum(c.latency_s * o.repeat for c, o in zip(costs, tr.ops)),
                                                            rel=1e-9), (profile, bw)


def test_measured_fused_rows_rebuild_the_profile_ops():
    """A fit-suite-3 CSV row rebuilds the same op (kind, dims, bytes) the engine profile emits,
    so the fitted parameters price exactly what the trace contains."""
    ops, _ = _engine_ops()
    row = {"kind": "add_rmsnorm", "fmt": "bf16", "impl": "triton:fused_add_rmsnorm",
           "dims": '{"cols": 4096, "rows": 512}', "note": ""}
    op = dataset.op_from_row(row)
    assert (op.kind, op.bytes) == ("add_rmsnorm", ops["attn_norm"].bytes)
    row = {"kind": "rope_fused", "fmt": "bf16", "impl": "triton:rotary_embedding_neox",
           "dims": '{"cols": 5120, "rows": 512}', "note": "heads=32 kv_heads=8 head_dim=128"}
    op = dataset.op_from_row(row)
    assert (op.kind, op.dims["tensors"], op.bytes) == ("rope_fused", 1, ops["rope"].bytes)
    meas = [m for m in dataset.load_ops(VAL / "h200_runs.csv") if m.op is not None and m.split == "fit"]
    # fit suites 6, 7 and 8 (sessions 7, 8) added rows of each drawn from the held-out-4 distributions
    assert sum(m.op.kind == "add_rmsnorm" for m in meas) == 128 and sum(m.op.kind == "rope_fused" for m in meas) == 113
