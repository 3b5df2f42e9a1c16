"""Where the extra time of FA2-pinned causal prefill at lengths that are no multiple of 128 comes from (a diagnostic,
issue 11; fit shapes only, no held-out shape is run).

Why. The H100 kernel profile (h100_kernel_profile.csv, session 25) ran each profiled FA2 fit shape's kernel without an
L2 flush; microbench times the same call after reading a 1 GiB flush buffer. Joined with the fit rows, the op time
minus the profiled kernel time is 3 - 6 us for even lengths, non-causal launches and the split-KV kernel, but 10 - 19
us for causal one-pass launches of uneven length (d 128; d 64 6 - 15 us). The model prices that as a fixed 3.4 us plus
a single-wave term (`attn.ragged`, `attn.ragged_wave`). Whether the extra time is inside the kernel (a cold-cache or
masking cost) or outside it (a gap before the kernel) decides the model's form, so this script measures both on the
same shapes:

  flush      microbench's own timing (Bench.time: flush, event, call, event; median of its repetitions)
  noflush    the same without the flush (the L2 warm from the previous call, as in the kernel profile)
  kernel_flush / kernel_noflush   the FA2 kernels' device time per call under torch.profiler, three calls, each
             after a flush (or not); gap_flush: the time from the flush kernel's end to the first FA2 kernel's start
  cpu        host time of one call (time.perf_counter around the call, no synchronisation; median of 20)

Shapes: every FA2-pinned prefill shape of validation/diagnostics/h100_kernel_profile_cases.csv (the 160 profiled fit
shapes), in that file's order. One row per shape and quantity, written as it goes; resumes where <out.csv> stops.

  python3 validation/diagnostics/fa2_uneven_probe.py <out.csv> [budget_s]      (on the device)
  PYTHONPATH=. python validation/diagnostics/fa2_uneven_probe.py summary <out.csv> [<record.txt>]
      medians per launch class (even / uneven length, causal or not, the split-KV kernel by FA2's rule, head dim)
      of each quantity minus the kernel's device time without the flush
"""
from __future__ import annotations

import csv
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = REPO / "validation/diagnostics/h100_kernel_profile_cases.csv"
FIELDS = ["dims", "even", "causal", "quantity", "value_us", "n"]


def shapes() -> list[str]:
    return [r["dims"] for r in csv.DictReader(open(CASES)) if r["case"] == "fa2_prefill"]


def _fa2_kernels(trace_path: str):
    with open(trace_path) as fh:
        ev = [e for e in json.load(fh).get("traceEvents", []) if e.get("ph") == "X" and e.get("cat") == "kernel"]
    return sorted(ev, key=lambda e: e["ts"])


