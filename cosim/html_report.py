"""One experiment's report on disk: report.csv (per-op table), report.json (totals, rows,
accuracy by layer, provenance) and report.html (a small self-contained page with the
plots embedded as PNG: roofline, latency/energy by op kind, accuracy by layer)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path

__all__ = ["write_report", "breakdown_plot", "accuracy_plot"]


def _png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def breakdown_plot(rep):
    """Two horizontal bars: share of latency and of energy per op kind."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({r["kind"] for r in rep.rows})
    lat = {k: sum(r["latency_s"] for r in rep.rows if r["kind"] == k) for k in kinds}
    en = {k: sum(r["energy_j"] for r in rep.rows if r["kind"] == k) for k in kinds}
    fig, ax = plt.subplots(figsize=(7, 2.4))
    cmap = plt.get_cmap("tab10")
    for y, (label, vals) in enumerate((("latency", lat), ("energy", en))):
        total = sum(vals.values()) or 1.0
        left = 0.0
        for i, k in enumerate(kinds):
            w = vals[k] / total
            ax.barh(y, w, left=left, color=cmap(i % 10), label=k if y == 0 else None)
            if w > 0.06:
                ax.text(left + w / 2, y, f"{100 * w:.0f}%", ha="center", va="center", fontsize=7)
            left += w
    ax.set_yticks([0, 1], ["latency", "energy"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the forward pass")
    ax.legend(fontsize=7, ncol=min(len(kinds), 6), loc="upper center", bbox_to_anchor=(0.5, -0.35))
    fig.tight_layout()
    return fig


def accuracy_plot(rep):
    """SQNR (dB) of every sampled (op, layer); None when the report has no accuracy."""
    acc = rep.meta.get("accuracy")
    if not acc or not acc.get("by_layer"):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = acc["by_layer"]
    ops = list(dict.fromkeys(r["op"] for r in recs))
    layers = sorted({r["layer"] for r in recs})
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(1, len(layers))
    for j, layer in enumerate(layers):
        ys = [next((r["sqnr_db"] for r in recs if r["op"] == op and r["layer"] == layer), math.nan) for op in ops]
        ax.bar([i + j * width for i in range(len(ops))], ys, width, label=f"layer {layer}")
    ax.set_xticks([i + width * (len(layers) - 1) / 2 for i in range(len(ops))], ops, rotation=30, fontsize=7)
    ax.set_ylabel("output SQNR (dB)")
    ax.set_title(f"accuracy by layer ({acc['sample']['tokens']} tokens x <= {acc['sample']['rows']} rows sampled)",
                 fontsize=9)
    ax.grid(True, axis="y", lw=0.4, alpha=0.5)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _roofline_png(rep, hw) -> str | None:
    from cosim.plots import roofline_plot
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "roofline.png"
        roofline_plot(rep, hw, p)
        return base64.b64encode(p.read_bytes()).decode()


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return f"{v:.4g}"
    return html.escape(str(v))


def write_report(rep, hw, out_dir: str | Path) -> dict:
    """Write report.csv, report.json and report.html into `out_dir`; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"csv": out / "report.csv", "json": out / "report.json", "html": out / "report.html"}
    rep.to_csv(paths["csv"])
    doc = rep.to_dict()
    doc["totals"]["area_mm2"] = rep.meta.get("area_mm2")
    doc["accuracy"] = rep.meta.get("accuracy")
    doc["provenance"] = rep.meta.get("provenance", {})
    from cosim.report import _default
    paths["json"].write_text(json.dumps(doc, indent=1, default=_default))

    t = rep.totals()
    acc = rep.meta.get("accuracy") or {}
    summary = [("latency per pass", f"{t['total_latency_s'] * 1e3:.4g} ms"),
               ("tokens/s", f"{t['tokens_per_s']:,.1f}"),
               ("energy per token", f"{t['energy_per_token_j'] * 1e3:.4g} mJ"),
               ("memory footprint", f"{t['memory_bytes'] / 1e9:.3g} GB of {t['capacity_bytes'] / 1e9:.3g} GB"
                + ("" if t["fits_in_memory"] else " (DOES NOT FIT)"))]
    if rep.meta.get("area_mm2") is not None:
        summary.append(("area", f"{rep.meta['area_mm2']:.4g} mm²"))
    if acc.get("min_sqnr_db") is not None:
        summary.append(("worst op SQNR (synthetic)", f"{acc['min_sqnr_db']:.2f} dB"))
    ck = acc.get("checkpoint")
    if ck:
        summary.append((f"perplexity on {ck['checkpoint']} (checkpoint)",
                        f"{ck['baseline_perplexity']:.4g} → {ck['perplexity']:.4g} (Δ {ck['perplexity_delta']:+.3g}), "
                        f"KL {ck['kl']:.3g}, top-1 {ck['top1_agreement']:.1%}"
                        + (f" — proxy for {ck['proxy_for']}" if ck.get("proxy_for") else "")))
    cols = ["op", "kind", "repeat", "compute_fmt", "bound", "latency_s", "energy_j", "utilization", "share",
            "sqnr_db", "provenance"]
    cols = [c for c in cols if any(c in r for r in rep.rows)]
    rows_html = "\n".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>"
                          for r in rep.rows)
    imgs = [("roofline", _roofline_png(rep, hw)), ("latency and energy by op kind", _png(breakdown_plot(rep)))]
    fig = accuracy_plot(rep)
    if fig is not None:
        imgs.append(("accuracy by layer", _png(fig)))
    prov = rep.meta.get("provenance", {})
    title = html.escape(f"{rep.model} on {rep.hw} — {rep.phase}, batch {rep.batch}, seq {rep.seq}, level {rep.level}")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}img{{max-width:100%}}</style></head><body>
<h1>{title}</h1>
<p>formats: {html.escape(json.dumps(rep.meta.get('formats', {})))}{' — recipe ' + html.escape(rep.recipe) if rep.recipe else ''}</p>
<table>{''.join(f'<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>' for k, v in summary)}</table>
{''.join(f'<h2>{html.escape(n)}</h2><img alt="{html.escape(n)}" src="data:image/png;base64,{b}">' for n, b in imgs if b)}
<h2>per-op table</h2><table><tr>{''.join(f'<th>{c}</th>' for c in cols)}</tr>
{rows_html}</table>
<h2>provenance</h2><ul>{''.join(f'<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>' for k, v in prov.items())}</ul>
{''.join(f'<p>note: {html.escape(n)}</p>' for n in rep.notes)}
<p>also: <a href="report.csv">report.csv</a>, <a href="report.json">report.json</a></p>
</body></html>"""
    paths["html"].write_text(page)
    return paths
