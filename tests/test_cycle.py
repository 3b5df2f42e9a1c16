"""level="cycle": GEMMs, attention and elementwise ops on systolic accelerators."""

import math

import pytest

from hwmodels import cycle
from hwmodels.accel import parse_accelerator
from hwmodels.spec import HardwareError, HardwareSpec, MemoryLevel, UnsupportedFormatError
from hwmodels.systolic import gemm_cycles
from workloads.ops import Op, TensorSpec

from hwmodels.spec import load_hw as load


def tiny(bandwidth=1e15, formats=("bf16",), rates=None, overlap=False, arrays=1, sram="64 KiB",
         dataflow="ws", latency="0 ns", energy=1e-12):
    sec = {"arrays": arrays, "rows": 8, "cols": 8, "dataflow": dataflow, "fold_overlap": overlap,
           "pe": {"formats": list(formats), "lanes": 1, **({"rates": rates} if rates else {})},
           "vector": {"lanes": 8, "flops_per_lane": 2},
           "sram": {"ifmap": sram, "filter": sram, "ofmap": sram}, "dram_latency": latency}
    return HardwareSpec(name="tiny", kind="accelerator", clock_hz=1e9, peak_flops={"bf16": 128e9},
                        memory=(MemoryLevel("dram", 1e12, bandwidth, energy),), static_power_w=1.0,
                        sections={"accelerator": sec}, source="tiny.yaml")


def gemm(m, n, k, fmt="bf16", wfmt=None):
    return Op("g", "gemm", {"m": m, "n": n, "k": k},
              (TensorSpec("a", (m, k), fmt), TensorSpec("w", (k, n), wfmt or fmt, "weight")),
              (TensorSpec("c", (m, n), fmt),), fmt)


def test_compute_bound_gemm_is_the_closed_form():
    hw = tiny()
    c = cycle.estimate(gemm(64, 64, 64), hw)
    want = gemm_cycles(64, 64, 64, 8, 8, "ws").compute_cycles  # 64 folds x (16+8+64-2) = 5504
    assert want == 64 * 86
    assert c.details["compute_cycles"] == want
    assert c.bound == "compute"
    # edges: first weight tile + first input rows in, last outputs out, at 1 PB/s: negligible
    assert c.latency_s == pytest.approx(want / 1e9, rel=1e-3)
    assert c.provenance == "cycle-model"


def test_bandwidth_bound_gemm_approaches_bytes_over_bandwidth():
    hw = tiny(bandwidth=1e6)  # 1 MB/s
    c = cycle.estimate(gemm(64, 64, 64), hw)
    dram = c.bytes_by_level["dram"]
    assert c.bound == "dram"
    assert dram >= (3 * 64 * 64) * 2  # at least A, W and C once, 2 B each
    assert c.latency_s == pytest.approx(dram / 1e6, rel=0.05)


def test_energy_components_sum_to_total():
    hw = tiny()
    for op in (gemm(33, 17, 70), Op("n", "rmsnorm", {"rows": 4, "cols": 64},
                                    (TensorSpec("x", (4, 64), "bf16"),), (TensorSpec("y", (4, 64), "bf16"),))):
        c = cycle.estimate(op, hw)
        assert sum(c.energy_breakdown.values()) == pytest.approx(c.energy_j)
        assert c.energy_breakdown["static"] == pytest.approx(1.0 * c.latency_s)
        assert c.energy_breakdown["dram"] == pytest.approx(c.bytes_by_level["dram"] * 1e-12)


def test_packing_halves_reduction_cycles():
    hw = tiny(formats=("mxfp8_e4m3", "mxfp4"))
    c8 = cycle.estimate(gemm(64, 8, 256, "mxfp8_e4m3"), hw)
    c4 = cycle.estimate(gemm(64, 8, 256, "mxfp4"), hw)
    # ws: K = 256 on 8 rows -> 32 folds; mxfp4 packs two MACs per PE -> K_eff = 128, 16 folds
    assert c8.details["folds"] == 32 and c4.details["folds"] == 16
    assert c4.details["compute_cycles"] == pytest.approx(c8.details["compute_cycles"] / 2)


