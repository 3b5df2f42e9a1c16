"""The H200 calibration (fit split: run h200_run1) scored on the frozen held-out split
(run h200_run2, measured after its rules were committed), the family transfer both ways,
and implementation profiles. Asserts exactly what is met; docs/gpu-validation.md lists the rest."""

from pathlib import Path

import pytest
import yaml

import cosim
from cosim.calibrate import dataset
from cosim.calibrate.fit import fit
from cosim.calibrate.transfer import transfer_validate
from cosim.validate import ape, summarize, validate
from hwmodels import gpu

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / "validation"


@pytest.fixture(scope="module")
def held_out():
    return validate("h200", VAL / "h200_runs.csv", split="test", include_unreliable=True)


@pytest.mark.slow  # ~40 s: a full re-fit over 1471 rows
def test_fit_reproduces_the_committed_h200_calibration():
    runs = VAL / "h200_runs.csv"  # its runs' raw ops, energy, e2e and env files
    section, _ = fit(runs, "h200", runs, runs, runs)
    committed = yaml.safe_load((ROOT / "cosim/configs/hw/calibration/h200.yaml").read_text())
    assert section["params"] == committed["params"]
    assert committed["structure"]["attention_default"] == "cudnn"  # what PyTorch's SDPA ran


def test_h200_held_out_has_no_unreliable_rows_and_no_shared_shapes(held_out):
    meas = [m for m in dataset.load_ops(VAL / "h200_runs.csv") if m.op is not None]
    assert all(m.reliable for m in meas if m.split == "test")  # 1 GiB flush: no host-timed rows
    key = lambda m: (m.op.kind, m.op.compute_fmt, tuple(sorted((k, v) for k, v in m.op.dims.items())))  # noqa: E731
    test = {key(m) for m in meas if m.split == "test"}
    assert not {key(m) for m in meas if m.split == "fit" and m.suite != "fit4"} & test
    # fit suite 4 (session 6, measured after held-out 1 had long been seen) repeats 7 of its
    # RMSNorm shapes (width 5120, 3 x 2^k bytes); the held-out tables exclude them by rule 2
    shared = {key(m) for m in meas if m.suite == "fit4"} & test
    assert len(shared) == 7 and {k[0] for k in shared} == {"rmsnorm"}


def test_h200_held_out_kernel_targets(held_out):
    c = held_out.classes
    # default SDPA backend (cuDNN on the H200), GEMMs: median <= 5 %, p90 <= 15 % (issue 11)
    for cls in ("gemm_fp8", "attention_prefill", "attention_decode"):
        assert c[cls]["analytical"]["median"] <= 5.0 and c[cls]["analytical"]["p90"] <= 15.0, cls
    # bf16 GEMMs: p90 9.6 with the round-10 model (12.4 -> 9.6: round 10, session 18: the measured-residual correction
    # as s19 chose it; a seen suite re-scored, nothing chosen on it); 12.4 with the session-11 model (12.1 with the
    # session-9 model, 14.4 with the session-8 second-round model, 14.9 with the session-7 second-round model, 15.1
    # after fit5, 13.8 with the session-6 model); this suite is seen data, so the model was not changed for it
    assert c["gemm_bf16"]["analytical"]["median"] <= 5.0 and round(c["gemm_bf16"]["analytical"]["p90"], 1) == 9.6
    assert c["elementwise"]["analytical"]["median"] <= 5.0  # its p90: 11.1 % (18.4 % with the session-7 model)
    # cuDNN prefill is ~1.7x faster than FA2 on the same shapes: the backends are told apart
    assert c["attention_prefill_fa2"]["roofline"]["median"] > c["attention_prefill"]["roofline"]["median"] + 10
    for cls in ("attention_prefill_unfused", "attention_decode_unfused"):
        assert c[cls]["analytical"]["median"] <= 15.0, cls


def test_h200_graph_decode_end_to_end(held_out):
    for fusion in ("eager", "engine"):
        g = [r for r in held_out.e2e if r["mode"] == "graph" and r["fusion"] == fusion]
        s = summarize(ape([r["analytical_s"] for r in g], [r["measured_s"] for r in g]))
        assert s["n"] == 38 and s["median"] <= 4.0 and s["p90"] <= 6.0, fusion


def test_transfer_both_ways():
    # H100 parameters -> H200 kernels (like for like: the H100 calibration measured FA2 only)
    a = transfer_validate("h200", "h100_sxm", VAL / "h200_runs.csv").classes
    for cls in ("gemm_bf16", "gemm_fp8", "attention_prefill_fa2", "elementwise"):
        assert a[cls]["analytical"]["median"] <= 10.0, cls
    # FA2 decode missed the goal in session 4 (10.5 %): the H100's multi-CTA decode bandwidth was
    # scaled with HBM bandwidth, but that regime is SM-bound; session 6 keeps it (gpu_transfer.SM_BOUND_BW). 5.2 %
    # with the session-9 H100 calibration; 12.2 % with the session-16 re-fit (its FA2 decode terms are the H200
    # set's, fitted on the lent H100's fit suites; on heldout13 the same transfer is 7.2 / 31.1): published as is;
    # 12.2 -> 3.0 % with round 11's law (session 19, s22_transfer: FA2's split-KV per-CTA rate follows the datasheet
    # bandwidth; a seen split re-scored, nothing chosen on it): within the goal
    assert a["attention_decode_fa2"]["analytical"]["median"] == pytest.approx(3.0, abs=0.05)
    # H200 parameters -> H100 kernels
    b = transfer_validate("h100_sxm", "h200", VAL / "h100_ops.csv").classes
    assert b["all"]["analytical"]["median"] <= 10.0


def test_engine_profile_fuses_the_gemms_and_names_itself():
    t = cosim.build_trace("llama3_8b", "decode", 1, 1024, profile="engine")
    names = [op.name for op in t.ops]
    assert "qkv_proj" in names and "gate_up_proj" in names and "q_proj" not in names
    qkv = next(op for op in t.ops if op.name == "qkv_proj")
    assert qkv.dims["n"] == 4096 + 2 * 1024  # q + k + v of Llama-3-8B (GQA 32/8, d 128)
    assert not any(op.name.endswith("_residual") for op in t.ops)
    rep = cosim.simulate(t, "h200", level="analytical")
    assert rep.meta["implementation"].startswith("engine:")
    att = [r for r in rep.rows if r["kind"] == "attention"]
    assert att and att[0]["level"] == "analytical"


def test_a_backend_the_calibration_did_not_measure_is_refused(h100_session9):
    t = cosim.build_trace("llama3_8b", "prefill", 1, 1024, profile="eager+cudnn")
    with pytest.raises(Exception) as e:  # the H100's session-9 calibration measured FA2 only
        cosim.simulate(t, h100_session9, level="analytical")
    assert "cudnn" in str(e.value) and "did not measure" in str(e.value)
    rep = cosim.simulate(t, "h200", level="analytical")
    p = gpu.params_for(cosim.load_hw("h200"))
    assert p.attention_default == "cudnn" and rep.total_latency_s > 0
