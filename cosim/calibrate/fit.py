"""Fit the analytical GPU model's parameters to measurement CSVs; write the calibration YAML.

Method: for each group of parameters (GEMM; attention prefill; attention decode;
elementwise) a Levenberg-Marquardt least-squares fit of log(predicted / measured) over
the fit-split rows (dataset.split_of: the default suite), with Huber weights so that a
few odd kernels (a cuBLAS heuristic switch) do not drag the fit. Parameters are fitted
in log space (all positive). Energy: linear least squares of (E - P_static*t) on bytes
and FLOPs per class over the fit-split energy rows; P_static = mean idle power. Launch
constants come from the launch rows and the end-to-end eager runs of the fit suite.

numpy only (no scipy), so CI can re-fit from the committed CSVs.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import yaml

from cosim.calibrate import dataset, residuals
from hwmodels import gpu, gpu_library, gpu_params
from hwmodels.gpu import GpuParams
from hwmodels.gpu_calibration import to_section
from workloads.io import InputError

__all__ = ["fit", "fit_to_file", "lm_fit", "base_spec", "terms_for", "INITIAL", "FIXED", "TERM_SETS"]

# Starting points (order of magnitude only; the fit moves them).
INITIAL = {
    "gemm.mma_eff.bf16": 0.8, "gemm.mma_eff.fp8_e4m3": 0.7, "gemm.tile_c": 20.0, "gemm.bw": 2.9e12,
    "gemm.floor": 5e-6, "gemm.overlap_p": 2.0,
    "attn.eff": 0.5, "attn.cta_overhead": 2e-6, "attn.floor": 5e-6, "attn.tail": 0.5,
    "attn.dec_floor": 8e-6, "attn.dec_bw": 3e12, "attn.cta_bw_split": 30e9, "attn.cta_bw_nosplit": 10e9,
    "attn.combine": 3e-6,
    "ew.bw": 3e12, "ew.overlap_p": 1.5,
    **{f"ew.{k}.floor": 5e-6 for k in gpu.EW_KINDS}, **{f"ew.{k}.mult": 1.0 for k in gpu.EW_KINDS},
    **{f"ew.{k}.floor_per_col": 3e-10 for k in gpu.ROW_KINDS},
    # set after the latency fit (they do not affect latency)
    "graph.gap": 1e-6, "launch.overlap": 0.0, "eager.cpu_per_kernel": 1e-5, "energy.static": 0.0,
    "energy.per_byte": 0.0, "energy.per_kv_byte": 0.0,
    "energy.per_flop.bf16": 0.0, "energy.per_flop.fp8_e4m3": 0.0, "energy.per_flop.attention": 0.0,
    "energy.power_cap": 700.0,
}
# Fixed by definition: ew.bw IS the copy kernel's bandwidth.
FIXED = {"ew.copy.mult": 1.0}

GROUPS = {
    "gemm": ["gemm.mma_eff.bf16", "gemm.mma_eff.fp8_e4m3", "gemm.tile_c", "gemm.bw", "gemm.floor", "gemm.overlap_p"],
    # decode before prefill: FA2's forward split-KV (session 7) prices the prefill with decode's
    # split heuristic multiple and combine kernel
    "attention_decode": ["attn.dec_floor", "attn.dec_bw", "attn.cta_bw_split", "attn.cta_bw_nosplit", "attn.combine"],
    "attention_prefill": ["attn.eff", "attn.cta_overhead", "attn.floor", "attn.tail"],
    "elementwise": ["ew.bw", "ew.overlap_p"] + [f"ew.{k}.floor" for k in gpu.EW_KINDS]
                   + [f"ew.{k}.mult" for k in gpu.EW_KINDS if f"ew.{k}.mult" not in FIXED]
                   + [f"ew.{k}.floor_per_col" for k in gpu.ROW_KINDS],
}
CLASSES = {"gemm": ("gemm_bf16", "gemm_fp8"), "attention_prefill": ("attention_prefill_fa2",),
           "attention_decode": ("attention_decode_fa2",), "elementwise": ("elementwise",)}
# other fused attention backends: their own parameter set, fitted when the suite measured them
# (rows pinned to the backend, plus the default-backend rows when the default ran that backend)
BACKEND_GROUPS = {
    "attention_prefill_cudnn": ("cudnn", ["eff", "cta_overhead", "floor", "tail"], "attention_prefill"),
    "attention_decode_cudnn": ("cudnn", ["dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine"],
                               "attention_decode"),
}


def base_spec(hw_name: str):
    """The hardware spec without its calibration (the fit must not need its own output)."""
    from hwmodels.spec import hw_path, load_hw
    path = hw_path(hw_name)
    doc = yaml.safe_load(Path(path).read_text())
    doc.pop("calibration", None)
    doc.pop("analytical", None)
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(doc, f)
        tmp = f.name
    try:
        spec = load_hw(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return spec


# ---------------------------------------------------------------------------- predictions

def predict(P: GpuParams, meas, hw) -> np.ndarray:
    """Predicted kernel time of each measurement (same formulas as hwmodels.gpu.estimate)."""
    out = np.empty(len(meas))
    gemm_idx = [i for i, m in enumerate(meas) if m.op.kind == "gemm"]
    for fmt in ("bf16", "fp8_e4m3"):
        idx = [i for i in gemm_idx if gpu._gemm_fmt(meas[i].op.compute_fmt) == fmt]
        if idx:
            ops = [meas[i].op for i in idx]
            e_in = 1.0 if fmt.startswith("fp8") else 2.0
            m_, n_, k_ = (np.array([o.dims[x] for o in ops], dtype=float) for x in "mnk")
            out[idx] = gpu.gemm_time(P, m_, n_, k_, np.ones(len(ops)), hw.peak(fmt), e_in, 2.0, fmt)
            if P.residuals is not None:  # a committed calibration's measured-residual correction, as estimate() applies
                out[idx] *= np.array([gpu.residual_correction(o, P)[0] for o in ops])
    for i, m in enumerate(meas):
        if m.op.kind != "gemm":
            out[i] = gpu.estimate(m.op, hw, params=P).details["isolated_s"]
    return out


# ---------------------------------------------------------------------------- optimiser

def lm_fit(residual, x0, iters=60, huber=0.15):
    """Levenberg-Marquardt on log-parameters with Huber (IRLS) weights. residual(x) -> r."""
    x = np.array(x0, dtype=float)
    lam = 1e-2

    def cost(r):
        a = np.abs(r)
        return float(np.sum(np.where(a <= huber, 0.5 * a ** 2, huber * (a - 0.5 * huber))))

    r = residual(x)
    c = cost(r)
    for _ in range(iters):
        w = np.sqrt(np.where(np.abs(r) <= huber, 1.0, huber / np.maximum(np.abs(r), 1e-12)))
        J = np.empty((len(r), len(x)))
        for j in range(len(x)):
            dx = np.zeros_like(x)
            dx[j] = 1e-4
            J[:, j] = (residual(x + dx) - r) / 1e-4
        Jw, rw = J * w[:, None], r * w
        A, g = Jw.T @ Jw, Jw.T @ rw
        improved = False
        for _ in range(8):
            # at most a factor e^5 per parameter and step: a parameter with almost no gradient
            # (the losing term of a max()) must not jump to overflow
            step = np.clip(np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-9), -g), -5.0, 5.0)
            xn = x + step
            rn = residual(xn)
            cn = cost(rn)
            if np.isfinite(cn) and cn < c:
                x, r, c, lam = xn, rn, cn, max(lam / 3, 1e-7)
                improved = True
                break
            lam *= 4
        if not improved or np.max(np.abs(step)) < 1e-6:
            break
    return x, r


# Every parameter is positive and fitted in log space; a fixed time the data cannot see (fit suite 8
# drove FA2's combine fixed cost, now that the time per split carries the combine, to 5e-19 s, which
# no calibration file may hold and from which cuDNN's start cannot move) stops at one picosecond, far
# below any kernel time and every other parameter's scale.
LOG_FLOOR = math.log(1e-12)


def _fit_group(names, meas, hw, values, sms, l2, default="fa2"):
    t = np.array([m.time_s for m in meas])

    def residual(x):
        v = dict(values)
        v.update({n: float(math.exp(max(xi, LOG_FLOOR))) for n, xi in zip(names, x)})
        P = GpuParams(values=v, sm_count=sms, l2_bytes=l2, provenance="fit", attention_default=default)
        return np.log(predict(P, meas, hw) / t)

    x0 = [math.log(values[n]) for n in names]
    x, r = lm_fit(residual, x0)
    values.update({n: float(math.exp(max(xi, LOG_FLOOR))) for n, xi in zip(names, x)})
    ape = np.abs(np.exp(r) - 1) * 100
    return {"rows": len(meas), "median_abs_pct": round(float(np.median(ape)), 2),
            "p90_abs_pct": round(float(np.percentile(ape, 90)), 2)}


# ---------------------------------------------------------------------------- energy / launch

ENERGY_COLS = ("energy.per_byte", "energy.per_kv_byte", "energy.per_flop.bf16", "energy.per_flop.fp8_e4m3",
               "energy.per_flop.attention")


def energy_features(op, hw, values, sms, l2, default="fa2"):
    """Per-coefficient quantities of one op (bytes streamed, KV bytes, FLOPs per class),
    read off the model's own energy breakdown evaluated with unit coefficients."""
    unit = dict(values)
    unit.update({c: 1.0 for c in ENERGY_COLS})
    unit["energy.static"] = 0.0
    c = gpu.estimate(op, hw, params=GpuParams(values=unit, sm_count=sms, l2_bytes=l2, provenance="fit",
                                              attention_default=default))
    parts = c.energy_breakdown
    return [parts.get("hbm", 0.0), parts.get("kv_stream", 0.0), parts.get("flops_bf16", 0.0),
            parts.get("flops_fp8_e4m3", 0.0), parts.get("flops_attention", 0.0)]