def test_rate_below_one_stretches_cycles():
    hw = tiny(formats=("mxfp8_e4m3", "bf16"), rates={"bf16": 0.5})
    c8 = cycle.estimate(gemm(16, 16, 16, "mxfp8_e4m3"), hw)
    c16 = cycle.estimate(gemm(16, 16, 16, "bf16"), hw)
    assert c16.details["compute_cycles"] == pytest.approx(2 * c8.details["compute_cycles"])


def test_unsupported_format_error_and_explicit_fallback():
    hw = tiny(formats=("mxfp8_e4m3",))
    with pytest.raises(UnsupportedFormatError, match="tiny.yaml: accelerator.pe.formats.*'bf16'"):
        cycle.estimate(gemm(8, 8, 8, "bf16"), hw)
    c = cycle.estimate(gemm(8, 8, 8, "bf16"), hw, compute_fallback=True)
    assert any("explicit fallback" in n for n in c.notes)


def test_arrays_split_columns_of_a_gemv():
    one = cycle.estimate(gemm(1, 64, 64), tiny(arrays=1))
    four = cycle.estimate(gemm(1, 64, 64), tiny(arrays=4))
    # N = 64 split over 4 arrays: each array runs 1 x 16 x 64 -> 8 x 2 = 16 folds instead of 64
    assert one.details["folds"] == 64 and four.details["folds"] == 16


def test_attention_decode_two_matmuls_and_softmax():
    hw = tiny(formats=("bf16",))
    b, h, kvh, kv, d = 1, 4, 2, 32, 16
    op = Op("attn", "attention", {"batch": b, "heads": h, "kv_heads": kvh, "q_len": 1, "kv_len": kv,
                                  "head_dim": d, "causal": True},
            (TensorSpec("q", (b, 1, h, d), "bf16"), TensorSpec("k", (b, kv, kvh, d), "bf16", "kv"),
             TensorSpec("v", (b, kv, kvh, d), "bf16", "kv")), (TensorSpec("o", (b, 1, h, d), "bf16"),), "bf16")
    c = cycle.estimate(op, hw)
    # GQA group of 2 query heads packed in M: QK^T = 2 instances of (2 x 32 x 16), PV = (2 x 16 x 32)
    s1 = gemm_cycles(2, 32, 16, 8, 8, "ws").compute_cycles * 2
    s2 = gemm_cycles(2, 16, 32, 8, 8, "ws").compute_cycles * 2
    assert c.details["compute_cycles"] == s1 + s2
    assert c.details["vector_cycles"] == pytest.approx(5 * h * kv / 16)  # softmax 5 FLOP/elem, 16 FLOP/cycle
    assert c.bytes_by_level["dram"] == pytest.approx(op.bytes)


def test_bad_sections_are_clear_errors():
    with pytest.raises(HardwareError, match="x.yaml: accelerator.dataflow: got 'rs'"):
        parse_accelerator({"rows": 8, "cols": 8, "dataflow": "rs", "pe": {"formats": ["bf16"]},
                           "sram": {"ifmap": "1 MiB", "filter": "1 MiB", "ofmap": "1 MiB"}}, "x.yaml")
    with pytest.raises(HardwareError, match="accelerator.sram.filter: got 128 B; expected at least"):
        parse_accelerator({"rows": 8, "cols": 8, "pe": {"formats": ["bf16"]},
                           "sram": {"ifmap": "1 MiB", "filter": "128 B", "ofmap": "1 MiB"}}, "x.yaml")
    with pytest.raises(HardwareError, match="pe.formats: got 'fp7'"):
        parse_accelerator({"rows": 8, "cols": 8, "pe": {"formats": ["fp7"]},
                           "sram": {"ifmap": "1 MiB", "filter": "1 MiB", "ofmap": "1 MiB"}}, "x.yaml")
    with pytest.raises(HardwareError, match="unknown key"):
        parse_accelerator({"rows": 8, "cols": 8, "colz": 3}, "x.yaml")


