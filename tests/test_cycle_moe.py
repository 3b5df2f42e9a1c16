"""level="cycle": routed-expert GEMMs are a grouped GEMM (one GEMM per touched expert), not one
dense expert. Before, the trace's (E, k, n) weight with density E_touched / E was priced as one
k x n matrix at density-scaled bytes: 1/E of the expert weights the roofline moves, and the cycles
of a single expert whatever the batch (Mixtral decode batch 64 ran below its memory floor)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import cosim
from hwmodels import cycle, roofline
from hwmodels.cycle import expert_groups
from hwmodels.cycle_variants import evaluate_variants
from hwmodels.estimate import estimate_ops
from hwmodels.systolic import gemm_cycles
from workloads.moe import experts_touched
from workloads.ops import Op, TensorSpec

from tests.test_cycle import tiny


def moe_gemm(E=4, top_k=2, tokens=2, k=16, n=16, touched=None, fmt="bf16"):
    """A routed-expert GEMM as the builder writes it: m = tokens x top_k rows, weight (E, k, n) with
    density E_touched / E, dims experts / experts_touched / top_k."""
    t = experts_touched(E, top_k, tokens) if touched is None else touched
    m = tokens * top_k
    return Op("expert_up_proj", "gemm", {"m": m, "n": n, "k": k, "experts": E, "experts_touched": t, "top_k": top_k},
              (TensorSpec("x", (m, k), fmt), TensorSpec("w", (E, k, n), fmt, "weight", t / E)),
              (TensorSpec("y", (m, n), fmt),), fmt)


def test_small_moe_gemm_by_hand():
    # E = 4 experts, top_k = 2, 2 tokens: m = 4 routed rows, E_touched = 4 (1 - (1 - 2/4)^2) = 3 experts.
    # Even split: 4 / 3 rows each -> 2 experts with 1 row and 1 expert with 2 rows (2 x 1 + 1 x 2 = 4).
    op = moe_gemm()
    g = expert_groups(op)
    assert g.touched == 3.0 and g.pieces == ((1, pytest.approx(2.0)), (2, pytest.approx(1.0)))
    assert g.weight_bytes == pytest.approx(2.0)  # bf16, per element of one expert's 16 x 16 matrix
    c = cycle.estimate(op, tiny())  # one 8x8 ws array, no fold overlap, 64 KiB buffers, 1 PB/s
    # ws, K = N = 16 on 8x8: 2 x 2 = 4 folds of (2R + C + t - 2) = 22 + t cycles, t = the expert's rows
    assert gemm_cycles(1, 16, 16, 8, 8, "ws").compute_cycles == 4 * 23
    assert gemm_cycles(2, 16, 16, 8, 8, "ws").compute_cycles == 4 * 24
    assert c.details["compute_cycles"] == pytest.approx(2 * 92 + 1 * 96)  # 280; one dense 4-row GEMM: 104
    d = c.details["dram_bytes"]
    assert d["filter"] == pytest.approx(3 * 16 * 16 * 2)  # each touched expert's weights once: 1536 B
    assert d["ifmap"] == pytest.approx(4 * 16 * 2)  # every routed row once
    assert d["ofmap"] == pytest.approx(4 * 16 * 2)
    assert c.bytes_by_level["dram"] == pytest.approx(op.bytes)  # = the trace's compulsory bytes
    assert c.bound == "weight-load"  # 1-2 rows per fold < the 8 cycles a weight tile takes to load
    assert c.details["experts_touched"] == 3.0
    assert c.flops == op.flops and c.energy_breakdown["mac"] > 0


def test_more_touched_experts_than_rows_is_said():
    # moe_prune rounds tokens x fractional top_k: 1 row, 1.4 experts touched -> 1 expert of 1 row, noted
    op = moe_gemm(E=4, top_k=1, tokens=1, touched=1.4)
    g = expert_groups(op)
    assert g.touched == 1.0 and g.pieces == ((1, 1.0),)
    c = cycle.estimate(op, tiny())
    assert c.details["dram_bytes"]["filter"] == pytest.approx(16 * 16 * 2)
    assert any("1.4 experts touched by 1 routed rows" in n for n in c.notes)


def test_dense_gemm_is_not_grouped():
    op = Op("g", "gemm", {"m": 4, "n": 16, "k": 16}, (TensorSpec("a", (4, 16), "bf16"),
            TensorSpec("w", (16, 16), "bf16", "weight")), (TensorSpec("c", (4, 16), "bf16"),))
    assert expert_groups(op) is None
    assert "experts_touched" not in cycle.estimate(op, tiny()).details


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.floats(0.01, 1.0))
def test_even_split_covers_every_row(m, frac):
    touched = max(frac * min(m, 256), 1e-3)
    op = moe_gemm(E=256, top_k=1, tokens=m, touched=touched)
    g = expert_groups(op)
    assert sum(r * c for r, c in g.pieces) == pytest.approx(m, rel=1e-12)
    assert sum(c for _, c in g.pieces) == pytest.approx(min(touched, m), rel=1e-12)
    assert all(r >= 1 and c >= 0 for r, c in g.pieces)
    assert len(g.pieces) == 1 or g.pieces[1][0] == g.pieces[0][0] + 1  # floor / ceil of the mean only


MIXTRAL = dict(weights="mxfp4", acts="mxfp8_e4m3")


@pytest.mark.parametrize("batch", [1, 4, 64])
def test_mixtral_decode_expert_weights_equal_the_roofline_and_respect_the_memory_floor(batch):
    hw = cosim.load_hw("mx_systolic_128")
    tr = cosim.build_trace("mixtral_8x7b", "decode", batch, 2048, **MIXTRAL)
    costs, _ = estimate_ops(tr.ops, hw, "cycle", False)
    bw = hw.main_memory.bandwidth_Bps
    experts = [(op, c) for op, c in zip(tr.ops, costs) if op.name.startswith("expert_") and op.kind == "gemm"]
    assert len(experts) == 3
    for op, c in experts:
        roof = roofline.estimate(op, hw)
        w = sum(t.nbytes for t in op.inputs if t.role == "weight")
        assert c.details["dram_bytes"]["filter"] == pytest.approx(w, rel=1e-12)
        assert c.bytes_by_level[hw.main_memory.name] >= roof.bytes_by_level[hw.main_memory.name] * (1 - 1e-12)
        assert c.latency_s >= op.bytes / bw  # never below the memory floor (batch 64: 8.06 GB x 32 / 1.64 TB/s)
        assert c.latency_s >= roof.latency_s
        assert c.details["experts_touched"] == pytest.approx(op.dims["experts_touched"])
    if batch == 64:  # E_touched ~ 8: every expert's weights, and a grouped GEMM of 8 experts x 16 rows
        op, c = experts[0]
        assert op.dims["experts_touched"] == pytest.approx(8.0, abs=1e-6)
        assert c.details["expert_rows"][0][0] == 16  # 128 rows / 7.9999999 experts: 16 each (a 1e-7 share with 17)
        assert c.latency_s * op.repeat >= 8.06e9 / bw


def test_mixtral_cycles_grow_with_the_experts_touched():
    """One dense expert's cycles at every batch was the defect: the grouped GEMM runs E_touched of them."""
    hw = cosim.load_hw("mx_systolic_128")
    lat = {}
    for batch in (1, 4, 64):
        tr = cosim.build_trace("mixtral_8x7b", "decode", batch, 2048, **MIXTRAL)
        op = next(o for o in tr.ops if o.name == "expert_gate_proj")
        lat[batch] = cycle.estimate(op, hw).details["compute_cycles"]
    assert lat[1] < lat[4] < lat[64]
    assert lat[64] / lat[1] == pytest.approx(8 / 2, rel=0.02)  # 8 experts of 16 rows vs 2 of 1: load-bound folds