def summary(csv_path: Path) -> list[str]:
    """One line per launch class: shapes, and the medians of (quantity - kernel_noflush) and of the raw times."""
    from hwmodels import gpu
    from hwmodels.spec import load_hw
    from validation.diagnostics.kernel_profile_compare import fa2_prefill_splits
    P = gpu.analytical_params(load_hw("h100_sxm"))  # the H100's SM count, for FA2's split rule
    bq = gpu.FA2_BQ  # the one-pass kernel's query block
    by = {}
    for r in csv.DictReader(open(csv_path)):
        by.setdefault(r["dims"], {})[r["quantity"]] = float(r["value_us"])
    groups = {}
    for dims, v in by.items():
        d = json.loads(dims)
        split = fa2_prefill_splits(d, P) > 1
        cls = (f"{'even' if d['q_len'] % bq == 0 else 'uneven'} {'causal' if d['causal'] else 'full'}"
               f"{' split-KV' if split else ''} d{d['head_dim']}")
        groups.setdefault(cls, []).append(v)
    med = statistics.median
    lines = [f"FA2-pinned prefill fit shapes ({csv_path.name}): medians in us; extra = quantity - the FA2 kernels' "
             "device time without the flush",
             f"{'launch class':28s} | shapes | flush timing extra | kernel after flush extra | gap after flush | "
             "kernel (no flush)"]
    for cls, vs in sorted(groups.items()):
        lines.append(f"{cls:28s} | {len(vs):6d} | {med(x['flush'] - x['kernel_noflush'] for x in vs):18.1f} | "
                     f"{med(x['kernel_flush'] - x['kernel_noflush'] for x in vs):24.1f} | "
                     f"{med(x['gap_flush'] for x in vs):15.1f} | {med(x['kernel_noflush'] for x in vs):17.1f}")
    # uneven causal one-pass launches by whether the longest CTA iterates past the uneven kernel's masking steps
    # (ceil(Bq / Bk) + 1, flash_fwd_kernel.h; the model's blocks, hwmodels.gpu._fa2_blocks) and by waves of one CTA
    # per SM
    past = {}
    for dims, v in by.items():
        d = json.loads(dims)
        if not d["causal"] or d["q_len"] % bq == 0 or fa2_prefill_splits(d, P) > 1:
            continue
        _, bk = gpu._fa2_blocks(d["head_dim"])
        beyond = -(-d["kv_len"] // bk) > -(-bq // bk) + 1
        one_wave = d["batch"] * d["heads"] * -(-d["q_len"] // bq) <= P.sm_count
        key = (d["head_dim"], "past" if beyond else "within", "single-wave" if one_wave else "multi-wave")
        past.setdefault(key, []).append(v["kernel_flush"] - v["kernel_noflush"])
    lines.append("uneven causal one-pass launches: kernel after flush extra by the masking steps (ceil(Bq / Bk) + 1) "
                 "and waves (CTAs <= SMs: single)")
    for (hd, where, waves), e in sorted(past.items()):
        lines.append(f"  d{hd} {where:6s} the masking steps, {waves:11s} | {len(e):3d} shapes | "
                     f"median {med(e):5.1f} us")
    return lines


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    if argv[0] == "summary":
        lines = summary(Path(argv[1]))
        if len(argv) > 2:
            Path(argv[2]).write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        return 0
    out, budget = Path(argv[0]), float(argv[1]) if len(argv) > 1 else 240.0
    sys.path.insert(0, str(REPO))
    import torch
    from torch.profiler import ProfilerActivity, profile as tprofile

    from cosim.calibrate import microbench as mb
    bench = mb.Bench(torch, None, inspect.signature(mb.run).parameters["flush_mb"].default)  # microbench.run's flush
    done = {r["dims"] for r in csv.DictReader(open(out))} if out.exists() else set()
    new = not out.exists()
    fh = open(out, "a", newline="")
    w = csv.DictWriter(fh, FIELDS)
    if new:
        w.writeheader()
    trace = os.path.join(tempfile.mkdtemp(), "t.json")
    t0, n = time.time(), 0
    for dims in shapes():
        if dims in done:
            continue
        if time.time() - t0 > budget:
            print(f"budget {budget:.0f} s reached after {n} shapes", flush=True)
            break
        d = json.loads(dims)
        b, h, kvh, ql, kl, hd = (d[x] for x in ("batch", "heads", "kv_heads", "q_len", "kv_len", "head_dim"))
        q = torch.randn(b, h, ql, hd, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(b, kvh, kl, hd, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(b, kvh, kl, hd, device="cuda", dtype=torch.bfloat16)
        fn = lambda: mb._sdpa(torch, "FLASH_ATTENTION", True, q, k, v, d["causal"], ctx=False)  # noqa: E731
        rows = []
        with mb._sdpa_ctx(torch, "FLASH_ATTENTION"):
            for flush in (True, False):
                t = bench.time(fn, flush=flush)
                rows.append(("flush" if flush else "noflush", t["median_s"] * 1e6, t["reps"]))
            for flush in (True, False):
                fn()
                torch.cuda.synchronize()
                with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(3):
                        if flush:
                            bench.flush()
                        fn()
                    torch.cuda.synchronize()
                prof.export_chrome_trace(trace)
                ks = _fa2_kernels(trace)
                per_call, gaps, last_flush_end, cur = [], [], None, None
                for e in ks:
                    if "flash" not in e["name"]:  # the flush's reduction kernel(s)
                        last_flush_end, cur = e["ts"] + e["dur"], None
                        continue
                    if cur is None:
                        per_call.append(0.0)
                        cur = len(per_call) - 1
                        if last_flush_end is not None:
                            gaps.append(e["ts"] - last_flush_end)
                    per_call[cur] += e["dur"]
                if not flush:  # without flushes the calls' kernels run back to back: split them evenly
                    fa = [e["dur"] for e in ks if "flash" in e["name"]]
                    per_call = [sum(fa) / 3.0] if fa else []
                tag = "flush" if flush else "noflush"
                if per_call:
                    rows.append((f"kernel_{tag}", statistics.median(per_call), len(per_call)))
                if gaps:
                    rows.append(("gap_flush", statistics.median(gaps), len(gaps)))
            cpu = []
            for _ in range(20):
                c0 = time.perf_counter()
                fn()
                cpu.append((time.perf_counter() - c0) * 1e6)
            torch.cuda.synchronize()
            rows.append(("cpu", statistics.median(cpu), len(cpu)))
        for quantity, val, cnt in rows:
            w.writerow({"dims": dims, "even": int(ql % 128 == 0), "causal": int(d["causal"]), "quantity": quantity,
                        "value_us": f"{val:.3f}", "n": cnt})
        fh.flush()
        q = k = v = None
        fn = None
        torch.cuda.empty_cache()
        n += 1
    fh.close()
    print(f"{n} shapes in {time.time() - t0:.0f} s -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