BUNDLED = ["mx_systolic_128", "tpu_v4_like_128", "mxfp4_systolic_256", "mx6_systolic_128"]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_peaks_match_their_arrays(name):
    hw = load(name)
    cfg = cycle.config_for(hw)
    for fmt in cfg.pe.formats:
        assert hw.peak_flops[fmt] == pytest.approx(cfg.peak_flops(fmt, hw.clock_hz), rel=1e-3), fmt
    area = cycle.area_breakdown(hw)
    assert area["total"] == pytest.approx(sum(v for k, v in area.items() if k != "total"))


def test_llama3_8b_decode_trace_end_to_end():
    from workloads.builder import build_trace
    from workloads.models import load_model

    trace = build_trace(load_model("llama3_8b"), phase="decode", batch=1, seq=4096)
    hw = load("mx_systolic_128")
    costs, notes = cycle.estimate_trace(trace.ops, hw)
    total = sum(c.latency_s * op.repeat for op, c in zip(trace.ops, costs))
    weights = sum(t.nbytes * op.repeat for op in trace.ops for t in op.inputs if t.role == "weight")
    # decode streams every weight once: never faster than weights / HBM bandwidth
    assert total >= weights / hw.main_memory.bandwidth_Bps
    assert all(c.energy_j > 0 for c in costs)
    assert all(math.isfinite(c.latency_s) for c in costs)


def test_simulate_level_cycle_end_to_end():
    import cosim

    trace = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=1024)
    rep = cosim.simulate(trace, "mx_systolic_128", level="cycle")
    assert rep.level == "cycle" and rep.total_latency_s > 0
    assert all(r["provenance"] == "cycle-model" for r in rep.rows)
    # energy columns by component add up to each row's energy; mx_systolic_128.yaml gives no static
    # power, so static is unknown (NaN) and the energy is the dynamic components' sum
    for r in rep.rows:
        assert math.isnan(r["energy_static_j"])
        parts = sum(v for k, v in r.items() if k.startswith("energy_") and k.endswith("_j")
                    and k not in ("energy_j", "energy_static_j"))
        assert parts == pytest.approx(r["energy_j"])


def test_packed_sram_traffic_counts_real_elements():
    hw = tiny(formats=("mxfp8_e4m3", "mxfp4"))
    c8 = cycle.estimate(gemm(64, 8, 256, "mxfp8_e4m3"), hw)
    c4 = cycle.estimate(gemm(64, 8, 256, "mxfp4"), hw)
    # same elements read from SRAM; mxfp4 elements are 4.25 bits vs 8.25
    ratio = (4 + 8 / 32) / (8 + 8 / 32)
    assert c4.details["sram_bytes"]["filter"] == pytest.approx(c8.details["sram_bytes"]["filter"] * ratio)


def test_stream_tiling_avoids_partial_sum_spills():
    # ws, 8x8, ofmap buffer 256 B -> 128 B usable = 32 fp32 partial sums = 4 rows of 8 columns.
    # 64 x 8 x 32 (bf16): untiled, each of the 4 K-folds spills 64 x 8 fp32 partial sums;
    # tiled in chunks of 4 rows, partial sums stay on chip and the 32 x 8 weights are read 16x.
    def hw(tiling):
        h = tiny(bandwidth=1e9, sram="4 KiB")
        sec = dict(h.sections["accelerator"], stream_tiling=tiling,
                   sram={"ifmap": "4 KiB", "filter": "4 KiB", "ofmap": "256 B"})
        return HardwareSpec(**{**h.__dict__, "sections": {"accelerator": sec}})

    plain = cycle.estimate(gemm(64, 8, 32), hw(False))
    tiled = cycle.estimate(gemm(64, 8, 32), hw(True))
    assert plain.details["stream_chunk"] == 64 and tiled.details["stream_chunk"] == 4
    d_plain, d_tiled = plain.details["dram_bytes"], tiled.details["dram_bytes"]
    # untiled: 3 spilled rounds written and read back (fp32) + final bf16 outputs
    assert d_plain["ofmap"] == pytest.approx(3 * 512 * 4 * 2 + 512 * 2)
    assert d_tiled["ofmap"] == pytest.approx(512 * 2)
    assert d_tiled["filter"] == pytest.approx(16 * 32 * 8 * 2)
    assert tiled.latency_s < plain.latency_s


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 300), st.integers(1, 6),
       st.sampled_from(["os", "ws", "is"]), st.integers(1, 4), st.sampled_from(["256 B", "4 KiB", "1 MiB"]))