def fit_energy(rows, hw, values, sms, l2, static_w, cap_w, default="fa2"):
    """Linear least squares (relative: each row weighted 1/E) of E - P_static x t_measured
    on the model's energy features, over the fit-split loops."""
    fit_rows = [r for r in rows if r["split"] == "fit" and r["kind"] != "idle" and r.get("energy_per_iter_j")]
    A, y = [], []
    for r in fit_rows:
        op = dataset.op_from_row({"kind": r["kind"], "fmt": r.get("fmt") or "bf16", "dims": json.dumps(r["dims"]),
                                  "note": ""})
        A.append(energy_features(op, hw, values, sms, l2, default))
        y.append(r["energy_per_iter_j"] - static_w * r["time_per_iter_s"])
    A, y = np.array(A), np.array(y)
    wts = 1.0 / np.array([r["energy_per_iter_j"] for r in fit_rows])
    coef = np.zeros(len(ENERGY_COLS))
    active = [j for j in range(len(ENERGY_COLS)) if np.any(A[:, j] > 0)]
    sol, *_ = np.linalg.lstsq(A[:, active] * wts[:, None], y * wts, rcond=None)
    coef[active] = np.maximum(sol, 1e-16)
    out = dict(zip(ENERGY_COLS, (float(c) for c in coef)))
    out["energy.static"] = static_w
    out["energy.power_cap"] = cap_w
    return out, len(fit_rows)


LAUNCH_DELTAS = np.arange(0.0, 8e-6, 5e-8)  # launch.overlap grid, s
STREAM_SPEEDUPS = np.arange(0.0, 0.1 + 1e-9, 0.0025)  # round 14's launch.stream_speedup grid (s25_graph_terms's)


def fit_launch(e2e_rows, hw, values, sms, l2, default="fa2", terms=None):
    """launch.overlap (and, with the round-14 term `stream_speedup`, launch.stream_speedup) from the fit suite's
    CUDA-graph decode steps: a grid search on the median |log error|, each op priced by gpu.in_stream_time (the
    model's own in-stream formula, evaluated for every grid delta at once); eager.cpu_per_kernel from its host-bound
    eager decode steps."""
    from cosim.validate import e2e_parts
    graph = [r for r in e2e_rows if r["split"] == "fit" and r["mode"] == "graph"]
    P = GpuParams(values={**values, "launch.overlap": 0.0}, sm_count=sms, l2_bytes=l2, provenance="fit",
                  attention_default=default)
    parts = [e2e_parts(r, hw, P) for r in graph]
    meas = np.array([r["median_s"] for r in graph])
    with_speedup = bool((terms or {}).get("stream_speedup"))
    best = (np.inf, 0.0, 0.0)
    for g in (STREAM_SPEEDUPS if with_speedup else (0.0,)):
        grid = GpuParams(values={**values, "launch.overlap": LAUNCH_DELTAS[:, None], "launch.stream_speedup": g},
                         sm_count=sms, l2_bytes=l2, provenance="fit grid", attention_default=default)
        pred = np.array([np.sum(rep * gpu.in_stream_time(grid, iso, k), axis=1) for iso, k, rep in parts])
        err = np.median(np.abs(np.log(pred / meas[:, None])), axis=0)  # per delta, over the rows
        i = int(np.argmin(err))  # the first minimum: the smallest delta, as the scalar loop took
        if err[i] < best[0]:
            best = (float(err[i]), float(LAUNCH_DELTAS[i]), float(g))
    values["launch.overlap"] = best[1]
    if with_speedup:
        values["launch.stream_speedup"] = best[2]
    P = GpuParams(values=dict(values), sm_count=sms, l2_bytes=l2, provenance="fit", attention_default=default)
    ratios = []
    for r in e2e_rows:
        if r["split"] == "fit" and r["mode"] == "eager" and r["phase"] == "decode":
            iso, k, rep = e2e_parts(r, hw, P)
            gpu_s = float(np.sum(rep * gpu.in_stream_time(P, iso, k)))
            kernels = float(np.sum(rep * k))
            if r["median_s"] > 1.3 * gpu_s:  # host-bound: the step time is the launch rate
                ratios.append(r["median_s"] / kernels)
    if ratios:
        values["eager.cpu_per_kernel"] = float(np.median(ratios))
    return {"graph_rows": len(graph), "overlap_median_abs_log_err": round(best[0], 4), "eager_host_bound_rows": len(ratios)}


# ---------------------------------------------------------------------------- driver

