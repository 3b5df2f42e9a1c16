"""What every model-selection script shares (issue 11): the fit rows of a GPU split into train and
validation (dataset.carve_validation, crc32 mod 5; no held-out suite is read), the start values
(the committed calibration), the score of a fitted candidate, and the choice rule (per group the
lowest validation p90; a candidate with fewer parameters within 2 points of it is preferred).

Every selection record (<script>.txt) is a frozen record of the commit that wrote it: later fit suites
change the fit rows and the committed calibration the candidates start from, and since session 8 the
candidate terms a selection rejected are no longer in the model (their code is at that commit)."""
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from cosim.calibrate import dataset, fit
from hwmodels import gpu_params
from hwmodels.gpu import GpuParams

# each GPU's fit rows for a new round: the H100's are the session-15 runs its committed (session-16) re-fit used;
# rounds up to session 13 read the retired session-9 suite, validation/h100_ops.csv (their records are frozen at
# their commits)
CSV = {"h200": "validation/h200_runs.csv", "h100_sxm": "validation/h100_runs.csv"}
HEADER = "cand | params | train med/p90 | validation med/p90"


def frozen_record(script: str, commit: str):
    """Stop a selection script whose candidates need code the model no longer has, saying where its
    record reproduces."""
    name = Path(script).stem
    raise SystemExit(f"error: {name}.py is a frozen record of commit {commit}: the candidate terms it scored "
                     f"and rejected are no longer in the model; reproduce {name}.txt there: git worktree add "
                     f"../{name} {commit} && cd ../{name} && PYTHONPATH=. python "
                     f"validation/model_selection/{name}.py")


def stats(pred, meas):
    e = np.abs(pred / np.array([m.time_s for m in meas]) - 1) * 100
    return float(np.median(e)), float(np.percentile(e, 90))


def start_values(hw_name):
    """Every parameter at the committed calibration's value (the groups refitted below
    restart from INITIAL for their own names, so only other groups' values carry over)."""
    from hwmodels.gpu import params_for
    from hwmodels.spec import load_hw
    P = params_for(load_hw(hw_name))
    return {**fit.INITIAL, **P.values, **fit.FIXED}, P.sm_count, P.l2_bytes


def rows_of(train, val, classes):
    """The reliable train and validation rows of the op classes `classes`."""
    return ([m for m in train if m.cls in classes and m.reliable], [m for m in val if m.cls in classes and m.reliable])


def score_fitted(values, sms, l2, default, tr, va, hw, n_params, lines, label):
    """Score fitted parameter `values` on the train and validation rows; one record line. Returns (label,
    parameters, train (median, p90), validation (median, p90), validation rows' |errors| %) - the last for the
    round-7 rule (choose_resolved); choose reads the first four."""
    P = GpuParams(values=values, sm_count=sms, l2_bytes=l2, provenance="candidate", attention_default=default)
    pred_va = fit.predict(P, va, hw)
    t, v = stats(fit.predict(P, tr, hw), tr), stats(pred_va, va)
    lines.append(f"{label:<62} | {n_params:3d} | {t[0]:5.1f} / {t[1]:5.1f} | {v[0]:5.1f} / {v[1]:5.1f}")
    err = np.abs(pred_va / np.array([m.time_s for m in va]) - 1) * 100 if len(va) else np.zeros(0)
    return label, n_params, t, v, err


DEC_KEYS = ("dec_floor", "dec_bw", "cta_bw_split", "cta_bw_nosplit", "combine")


def score_decode(hw_name, hw, tr, va, backend, terms, lines, label):
    """Fit one backend's decode parameters on tr (from fit.INITIAL), score tr and va; every other
    parameter keeps the committed calibration (FA2's split heuristic multiple included)."""
    base, sms, l2 = start_values(hw_name)
    pre = "attn." if backend == "fa2" else f"attn_{backend}."
    values = {k: v for k, v in base.items()
              if not (k.startswith(pre) and k[len(pre):].startswith(("dec_", "cta_bw", "combine", "lean")))}
    for k in DEC_KEYS:  # every candidate of both backends starts from fit.INITIAL
        values[pre + k] = fit.INITIAL[f"attn.{k}"]
    names = [pre + k for k in DEC_KEYS]
    if pre + "dec_bw_multi" in base:
        values[pre + "dec_bw_multi"] = values[pre + "dec_bw"]
        names.append(pre + "dec_bw_multi")
    names += fit._decode_optional(pre, backend, terms, values)
    default = "cudnn" if backend == "cudnn" else "fa2"
    fit._fit_group(names, tr, hw, values, sms, l2, default)
    return score_fitted(values, sms, l2, default, tr, va, hw, len(names), lines, label)


