"""Each plot draws what it promises: inspected through its matplotlib artists."""

import itertools

import numpy as np
import pandas as pd
import pytest

from matplotlib.text import Text

import cosim
from cosim import plots
from cosim.dse import sweep_plots as SP
from cosim.html_report import breakdown_plot, footprints


@pytest.fixture(scope="module")
def h100():
    return cosim.load_hw("h100_sxm")


def _report(hw, attention="fused", weights="mxfp4"):
    t = cosim.build_trace("llama3_8b", phase="decode", batch=8, seq=4096, weights=weights, attention=attention)
    return cosim.simulate(t, hw)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def _boxes_overlap(texts):
    texts[0].figure.canvas.draw()  # places the annotations at their offsets
    r = texts[0].figure.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, r) for t in texts]  # the text itself, without its leader line
    return [(a, b) for (a, ba), (b, bb) in itertools.combinations(zip(texts, boxes), 2) if ba.overlaps(bb)]


def test_roofline_ceilings_ridges_labels_and_note(h100):
    fig = plots.roofline_figure(_report(h100), h100)
    ax = fig.axes[0]
    texts = _texts(ax)
    # ridge = peak / bandwidth: 989.4 TFLOP/s / 3.35 TB/s = 295 FLOP/B; / 9.66 TB/s (L2) = 102 FLOP/B
    assert "ridge BF16/HBM 295 FLOP/B" in texts and "ridge BF16/L2 102 FLOP/B" in texts
    assert "BF16 989 TFLOP/s" in texts and "HBM 3.35 TB/s" in texts and "L2 9.66 TB/s" in texts
    diamonds = [l for l in ax.lines if l.get_marker() == "D"]
    assert len(diamonds) == 6  # (fp8_e4m3, bf16, fp32) x (hbm, l2)
    # colour by op kind, attention kept as its own kind; every op labelled by its own name
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["add", "attention", "gemm", "rmsnorm", "rope",
                                                                     "silu_mul"]
    assert "attention (51 %)" in texts and "q_proj (3.5 %)" in texts and "o_proj (3.5 %)" in texts
    assert not any("+" in t and "_proj" in t for t in texts)  # no merged "a, b, c +6" labels
    labels = [t for t in ax.texts if "%)" in t.get_text() or t.get_text().startswith("ridge")]
    assert _boxes_overlap(labels) == []
    note = next(t for t in texts if t.startswith("MXFP4 weights"))
    # BF16 activations: weight-only quantization computes in BF16 on any GPU (not for want of an MXFP4 peak)
    assert "with BF16 activations compute in BF16 (weight-only" in note and "BF16 ceiling (989 TFLOP/s)" in note


def test_roofline_unfused_attention_is_one_visible_kind(h100):
    ax = plots.roofline_figure(_report(h100, attention="unfused", weights="bf16"), h100).axes[0]
    assert "attention" in [t.get_text() for t in ax.get_legend().get_texts()]
    texts = _texts(ax)
    assert any(t.startswith("attn_scores (") for t in texts) and any(t.startswith("attn_pv (") for t in texts)
    assert not any(t.startswith("MXFP4") for t in texts)  # bf16 weights run at their own ceiling: no note


def test_roofline_plot_writes_png_and_svg(h100, tmp_path):
    rep = _report(h100)
    for ext in ("png", "svg"):
        p = plots.roofline_plot(rep, h100, tmp_path / f"r.{ext}")
        assert p.stat().st_size > 10_000


def test_footprint_chart_bars_capacity_and_overflow(h100):
    rep = _report(h100)
    ax = plots.footprint_plot(footprints(rep)).axes[0]
    assert len(ax.patches) == 3  # weights, KV cache, activations
    assert any(t.endswith("= 8.57 GB of 80 GB") for t in _texts(ax))
    two = [{"name": "gpu0", "parts": {"weights": 60e9, "kv_cache": 30e9, "activations": 1e9}, "capacity": 80e9},
           {"name": "gpu1", "parts": {"weights": 10e9, "kv_cache": 5e9, "activations": 1e9}, "capacity": 80e9}]
    ax = plots.footprint_plot(two).axes[0]
    assert len(ax.patches) == 6 and [t.get_text() for t in ax.get_yticklabels()] == ["gpu0", "gpu1"]
    assert sum("DOES NOT FIT" in t for t in _texts(ax)) == 1
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"weights", "KV cache", "activations", "capacity"}


def test_breakdown_legend_lists_only_visible_kinds(h100):
    rep = _report(h100)
    ax = breakdown_plot(rep).axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["attention", "gemm"] and len(legend) == 3
    assert legend[2].startswith("other: ") and "rmsnorm" in legend[2] and "< 1 % each" in legend[2]