def fit(ops_csv, hw_name="h100_sxm", energy_csv=None, e2e_csv=None, env_json=None, terms=None,
        energy_backend=None):
    """Fit every parameter; returns (calibration section dict, report dict). `terms`: a TERM_SETS name
    (default: the GPU's own set, else the base set: terms_for); the report's and provenance's "terms" say which.
    `energy_backend`: the SDPA backend the energy loops' attention ran (default: the fitted default backend;
    the H100's session-9 loops forced FA2 while its later fit suites ran PyTorch's default, cuDNN)."""
    terms_name, term_set, terms_line = terms_for(hw_name, terms)
    if energy_backend not in (None, "fa2", "cudnn"):  # a fused SDPA backend the energy loops can have run
        raise InputError(f"energy_backend: got {energy_backend!r}; expected 'fa2', 'cudnn' or None (the fitted "
                         f"default backend)")
    hw = base_spec(hw_name)
    meas = dataset.load_ops(ops_csv)
    env = {}
    if env_json and Path(env_json).is_file():  # a flat <prefix>_env.json or a run manifest (raw_<run>/env.json)
        env = dataset.load_env(env_json)
    runs = [v for v in env.values() if isinstance(v, dict) and v.get("variant", "default") == "default"] \
        if isinstance(env, dict) else []
    run_env = env.get("run1") or (runs[0] if runs else env) if isinstance(env, dict) else {}
    sms = int(run_env.get("sm_count") or 132)
    l2 = float(run_env.get("l2_bytes") or 50 * 2 ** 20)
    values = dict(INITIAL)
    values.update(FIXED)
    if not (energy_csv and Path(energy_csv).is_file()):
        raise InputError(f"{energy_csv}: energy measurements: missing; expected the energy CSV of cosim calibrate "
                         f"(its runs' own, or another run's given with --energy FILE)")
    erows = dataset.load_energy(energy_csv)
    idle = [r["avg_power_w"] for r in erows if r["kind"] == "idle" and r["split"] == "fit"]
    static = float(np.mean(idle)) if idle else 0.0
    cap = float(run_env.get("nvml_power_limit_w") or hw.tdp_w or 700.0)
    launch = {m.row.get("name"): m.time_s for m in meas
              if m.cls == "launch" and m.suite not in dataset.HELDOUT_SPLITS}
    values["graph.gap"] = launch.get("graph_tiny_kernel", 1e-6)
    quality, default = fit_latency([m for m in meas if m.split == "fit"], hw, values, sms, l2, ops_csv, term_set)
    default_used = default or "fa2"
    e_vals, n_energy = fit_energy(erows, hw, values, sms, l2, static, cap, energy_backend or default_used)
    values.update(e_vals)
    if e2e_csv and Path(e2e_csv).is_file():
        quality["launch"] = fit_launch(dataset.load_e2e(e2e_csv), hw, values, sms, l2, default_used, term_set)
    # unfused attention last: its time is a sum of kernels, each after the first hiding launch.overlap,
    # so it is fitted with the launch constants written beside it (fitted inside fit_latency, before
    # fit_launch, it saw launch.overlap = 0 and was priced with 1.65 us: the H200's fit rows 5.56 / 13.60 as priced,
    # 6.30 / 18.33 as the fit printed them, 4.73 / 13.81 fitted with the written overlap at the fix's commit 960ba47;
    # on the merged session-11 model, fp8 GEMMs without stream-K included, 4.81 / 13.8: the calibration's
    # fit_quality.attention_unfused holds the committed fit's figure)
    q = fit_unfused([m for m in meas if m.split == "fit"], hw, values, sms, l2, term_set, default)
    if q:
        quality["attention_unfused"] = q
    suites = sorted({m.suite for m in meas if m.split == "fit"})
    prov = _fit_provenance(run_env, sms, l2, (ops_csv, energy_csv, e2e_csv, env_json), n_energy, default, suites,
                           hw_name)
    if values.get("attn.prefill_kernels"):
        prov["fixed"]["attn.tail"] = ("not fitted: FA2 prefill under attn.prefill_kernels (round 18) has no tail term; "
                                      "fit.INITIAL's value, where cuDNN prefill's tail starts")
    if energy_backend:  # said, as every fixed choice is: the loops' attention is priced on the backend they ran
        prov["fit"] += f"; energy loops' attention priced with the {energy_backend} backend they ran (energy_backend)"
    prov["terms"] = terms_line
    section = to_section(values, sms, l2, prov, quality, memory_bandwidth=hw.main_memory.bandwidth_Bps,
                         attention_default=default)
    return section, {"quality": quality, "values": values, "terms": terms_line, "terms_set": terms_name}


# Optional terms the fit adds where its rows identify them (hwmodels.gpu_params). Which of the
# session-4 candidates are on was chosen on the validation split carved from the fit rows
# (validation/model_selection/s4_candidates.py and .txt), before the heldout3 suite was measured.
# Session 6 (validation/model_selection/s6_candidates.txt, chosen before held-out suite 4): the
# H200 split chose the head-dim-independent softmax cost for cuDNN prefill only, FA2's split
# heuristic over 2 x SMs and the unaligned-KV multiplier of unfused attention; the H100 split
# chose neither soft_c nor the x2 heuristic (no unfused rows there). The wave cap
# (gpu_params.ATTN_WAVE_CAP) was chosen on both.
# Session 7 (validation/model_selection/s7_candidates.txt, chosen before held-out suite 5): library
# dispatch rules of hwmodels/gpu_library.py. The H200 split chose the 192 x 192 GEMM tile, the
# multi-pass block softmax with the small-index embedding, and the transposing K^T copy of eager
# MQA attention; it rejected FA2's forward split-KV. The H100 split chose none of them (its rows
# have no fit-5 shapes): its calibration is unchanged.
S7_TERMS = {"gemm_tile_set": 1, "softmax_multipass": True, "embedding_small": True, "unfused_transpose": True}
S7_OFF = {"gemm_tile_set": 0, "softmax_multipass": False, "embedding_small": False, "unfused_transpose": False}
# Session 7, second round (fit suite 6 merged; validation/model_selection/s7b_candidates.txt, chosen
# before held-out suite 6): a per-wave CTA time of decode (dec_cta_lat: backends) and the eager score
# softmax's own multiplier (unfused_softmax), chosen on the H200. S7B_OFF: the session-7 form.
# Rejected candidates of sessions 6-8 (diagonal blocks, FA2 forward split-KV, cuDNN Lean Attention,
# softmax re-reads, SM share of the decode bandwidth) left the model in session 8; their scripts and
# records in validation/model_selection/ are frozen records of the commits that wrote them.
S7B_OFF = {"dec_cta_lat": (), "unfused_softmax": False, "combine_split": ()}
S7B_TERMS = {**S7B_OFF, "dec_cta_lat": ("fa2",), "unfused_softmax": True}
# Session 8 (fit suite 7 merged; validation/model_selection/s8_candidates.txt, chosen before held-out
# suite 7): FA2's split-KV combine kernel loops over the splits (combine_split: a time per split),
# chosen on the H200 (validation p90 15.4 -> 8.6); the H100 split kept its form (6.6 vs 13.8).
S7B_TERMS["combine_split"] = ("fa2",)
# Session 8, second round (fit suite 8 merged; validation/model_selection/s8b_candidates.txt, chosen
# before held-out suite 8): split-K's fp32 workspace reduction (gemm_splitk_ws; its fixed time was rejected
# in s8b and again in s9 and left the model), FA2's uneven causal prefill (ragged: backends; ragged_wave: its single-wave part), cuDNN decode
# with one CTA per query head (dec_qhead_ctas: backends). S8B_OFF: the session-8 form.
S8B_OFF = {"gemm_splitk_ws": False, "ragged": (), "ragged_wave": False, "dec_qhead_ctas": ()}
S7B_OFF.update(S8B_OFF)
S7B_TERMS.update(S8B_OFF)
S7_TERMS.update(S7B_TERMS)
S7_OFF = {**S7_OFF, **S7B_OFF}
TERMS = {"row_waves": ("softmax",), "warp_floor_per_col": True, "dec_bw_multi": ("fa2",), "fused_kinds": True,
         "prefill_soft": ("cudnn",), "fa2_split_x2": True, "unfused_unaligned": True,
         **S7_TERMS}