def score_group(hw_name, hw, tr, va, group, terms, lines, label, drop=(), default="fa2", by_class=False, n_extra=0):
    """Fit one group's parameters (fit.GROUPS[group], each from fit.INITIAL, plus the optional terms
    `terms` switches on, through cosim.calibrate.fit's own helpers: elementwise's and FA2 prefill's as
    fit.fit_latency adds them) on tr; score tr and va. Every other
    parameter keeps the committed calibration; the keys in `drop` (candidate terms) are removed first so
    no candidate starts from a fitted value of itself. `by_class`: also a line per op class of the rows
    (the same fit; for information, not returned to the rule). `n_extra`: parameters a candidate chose
    outside the fit (a constant picked on the train rows from a grid), counted with the fitted ones."""
    values, sms, l2, names = fit_group(hw_name, hw, tr, group, terms, drop, default)
    res = score_fitted(values, sms, l2, default, tr, va, hw, len(names) + n_extra, lines, label)
    for cls in sorted({m.cls for m in tr}) if by_class else ():
        score_fitted(values, sms, l2, default, [m for m in tr if m.cls == cls], [m for m in va if m.cls == cls], hw,
                     len(names) + n_extra, lines, f"  {cls}")
    return res


def fit_group(hw_name, hw, tr, group, terms, drop=(), default="fa2"):
    """score_group's fit: (fitted values, SMs, L2 bytes, the fitted parameter names)."""
    base, sms, l2 = start_values(hw_name)
    # the group's structure switches (gpu_params.SWITCH_PARAMS: gemm.stream_k, gemm.fp8_no_stream_k, ...; and the
    # GEMM tile set fit._s7_optional records) come from the candidate's terms, never from the committed calibration:
    # a candidate that turns one off must not inherit it. (Decode's switches: score_decode clears its own keys.)
    prefixes = {k.split(".")[0] + "." for k in fit.GROUPS[group]}
    structure = gpu_params.SWITCH_PARAMS + ("gemm.tile_set",)
    values = {k: v for k, v in base.items()
              if k not in drop and not (k in structure and k.startswith(tuple(prefixes)))}
    names = list(fit.GROUPS[group])
    for k in names:
        values[k] = fit.INITIAL[k]
    names += fit._s7_optional(group, tr, values, terms)
    if group == "elementwise":
        names += fit._ew_optional(tr, values, terms)
    elif group == "attention_prefill":  # FA2's prefill terms, as fit.fit_latency adds them
        names += fit._prefill_optional("attn.", "fa2", terms, values)
    fit._fit_group(names, tr, hw, values, sms, l2, default)
    return values, sms, l2, names


def score_unfused(hw_name, hw, tr, va, terms, lines, label, default=None):
    """Fit unfused (Hugging Face eager) attention's multipliers on tr with the CLI's own fit.fit_unfused (each
    from 1.0, the optional ones `terms` switches on where tr identifies them); every other parameter keeps the
    committed calibration (launch.overlap included: fit() fits this group after the launch constants), every
    unfused.* key is removed first; score tr and va. `default`: the backend the CLI passes (the default-backend
    rows' match, fit._default_backend), cuDNN on the H200."""
    base, sms, l2 = start_values(hw_name)
    values = {k: v for k, v in base.items() if not k.startswith("unfused.")}
    default = default or ("cudnn" if hw_name == "h200" else "fa2")
    before = set(values)
    fit.fit_unfused(tr, hw, values, sms, l2, terms, default)
    n = len(set(values) - before)
    return score_fitted(values, sms, l2, default, tr, va, hw, n, lines, label)