def test_every_weight_tensor_of_a_compressed_expert_is_loaded():
    """qmoe stores codes + per-row (min, max) + offsets per expert: all of them cross DRAM, as in the roofline."""
    hw = cosim.load_hw("mx_systolic_128")
    tr = cosim.build_trace("mixtral_8x7b", "decode", 4, 2048, recipe="qmoe", **MIXTRAL)
    costs, _ = estimate_ops(tr.ops, hw, "cycle", True)
    for op, c in zip(tr.ops, costs):
        if op.name.startswith("expert_") and op.kind == "gemm":
            w = sum(t.nbytes for t in op.inputs if t.role == "weight")
            assert len([t for t in op.inputs if t.role == "weight"]) == 3
            assert c.details["dram_bytes"]["filter"] == pytest.approx(w, rel=1e-12)


def test_resmoe_svd_residual_factors_are_read_for_every_touched_expert():
    """resmoe_svd's per-expert residual U (E, k, r) / V (E, r, n) carry the routed dims of the expert GEMM
    they replace, so the cycle level loads every touched expert's factors, as the roofline does
    (before: 1/E of them, 1.18 MB vs 9.47 MB per layer for residual_u at batch 4)."""
    hw = cosim.load_hw("mx_systolic_128")
    tr = cosim.build_trace("mixtral_8x7b", "decode", 4, 2048, recipe="resmoe_svd", **MIXTRAL)
    costs, _ = estimate_ops(tr.ops, hw, "cycle", True)
    resid = [(op, c) for op, c in zip(tr.ops, costs) if ".residual_" in op.name and op.kind == "gemm"]
    assert resid
    for op, c in resid:
        w = sum(t.nbytes for t in op.inputs if t.role == "weight")
        assert c.details["dram_bytes"]["filter"] == pytest.approx(w, rel=1e-12), op.name


