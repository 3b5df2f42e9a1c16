"""Session-4 model selection (issue 11) on the fit rows only: candidate terms for the
elementwise / row-reduction kernels and for decode attention, each fitted (the fit's own
code: cosim.calibrate.fit) on the train part of the fit split and scored on the validation
part carved from it (cosim.calibrate.dataset.carve_validation, crc32 mod 5). No held-out
suite (test, test2, test3) is read.

Rule (fixed before any candidate was scored, as in session 3): per group, the candidate with
the lowest validation p90 is chosen; a candidate with fewer parameters within 2 points of it
is preferred.

Run from the repository root: PYTHONPATH=. python validation/model_selection/s4_candidates.py [hw ...]
Writes validation/model_selection/s4_candidates.txt.
"""
from pathlib import Path

from cosim.calibrate import fit
from hwmodels import gpu_params
from hwmodels.gpu import GpuParams
from validation.model_selection.common import CSV, choose, run_selection, start_values, stats  # noqa: F401 (re-exported)

OUT = Path("validation/model_selection/s4_candidates.txt")
OFF = {"row_waves": False, "warp_floor_per_col": False, "dec_bw_multi": False, "fused_kinds": True}
# (name, terms, ROW_REGS, WARP_SOFTMAX_MAX_COLS); fused_kinds is on everywhere: without it the
# fused kernels have no parameters of their own at all (they borrow rmsnorm / add)
BOTH, SOFTMAX = ("softmax", "rmsnorm"), ("softmax",)
W = {**OFF, "warp_floor_per_col": True}
EW_CANDIDATES = [
    ("A session-3 form (per-row cost), fused kinds own params", OFF, 40, 1024),
    ("B + warp softmax floor per column", W, 40, 1024),
    ("C = B, row waves instead of per-row cost (40 regs/thread)", {**W, "row_waves": BOTH}, 40, 1024),
    ("C32 = C with 32 regs/thread", {**W, "row_waves": BOTH}, 32, 1024),
    ("C64 = C with 64 regs/thread", {**W, "row_waves": BOTH}, 64, 1024),
    ("D = C, warp softmax up to 2048 bf16 elements (4 KiB rows)", {**W, "row_waves": BOTH}, 40, 2048),
    ("D32 = D with 32 regs/thread", {**W, "row_waves": BOTH}, 32, 2048),
    ("E = D, row waves for softmax only (rmsnorm: per-row cost)", {**W, "row_waves": SOFTMAX}, 40, 2048),
    ("E32 = E with 32 regs/thread", {**W, "row_waves": SOFTMAX}, 32, 2048),
]
DEC_CANDIDATES = [
    ("A session-3 decode form", OFF),
    ("B + bandwidth of no-split launches with more CTAs than SMs", {**OFF, "dec_bw_multi": ("fa2", "cudnn")}),
]


def run_ew(hw_name, train, val, hw, lines):
    tr = [m for m in train if m.cls == "elementwise" and m.reliable]
    va = [m for m in val if m.cls == "elementwise" and m.reliable]
    lines.append(f"{hw_name} elementwise fit rows: {len(tr)} train, {len(va)} validation (held-out suites not read)")
    lines.append("cand | params | train med/p90 | validation med/p90")
    res = []
    for name, terms, regs, warp in EW_CANDIDATES:
        gpu_params.ROW_REGS, gpu_params.WARP_SOFTMAX_MAX_COLS = regs, warp
        base, sms, l2 = start_values(hw_name)
        values = {k: v for k, v in base.items() if not k.startswith("ew.")}
        values.update({k: v for k, v in fit.INITIAL.items() if k.startswith("ew.")})
        values.update(fit.FIXED)
        names = fit.GROUPS["elementwise"] + fit._ew_optional(tr, values, terms)
        fit._fit_group(names, tr, hw, values, sms, l2)
        P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate")
        t, v = stats(fit.predict(P, tr, hw), tr), stats(fit.predict(P, va, hw), va)
        res.append((name, len(names), t, v))
        lines.append(f"{name:<62} | {len(names):3d} | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}")
    return choose(res, lines)


def run_dec(hw_name, train, val, hw, lines, backend):
    cls = "attention_decode_fa2" if backend == "fa2" else ("attention_decode_cudnn", "attention_decode")
    cls = (cls,) if isinstance(cls, str) else cls
    tr = [m for m in train if m.cls in cls and m.reliable]
    va = [m for m in val if m.cls in cls and m.reliable]
    if not tr:
        return None
    lines.append(f"{hw_name} decode ({backend}) fit rows: {len(tr)} train, {len(va)} validation")
    res = []
    for name, terms in DEC_CANDIDATES:
        base, sms, l2 = start_values(hw_name)
        values = dict(base)
        pre = "attn." if backend == "fa2" else f"attn_{backend}."
        for k in ("dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine", "dec_bw_multi"):
            values.pop(pre + k, None)
            values[pre + k] = fit.INITIAL.get("attn." + k, fit.INITIAL["attn.dec_bw"])
        names = [pre + k for k in ("dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine")]
        if backend in (terms["dec_bw_multi"] or ()):
            names.append(pre + "dec_bw_multi")
        else:
            values.pop(pre + "dec_bw_multi")
        default = backend if backend != "fa2" else "fa2"
        fit._fit_group(names, tr, hw, values, sms, l2, default)
        P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate", attention_default=default)
        t, v = stats(fit.predict(P, tr, hw), tr), stats(fit.predict(P, va, hw), va)
        res.append((name, len(names), t, v))
        lines.append(f"{name:<62} | {len(names):3d} | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}")
    return choose(res, lines)


def _per_gpu(hw_name, train, val, hw, lines):
    run_ew(hw_name, train, val, hw, lines)
    for backend in ("fa2", "cudnn"):
        run_dec(hw_name, train, val, hw, lines, backend)


def main():
    run_selection(OUT, _per_gpu)


if __name__ == "__main__":
    main()