def score_candidates(tr, va, candidates, score, lines, title, rule=None):
    """The loop every selection repeats: a title line and the header, then `score(terms_on, label)` for
    each (terms_on, label) of `candidates` (the first is the current form), then the rule's choice: `rule`
    (choose, rounds 1-6, by default; choose_resolved for round 7)."""
    lines += [f"{title}: {len(tr)} train, {len(va)} validation", HEADER]
    return (rule or choose)([score(on, label) for on, label in candidates], lines)


def choose(res, lines):
    best = min(res, key=lambda r: r[3][1])
    pick = min((r for r in res if r[3][1] <= best[3][1] + 2.0), key=lambda r: (r[1], r[3][1]))
    lines.append(f"chosen: {pick[0]}")
    lines.append("")
    return pick[0]


# The round-7 rule (validation/model_selection/RULE_round7.md; fixed in session 11 before any round-7 candidate
# exists). Goal per class: median <= 5, p90 <= 15 (issue 11).
GOAL = {"median": 5.0, "p90": 15.0}
RESAMPLES, BOOT_SEED = 4000, 20261206


def target_stat(v) -> str:
    """The statistic a group's selection ranks by: the median where only the median misses the goal on the current
    form's validation rows, else the p90."""
    med, p90 = v
    return "median" if med > GOAL["median"] and p90 <= GOAL["p90"] else "p90"


def _stat(err, which):
    return np.median(err, axis=-1) if which == "median" else np.percentile(err, 90, axis=-1)


def resolved_gain(err_a, err_c, which, resamples=RESAMPLES, seed=BOOT_SEED):
    """(C's statistic minus A's on the same validation rows, 95 % paired-bootstrap interval (lo, hi))."""
    idx = np.random.default_rng(seed).integers(0, len(err_a), size=(resamples, len(err_a)))
    diff = _stat(err_c[idx], which) - _stat(err_a[idx], which)
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return float(_stat(err_c, which) - _stat(err_a, which)), (float(lo), float(hi))


def choose_resolved(res, lines):
    """The round-7 rule. res[0] is the current form A. Target statistic from A's validation figures (target_stat).
    A candidate is eligible only if its gain over A on that statistic is resolved: the 95 % paired-bootstrap
    interval of (C - A) lies below 0. Among A and the eligible, the lowest target statistic; one with fewer
    parameters within the margin (2 points for p90, 1 for the median) is preferred. Returns the chosen label."""
    a = res[0]
    which = target_stat(a[3])
    keep = [a]
    for c in res[1:]:
        d, (lo, hi) = resolved_gain(a[4], c[4], which)
        ok = hi < 0
        lines.append(f"  {c[0]}: {which} {d:+.2f} vs {a[0]}, 95 % [{lo:+.2f}, {hi:+.2f}]: "
                     f"{'resolved' if ok else 'not resolved (not eligible)'}")
        keep += [c] if ok else []
    key = (lambda r: r[3][0]) if which == "median" else (lambda r: r[3][1])
    margin = 1.0 if which == "median" else 2.0
    best = min(keep, key=key)
    pick = min((r for r in keep if key(r) <= key(best) + margin), key=lambda r: (r[1], key(r)))
    lines.append(f"chosen ({which}, resolved gains only): {pick[0]}")
    lines.append("")
    return pick[0]


def run_selection(out: Path, per_gpu, after=None, header=()):
    """The selection driver both sessions' scripts share: per GPU named on the command line
    (default both), its fit rows split into train / validation (dataset.carve_validation),
    `per_gpu(hw_name, train, val, hw, lines)` appends its candidates and choices; `after(hws,
    lines)` runs once at the end; the lines go to `out`, after the title and any `header` lines."""
    hws = sys.argv[1:] or ["h200", "h100_sxm"]
    lines = [f"# {out.with_suffix('.py')} (fit rows only; rule in the script's docstring)", *header, ""]
    t0 = time.time()
    for hw_name in hws:
        hw = fit.base_spec(hw_name)
        meas = [m for m in dataset.load_ops(CSV[hw_name]) if m.split == "fit" and m.op is not None]
        train, val = dataset.carve_validation(meas)
        per_gpu(hw_name, train, val, hw, lines)
        print("\n".join(lines), flush=True)
    if after is not None:
        after(hws, lines)
    lines.append(f"(load {os.getloadavg()[0]:.1f}, {time.time() - t0:.0f} s)")
    out.write_text("\n".join(lines) + "\n")
    print(lines[-1])


