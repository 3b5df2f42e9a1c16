"""The H100 calibration is the session-16 re-fit (validation/h100_refit_s15.py, validation/heldout14_rules.md): the
H200's procedure and term set on the lent H100's seven fit suites, so it carries exactly the H200's parameter
names (no term chosen on H100 rows) and measured every backend the H200 did. The session-9 calibration it replaced
is kept in validation/calibrations/ (the scored-once heldout13 figures are checked with it)."""
import cosim
from hwmodels import gpu, gpu_params


def test_refit_carries_the_h200_parameter_names_and_every_backend(h100_session9):
    h100 = gpu.params_for(cosim.load_hw("h100_sxm"))
    h200 = gpu.params_for(cosim.load_hw("h200"))
    # the same names, but a per-row cost the fit drives to its 1 ps floor is dropped (fit.fit_latency): since round 13
    # (session 21) the H200 keeps ew.rmsnorm.per_row (0.17 ns) and the H100's fitted to the floor; since round 14
    # (session 23) the H100 adds the in-stream speedup its own fit rows chose (s25_graph_terms); since round 18
    # (session 26) FA2 prefill priced as the kernel FlashAttention-2 runs (s33_fa2_kernels): its switch and combine,
    # which the H200 has too since round 19 (session 27, s35_h200_fa2_kernels)
    r18 = {"attn.prefill_kernels", "attn.skv_combine", "attn.skv_combine_bw"}
    assert set(h100.values) ^ set(h200.values) <= set(gpu_params.EW_ROW_KEYS) | {"launch.stream_speedup"}
    assert "launch.stream_speedup" in h100.values and "launch.stream_speedup" not in h200.values
    assert r18 <= set(h100.values) and r18 <= set(h200.values)
    assert h100.attention_default == h200.attention_default == "cudnn"
    for backend in ("fa2", "cudnn", "unfused"):
        gpu.for_backend(h100, backend)  # raises for a backend the calibration did not measure
    old = gpu.params_for(h100_session9)
    assert old.attention_default == "fa2" and "attn_cudnn.eff" not in old.values
    # what the re-fit adds over the session-9 fit: the H200 set's terms (stream-K, cuDNN, the fused kernels ...)
    assert {"gemm.stream_k", "attn_cudnn.eff", "ew.add_rmsnorm.mult", "ew.rope_fused.mult"} <= \
        set(h100.values) - set(old.values)


def test_refit_provenance_says_how_it_was_fitted():
    prov = cosim.load_hw("h100_sxm").sections["analytical"]["provenance"]
    assert prov["device"].startswith("NVIDIA H100 80GB HBM3 (132 SMs, 50 MiB L2")
    assert "fit3, fit4, fit5, fit6, fit7, fit8" in prov["fit"] and "fa2 backend they ran" in prov["fit"]
    assert prov["terms"].startswith("r22_h100 set (the r18_h100 set with GEMM tiles chosen from the nvjet menus") and \
        prov["terms"].endswith("asked for (--terms r22_h100)")
    assert prov["fixed"]["attn.tail"].startswith("not fitted: FA2 prefill under attn.prefill_kernels (round 18)")
    assert "no kernel-name profile of this device's attention" in prov["fixed"]["structure.attention_default"]
