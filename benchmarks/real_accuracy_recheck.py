"""Re-run rows of the real-accuracy table (benchmarks/real_accuracy_table.py, the same run_row) on the current code
and compare with the stored log benchmarks/results/real_accuracy.jsonl, without touching it: are the published
figures still what the code gives? Equality is exact (float equality of perplexity, KL, top-1, final hidden SQNR and
MiniLM's embedding cosine; NaN equals NaN).

    python benchmarks/real_accuracy_recheck.py [--only "label;label"] [--skip "label;label"]

Writes benchmarks/results/real_accuracy_recheck.{json,md} with the commit it ran at.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_accuracy_table as T  # noqa: E402
from cosim.report import git_commit  # noqa: E402

KEYS = ("perplexity", "kl", "top1_agreement", "hidden_sqnr_db", "embedding_cosine")


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="labels to re-run, ';'-separated (default: every stored row)")
    ap.add_argument("--skip", default="", help="labels not to re-run, ';'-separated")
    a = ap.parse_args(argv)
    from cosim.jsonio import finished_rows
    stored = {r["label"]: r for r in finished_rows(T.OUT / "real_accuracy.jsonl")}  # the table script's own reader
    only, skip = set(filter(None, a.only.split(";"))), set(filter(None, a.skip.split(";")))
    unknown = (only | skip) - {label for _, label, _ in T.CONFIGS}
    if unknown:
        raise SystemExit(f"--only/--skip: unknown label(s) {sorted(unknown)}; expected labels of "
                         f"benchmarks/real_accuracy_table.py's CONFIGS")
    rows, skipped = [], []
    for group, label, opts in T.CONFIGS:
        s = stored.get(label)
        why = skip_reason(label, s, only, skip)
        if why:
            skipped.append({"group": group, "label": label, "reason": why})
            print(f"{label:<36} skipped ({why})", flush=True)
            continue
        t0 = time.perf_counter()
        now = T.run_row(label, opts, int(s["tokens_window"]))
        same = all(_same(now[k], s[k]) for k in KEYS if k in s)
        rows.append({"group": group, "label": label, "identical": same, "elapsed_s": time.perf_counter() - t0,
                     "stored": {k: s.get(k) for k in KEYS}, "now": {k: now[k] for k in KEYS}})
        print(f"{label:<36} {'identical' if same else 'CHANGED'}  KL {s['kl']:.4g} -> {now['kl']:.4g}  "
              f"hidden SQNR {s['hidden_sqnr_db']:.3f} -> {now['hidden_sqnr_db']:.3f}", flush=True)
    commit = git_commit()
    (T.OUT / "real_accuracy_recheck.json").write_text(json.dumps({"commit": commit, "rows": rows, "skipped": skipped},
                                                                 indent=1, default=float) + "\n")
    lines = [headline(commit, rows, skipped), "",
             "| group | configuration | identical | KL stored -> now | top-1 stored -> now | hidden SQNR dB stored -> now |",
             "|---|---|---|--:|--:|--:|"]
    for r in rows:
        s, n = r["stored"], r["now"]
        lines.append(f"| {r['group']} | {r['label']} | {'yes' if r['identical'] else 'NO'} | {s['kl']:.4g} -> "
                     f"{n['kl']:.4g} | {s['top1_agreement']:.4g} -> {n['top1_agreement']:.4g} | "
                     f"{s['hidden_sqnr_db']:.3f} -> {n['hidden_sqnr_db']:.3f} |")
    for r in skipped:
        lines.append(f"| {r['group']} | {r['label']} | skipped: {r['reason']} | | | |")
    (T.OUT / "real_accuracy_recheck.md").write_text("\n".join(lines) + "\n")
    return 0 if all(r["identical"] for r in rows) else 1


def skip_reason(label: str, stored: dict | None, only: set, skip: set) -> str:
    """Why a row of the table script's CONFIGS is not re-run ('' when it is)."""
    if only and label not in only:
        return "not in --only"
    if label in skip:
        return "--skip"
    if stored is None:
        return "not in real_accuracy.jsonl"
    if stored.get("status") != "ok":
        return f"stored status {stored.get('status')!r}, not 'ok'"
    return ""


def headline(commit: str, rows: list, skipped: list) -> str:
    """The recheck's one-line result: rows re-run and identical, out of every row of the table script, the
    skipped ones counted and named with why (a skipped row is never left out of the count)."""
    total = len(rows) + len(skipped)
    same = sum(r["identical"] for r in rows)
    text = (f"Real-accuracy table rows re-run at commit {commit} (benchmarks/real_accuracy_recheck.py, "
            f"real_accuracy_table.run_row) against benchmarks/results/real_accuracy.jsonl: {len(rows)} of the "
            f"{total} rows of real_accuracy_table.py's CONFIGS re-run, {same} of those {len(rows)} identical "
            f"(exact float equality)")
    if skipped:
        by = {}
        for r in skipped:
            by.setdefault(r["reason"], []).append(r["label"])
        text += f"; {len(skipped)} skipped, not checked (" + "; ".join(
            f"{why}: {', '.join(labels)}" for why, labels in by.items()) + ")"
    return text + "."


if __name__ == "__main__":
    sys.exit(main())