def _sweep_df():
    rows = []
    for bw, fmt, batch in itertools.product([2e12, 3.35e12], ["mxfp4", "bf16"], [1, 16]):
        lat = (4e9 if fmt == "mxfp4" else 16e9) / bw / (1 if batch == 1 else 0.9)
        rows.append({"hw.memory.hbm.bandwidth": bw, "weights": fmt, "batch": batch, "latency_s": lat,
                     "energy_per_token_j": 0.5 / batch + lat, "feasible": True, "status": "ok"})
    df = pd.DataFrame(rows)
    from cosim.dse.pareto import pareto_mask
    df["pareto"] = pareto_mask(df[["latency_s", "energy_per_token_j"]].to_numpy())
    return df


def test_pareto_plot_units_and_labelled_front():
    df = _sweep_df()
    fig = SP.pareto_plot(df, {"latency_s": "min", "energy_per_token_j": "min"}, None,
                         fields=["hw.memory.hbm.bandwidth", "weights", "batch"], phase="decode", draw_only=True)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "latency per token (ms), lower is better"
    assert ax.get_ylabel() == "energy per token (mJ), lower is better"
    labels = _texts(ax)
    assert len(labels) == int(df["pareto"].sum())
    assert "hbm.bandwidth 3.35 TB/s, weights mxfp4, batch 16" in labels


def test_heatmap_ticks_in_units():
    df = _sweep_df()
    df = df[(df["weights"] == "mxfp4") & (df["batch"] == 1)].assign(**{"hw.compute.bf16": [494.7e12, 989.4e12]})
    ax = SP.heatmap_plot(df, "hw.memory.hbm.bandwidth", "hw.compute.bf16", "latency_s", None, goal="min",
                         draw_only=True).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2 TB/s", "3.35 TB/s"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["495 TFLOP/s", "989 TFLOP/s"]
    # 4e9 B / 2e12 B/s = 2 ms in the first cell
    assert "2" in _texts(ax) and fig_colorbar_label(ax) == "latency per forward pass (ms), lower is better"


def fig_colorbar_label(ax):
    return ax.figure.axes[1].get_ylabel()


def test_parallel_categorical_ticks_and_density_for_large_sweeps():
    df = _sweep_df()
    ax = SP.parallel_plot(df, ["weights", "batch", "latency_s"], "latency_s", None, draw_only=True).axes[0]
    texts = _texts(ax)
    assert "mxfp4" in texts and "bf16" in texts and "1" in texts and "16" in texts
    assert any(t.endswith(" ms") for t in texts)
    assert len(ax.lines) >= len(df) and not ax.images
    rng = np.random.default_rng(0)
    n = SP.DENSITY_ABOVE * 3
    big = pd.DataFrame({"weights": rng.choice(["mxfp4", "bf16", "fp8_e4m3"], n), "latency_s": rng.random(n) * 1e-2,
                        "energy_j": rng.random(n)})
    ax = SP.parallel_plot(big, ["weights", "latency_s", "energy_j"], "latency_s", None, draw_only=True).axes[0]
    assert len(ax.images) == 2 and len(ax.lines) == 3  # one density image per gap; only the 3 axis lines
    assert f"density of {n:,} configurations" in ax.get_title()


def test_report_page_footprint_per_device_and_units(h100):
    import re
    from cosim.html_report import render_html
    rep = _report(h100)
    rep.meta["footprint_by_device"] = {"gpu0": {"weights": 2.13e9, "kv_cache": 2.15e9, "activations": 4.8e6,
                                                "capacity": 80e9},
                                       "gpu1": {"weights": 2.13e9, "kv_cache": 2.15e9, "activations": 4.8e6,
                                                "capacity": 80e9}}
    page = render_html(rep, h100)
    table = page[page.index('<table id="footprint">'):]
    table = table[:table.index("</table>")]
    assert re.findall(r"<tr><td>(gpu\d)</td>", table) == ["gpu0", "gpu1"]
    assert "2.13 GB" in table and "4.8 MB" in table and "80 GB" in table
    text = re.sub(r"<[^>]+>", " ", page.split("<script>")[0])  # what a reader sees (raw SI stays in data-v)
    assert "2.5 ms" in text and "MXFP4 (4.25 bits)" in text and not re.search(r"\de[-+]\d", text)


def test_op_label_percent_is_the_tables_share_with_collectives():
    """Labels divided by the drawn ops' latency only, so with tp=8 collectives (not drawn: no FLOPs)
    gate_proj read 27 % while the table's share was 23.6 %. Now the label is the row's share."""
    import cosim
    from cosim import humanize as H
    tr = cosim.build_trace("llama3_70b", "decode", 8, 1024, parallel={"tp": 8})
    rep = cosim.simulate(tr, "dgx_h100")
    assert any(r["kind"] == "allreduce" for r in rep.rows)
    fig = plots.roofline_figure(rep, cosim.load_hw("h100_sxm"), label_top=40)
    texts = _texts(fig.axes[0])
    row = next(r for r in rep.rows if r["op"] == "gate_proj")
    assert row["share"] == pytest.approx(row["latency_s"] / rep.total_latency_s)
    assert f"gate_proj ({H.percent(row['share'], 2)})" in texts, (H.percent(row["share"], 2), texts)