# Session 8, second round (s8b_candidates.txt): the H200 split chose the split-K workspace reduction
# (GEMM validation p90 14.8 -> 13.8), FA2's uneven causal prefill with its single-wave part (18.3 ->
# 13.8) and cuDNN decode with one CTA per query head (15.5 -> 15.3); the H100 split chose the split-K
# workspace reduction (12.8 -> 12.3) and kept its FA2 prefill form (8.2 either way).
S8B_TERMS = {"gemm_splitk_ws": True, "ragged": ("fa2",), "ragged_wave": True, "dec_qhead_ctas": ("cudnn",)}
TERMS.update(S8B_TERMS)
# Session 9 (issue 11 round 4; validation/model_selection/s9_candidates.txt, chosen before held-out suite 10):
# GEMM stream-K among the library's choices (gemm_stream_k) and the decode KV pipeline fill per backend
# (dec_fill). The H200 split chose stream-K (GEMM validation p90 13.8 -> 13.4) and cuDNN's fill (15.3 ->
# 12.5); the H100 split kept its GEMM form (a tie, 12.3; the rule takes the first). Rejected and removed:
# the unaligned memcpy's fixed time (elementwise 14.1 -> 13.3 with one more parameter, within 2 points)
# and split-K's fixed reduction time (13.9). S9_OFF: the session-8 form.
S9_OFF = {"gemm_stream_k": False, "dec_fill": ()}
S9_TERMS = {"gemm_stream_k": True, "dec_fill": ("cudnn",)}
TERMS.update(S9_TERMS)
# Session 10 (issue 11 round 5; validation/model_selection/s10_candidates.txt, chosen before held-out suite 11):
# unfused decode's own unaligned multiplier (unfused_dec_unaligned; validation p90 16.1 -> 13.4). Rejected and
# removed: decode's own score-pass multiplier (15.9; with both 13.4, one more parameter). S10_OFF: the
# session-9 form.
S10_OFF = {"unfused_dec_unaligned": False}
S10_TERMS = {"unfused_dec_unaligned": True}
TERMS.update(S10_TERMS)
# Session 11 (issue 11 round 6), FA2 prefill and elementwise (validation/model_selection/s11_fa2ew_candidates.txt,
# chosen before held-out suite 12): no candidate chosen, no S11_FA2EW_TERMS / S11_FA2EW_OFF. The H200 split kept the
# session-10 FA2 prefill form (validation p90 13.8; the part-filled single wave 13.0 with one more parameter, within
# 2 points; FA2's uneven causal masking iteration per CTA 14.1, both 13.7, FA2 soft_c 13.4, all three 14.6) and the
# elementwise form (14.1; the measured PyTorch's register softmax dispatch 14.2); the H100 split kept its FA2
# prefill form (8.2; 7.9). Their code left the model after the record (commit dfdd120 has it).
# Session 11 (issue 11 round 6; validation/model_selection/s11_gemm_candidates.txt, chosen before held-out suite 12):
# fp8 GEMMs without stream-K (gemm_fp8_no_stream_k; GEMM validation p90 13.4 -> 13.2, fp8 rows 5.3 / 14.1 ->
# 4.9 / 14.0). Rejected and removed: fp8 split-K / stream-K slices at least 6144 deep (12.9, one more parameter)
# and fp8's own overlap exponent (13.2 with one more; both 12.6 with two more, within the rule's 2 points).
# The H100 split kept its form (its set has no stream-K; the deep slices 13.9, the exponent a tie, 12.3).
# S11_GEMM_OFF: the session-10 form.
S11_GEMM_OFF = {"gemm_fp8_no_stream_k": False}
S11_GEMM_TERMS = {"gemm_fp8_no_stream_k": True}
TERMS.update(S11_GEMM_TERMS)
# Session 11 (issue 11 round 6; validation/model_selection/s11_unfused_candidates.txt, scored on the
# validation split carved from the fit rows): unfused prefill over an unaligned KV length by the length's parity (odd lengths' own multiplier)
# and per kernel kind (the score GEMMs' own); the rule kept the session-10 form (validation p90 13.4; the
# best, parity x kernel kind, 11.8 with three more parameters): no term chosen, the candidates' code removed
# (it is at commit 4727c13). Session 11's fit-order fix (fit_unfused after fit_launch) is no term.
# Session 12 (issue 11 round 7; validation/model_selection/s12_fa2_candidates.txt, rule
# validation/model_selection/RULE_round7.md, chosen before the held-out suite that replaces heldout12): FA2 prefill takes the
# head-dim-independent softmax cost cuDNN already had (prefill_soft for fa2: FA2's own attn.soft_c). The H200's
# current form missed on the median only (validation 5.1 / 13.8), so the median was the target: soft_c 3.7
# (-1.40 points, paired-bootstrap 95 % [-2.10, -0.33]; p90 13.4); soft_c with the uneven kernel's masking iteration
# per CTA had the lowest median (3.2, one more parameter, within the rule's 1 point); the masking iteration and the
# part-filled single wave alone were not resolved. The H100 split (target p90, 8.2) resolved no gain and keeps
# its form (its set keeps prefill_soft empty). The rejected candidates' code was never in the model (heldout12
# froze this file): it is in s12_fa2_candidates.py at commit c82c00a. S12_FA2_OFF: the session-11 form.
S12_FA2_OFF = {"prefill_soft": ("cudnn",)}
S12_FA2_TERMS = {"prefill_soft": ("cudnn", "fa2")}
TERMS.update(S12_FA2_TERMS)
# Session 21 (issue 11 round 13; validation/model_selection/s24_ew_dispatch.txt, chosen on the fit rows of both GPUs,
# leave one fit suite out, before heldout18 was measured): the block softmax by ATen's kernel path (softmax_paths: the
# register, shared-memory and global-memory kernels' own wave times, replacing the session-4 row waves; the multi-pass
# factor on the global-memory path only), RMSNorm's re-read of wide rows (rmsnorm_reread) and the extra time of a
# large copy whose size is no multiple of 4 KiB (copy_unaligned). Together (candidate E) elementwise p90 H200 18.6 ->
# 13.2, H100 18.7 -> 14.1; the per-path softmax (15.3 / 16.7) and the copy time (17.0 / 17.5) alone were resolved too,
# but E beat them by more than the rule's margin. S24_OFF: the session-12 form.
S24_OFF = {"softmax_paths": False, "rmsnorm_reread": False, "copy_unaligned": False}
S24_TERMS = {"softmax_paths": True, "rmsnorm_reread": True, "copy_unaligned": True}
TERMS.update(S24_TERMS)
# the H100 suite has no row widths that identify row waves (its validation split chose the
# per-row cost: s4_candidates.txt); its decode split chose dec_bw_multi like the H200's
TERMS_BY_HW = {"h100_sxm": {**TERMS, "row_waves": (), "prefill_soft": (), "fa2_split_x2": False, **S7_OFF,
                            "gemm_splitk_ws": True, **S9_OFF, **S10_OFF, **S11_GEMM_OFF, **S24_OFF},
               "h200": TERMS}
