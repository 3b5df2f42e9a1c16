"""Every held-out table of docs/gpu-validation.md (issue 11), from the committed CSVs and calibrations: the fresh suite
heldout25 on the H100 and the H200 (drawn for the round-22 model, rules validation/heldout25_rules.md), the suites
heldout24 (drawn for the round-19 model, rules validation/heldout24_rules.md; unseen on the H200, whose prices round 22
left as they were), heldout23 (drawn for the round-18 model, rules validation/heldout23_rules.md), heldout22 (drawn for
the round-17 model, rules validation/heldout22_rules.md), heldout21 (drawn for the round-16 model, rules
validation/heldout21_rules.md), heldout20 (drawn for the round-15 model, rules validation/heldout20_rules.md),
heldout19 (drawn for the round-14 model, rules validation/heldout19_rules.md), heldout18 (drawn for the round-12 model,
re-frozen for round 13, rules validation/heldout18_rules.md), heldout17 (drawn for the round-11 model, rules
validation/heldout17_rules.md), heldout16 (drawn for the round-10 model, rules validation/heldout16_rules.md) and
heldout15 (drawn for the round-9 model, rules validation/heldout15_rules.md) on the H200 and the H100 (the run each GPU
measures a suite in is NAMED_RUNS's; a suite with no measured row prints "(not measured yet)"; heldout11 and heldout12
were retired unmeasured), and the previously seen suites re-scored with the same frozen model of main (H200 heldout18,
heldout17, heldout16, heldout15, heldout14 and heldout13, H100 heldout24, heldout23, heldout22, heldout21, heldout20,
heldout19, heldout18, heldout17, heldout16, heldout15, heldout14 and heldout13, H200 heldout10, heldout9, heldout8,
heldout7, heldout6, heldout5, heldout4, heldout3, heldout2 and first held-out, H100 held-out; each with and without the
exclusion rules), the published H100 attention set, family transfer both ways, and the H200 energy loops. Writes
validation/heldout_tables.txt.

Run from the repository root: PYTHONPATH=. python validation/heldout_tables.py
"""
import os
import random
from pathlib import Path

from cosim.calibrate import dataset, published
from cosim.calibrate.transfer import transfer_validate, transferred_spec
from cosim.validate import OP_CLASSES, ape, summarize, validate
from hwmodels.spec import load_hw

VAL = Path("validation")
CLASSES = OP_CLASSES + ("all",)


# the held-out suites drawn with tail classes, oldest first; the last is the fresh one. Their splits are
# cosim.calibrate.dataset.SUITES's, their H200 runs the run manifest's (validation/h200_runs.csv).
# heldout15 (validation/heldout15_rules.md) is drawn for the round-9 model and measured on the H200 (run h200_run20)
# and / or the H100 (run h100_run12) after its freeze; heldout16 (validation/heldout16_rules.md) for the round-10
# model, on the H200 (run h200_run21) and / or the H100 (run h100_run13) after its freeze; heldout17
# (validation/heldout17_rules.md) for the round-11 model, on the H200 (run h200_run22) and / or the H100 (run
# h100_run14) after its freeze; heldout18 (validation/heldout18_rules.md) for the round-12 model, re-frozen for round 13 (session 21) before
# any of its data existed, on the H200 (run h200_run23) and / or the H100 (run h100_run15) after its freeze; heldout19
# (validation/heldout19_rules.md) for the round-14 model, on the H200 (run h200_run24) and / or the H100 (run
# h100_run16) after its freeze; heldout20 (validation/heldout20_rules.md) for the round-15 model, on the H200 (run
# h200_run25) and / or the H100 (run h100_run18) after its freeze; heldout21 (validation/heldout21_rules.md) for the
# round-16 model, on the H200 (run h200_run26) and / or the H100 (run h100_run20) after its freeze; heldout22
# (validation/heldout22_rules.md) for the round-17 model, on the H200 (run h200_run27) and / or the H100 (run
# h100_run21) after its freeze; heldout23 (validation/heldout23_rules.md) for the round-18 model, on the H200 (run
# h200_run28) and / or the H100 (run h100_run22) after its freeze; heldout24 (validation/heldout24_rules.md) for the
# round-19 model, on the H200 (run h200_run29) and / or the H100 (run h100_run23) after its freeze; heldout25
# (validation/heldout25_rules.md) for the round-22 model, on the H100 (run h100_run26) and / or the H200 (run
# h200_run30) after its freeze.
TAIL_SUITES = ("heldout5", "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout13", "heldout14",
               "heldout15", "heldout16", "heldout17", "heldout18", "heldout19", "heldout20", "heldout21", "heldout22",
               "heldout23", "heldout24", "heldout25")
RUN_OF = {suite: int(run.removeprefix("h200_run")) for run, suite, _ in dataset.manifest_runs(VAL / "h200_runs.csv")}


def tail_runs(run_of):
    """({held-out split: (suite, H200 run)} of the TAIL_SUITES listed in run_of (suite -> H200 run number), the
    split of the freshest of them): a suite is listed once measured."""
    listed = [s for s in TAIL_SUITES if s in run_of]
    return {dataset.SUITES[s]: (s, run_of[s]) for s in listed}, dataset.SUITES[listed[-1]]