@pytest.mark.parametrize("phase,batch,seq", [("decode", 4, 2048), ("decode", 64, 1024), ("prefill", 1, 256)])
@pytest.mark.parametrize("base_over", [{}, {"accelerator.dataflow": "os", "accelerator.sram.filter": "300 KiB"},
                                       {"accelerator.dataflow": "is", "accelerator.fold_overlap": False}])
def test_variants_path_equals_the_per_op_model_on_moe(phase, batch, seq, base_over):
    tr = cosim.build_trace("mixtral_8x7b", phase, batch, seq, **MIXTRAL)
    base = cosim.load_hw("mx_systolic_128", overrides=base_over or None)
    var = {"accelerator.rows": [32, 128, 200], "accelerator.arrays": [1, 4, 16],
           "memory.hbm.bandwidth": [0.8e12, 1.6384e12, 4e12]}
    res = evaluate_variants(tr.ops, base, {k: np.asarray(v, dtype=float) for k, v in var.items()}, True)
    for j in range(3):
        point = cosim.load_hw("mx_systolic_128", overrides={**base_over, **{k: v[j] for k, v in var.items()}})
        costs, _ = estimate_ops(tr.ops, point, "cycle", True)
        assert [c.latency_s for c in costs] == res["latency_s"][:, j].tolist()  # bit for bit
        assert [c.energy_j for c in costs] == res["energy_j"][:, j].tolist()
    assert not any(math.isnan(x) for x in res["total_latency_s"])


@pytest.mark.parametrize("kw,tensors", [({"recipe": "spqr3"}, 3), ({"weights": "nvfp4"}, 1)])
def test_dense_gemm_loads_every_stored_weight_tensor(kw, tensors):
    """Every stored weight tensor crosses DRAM at the cycle level, as in the roofline: SpQR's codes + two
    statistics tensors (Llama-3-8B q_proj 6,291,456 + 786,432 + 524,288 = 7,602,176 B; before, the codes'
    format alone priced the whole matrix) and NVFP4's 4 B per-tensor scale (9,437,184 + 4 B)."""
    hw = cosim.load_hw("mx_systolic_128")
    tr = cosim.build_trace("llama3_8b", "decode", 4, 2048, **kw)
    costs, _ = estimate_ops(tr.ops, hw, "cycle", True)
    op, c = next((o, c) for o, c in zip(tr.ops, costs) if o.name == "q_proj")
    w = [t for t in op.inputs if t.role == "weight"]
    assert len(w) == tensors
    assert c.details["dram_bytes"]["filter"] == pytest.approx(sum(t.nbytes for t in w), rel=1e-12)
    if "recipe" in kw:
        assert sum(t.nbytes for t in w) == 7_602_176
    else:
        assert sum(t.nbytes for t in w) == 4096 * 4096 * 4.5 / 8 + 4