# A GPU without its own entry (a future a100 / b200 / mi300x calibration) gets the base set unless the
# user names one (`cosim calibrate --terms`): the session-8 form, without the session-9 and -10 terms (GEMM
# stream-K, cuDNN's decode fill, unfused decode's own unaligned multiplier) that only the H200's validation
# split chose (nor session 11's fp8 GEMMs without stream-K, nor session 12's FA2 soft_c). The base set's own terms
# (sessions 4-8) were chosen on the H200 split too (the H100 kept a subset): no set is validated on a
# GPU that has no validation split; the calibration's provenance says which set was fitted.
BASE_TERMS = {**TERMS, **S9_OFF, **S10_OFF, **S11_GEMM_OFF, **S12_FA2_OFF, **S24_OFF}
# Round 14 (session 23; validation/model_selection/s25_graph_terms.txt, leave one model out on each GPU's fit CUDA-graph
# decode rows): the H100's rows chose the in-stream speedup (launch.stream_speedup fitted with launch.overlap; left-out
# median 1.79 -> 1.32 %, resolved), the H200's kept the round-13 form (2.42 -> 2.41, not resolved). The H100's set is
# the H200's set plus that term.
R14_H100_TERMS = {**TERMS, "stream_speedup": True}
# Round 18 (session 26; validation/model_selection/s33_fa2_kernels.txt, the H100's FA2 prefill fit rows, validation
# split carved from them): FA2 prefill priced as the kernel FlashAttention-2 runs (hwmodels.gpu_params, round 18:
# split-KV kernel and combine, uneven terms past the masking steps, greedy two-slot schedule; validation p90 16.8 ->
# 12.0, resolved). The H200 took it in round 19 (below).
R18_H100_TERMS = {**R14_H100_TERMS, "fa2_prefill_kernels": True}
# Round 19 (session 27; validation/model_selection/s35_h200_fa2_kernels.txt, the H200's FA2 prefill fit rows, validation
# split carved from them): round 18's FA2 prefill form on the H200 too (validation p90 13.4 -> 9.6, resolved). The
# H200's set is its session-21 set plus that term; the H100's is unchanged.
R19_H200_TERMS = {**TERMS, "fa2_prefill_kernels": True}
# Round 22 (session 32; validation/model_selection/s38_h100_gemm_fit12.txt, the H100's GEMM rows with fit11 fitted, fit
# suite 12 as fresh validation rows): GEMMs choose their tile from the nvjet menus (gemm.tile_set 2,
# gpu_library.NVJET_MENUS; validation p90 16.3 -> 14.7, resolved). The H100's set is r18_h100 with that tile set.
R22_H100_TERMS = {**R18_H100_TERMS, "gemm_tile_set": 2}
TERM_SETS = {**TERMS_BY_HW, "base": BASE_TERMS, "r14_h100": R14_H100_TERMS, "r18_h100": R18_H100_TERMS,
             "r19_h200": R19_H200_TERMS, "r22_h100": R22_H100_TERMS}
# the set `cosim calibrate --hw <gpu>` fits when --terms is not given: the one its committed calibration was fitted
# with. The H100 was re-fitted in session 16 with the H200's set (validation/heldout14_rules.md: no term chosen on
# H100 rows); its own session-9 set stays available by name (--terms h100_sxm).
DEFAULT_SET = {"h100_sxm": "r22_h100", "h200": "r19_h200"}
TERM_SET_DESC = {
    "h200": "h200 set (chosen on the validation split of the H200 fit rows: validation/model_selection s4-s10 "
            "candidates; session 9, s9_candidates: GEMM stream-K, cuDNN decode fill; session 10, "
            "s10_candidates: unfused decode's own unaligned multiplier; session 11, s11_gemm_candidates: fp8 GEMMs "
            "without stream-K; session 12, s12_fa2_candidates: FA2 prefill's head-dim-independent softmax cost; "
            "session 21, s24_ew_dispatch (chosen on the H200 and the H100 fit rows): the block softmax by ATen's "
            "kernel path, RMSNorm's re-read of wide rows, unaligned large copies)",
    "h100_sxm": "h100_sxm set (chosen on the validation split of the H100 fit rows: validation/model_selection s4-s9 "
                "candidates; split-K workspace reduction, no stream-K, no decode fill, no unfused decode multiplier; "
                "the session-9 H100 calibration's, by name only since session 16)",
    "r14_h100": "r14_h100 set (the h200 set plus round 14's in-stream speedup of every kernel, launch.stream_speedup, "
                "chosen on the H100's fit CUDA-graph decode rows only: validation/model_selection/s25_graph_terms)",
    "r18_h100": "r18_h100 set (the r14_h100 set plus round 18's FA2 prefill priced as the kernel FlashAttention-2 "
                "runs, attn.prefill_kernels: split-KV kernel and combine, uneven terms past the masking steps, greedy "
                "two-slot schedule; chosen on the H100's FA2 prefill fit rows: validation/model_selection/"
                "s33_fa2_kernels)",
    "r22_h100": "r22_h100 set (the r18_h100 set with GEMM tiles chosen from the nvjet menus, gemm.tile_set 2: token "
                "tiles in steps of 8 x the profiled weight tiles, one menu for 16-bit and one for fp8 operands; chosen "
                "on fit suite 12's fresh GEMM rows: validation/model_selection/s38_h100_gemm_fit12)",
    "r19_h200": "r19_h200 set (the h200 set plus round 18's FA2 prefill form, attn.prefill_kernels: split-KV kernel "
                "and combine, uneven terms past the masking steps, greedy two-slot schedule; chosen on the H200's FA2 "
                "prefill fit rows: validation/model_selection/s35_h200_fa2_kernels)",
    "base": "base set (the session-8 form: the h200 set without the session-9 and -10 terms GEMM stream-K, "
            "cuDNN decode fill and unfused decode's own unaligned multiplier; its session 4-8 terms were chosen "
            "on the H200 fit rows; nor the session-11 fp8 GEMMs without stream-K, moot without stream-K, nor the "
            "session-12 FA2 prefill softmax cost, nor session 21's elementwise dispatch terms)",
}