# held-out split -> (suite, H200 run); the freshest suite measured on the H200 (heldout14 is drawn for the H100; on
# the H200 only if one was lent)
TAIL_RUNS, LATEST = tail_runs(RUN_OF)
# the suites unseen by the model on main on the H200, whose end to end is labelled fresh: heldout25 (round 22,
# validation/heldout25_rules.md) and heldout24 (round 19, validation/heldout24_rules.md; round 22 moved no H200 own
# price, so an H200 run of it still tests the model it was frozen for); every earlier suite is a seen re-score
# (heldout23 tests round 18 and heldout22 round 17, frozen at 3299b19 and 98f5936, measured and scored once on the H100
# in sessions 26 and 25; heldout21 tests round 16, frozen at bdb22e5, heldout20 round 15, frozen at 82c7e2e, heldout19
# round 14, frozen at 805944e, each measured and scored once on the H100 in session 23 or 24. None of heldout19 -
# heldout23 was measured on an H200: round 19 moved the H200's FA2-pinned prefill prices, so each one's H200 run
# (h200_run24 - h200_run28), if ever measured, is scored once at a checkout of e036cfe, the last commit before round
# 19, whose H200 prices are those frozen for them, not by these tables, as heldout17's H200 run is at 4250fe9;
# heldout18 tests round 13, frozen at 46901c5, measured and scored once on both GPUs in session 22; heldout17 tests
# round 11, frozen at 3893292, measured and scored once on the H100 in session 20, its H200 run h200_run22 to be scored
# only at a checkout of 4250fe9 if ever measured; heldout16 tests round 10, frozen at 03f428a, measured and scored once
# on both GPUs in session 18; heldout15 tests round 9, frozen at fe59c04)
FRESH = ("test25", "test24")
# the run each GPU measures a suite in, as its rules file names it (validation/heldout15_rules.md,
# validation/heldout16_rules.md, validation/heldout17_rules.md, validation/heldout18_rules.md,
# validation/heldout19_rules.md, validation/heldout20_rules.md, validation/heldout21_rules.md,
# validation/heldout22_rules.md, validation/heldout23_rules.md, validation/heldout24_rules.md,
# validation/heldout25_rules.md): at most once per GPU,
# there; main() refuses a manifest that lists the suite otherwise
NAMED_RUNS = {"heldout15": {"h200": "h200_run20", "h100": "h100_run12"},
              "heldout16": {"h200": "h200_run21", "h100": "h100_run13"},
              "heldout17": {"h200": "h200_run22", "h100": "h100_run14"},
              "heldout18": {"h200": "h200_run23", "h100": "h100_run15"},
              "heldout19": {"h200": "h200_run24", "h100": "h100_run16"},
              "heldout20": {"h200": "h200_run25", "h100": "h100_run18"},
              "heldout21": {"h200": "h200_run26", "h100": "h100_run20"},
              "heldout22": {"h200": "h200_run27", "h100": "h100_run21"},
              "heldout23": {"h200": "h200_run28", "h100": "h100_run22"},
              "heldout24": {"h200": "h200_run29", "h100": "h100_run23"},
              "heldout25": {"h200": "h200_run30", "h100": "h100_run26"}}


def check_named_runs(gpu, runs):
    """runs: dataset.manifest_runs of validation/<gpu>_runs.csv. A suite of NAMED_RUNS is listed there not at all or
    once, under the run its rules file names; anything else is an error naming the manifest, suite and runs."""
    for suite, named in NAMED_RUNS.items():
        got = [r for r, s, _ in runs if s == suite]
        if got not in ([], [named[gpu]]):
            raise SystemExit(f"error: validation/{gpu}_runs.csv: suite {suite}: got runs {got}; expected none or "
                             f"[{named[gpu]!r}], the run validation/{suite}_rules.md names")

def _key(kind, fmt, dims, impl):
    """Rule 2's key, as every rules file states it: (kind, format, dims, implementation). The implementation
    separates what dims do not (fp8 GEMM with and without fast accumulation; attention backends are in dims)."""
    return kind, fmt, tuple(sorted(dims.items())), impl


def fit_shapes(*csvs):
    """(kind, format, dims, implementation) of every fit-split row: exclusion rule 2 (a shape seen in fitting)."""
    return {_key(m.op.kind, m.op.compute_fmt, m.op.dims, m.impl) for csv_ in csvs for m in dataset.load_ops(csv_)
            if m.op is not None and m.split == "fit"}


class _Classes:
    """A ValidationResult's per-class summary over a subset of its rows."""

    def __init__(self, rows):
        self.ops = rows
        self.classes = {}
        for cls in CLASSES:
            sel = [r for r in rows if cls == "all" or r["cls"] == cls]
            self.classes[cls] = {lvl: summarize(ape([r[f"{lvl}_s"] for r in sel], [r["measured_s"] for r in sel]))
                                 for lvl in ("roofline", "analytical")}


def excluded(res_spread, seen):
    """Rules 1 (spread: already applied by validate without include_unreliable) and 2 (shape
    seen in fitting) applied; returns (classes, rows removed by rule 2)."""
    keep = [r for r in res_spread.ops if _key(r["kind"], r["fmt"], r["dims"], r["impl"]) not in seen]
    return _Classes(keep), len(res_spread.ops) - len(keep)