def test_gemm_cost_invariants(m, n, k, b, df, arrays, sram):
    from hwmodels.cycle import gemm_cost

    hw = tiny(dataflow=df, arrays=arrays, sram=sram, overlap=True)
    cfg = cycle.config_for(hw)
    g = gemm_cost(m, n, k, b, "bf16", cfg, 2, 2, 2, bytes_per_cycle=4.0)
    assert g.cycles * cfg.pes >= m * n * k * b  # never beats the PEs
    d = g.dram
    assert d["ifmap"] >= m * k * b * 2 - 1e-9 and d["filter"] >= k * n * b * 2 - 1e-9
    assert d["ofmap"] >= m * n * b * 2 - 1e-9
    assert g.macs == m * n * k * b and 1 <= g.arrays_busy <= cfg.arrays


def test_os_k_tiling_reuses_weight_blocks():
    # os, 8x8, bf16. Filter buffer 256 B = 128 weights -> 64 usable -> K chunks of 64 // 8 = 8;
    # ofmap buffer 1 KiB = 256 fp32 -> 128 usable -> M chunks of 128 // 8 = 16 rows.
    # 64 x 8 x 64: untiled, the 64 x 8 weight block (512) does not fit and is re-read by each
    # of the 8 row folds (8 x 1 KiB); tiled, once per M chunk (4 x 1 KiB).
    h = tiny(bandwidth=1e9, dataflow="os")
    sec = dict(h.sections["accelerator"], sram={"ifmap": "256 B", "filter": "256 B", "ofmap": "1 KiB"})
    hw = HardwareSpec(**{**h.__dict__, "sections": {"accelerator": sec}})
    c = cycle.estimate(gemm(64, 8, 64), hw)
    assert (c.details["k_chunk"], c.details["stream_chunk"]) == (8, 16)
    assert c.details["dram_bytes"]["filter"] == pytest.approx(4 * 64 * 8 * 2)
    # 8 K chunks, each 8 row folds of 8 + 8 + 8 - 2 cycles
    assert c.details["compute_cycles"] == 8 * 8 * 22
    untiled = cycle.estimate(gemm(64, 8, 64), HardwareSpec(**{**hw.__dict__, "sections": {
        "accelerator": dict(sec, stream_tiling=False)}}))
    assert untiled.details["dram_bytes"]["filter"] == pytest.approx(8 * 64 * 8 * 2)
    assert c.latency_s < untiled.latency_s


def test_prefill_splits_rows_when_columns_are_few():
    # 4 arrays of 8x8 (os), 64 x 16 x 8. Split N: 4 columns per array, 8 row folds x 22 cycles
    # = 176. Split M: 16 rows x 16 columns per array = 2 x 2 folds x 22 = 88 (weights broadcast).
    c = cycle.estimate(gemm(64, 16, 8), tiny(arrays=4, dataflow="os"))
    assert c.details["split_dim"] == "m"
    assert c.details["compute_cycles"] == 4 * 22
    # a GEMV (M = 1) can only split its columns
    assert cycle.estimate(gemm(1, 16, 8), tiny(arrays=4, dataflow="os")).details["split_dim"] == "n"


def test_gemm_cost_is_a_dataclass_with_to_dict():
    from hwmodels.cycle import GemmCost, gemm_cost

    cfg = cycle.config_for(tiny(dataflow="os"))
    g = gemm_cost(8, 8, 8, 1, "bf16", cfg, 2, 2, 2)
    assert isinstance(g, GemmCost) and g.macs == 8 ** 3 and g.to_dict()["macs"] == 512
    assert g.to_dict()["dram"] == g.dram and g.folds >= 1