def terms_for(hw_name, name=None) -> tuple[str, dict, str]:
    """(set name, terms, provenance line) of the optional-term set a fit of `hw_name` uses: `name` when given
    (a TERM_SETS key), else the GPU's default set (DEFAULT_SET: its committed calibration's), else the base set,
    said as a fallback."""
    stem = Path(str(hw_name)).stem
    if name is not None:
        if name not in TERM_SETS:
            raise InputError(f"--terms: got {name!r}; expected one of {', '.join(TERM_SETS)} (cosim.calibrate.fit."
                             f"TERM_SETS)")
        line = TERM_SET_DESC[name] + (f"; asked for (--terms {name})" if name != stem else "")
        return name, TERM_SETS[name], line
    if stem in DEFAULT_SET:
        own = DEFAULT_SET[stem]
        line = TERM_SET_DESC[own] + (f"; {stem}'s default set (the set of its committed calibration: "
                                     "fit.DEFAULT_SET)" if own != stem else "")
        return own, TERM_SETS[own], line
    return "base", BASE_TERMS, (TERM_SET_DESC["base"] + f"; {stem} has no set of its own (fit.TERMS_BY_HW): "
                                "the default, not validated on this GPU; --terms names another")


def _s7_optional(group, rows, values, terms) -> list:
    """Session-7 terms (hwmodels/gpu_library.py) the rows of a group identify: the 192 x 192
    GEMM tile (structure, recorded), the multi-pass block softmax, the small-index embedding,
    the transposing K^T copy of eager MQA attention (rows with one KV head and batch > 1)."""
    names = []
    if group == "gemm" and terms.get("gemm_tile_set"):
        values["gemm.tile_set"] = float(terms["gemm_tile_set"])
    if group == "gemm" and terms.get("gemm_splitk_ws"):  # structure, not fitted: recorded
        values["gemm.splitk_ws"] = 1.0
    if group == "gemm" and terms.get("gemm_stream_k"):  # structure, not fitted: recorded
        values["gemm.stream_k"] = 1.0
    if group == "gemm" and terms.get("gemm_stream_k") and terms.get("gemm_fp8_no_stream_k"):
        values["gemm.fp8_no_stream_k"] = 1.0  # structure, not fitted: recorded only where stream-K is on (else moot)
    if group == "elementwise":
        soft = [m for m in rows if m.op.kind == "softmax" and m.op.dims["cols"] > gpu_params.WARP_SOFTMAX_MAX_COLS]
        if terms.get("softmax_multipass") and sum(bool(gpu_library.softmax_multipass(m.op.dims["cols"]))
                                                  for m in soft) >= 3:
            values.setdefault("ew.softmax.multipass", 1.5)
            names.append("ew.softmax.multipass")
        emb = [m for m in rows if m.op.kind == "embedding" and gpu_library.index_select_small(m.op.dims["rows"])]
        if terms.get("embedding_small") and len(emb) >= 3:
            values.setdefault("ew.embedding.small_idx", 5e-7)
            names.append("ew.embedding.small_idx")
    if group == "unfused" and terms.get("unfused_softmax"):
        values.setdefault("unfused.softmax_mult", values.get("unfused.score_mult", 1.0))
        names.append("unfused.softmax_mult")
    if group == "unfused" and terms.get("unfused_transpose") and sum(
            1 for m in rows if m.op.dims["kv_heads"] == 1 and m.op.dims["heads"] > 1 and m.op.dims["batch"] > 1) >= 3:
        values.setdefault("unfused.transpose_mult", values.get("unfused.gather_mult", 1.0))
        names.append("unfused.transpose_mult")
    return names


def fit_latency(meas, hw, values, sms, l2, src="measurements", terms=None):
    """Fit every latency parameter group on `meas` (fit rows) into `values`, except unfused attention's:
    fit() fits that one (fit_unfused) after the launch constants its kernel sum depends on. Returns
    (quality, default backend)."""
    terms = TERMS if terms is None else terms
    quality = {}
    # latency of ops in short bursts (the microbenchmarks), then energy (whose fitted
    # coefficients also set where the power cap stretches an op in a sustained workload)
    for group, names in GROUPS.items():
        rows = [m for m in meas if m.reliable and m.cls in CLASSES[group]]
        if not rows:
            raise InputError(f"{src}: rows: no fit-split rows of class {CLASSES[group]}; "
                             f"expected the default microbenchmark suite")
        names = names + _s7_optional(group, rows, values, terms)
        if group == "elementwise":
            names = names + _ew_optional(rows, values, terms)
        elif group == "attention_prefill":
            names = names + _prefill_optional("attn.", "fa2", terms, values)
            if values.get("attn.prefill_kernels"):  # round 18's schedule has no tail: not fitted (provenance.fixed)
                names = [n for n in names if n != "attn.tail"]
        elif group == "attention_decode":
            if terms.get("fa2_split_x2"):  # structure, not fitted: recorded in the calibration
                values["attn.split_sms_x"] = float(gpu_params.FA2_SPLIT_SMS_X)
            if "fa2" in (terms.get("dec_bw_multi") or ()) and _has_multi(rows, sms):
                values.setdefault("attn.dec_bw_multi", values["attn.dec_bw"])
                names = names + ["attn.dec_bw_multi"]
            names = names + _decode_optional("attn.", "fa2", terms, values)
        quality[group] = _fit_group(names, rows, hw, values, sms, l2)
        if group == "elementwise" and terms.get("softmax_paths") and "ew.softmax.reg_lat" not in values:
            quality[group]["ew.softmax paths"] = ("not identified (each of the register, shared-memory and global-"
                                                  "memory kernels needs softmax rows at two or more widths): the "
                                                  "session-4 row waves price the block softmax")
        for key in gpu_params.EW_ROW_KEYS + ("ew.softmax.row_lat_iter", "ew.rmsnorm.row_lat_iter"):
            # a per-row (or per-iteration) cost the fit drives to nothing is no term
            if values.get(key, 1.0) <= math.exp(LOG_FLOOR) * (1 + 1e-9):  # at the fit's floor
                del values[key]
                quality[group][f"{key}"] = "fitted to the 1 ps floor: dropped (no per-row cost)"
    default = _default_backend(meas)
    for group, (backend, keys, base_cls) in BACKEND_GROUPS.items():
        classes = (f"{base_cls}_{backend}",) + ((base_cls,) if default == backend else ())
        rows = [m for m in meas if m.reliable and m.cls in classes]
        if rows:
            for k in gpu.ATTN_BACKEND_KEYS:
                values.setdefault(f"attn_{backend}.{k}", backend_start(k, values))
            names = [f"attn_{backend}.{k}" for k in keys]
            if group.startswith("attention_decode") and backend in (terms.get("dec_bw_multi") or ()) \
                    and _has_multi(rows, sms):
                values.setdefault(f"attn_{backend}.dec_bw_multi", values[f"attn_{backend}.dec_bw"])
                names.append(f"attn_{backend}.dec_bw_multi")
            if group.startswith("attention_prefill"):
                names += _prefill_optional(f"attn_{backend}.", backend, terms, values)
            else:
                names += _decode_optional(f"attn_{backend}.", backend, terms, values)
            quality[group] = _fit_group(names, rows, hw, values, sms, l2, default or "fa2")
    return quality, default


