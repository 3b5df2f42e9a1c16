"""The fast single-evaluation path (issue 14): traced trace templates, the compiled
roofline and lazy reports give exactly what the per-op path gives."""

from __future__ import annotations

import copy
import math
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest

import cosim
from hwmodels.spec import list_hw
from workloads.builder import _Builder
from workloads.models import list_models
from workloads.symbolic import Tape
from workloads.template import op_numbers, template_for
from workloads.trace import Trace

WORKLOADS = [(1, 1), (3, 17), (8, 4096), (2, 5000)]


def _materialised(t: Trace) -> Trace:
    """The same trace built op by op (no template numbers attached)."""
    return Trace(ops=t.ops, model=t.model, phase=t.phase, batch=t.batch, seq=t.seq, recipe=t.recipe, meta=t.meta)


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("model", list_models())
def test_template_numbers_equal_the_built_ops(model):
    for phase in ("decode", "prefill"):
        for attention in ("fused", "unfused"):
            for b, s in WORKLOADS:
                t = cosim.build_trace(model, phase, b, s, weights="mxfp4", kv="fp8_e4m3", attention=attention,
                                      allow_beyond_max_context=True)  # 5,000 > Llama-2's 4,096: shapes only
                tmpl, nums = t._numbers
                parts = tmpl.split(nums)
                got = list(zip(parts["flops"], parts["bytes"], parts["mnk"], parts["elem_bytes"]))
                assert got == [op_numbers(o) for o in t.ops], (model, phase, attention, b, s)
                assert tmpl.names == tuple(o.name for o in t.ops)
                ref = _Builder(cosim.load_model(model), phase, b, s, "mxfp4", "bf16", "fp8_e4m3", attention)
                assert parts["footprint"] == ref.footprint()  # builds its own ops


def test_sliding_window_branches_get_their_own_template():
    # Mistral's 4096-token window: decode below and above it take different branches
    m = cosim.load_model("mistral_7b")
    below = template_for(m, "decode", 1, 1000, "bf16", "bf16", "bf16", "fused", builder=_Builder)
    above = template_for(m, "decode", 1, 9000, "bf16", "bf16", "bf16", "fused", builder=_Builder)
    assert below is not above
    assert template_for(m, "decode", 4, 2000, "bf16", "bf16", "bf16", "fused", builder=_Builder) is below
    t = cosim.build_trace(m, "decode", 1, 9000)
    kv = t.ops[[o.name for o in t.ops].index("attention")].dims["kv_len"]
    assert kv == 4096  # the cache holds the window, not the context


@pytest.mark.parametrize("hw", ["h100_sxm", "mx_systolic_128", "alveo_u280", "tpu_v5e"])
def test_simulate_fast_path_equals_per_op_path(hw):
    spec = cosim.load_hw(hw)
    for model in ("llama3_8b", "mixtral_8x7b", "deepseek_v2_lite", "mistral_7b"):
        for phase in ("decode", "prefill"):
            for b, s in ((1, 1), (8, 4096), (2, 5000)):
                t = cosim.build_trace(model, phase, b, s, weights="mxfp4", allow_beyond_max_context=True)
                cosim.simulate(t, spec, compute_fallback=True)  # first use: numpy; then compiled
                fast = cosim.simulate(t, spec, compute_fallback=True)
                slow = cosim.simulate(_materialised(t), spec, compute_fallback=True)
                assert fast.total_latency_s == slow.total_latency_s
                assert _same(fast.total_energy_j, slow.total_energy_j)
                assert fast.total_flops == slow.total_flops and fast.total_bytes == slow.total_bytes
                assert fast.notes == slow.notes and fast.footprint == slow.footprint
                pd.testing.assert_frame_equal(fast.to_frame(), slow.to_frame())
                assert len(fast.rows) == len(slow.rows)
                for rf, rs in zip(fast.rows, slow.rows):
                    assert rf.keys() == rs.keys() and all(_same(rf[k], rs[k]) for k in rs)


def test_every_bundled_spec_compiled_roofline_matches_numpy():
    from cosim.simulate import _PLANS, _numpy_columns
    from hwmodels.roofline import _cached_hw_table

    t = cosim.build_trace("llama3_8b", "prefill", 4, 3000, weights="mxfp4")
    for hw in list_hw():
        spec = cosim.load_hw(hw)
        cosim.simulate(t, spec, compute_fallback=True)  # the first use prices with numpy
        rep = cosim.simulate(t, spec, compute_fallback=True)  # the second with the compiled roofline
        ref = _numpy_columns(t, *t._numbers, spec, _cached_hw_table(spec, single=True), True, None)
        for k, v in ref.items():
            assert all(_same(a, b) for a, b in zip(v, rep._eager[k])), (hw, k)
        compiled = [p[2] for p in _PLANS.values() if p[0] is t._numbers[0] and p[1] is spec]
        assert compiled and compiled[0] is not None  # the compiled path (or False: not compilable) ran


def test_lazy_trace_and_report_pickle_and_copy():
    t = cosim.build_trace("llama3_8b", "decode", 2, 512)
    assert "ops" not in t.__dict__  # not built yet
    t2 = pickle.loads(pickle.dumps(t))
    assert t2.ops == t.ops and t2 == t
    assert copy.deepcopy(t).ops == t.ops
    r = cosim.simulate(t, "h100_sxm")
    assert "rows" not in r.__dict__
    r2 = pickle.loads(pickle.dumps(r))
    assert r2.rows == r.rows and r2.total_latency_s == r.total_latency_s


def test_report_totals_follow_edited_rows():
    r = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 128), "h100_sxm")
    total = r.total_latency_s
    r.rows[0]["latency_s"] += 1.0
    assert r.total_latency_s == pytest.approx(total + 1.0)


def test_symbolic_value_refuses_to_become_a_constant():
    tape = Tape({"B": 3})
    B = tape.inputs["B"]
    with pytest.raises(TypeError, match="symbolic"):
        int(B * 2)
    assert (B * 4 + 1).value == 13
    assert (B < 5) is True and tape.guards[-1] == ("(B < 5)", True)
    fn = tape.compile([B * 4 + 1, 7.5])
    assert fn(10) == (41, 7.5)
    assert np.array_equal(fn(np.array([1, 2]))[0], [5, 9])


def test_spec_cache_sees_edited_files(tmp_path):
    src = cosim.load_hw("h100_sxm").source
    path = tmp_path / "my_gpu.yaml"
    shutil.copy(src, path)
    text = path.read_text()
    cal = [ln for ln in text.splitlines() if ln.startswith("calibration:")]
    if cal:  # the bundled file names its calibration relative to itself
        path.write_text(text.replace(cal[0], ""))
    first = cosim.load_hw(str(path))
    assert cosim.load_hw(str(path)) is first  # unchanged file: the cached spec
    path.write_text(path.read_text().replace("3.35 TB/s", "4.00 TB/s"))
    second = cosim.load_hw(str(path))
    assert second.main_memory.bandwidth_Bps == pytest.approx(4.0e12)
    assert first.main_memory.bandwidth_Bps == pytest.approx(3.35e12)