def e2e_table(res, exclude_fused_eager=True):
    """End to end per (fusion, phase, mode); rule 3 marks engine_fused eager rows."""
    out = ["| fusion | phase | mode | n | roof med | roof p90 | ana med | ana p90 | note |",
           "|---|---|---|---:|---:|---:|---:|---:|---|"]
    groups = {}
    for r in (res.e2e or []):
        groups.setdefault((r["fusion"], r["phase"], r["mode"]), []).append(r)
    for (f, ph, mo), rs in sorted(groups.items()):
        a = summarize([abs(r["analytical_s"] / r["measured_s"] - 1) * 100 for r in rs])
        ro = summarize([abs(r["roofline_s"] / r["measured_s"] - 1) * 100 for r in rs])
        note = "excluded by rule 3 (Triton host launch cost)" if (exclude_fused_eager and f == "engine_fused"
                                                                  and mo == "eager") else ""
        out.append(f"| {f} | {ph} | {mo} | {a['n']} | {ro['median']:.1f} | {ro['p90']:.1f} | {a['median']:.1f} | "
                   f"{a['p90']:.1f} | {note} |")
    return out + [""]


def op_table(title, res_all, res_excl):
    out = [f"### {title}", "",
           "| op class | n | roof med | roof p90 | ana med | ana p90 | excl. | ana med (excl.) | ana p90 (excl.) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for cls in CLASSES:
        a, r = res_all.classes[cls]["analytical"], res_all.classes[cls]["roofline"]
        x = res_excl.classes[cls]["analytical"]
        if not a["n"]:
            continue
        out.append(f"| {cls} | {a['n']} | {r['median']:.1f} | {r['p90']:.1f} | {a['median']:.1f} | {a['p90']:.1f} | "
                   f"{a['n'] - x['n']} | {x['median']:.1f} | {x['p90']:.1f} |")
    return out + [""]


def e2e_lines(res):
    groups = {}
    for r in (res.e2e or []):
        groups.setdefault((r["fusion"], r["phase"], r["mode"]), []).append(abs(r["analytical_s"] / r["measured_s"] - 1) * 100)
    return [f"| e2e {f} {p} {m} | {summarize(v)['n']} | {summarize(v)['median']:.1f} | {summarize(v)['p90']:.1f} |"
            for (f, p, m), v in sorted(groups.items())]


def energy_lines(res):
    e = [abs(r["analytical_j"] / r["measured_j"] - 1) * 100 for r in (res.energy or [])]
    er = [abs(r["roofline_j"] / r["measured_j"] - 1) * 100 for r in (res.energy or [])]
    s, sr = summarize(e), summarize(er)
    return s, sr


def transfer_lines(h200, h100, h100_runs):
    """Family transfer both ways (all rows, exclusions off), goal median <= 10 %, p90 <= 25 %."""
    lines = []
    lines += ["### Family transfer (goal: median <= 10 %, p90 <= 25 %)", "",
              "| transfer | split | class | n | median | p90 | goal met |", "|---|---|---|---:|---:|---:|---|"]
    have = {m.split for m in dataset.load_ops(h200)}
    to_h200 = "H100 params -> H200 kernels"
    to_h100 = "H200 params -> H100 kernels"
    have100 = {m.split for m in dataset.load_ops(h100_runs)}
    rows = ([("h200", "h100_sxm", h200, s, to_h200)
             for s in (*reversed(TAIL_RUNS), dataset.SUITES["heldout4"], "test3", "test2", "test") if s in have]
            + [("h100_sxm", "h200", h100_runs, sp, to_h100) for sp, _ in H100_SUITES if sp in have100]
            + [("h100_sxm", "h200", h100, "test", to_h100)])
    for target, sib, csv_, split, label in rows:
        res = transfer_validate(target, sib, csv_, split=split, sm_count=132)
        for cls in CLASSES:
            a = res.classes[cls]["analytical"]
            if a["n"]:
                ok = "yes" if a["median"] <= 10 and a["p90"] <= 25 else "no"
                lines.append(f"| {label} | {split} | {cls} | {a['n']} | {a['median']:.1f} | {a['p90']:.1f} | {ok} |")
        for ln in e2e_lines(res):
            cells = ln.strip("|").split("|")
            med, p90 = float(cells[2]), float(cells[3])
            lines.append(f"| {label} | {split} |{cells[0]}|{cells[1]}|{cells[2]}|{cells[3]}| "
                         f"{'yes' if med <= 10 and p90 <= 25 else 'no'} |")
    lines.append("")
    return lines


def _tail_sets(split):
    """{group label prefix: case keys} of a suite's tail classes: heldout5's (fit-5 functions,
    second generator); heldout6's fit-5 tails (second generator) and fit-6 tails (third); heldout7 and
    later the same by their seeds, and fit suite 7's decode grid (fourth generator); heldout8 and later
    also fit suite 8's tail functions (fifth)."""
    from cosim.calibrate import microbench as mb

    def keys(g, a, e):
        return ({("gemm",) + tuple(c) for c in g} | {tuple(c) for c in a}
                | {(kind, (sz // 2) // cols, cols) for kind, cols, sz in e if kind != "rope_fused"})  # rope: by class only
    if split == "test5":
        return {"": keys(mb._GT5, mb._AT5, mb._ET5)}
    # heldout6 and later (split test<n>): microbench's HELDOUT<n>_SEED and its draw (HELDOUT8_DRAWS, or _AT<n> / _ET<n>
    # for heldout6-7), by the suite's number, so a new
    # suite needs no entry here; the fit-7 tails are drawn from heldout7 on, the fit-8 tails from heldout8 on
    n = int(split.removeprefix("test") or 0)
    if n < 6:
        raise ValueError(f"_tail_sets: split {split!r} has no drawn tail classes (test5 and test6 and later do)")
    draw = mb.HELDOUT8_DRAWS.get(f"heldout{n}")  # (gemms, attention, attention tails, elementwise, tails, e2e ...)
    at_all, et_all = (draw[2], draw[4]) if draw else (getattr(mb, f"_AT{n}"), getattr(mb, f"_ET{n}"))
    seed = getattr(mb, f"HELDOUT{n}_SEED")
    _, _, at, _, et, gt, _, _ = mb._heldout_with_tails(seed)
    n6 = len(et) + 12  # the fit-6 softmaxes follow the fit-5 elementwise tails
    sets = {"": keys(gt, at, et), "fit-6 tail: ": keys((), at_all[len(at):len(at) + 30], et_all[len(et):n6])}
    if n >= 7:  # 12 prefills + 18 decodes of the fit-6 functions, then fit 7's decode grid
        sets["fit-7 tail: "] = keys((), at_all[len(at) + 30:len(at) + 66], ())
    if n >= 8:  # then fit suite 8's tail functions (fifth generator)
        g8 = mb._fit8_gemm(random.Random(seed + 4), 20, 12)
        sets["fit-8 tail: "] = keys(g8, at_all[len(at) + 66:], et_all[n6:])
    return sets


def _group6(m) -> str:
    """fit suite 6's tail classes (microbench._fit6_prefill, _fit6_decode, softmax 8-32 K)."""
    d = m.op.dims
    if m.op.kind == "attention":
        if d["q_len"] > 1:
            return f"{m.cls} causal, length no multiple of 128"
        return f"{m.cls} {'context 128-1024' if d['kv_len'] <= 1024 else 'context 4-32 K, batch 1-8'}"
    return "softmax 8-32 K wide"


def _group7(m) -> str:
    """fit suite 7's decode grid (microbench._fit7_decode): MQA or not, short or long context."""
    d = m.op.dims
    ctx = "context 128-2048" if d["kv_len"] <= 2048 else "context 2-32 K"
    return f"{m.cls} {'MQA' if d['kv_heads'] == 1 else 'GQA/MHA'} {ctx}"


def _group8(m) -> str:
    """fit suite 8's tail classes (microbench._fit8_gemm, _fit8_prefill, _fit8_decode, _fit8_elementwise)."""
    d = m.op.dims
    if m.op.kind == "gemm":
        return f"{m.cls} {'split-K (M 40-320, K 4-28 K)' if d['m'] <= 320 else 'few tiles, long K (M 480-1150)'}"
    if m.op.kind == "attention":
        if d["q_len"] > 1:
            even = "length a multiple of 128" if d["q_len"] % 128 == 0 else "length no multiple of 128"
            return f"{m.cls} one/two-wave causal, {even}"
        ctx = "context 128-2048" if d["kv_len"] <= 2048 else "context 2-32 K"
        return f"{m.cls} GQA group {d['heads'] // d['kv_heads']} {ctx}"
    return m.op.kind


def tail_table(split, title, csv_=VAL / "h200_runs.csv", hw_name="h200"):
    """A held-out suite's tail classes, all rows, grouped as validation/fit5_tails.py groups fit
    suite 5 (and _group6 the fit-6 tails)."""
    import importlib.util
    from hwmodels import gpu
    spec = importlib.util.spec_from_file_location("fit5_tails", VAL / "fit5_tails.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sets = _tail_sets(split)
    hw = load_hw(hw_name)
    groups = {}
    for m in dataset.load_ops(csv_):
        if m.op is None or m.split != split:
            continue
        for prefix, tails in sets.items():
            if _case_key(m) in tails:
                c = gpu.estimate(m.op, hw)
                g = prefix + ({"fit-6 tail: ": _group6, "fit-7 tail: ": _group7, "fit-8 tail: ": _group8}[prefix](m) if prefix
                              else mod._group(m))
                groups.setdefault(g, []).append(c.details.get("isolated_s", c.latency_s) / m.time_s - 1.0)
    return [f"#### {title} tail classes (all rows)", "", mod.table(groups, f"group ({title})"), ""] if groups else []


def _case_key(m):
    """The microbench case a heldout5 row measured (GEMM (M, N, K), the attention tuple,
    elementwise (kind, rows, cols) with rows as section_elementwise derives them from the bytes)."""
    import json
    d, r = m.op.dims, m.row
    if m.op.kind == "gemm":
        return ("gemm", d["m"], d["n"], d["k"])
    if m.op.kind == "attention":
        ph = "decode" if d["q_len"] == 1 else "prefill"
        return (ph, d["batch"], d["heads"], d["kv_heads"], d["head_dim"], d["q_len"], d["kv_len"], d["causal"])
    raw = json.loads(r["dims"])
    return (m.op.kind, int(raw["rows"]), int(raw["cols"]))


def _failed_rows(raw_csv):
    """Rule 4: rows that failed to run are counted and listed, never scored."""
    import csv
    if not raw_csv.is_file():
        return []
    with open(raw_csv, newline="") as f:
        bad = [r for r in csv.DictReader(f) if (r.get("note") or "").startswith("FAILED")]
    return [f"(rule 4, failed rows: {len(bad)})"] + [f"- {r['kind']} {r['fmt']} {r['dims']} {r['impl']}: "
                                                     f"{r['note'][:120]}" for r in bad] + [""]


# the model on main that re-scores the seen suites (round 19, session 27: the H200's FA2-pinned prefill priced with
# round 18's form, s35, and the H200 re-fitted with it; rounds 14 - 18 and 22 changed no H200 own price)
_MODEL = ("the round-19 model (session 27: round 13's form, s24's elementwise dispatch terms in it, with FA2-pinned "
          "prefill priced as the kernel FlashAttention-2 runs, chosen on the H200's fit rows by s35_h200_fa2_kernels, "
          "the H200 calibration re-fitted with it, term set r19_h200)")
ROUND19_BASE = "e036cfe"  # the last commit before round 19 moved the H200's FA2-pinned prefill prices
# H200 splits whose frozen H200 prices a later round moved before an H200 measured them: once measured, each is scored
# once under its rules at a checkout of the commit named here, never by these tables (h200_suite_lines)
SCORED_AT_CHECKOUT = {"test17": "4250fe9",
                      **{dataset.SUITES[f"heldout{n}"]: ROUND19_BASE for n in range(19, 24)}}


def _unmeasured_on_the_h200(suite, drawn_for):
    """(split, title) of a suite measured on the H100 but not on an H200 before round 19 moved its frozen H200 prices:
    if measured on an H200 it is scored once at a checkout of ROUND19_BASE, as heldout17's H200 run would be at
    4250fe9; the title says which, from the H200 manifest."""
    run = NAMED_RUNS[suite]["h200"]
    state = ("measured on an H200 after round 19 moved its frozen H200 prices, so it is" if suite in RUN_OF else
             "not measured on an H200 yet: round 19 moved its frozen H200 prices, so if ever measured there it is")
    return (dataset.SUITES[suite],
            f"H200 {suite} (drawn for the round-{drawn_for} model, no shape in any earlier suite; run {run}, {state} "
            f"scored once under its rules (validation/{suite}_rules.md) at a checkout of {ROUND19_BASE}, not by these "
            f"tables; priced here by {_MODEL}, for information)")


# (split, title) of every H200 held-out suite, freshest first
H200_SUITES = (
    ("test25", "H200 heldout25 (fresh suite drawn for the round-22 model, whose H200 prices are round 19's; no shape "
               f"in any earlier suite; run {NAMED_RUNS['heldout25']['h200']}, measured after the round-22 freeze, "
               "scored once; rules: validation/heldout25_rules.md)"),
    ("test24", "H200 heldout24 (fresh suite drawn for the round-19 model, no shape in any earlier suite; run "
               f"{NAMED_RUNS['heldout24']['h200']}, measured after the round-19 freeze, scored once; rules: "
               "validation/heldout24_rules.md)"),
    _unmeasured_on_the_h200("heldout23", 18),
    _unmeasured_on_the_h200("heldout22", 17),
    _unmeasured_on_the_h200("heldout21", 16),
    _unmeasured_on_the_h200("heldout20", 15),
    _unmeasured_on_the_h200("heldout19", 14),
    ("test18", "H200 heldout18 (PREVIOUSLY SEEN: drawn for the round-12 model and re-frozen for round 13 before any of "
               f"its data existed, run {NAMED_RUNS['heldout18']['h200']}, measured after the round-13 freeze "
               "(session 22) and scored once with round 13 (frozen at 46901c5) at 3.4 / 10.5 "
               f"(validation/heldout18_rules.md); re-scored with {_MODEL})"),
    ("test17", "H200 heldout17 (drawn for the round-11 model, no shape in any earlier suite; run "
               f"{NAMED_RUNS['heldout17']['h200']}, if ever measured, to be scored once with round 11 (frozen at "
               "3893292; rules: validation/heldout17_rules.md) at a checkout of 4250fe9, not by these tables; seen for "
               f"rounds 12 and 13, whose class its H100 score named (validation/heldout18_rules.md); priced here by "
               f"{_MODEL}, for information)"),
    ("test16", "H200 heldout16 (PREVIOUSLY SEEN: drawn for the round-10 model, run "
               f"{NAMED_RUNS['heldout16']['h200']}, measured after the round-10 freeze and scored once with round 10 "
               f"(frozen at 03f428a) at 3.3 / 11.0 (validation/heldout16_rules.md); re-scored with {_MODEL})"),
    ("test15", "H200 heldout15 (PREVIOUSLY SEEN: drawn for the round-9 model, run "
               f"{NAMED_RUNS['heldout15']['h200']}, measured after round 10 entered main and scored once with round 9 "
               "at a checkout of ba47006, all 3.1 / 10.6 (validation/heldout15_h200_scored.txt, "
               f"validation/heldout15_rules.md); re-scored with {_MODEL})"),
    ("test14", "H200 heldout14 (drawn for the H100 re-fit, no shape in any H200 fit or held-out row; rules: "
               "validation/heldout14_rules.md; measured on an H200 only after round 9 entered main: its one score is "
               "the pre-round-9 model's at a checkout of e801c09 (docs/gpu-validation.md); here priced by "
               f"{_MODEL}, for information)"),
    ("test13", "H200 heldout13 (PREVIOUSLY SEEN: fresh suite measured after the session-12 freeze, scored once at "
               f"4.2 / 14.3 (validation/heldout13_rules.md); re-scored with {_MODEL})"),
    ("test10", "H200 heldout10 (PREVIOUSLY SEEN: session-9 fresh suite, scored once at 4.4 / 14.3; "
               f"re-scored with {_MODEL})"),
    ("test9", "H200 heldout9 (PREVIOUSLY SEEN: session-8 third-round fresh suite, scored once at 4.8 / 15.4; "
              f"re-scored with {_MODEL})"),
    ("test8", "H200 heldout8 (PREVIOUSLY SEEN: session-8 second-round fresh suite, scored once at 5.1 / 15.9 "
              f"before the cuDNN decode start fix; re-scored with {_MODEL})"),
    ("test7", "H200 heldout7 (PREVIOUSLY SEEN: session-8 fresh suite, scored once at 4.7 / 15.3; "
              f"re-scored with {_MODEL})"),
    ("test6", "H200 heldout6 (PREVIOUSLY SEEN: session-7 second-round fresh suite, scored once at 4.4 / 15.7; "
              f"re-scored with {_MODEL})"),
    ("test5", "H200 heldout5 (PREVIOUSLY SEEN: session-7 fresh suite, scored once at 4.7 / 15.9; "
              f"re-scored with {_MODEL})"),
    ("test4", "H200 heldout4 (PREVIOUSLY SEEN: session-6 fresh suite, scored once at 5.1 / 18.6; "
              f"re-scored with {_MODEL})"),
    ("test3", "H200 heldout3 (PREVIOUSLY SEEN: session-4 fresh suite, scored once at 3.8 / 14.7; "
              f"re-scored with {_MODEL})"),
    ("test2", f"H200 heldout2 (PREVIOUSLY SEEN: session-3 fresh suite, re-scored with {_MODEL})"),
    ("test", f"H200 first held-out suite (PREVIOUSLY SEEN, re-scored with {_MODEL})"))


def scored_suite(hw, csv_, split, seen, title):
    """A suite's op table, all rows and with the exclusion rules: (lines, all-rows result, rows removed by rule 2)."""
    r_all = validate(hw, csv_, split=split, include_unreliable=True)
    ex, n2 = excluded(validate(hw, csv_, split=split), seen)
    return op_table(title, r_all, ex), r_all, n2


def suite_extras(split, r_all):
    """What a suite adds below its op table: end to end, tail classes and failed rows where it has them."""
    if split in TAIL_RUNS:  # the H200 runs with tail classes: end to end, tails, failed rows
        suite, run = TAIL_RUNS[split]
        seen = "" if split in FRESH else "previously seen; "
        lines = [f"#### End to end, {suite} ({seen}Qwen2.5-7B, Llama-2-13B shapes"
                 + (", new random points)" if split in FRESH else ")"), ""]
        lines += e2e_table(r_all) + tail_table(split, f"{suite}, H200 run {run}")
        return lines + _failed_rows(VAL / f"raw_h200_run{run}" / "ops.csv")
    if split == "test4":
        lines = ["#### End to end, heldout4 (previously seen; Qwen2.5-7B, Llama-2-13B shapes)", ""] + e2e_table(r_all)
        return lines + _failed_rows(VAL / f"raw_h200_run{RUN_OF['heldout4']}" / "ops.csv")
    if split == "test3":
        return ["#### End to end, heldout3 (Llama-3.2-3B, Qwen2.5-14B shapes)", ""] + e2e_table(r_all)
    return []


def h200_suite_lines(h200, split, title, seen):
    """One H200 held-out suite: its tables, '(not measured yet)', or, for a split scored at a checkout
    (SCORED_AT_CHECKOUT), where it is scored."""
    if not any(m.split == split for m in dataset.load_ops(h200)):
        return [f"### {title}", "", "(not measured yet)", ""]
    if split in SCORED_AT_CHECKOUT:
        return [f"### {title}", "", f"(measured; scored once under its rules at a checkout of "
                                     f"{SCORED_AT_CHECKOUT[split]}, not by these tables)", ""]
    lines, r_all, n2 = scored_suite("h200", h200, split, seen, title)
    lines += [f"(rule 2, shape seen in fitting: {n2} rows; the rest of excl. is the spread rule)", ""]
    return lines + suite_extras(split, r_all)


# the H100 model on main that re-scores the seen suites (round 22, session 32: s38_h100_gemm_fit12.txt's GEMM tiles
# from the nvjet menus, the r22_h100 re-fit with fit11 and fit12; residual classes as s39_fit12_residuals.txt chose
# them)
_H100_MODEL = ("the round-22 model (session 32: round 18's H100 form with GEMM tiles chosen from the nvjet menus, "
               "chosen by s38_h100_gemm_fit12 on fit suite 12's fresh rows, the H100 calibration re-fitted with fit "
               "suites 11 and 12 among its fit rows, term set r22_h100, its measured-residual classes as "
               "s39_fit12_residuals chose them)")
# H100 suites measured on lent H100s in validation/h100_runs.csv: (split, title), freshest first
H100_SUITES = (
    ("test25", "H100 heldout25 (fresh suite drawn for the round-22 model, no shape in any earlier suite; run "
               f"{NAMED_RUNS['heldout25']['h100']}, measured after the round-22 freeze, scored once; rules: "
               "validation/heldout25_rules.md)"),
    ("test24", "H100 heldout24 (PREVIOUSLY SEEN: drawn for the round-19 model, run "
               f"{NAMED_RUNS['heldout24']['h100']}, measured after the round-19 freeze (session 27) and scored once "
               "with round 19 (frozen at 36b1055; its H100 prices round 18's) at 3.4 / 10.7, its GEMM bf16 p90 "
               f"(15.003) the one class miss (validation/heldout24_rules.md); re-scored with {_H100_MODEL})"),
    ("test23", "H100 heldout23 (PREVIOUSLY SEEN: drawn for the round-18 model, run "
               f"{NAMED_RUNS['heldout23']['h100']}, measured after the round-18 freeze (session 26) and scored once "
               "with round 18 (frozen at 3299b19) at 3.9 / 11.0, its GEMM bf16 median the one class miss "
               f"(validation/heldout23_rules.md); re-scored with {_H100_MODEL})"),
    ("test22", "H100 heldout22 (PREVIOUSLY SEEN: drawn for the round-17 model, run "
               f"{NAMED_RUNS['heldout22']['h100']}, measured after the round-17 freeze (session 25) and scored once "
               "with round 17 (frozen at 98f5936) at 3.8 / 11.5, its FA2-pinned prefill miss naming round 18's class "
               f"(validation/heldout22_rules.md); re-scored with {_H100_MODEL})"),
    ("test21", "H100 heldout21 (PREVIOUSLY SEEN: drawn for the round-16 model, run "
               f"{NAMED_RUNS['heldout21']['h100']}, measured after the round-16 freeze (session 24) and scored once "
               "with round 16 (frozen at bdb22e5) at 3.6 / 11.6, a review after that score naming round 17 "
               f"(validation/heldout21_rules.md); re-scored with {_H100_MODEL})"),
    ("test20", "H100 heldout20 (PREVIOUSLY SEEN: drawn for the round-15 model, run "
               f"{NAMED_RUNS['heldout20']['h100']}, measured after the round-15 freeze (session 24) and scored once "
               "with round 15 (frozen at 82c7e2e) at 3.9 / 11.4, its miss naming fit suite 10 "
               f"(validation/heldout20_rules.md); re-scored with {_H100_MODEL})"),
    ("test19", "H100 heldout19 (PREVIOUSLY SEEN: drawn for the round-14 model, run "
               f"{NAMED_RUNS['heldout19']['h100']}, measured after the round-14 freeze (session 23) and scored once "
               "with round 14 (frozen at 805944e) at 3.7 / 10.6, its misses naming fit suite 9 "
               f"(validation/heldout19_rules.md); re-scored with {_H100_MODEL})"),
    ("test18", "H100 heldout18 (PREVIOUSLY SEEN: drawn for the round-12 model and re-frozen for round 13 before any of "
               f"its data existed, run {NAMED_RUNS['heldout18']['h100']}, measured after the round-13 freeze "
               "(session 22) and scored once with round 13 (frozen at 46901c5) at 3.7 / 11.5 "
               f"(validation/heldout18_rules.md); re-scored with {_H100_MODEL})"),
    ("test17", "H100 heldout17 (PREVIOUSLY SEEN: drawn for the round-11 model, run "
               f"{NAMED_RUNS['heldout17']['h100']}, measured after the round-11 freeze (session 20) and scored once "
               "with round 11 (frozen at 3893292) at 3.9 / 11.9 (validation/heldout17_rules.md); re-scored with "
               f"{_H100_MODEL})"),
    ("test16", "H100 heldout16 (PREVIOUSLY SEEN: drawn for the round-10 model, run "
               f"{NAMED_RUNS['heldout16']['h100']}, measured after the round-10 freeze and scored once with round 10 "
               f"(frozen at 03f428a) at 3.9 / 12.5 (validation/heldout16_rules.md); re-scored with {_H100_MODEL})"),
    ("test15", "H100 heldout15 (PREVIOUSLY SEEN: drawn for the round-9 model, run "
               f"{NAMED_RUNS['heldout15']['h100']}, scored once with round 9 at 3.5 / 11.8 (commit ba47006, "
               f"validation/heldout15_rules.md); re-scored with {_H100_MODEL})"),
    ("test14", "H100 heldout14 (PREVIOUSLY SEEN: fresh suite for the re-fitted H100 model, scored once at 4.2 / 13.6 "
               f"(validation/heldout14_rules.md); re-scored with {_H100_MODEL})"),
    ("test13", "H100 heldout13 (PREVIOUSLY SEEN: scored once by the session-9 calibration, all 6.1 / 25.1 over the "
               "842 rows it priced (validation/heldout13_h100_rules.md); the re-fit was chosen after; re-scored with "
               f"{_H100_MODEL})"))
RUN100_OF = {suite: run for run, suite, _ in dataset.manifest_runs(VAL / "h100_runs.csv")}


def h100_suite_lines(h100_runs, split, title, seen):
    """One H100 suite of the lent-H100 runs: the H100's own calibration and the H200's parameters transferred to the
    H100 datasheet, each with and without the exclusion rules; end to end; failed rows (rule 4)."""
    if not h100_runs.is_file() or not any(m.split == split for m in dataset.load_ops(h100_runs)):
        return [f"### {title}", "", "(not measured yet)", ""]
    lines, own, n2 = scored_suite("h100_sxm", h100_runs, split, seen, f"{title}: H100's own calibration")
    lines += [f"(rule 2, shape seen in fitting: {n2} rows; the rest of excl. is the spread rule)"]
    lines += [f"(validate: {n})" for n in own.notes if n.startswith("not scored")] + [""]
    lines += [f"#### End to end, {title.split(' (')[0]} (Qwen2.5-7B, Llama-2-13B shapes; H100's own calibration)", ""]
    lines += e2e_table(own)
    spec = transferred_spec("h100_sxm", "h200", 132)
    t_lines, t_all, _ = scored_suite(spec, h100_runs, split, seen,
                                     f"{title}: H200 parameters transferred to the H100 datasheet (the "
                                     f"H200's calibration on main, round 19's; not the H100 model the title names)")
    lines += t_lines + [f"#### End to end, {title.split(' (')[0]}, H200 parameters transferred", ""] + e2e_table(t_all)
    suite = next(s for s, sp in dataset.SUITES.items() if sp == split)
    if suite in TAIL_SUITES:  # heldout14 - heldout25: tail classes by the H100's own calibration
        lines += tail_table(split, f"{suite}, H100 {RUN100_OF[suite]}, H100's own calibration", h100_runs, "h100_sxm")
    return lines + _failed_rows(VAL / f"raw_{RUN100_OF[suite]}" / "ops.csv")


def h100_lines(h100):
    """The session-9 H100 held-out suite (flat file, FA2 pinned) and its end to end."""
    lines, r_all, _ = scored_suite("h100_sxm", h100, "test", fit_shapes(h100, VAL / "h100_runs.csv"),
                                   f"H100 held-out suite (session 9, FA2 pinned; PREVIOUSLY SEEN, re-scored with "
                                   f"{_H100_MODEL})")
    return lines + ["#### End to end, H100 held-out (previously seen)", ""] + e2e_table(r_all)


def published_attention_lines():
    """Published H100 attention (default backend = cuDNN on Hopper), H200 cuDNN parameters transferred."""
    rows = published.load_published(VAL / "published" / "fa3_paper_h100_attention.csv")
    h100_from_h200 = transferred_spec("h100_sxm", "h200", 132)
    cud = published.score_published([r for r in rows if r["impl"] == "cudnn"], h100_from_h200)
    # the session-16 re-fit measured cuDNN on the lent H100: the published cuDNN rows priced by it too
    own = published.score_published([r for r in rows if r["impl"] == "cudnn"], load_hw("h100_sxm"))
    fa2 = published.score_published([r for r in rows if r["impl"] == "fa2"], load_hw("h100_sxm"))
    lines = ["### Published H100 attention forward (FA3 paper Fig. 5; status U)", "",
             "| set | model | n | ana med | ana p90 |", "|---|---|---:|---:|---:|"]
    for name, sel, model in (
            ("cuDNN (default backend), d 64/128 [headline]", [r for r in cud if r["head_dim"] <= 128],
             "h100 datasheet + H200 cuDNN params (transfer)"),
            ("cuDNN, d 64/128, causal", [r for r in cud if r["head_dim"] <= 128 and r["causal"]], "same"),
            ("cuDNN, d 64/128, non-causal", [r for r in cud if r["head_dim"] <= 128 and not r["causal"]], "same"),
            ("cuDNN, d 256 (extrapolation)", [r for r in cud if r["head_dim"] == 256], "same"),
            ("cuDNN, d 64/128", [r for r in own if r["head_dim"] <= 128], "H100's own cuDNN calibration (re-fit)"),
            ("cuDNN, d 256 (extrapolation)", [r for r in own if r["head_dim"] == 256], "same"),
            ("FA2, d 64/128", [r for r in fa2 if r["head_dim"] <= 128], "H100's own FA2 calibration"),
            ("FA2, d 256 (extrapolation)", [r for r in fa2 if r["head_dim"] == 256], "same")):
        s = published.summary(sel)
        lines.append(f"| {name} | {model} | {s['n']} | {s['median']:.1f} | {s['p90']:.1f} |")
    lines += ["", "| impl | d | causal | seqlen | measured us | predicted us | err % |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in cud + fa2:
        lines.append(f"| {r['impl']} | {r['head_dim']} | {r['causal']} | {r['seqlen']} | {r['measured_s'] * 1e6:.0f} | "
                     f"{r['analytical_s'] * 1e6:.0f} | {r['err_pct']:.1f} |")
    return lines + [""]


def energy_table(h200, h100):
    """Energy per op loop (NVML total-energy counter loops), both GPUs, fit and test splits."""
    lines = ["### Energy per op loop (NVML)", "", "| GPU | split | n | ana med | ana p90 | roof med | roof p90 |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for hw, csv_ in (("h200", h200), ("h100_sxm", h100)):
        for split in ("fit", "test"):
            s, sr = energy_lines(validate(hw, csv_, split=split, include_unreliable=True))
            lines.append(f"| {hw} | {split} | {s['n']} | {s['median']:.1f} | {s['p90']:.1f} | {sr['median']:.1f} | "
                         f"{sr['p90']:.1f} |")
    return lines


def main():
    h200, h100 = VAL / "h200_runs.csv", VAL / "h100_ops.csv"
    check_named_runs("h200", dataset.manifest_runs(h200))
    check_named_runs("h100", dataset.manifest_runs(VAL / "h100_runs.csv"))
    seen200 = fit_shapes(h200)
    lines = ["# Held-out tables (validation/heldout_tables.py)", ""]
    for split, title in H200_SUITES:
        lines += h200_suite_lines(h200, split, title, seen200)
    h100_runs = VAL / "h100_runs.csv"
    seen100 = fit_shapes(h100_runs, h100)  # rule 2 for the H100: both H100 files' fit rows (heldout14_rules.md)
    for split, title in H100_SUITES:
        lines += h100_suite_lines(h100_runs, split, title, seen100)
    lines += h100_lines(h100) + published_attention_lines() + transfer_lines(h200, h100, h100_runs)
    lines += energy_table(h200, h100)
    lines.append(f"\n(load {os.getloadavg()[0]:.1f})")
    text = "\n".join(lines) + "\n"
    (VAL / "heldout_tables.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