def fit_unfused(meas, hw, values, sms, l2, terms, default):
    """Unfused (Hugging Face eager) attention's multipliers on its reliable rows (the last group: its kernels
    are priced by the GEMM and elementwise groups' parameters and summed hiding launch.overlap per kernel,
    which `values` must already hold: fit() calls it after fit_launch); None without rows."""
    rows = [m for m in meas if m.reliable and m.cls.endswith("_unfused")]
    if not rows:
        return None
    for k in gpu.UNFUSED_KEYS:
        values.setdefault(k, 1.0)
    names = list(gpu.UNFUSED_KEYS)
    if terms.get("unfused_unaligned") and sum(int(m.op.dims["kv_len"]) % gpu_params.UNFUSED_ALIGN != 0
                                              for m in rows) >= 3:
        values.setdefault("unfused.unaligned_mult", 1.0)
        names.append("unfused.unaligned_mult")
    names += _s7_optional("unfused", rows, values, terms)
    names += _unfused_optional(rows, values, terms)
    return _fit_group(names, rows, hw, values, sms, l2, default or "fa2")


def _unfused_optional(rows, values, terms) -> list:
    """Session-10 term of unfused attention (TERMS: unfused_dec_unaligned): decode's own unaligned multiplier,
    where >= 3 decode rows identify it; it starts at the shared multiplier's value."""
    dec = [m for m in rows if int(m.op.dims["q_len"]) == 1]
    if terms.get("unfused_dec_unaligned") and "unfused.unaligned_mult" in values and sum(
            int(m.op.dims["kv_len"]) % gpu_params.UNFUSED_ALIGN != 0 for m in dec) >= 3:
        values.setdefault("unfused.dec_unaligned_mult", values["unfused.unaligned_mult"])
        return ["unfused.dec_unaligned_mult"]
    return []


def backend_start(key: str, values: dict) -> float:
    """Where a backend's parameter `key` (gpu.ATTN_BACKEND_KEYS) starts: the decode keys from fit.INITIAL,
    where the model selection (validation/model_selection/common.score_decode) started the validated
    candidate; a prefill key from FA2's fitted value unless FA2's fit drove it to the 1 ps floor (a floor
    value is a log-space corner the fit cannot leave: cuDNN's combine stayed at FA2's 1 ps, session 8)."""
    if key in BACKEND_GROUPS["attention_decode_cudnn"][1]:
        return INITIAL[f"attn.{key}"]
    fa2 = values[f"attn.{key}"]
    return INITIAL[f"attn.{key}"] if fa2 <= math.exp(LOG_FLOOR) * (1 + 1e-9) else fa2


def _prefill_optional(pre, backend, terms, values) -> list:
    """Optional prefill terms switched on for `backend` (TERMS: prefill_soft, ragged, ragged_wave; round 18's
    fa2_prefill_kernels)."""
    names = []
    if backend in (terms.get("prefill_soft") or ()):
        values.setdefault(pre + "soft_c", 0.3)
        names.append(pre + "soft_c")
    if backend in (terms.get("ragged") or ()):
        values.setdefault(pre + "ragged", 3e-6)
        names.append(pre + "ragged")
        if terms.get("ragged_wave"):
            values.setdefault(pre + "ragged_wave", 8e-6)
            names.append(pre + "ragged_wave")
    if backend == "fa2" and terms.get("fa2_prefill_kernels"):  # round 18: structure recorded, the combine fitted
        values["attn.prefill_kernels"] = 1.0
        values.setdefault("attn.skv_combine", 3e-6)
        values.setdefault("attn.skv_combine_bw", 1.5e12)
        names += ["attn.skv_combine", "attn.skv_combine_bw"]
    return names


def _decode_optional(pre, backend, terms, values) -> list:
    """Optional decode terms for `backend`, fitted: the per-wave CTA time (session 7, round 2) and the
    combine time per split (session 8)."""
    names = []
    if backend in (terms.get("dec_qhead_ctas") or ()):  # structure, not fitted: recorded
        values[pre + "dec_qhead_ctas"] = 1.0
    if backend in (terms.get("dec_cta_lat") or ()):
        values.setdefault(pre + "dec_cta_lat", 1e-6)
        names.append(pre + "dec_cta_lat")
    if backend in (terms.get("combine_split") or ()):
        values.setdefault(pre + "combine_split", 1e-7)
        names.append(pre + "combine_split")
    if backend in (terms.get("dec_fill") or ()):
        values.setdefault(pre + "dec_fill", 1e-6)
        names.append(pre + "dec_fill")
    return names


def _has_multi(rows, sms) -> bool:
    """Do decode rows include no-split launches with more CTAs than SMs (batch x heads of the
    kernel > SMs, >= 0.8 x SMs so FA2 does not split)? Then attn.dec_bw_multi is identifiable."""
    return sum(1 for m in rows if int(m.op.dims["q_len"]) == 1
               and int(m.op.dims["batch"]) * int(m.op.dims["kv_heads"]) > sms) >= 3


def _fit_provenance(run_env: dict, sms: int, l2: float, files, n_energy: int, default, suites=(), hw_name="") -> dict:
    """Where a calibration comes from: device, date, software, measurement files, method (`suites`:
    the measurement suites whose rows were fitted)."""
    ops_csv, energy_csv, e2e_csv, env_json = files
    dev = run_env.get("device_name", "?")
    sw = (f"torch {run_env.get('torch', '?')}, CUDA {run_env.get('cuda_runtime', '?')}, "
          f"cuDNN {run_env.get('cudnn', '?')}, triton {run_env.get('triton', '?')}, "
          f"driver {run_env.get('nvml_driver', '?')}")
    prov = {
        "device": f"{dev} ({sms} SMs, {l2 / 2 ** 20:.0f} MiB L2, power limit "
                  f"{run_env.get('nvml_power_limit_w', '?')} W, max SM clock {run_env.get('nvml_max_sm_clock_mhz', '?')} MHz)",
        "date": str(run_env.get("date_utc", "?"))[:10],
        "software": sw,
        "measurements": {"ops": str(ops_csv), "energy": str(energy_csv), "e2e": str(e2e_csv), "env": str(env_json)},
        "fit": ("cosim/calibrate/fit.py: Levenberg-Marquardt on log(pred/measured), Huber 0.15, "
                f"rows of the fit suites ({', '.join(suites) or 'default'}; held-out suites never fitted); "
                f"energy: linear least squares on {n_energy} fit-suite loops (>= 1.5 s each, NVML "
                f"total-energy counter); static = mean idle power; power cap from NVML"),
        "fixed": {"ew.copy.mult": "1 by definition (ew.bw is the copy kernel's bandwidth)",
                  "graph.gap": "launch rows: GPU time per tiny kernel replayed in a CUDA graph",
                  "eager.cpu_per_kernel": "fit-suite end-to-end eager decode steps that are host-bound",
                  "launch.overlap": "fit-suite end-to-end CUDA-graph decode steps (Llama-2-7B, Llama-3-8B)",
                  "structure.sm_count/l2": "torch.cuda.get_device_properties on the measured device"},
    }
    if default:
        # the kernel names are evidence only where that device's attention was profiled (an H200 log exists;
        # the H100's default backend rests on the timing match alone)
        log = Path(ops_csv).parent / "logs" / f"{hw_name.split('_')[0]}_attn_kernels.txt"
        names = ("the profiled kernel names agree (validation/logs/*attn_kernels.txt)" if log.is_file()
                 else "no kernel-name profile of this device's attention was taken")
        prov["fixed"]["structure.attention_default"] = (
            f"{default}: the default-backend (sdpa:default) rows time within 5 % of the {default} rows "
            f"(median ratio); {names}")
    return prov