def per_gpu_record(out: Path, run_one):
    """The driver of the residual selections (s19, s20): `run_one(hw_name, lines)` per GPU named on the command line
    (default both); the title, each GPU's lines, the load and time go to `out`."""
    hws = sys.argv[1:] or ["h200", "h100_sxm"]
    lines = [f"# {out.with_suffix('.py').name} (fit rows only; rule in the script's docstring)", ""]
    t0 = time.time()
    for hw_name in hws:
        run_one(hw_name, lines)
        print("\n".join(lines), flush=True)
    lines.append(f"(load {os.getloadavg()[0]:.1f}, {time.time() - t0:.0f} s)")
    out.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def prefill_candidate(prefill_time, set_terms):
    """A FA2 prefill candidate's code for this process (s30 - s33): hwmodels.gpu.attention_prefill_time replaced by
    `prefill_time`, and cosim.calibrate.fit._prefill_optional first calling `set_terms(backend, terms, values)`, which
    records the candidate's flags (not fitted) and returns the names of any parameters it adds to the fit (after the
    committed optional terms). Both restored on exit."""
    from hwmodels import gpu
    orig_time, orig_opt = gpu.attention_prefill_time, fit._prefill_optional

    def optional(pre, backend, terms, values):
        added = list(set_terms(backend, terms, values) or ())
        return orig_opt(pre, backend, terms, values) + added

    gpu.attention_prefill_time, fit._prefill_optional = prefill_time, optional
    try:
        yield
    finally:
        gpu.attention_prefill_time, fit._prefill_optional = orig_time, orig_opt


def flag_term(term: str, key: str):
    """A prefill_candidate `set_terms` for a candidate that is one structure flag: `key` recorded as 1 (not fitted)
    where the terms list the backend under `term`."""
    def set_terms(backend, terms, values):
        if backend in (terms.get(term) or ()):
            values[key] = 1.0
    return set_terms


def r17_h100_terms(**on):
    """The H100 term set the round-18 selections (s30 - s33) scored their candidates against, plus a candidate's terms
    `on`: r14_h100, the H100's default until round 18 made r18_h100 (s33's choice) the default, so that their records
    reproduce after it."""
    return {**fit.TERM_SETS["r14_h100"], **on}


def score_fa2_prefill(hw_name, hw, tr, va, lines, candidates, base_terms, drop):
    """The loop of the FA2-pinned prefill selections (s30 - s35): each candidate (the terms it switches on, its label,
    parameters counted beyond the fitted ones: -1 where `attn.tail` has no effect) re-fits the prefill group from
    fit.INITIAL with `base_terms` plus its terms, the keys in `drop` restarting from their start values; the round-7
    rule chooses (choose_resolved). tr / va: the FA2 prefill train and validation rows."""
    extra = {label: n for _, label, n in candidates}
    return score_candidates(
        tr, va, [(on, label) for on, label, _ in candidates],
        lambda on, label: score_group(hw_name, hw, tr, va, "attention_prefill", {**base_terms, **on}, lines, label,
                                      drop=drop, n_extra=extra[label]),
        lines, f"{hw_name} FA2 prefill fit rows", rule=choose_resolved)


def run_one_gpu(out: Path, per_gpu, hw_name: str, refusal: str):
    """A selection that scores one GPU only: `run_selection` on `hw_name`; any other GPU named on the command line is
    refused with `refusal` (the error line, saying why)."""
    if sys.argv[1:] not in ([], [hw_name]):
        raise SystemExit(f"error: {refusal}")
    sys.argv[1:] = [hw_name]
    run_selection(out, per_gpu)