def _ew_optional(rows, values, terms=None) -> list:
    """The optional row-reduction terms the fit rows identify (hwmodels.gpu_params): the
    warp-per-row softmax regime when softmax rows of <= WARP_SOFTMAX_MAX_COLS elements were
    measured (its floor per column when measured at two or more widths); for a row kind
    measured at two or more row widths either row waves (kinds in terms["row_waves"]) or a
    per-row cost; the engine-fused kinds when measured. Started from the block kernel's values /
    a nanosecond per row / a few microseconds per wave."""
    terms = TERMS if terms is None else terms
    out = []
    cols = {}
    for m in rows:
        cols.setdefault(m.op.kind, set()).add(int(m.op.dims.get("cols", 0)))
    warp = [c for c in cols.get("softmax", ()) if c <= gpu_params.WARP_SOFTMAX_MAX_COLS]
    if warp:
        for key in gpu_params.EW_WARP_KEYS:
            values.setdefault(key, values[key.replace("softmax_warp", "softmax")])
        out += list(gpu_params.EW_WARP_KEYS)
        if terms.get("warp_floor_per_col") and len(warp) >= 2:
            values.setdefault("ew.softmax_warp.floor_per_col", 1e-9)
            out.append("ew.softmax_warp.floor_per_col")
    for kind, key in zip(gpu.ROW_KINDS, gpu_params.EW_ROW_KEYS):
        if len([c for c in cols.get(kind, ()) if c > gpu_params.WARP_SOFTMAX_MAX_COLS or kind != "softmax"]) < 2:
            continue
        if kind == "softmax" and terms.get("softmax_paths") and _softmax_paths_identified(rows):
            for key in gpu_params.SOFTMAX_PATH_KEYS:
                values.setdefault(key, 1e-6 if key.endswith("_lat") else 3e-10)
            out += list(gpu_params.SOFTMAX_PATH_KEYS)
        elif kind in (terms.get("row_waves") or ()):
            values.setdefault(f"ew.{kind}.row_lat", 4e-6)
            values.setdefault(f"ew.{kind}.row_lat_iter", 1e-8)  # starts stream-bound: max() has no gradient in the losing term
            out += [f"ew.{kind}.row_lat", f"ew.{kind}.row_lat_iter"]
        else:
            values.setdefault(key, 1e-9)
            out.append(key)
    if terms.get("rmsnorm_reread") and len(cols.get("rmsnorm", ())) >= 4:
        values.setdefault("ew.rmsnorm.reread", 0.4)
        values.setdefault("ew.rmsnorm.reread_cols", 4096.0)
        out += ["ew.rmsnorm.reread", "ew.rmsnorm.reread_cols"]
    if terms.get("copy_unaligned") and sum(m.op.kind == "copy" and bool(gpu_library.copy_unaligned(m.op.bytes))
                                           for m in rows) >= 3:
        values.setdefault("ew.copy.unaligned", 2e-6)
        out.append("ew.copy.unaligned")
    for kind in gpu_params.FUSED_EW_KINDS if terms.get("fused_kinds") else ():
        if kind in cols:
            values.setdefault(f"ew.{kind}.floor", 5e-6)
            values.setdefault(f"ew.{kind}.mult", 1.0)
            out += [f"ew.{kind}.floor", f"ew.{kind}.mult"]
    return out


def _softmax_paths_identified(rows) -> bool:
    """Round 13's per-path softmax waves need each of the three block kernels measured at two or more widths."""
    widths = {}
    for m in rows:
        c = int(m.op.dims.get("cols", 0))
        if m.op.kind == "softmax" and c > gpu_params.WARP_SOFTMAX_MAX_COLS:
            widths.setdefault(int(gpu_library.softmax_path(c)), set()).add(c)
    return all(len(widths.get(p, ())) >= 2 for p in range(len(gpu_library.SOFTMAX_PATHS)))


def _default_backend(meas) -> str | None:
    """Which backend did PyTorch's default SDPA run? The pinned backend whose times the
    default rows match (median ratio within 5 %); None when the suite has no default rows."""
    by = {}
    for m in meas:
        if m.op is not None and m.op.kind == "attention" and m.split == "fit" and m.reliable:
            key = json.dumps({k: v for k, v in m.op.dims.items() if k != "backend"}, sort_keys=True)
            by.setdefault(key, {})[m.op.dims["backend"]] = m.time_s
    best = None
    for b in ("cudnn", "fa2"):
        r = [v["default"] / v[b] for v in by.values() if "default" in v and b in v]
        if r and abs(float(np.median(r)) - 1) <= 0.05 and (best is None or abs(np.median(r) - 1) < best[1]):
            best = (b, abs(float(np.median(r)) - 1))
    return best[0] if best else None


HEADER = """# Analytical-model calibration of {hw} (hwmodels.gpu), written by `cosim calibrate --fit-only`
# (cosim/calibrate/fit.py) from the measurement CSVs named under provenance.measurements.
# Every parameter below is fitted (or measured, see provenance.fixed) on the device named in
# provenance.device, on provenance.date, with provenance.software. Re-fit without a GPU:
#   cosim calibrate --fit-only --hw {hw} --measurements {ops}{extra}
# Parameter meanings: hwmodels.gpu.PARAMS.
"""


def header(hw_name, ops_csv, energy_csv=None, terms=None, energy_backend=None) -> str:
    """The calibration file's header: the command that re-fits it, with every argument that changed the fit
    (an energy CSV that is not the measurements' own, a term set, the energy loops' backend)."""
    try:
        own = Path(ops_csv) if dataset.is_manifest(ops_csv) else dataset.sibling(Path(ops_csv), "energy")
    except InputError:  # a flat file with no _ops in its name has no own energy file: name the one used
        own = None
    extra = "".join([f" --energy {energy_csv}" if energy_csv and Path(energy_csv) != own else "",
                     f" --terms {terms}" if terms else "",
                     f" --energy-backend {energy_backend}" if energy_backend else ""])
    return HEADER.format(hw=hw_name, ops=ops_csv, extra=extra)


def fit_to_file(ops_csv, out_path, hw_name="h100_sxm", energy_csv=None, e2e_csv=None, env_json=None, terms=None,
                energy_backend=None):
    from hwmodels.gpu_calibration import parse_section

    section, rep = fit(ops_csv, hw_name, energy_csv, e2e_csv, env_json, terms, energy_backend)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the fitted model's residuals on the fit rows, in a table beside the file (hwmodels.gpu_residuals)
    section["residual_correction"] = residuals.build(out, parse_section(section, str(out)), ops_csv,
                                                     base_spec(hw_name), hw_name, predict)
    out.write_text(header(hw_name, ops_csv, energy_csv, terms, energy_backend) + yaml.safe_dump(copy.deepcopy(section), sort_keys=False, width=110))
    return section, rep


def add_residuals(cal_path, ops_csv, hw_name) -> dict:
    """`cosim calibrate --residuals-only`: an existing calibration's measured-residual table, its parameters kept
    (cosim.calibrate.residuals.add_to_calibration)."""
    return residuals.add_to_calibration(cal_path, ops_csv, hw_name, base_spec(hw_name), predict)
