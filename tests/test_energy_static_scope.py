"""Static power: a device file with no `energy.static_power` prices static energy as unknown
(NaN in the static column), never a silent 0 W, and every energy total carries the label
"dynamic only (no static power in <file>)". And the layout's system energy caption states both
of its parts (trace copies + idle static)."""
import math

import pytest

from cosim.cli import main
from cosim import build_trace
from cosim.simulate import simulate
from hwmodels.energy import EnergyParams, op_energy
from hwmodels.spec import load_hw


def test_op_energy_with_no_static_power_is_nan_static_and_a_dynamic_total():
    p = EnergyParams(sram_j_per_byte={"default": 2e-12}, dram_j_per_byte=5e-12, wire_j_per_byte=0.5e-12,
                     static_power_w=None, vector_j_per_flop=1e-13)
    e = op_energy(macs=1000, e_mac_j=1e-13, sram_bytes={"ifmap": 100}, dram_bytes=10, vector_flops=20,
                  latency_s=1e-6, p=p)
    assert math.isnan(e["static"])  # was 0.0 (hw.static_power_w or 0.0)
    # dynamic: 1000 x 0.1 pJ + 20 x 0.1 pJ + 100 x 2 pJ + 10 x 5 pJ + 100 x 0.5 pJ = 402 pJ
    assert e["total"] == pytest.approx(1e-10 + 2e-12 + 2e-10 + 5e-11 + 5e-11, rel=1e-6, abs=0)


def test_bundled_files_without_static_power_are_labelled_dynamic_only():
    for name in ("versal_vck190", "mx_systolic_128", "mx6_systolic_128", "mxfp4_systolic_256", "tpu_v5e"):
        hw = load_hw(name)
        assert hw.static_power_w is None, name
        assert hw.energy_scope == f"dynamic only (no static power in {name}.yaml)"
    assert load_hw("h100_sxm").energy_scope == ""  # 210 W [D] 0.30 x 700 W: nothing to label


def test_cycle_report_on_versal_shows_static_unknown_and_labels_the_total(capsys):
    tr = build_trace("llama2_7b", phase="decode", batch=1, seq=1024, weights="int4", acts="int8", kv="int8")
    rep = simulate(tr, "versal_vck190", level="cycle")
    for r in rep.rows:
        if "energy_static_j" in r:
            assert math.isnan(r["energy_static_j"]), r["op"]
            dyn = sum(r[f"energy_{k}_j"] for k in ("mac", "vector", "sram", "dram", "noc"))
            assert r["energy_j"] == pytest.approx(dyn)
    assert rep.meta["energy_scope"] == "dynamic only (no static power in versal_vck190.yaml)"
    assert any(n.startswith("energy is dynamic only (no static power in versal_vck190.yaml)") for n in rep.notes)
    assert main(["simulate", "--model", "llama2_7b", "--hw", "versal_vck190", "--level", "cycle", "--weights",
                 "int4", "--acts", "int8", "--kv", "int8", "--seq", "1024"]) == 0
    out = capsys.readouterr().out
    total = next(ln for ln in out.splitlines() if ln.startswith("total: "))
    assert total.endswith("/token), dynamic only (no static power in versal_vck190.yaml)"), total


def test_roofline_report_of_a_file_without_static_power_is_labelled(tmp_path):
    # one 1024^3 bf16 GEMM on a 100 TFLOP/s, 1 TB/s device with 1 pJ/FLOP and 10 pJ/B, no static power:
    # energy = 2 x 1024^3 x 1 pJ + bytes x 10 pJ (dynamic only); with static_power 50 W it adds 50 W x latency
    from workloads.ops import Op, TensorSpec
    from workloads.trace import Trace
    base = ("name: nostatic\nkind: accelerator\nclock: 1 GHz\ncompute: {bf16: 100 TFLOP/s}\n"
            "energy: {per_flop: {bf16: 1 pJ}%s}\nmemory:\n  - {name: hbm, capacity: 16 GB, bandwidth: 1 TB/s, "
            "energy: 10 pJ/B}\n")
    (tmp_path / "a.yaml").write_text(base % "")
    (tmp_path / "b.yaml").write_text(base % ", static_power: 50 W")
    n = 1024
    op = Op("mm", "gemm", {"m": n, "n": n, "k": n}, (TensorSpec("a", (n, n), "bf16"), TensorSpec("w", (n, n), "bf16")),
            (TensorSpec("c", (n, n), "bf16"),), "bf16")
    tr = Trace(model="t", phase="prefill", batch=1, seq=n, ops=[op])
    a = simulate(tr, str(tmp_path / "a.yaml"))
    b = simulate(tr, str(tmp_path / "b.yaml"))
    dyn = 2 * n ** 3 * 1e-12 + 3 * n * n * 2 * 10e-12
    assert a.total_energy_j == pytest.approx(dyn)
    assert a.meta["energy_scope"] == "dynamic only (no static power in a.yaml)"
    assert "energy_scope" not in b.meta
    assert b.total_energy_j == pytest.approx(dyn + 50.0 * b.total_latency_s)


def test_system_energy_caption_states_both_parts(capsys):
    """Was "= tp 1 x dp 1 x 4 micro-batch traces" beside 172 J, while 4 x 20.4 J = 81.6 J:
    the rest is the idle stages' static energy (8 devices x the 81.1 ms step - 4 x 54.6 ms of
    traces = 0.4305 device-s, x 210 W = 90.4 J)."""
    assert main(["simulate", "--model", "llama3_70b", "--hw", "dgx_h100", "--parallel", "pp=8,microbatches=4",
                 "--batch", "64", "--seq", "8192"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("layout: "))
    assert ("system energy 172 J per step (2.69 J/token) = 4 x 20.4 J (tp 1 x dp 1 x 4 micro-batch traces) "
            "+ idle static 90.4 J (0.4305 idle device-s x 210 W)") in line, line


def test_generate_serve_and_sweep_rows_carry_the_label(tmp_path, capsys):
    from cosim.dse import sweep
    from cosim.serving.generate import generate
    g = generate("llama3_8b", "mx_systolic_128", 128, 4, 1)
    assert g.energy_scope == "dynamic only (no static power in mx_systolic_128.yaml)"
    assert main(["generate", "--model", "llama3_8b", "--hw", "mx_systolic_128", "--prompt-len", "128",
                 "--output-len", "4"]) == 0
    assert "/token), dynamic only (no static power in mx_systolic_128.yaml)" in capsys.readouterr().out
    assert main(["serve", "--model", "llama3_8b", "--hw", "mx_systolic_128", "--requests", "4", "--qps", "5"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("energy "))
    assert "(busy steps only; dynamic only (no static power in mx_systolic_128.yaml))" in line, line
    # a sweep: the row of the device without static power is labelled dynamic only, the H100's (210 W [D])
    # dynamic + static
    spec = {"name": "s", "output": str(tmp_path / "o"),
            "base": {"model": "llama3_8b", "hw": "mx_systolic_128", "batch": 1, "weights": "mxfp4"},
            "axes": [{"grid": {"hw": ["mx_systolic_128", "h100_sxm"]}}]}
    df = sweep(spec, quiet=True, write=False).set_index("hw")
    assert df.loc["mx_systolic_128", "energy_scope"] == "dynamic only (no static power in mx_systolic_128.yaml)"
    assert df.loc["h100_sxm", "energy_scope"] == "dynamic + static"  # filled, not blank (session 14)


def test_fpga_comparison_rows_are_like_for_like():
    """docs/fpga-comparison.md set VCK190's 0.599 J/token (no static power) beside U280's 0.665
    (67.5 W static included). Each row now splits dynamic and static; the VCK190's total is n/a."""
    from tests.script_loader import load_script
    fc = load_script("benchmarks/fpga_comparison.py", "fpga_comparison_t")
    u = fc.decode(load_hw("alveo_u280"), "int4", "int8", "int8")
    v = fc.decode(load_hw("versal_vck190"), "int4", "int8", "int8")
    # U280: 67.5 W = 0.30 x 225 W TDP [D]; static J/token = 67.5 W / tokens/s; dynamic = total - static
    assert u["static_power_w"] == pytest.approx(67.5) and "0.30 x 225 W TDP" in u["static_power_source"]
    assert u["static_energy_per_token_j"] == pytest.approx(67.5 / u["tokens_per_s"])
    assert u["dynamic_energy_per_token_j"] == pytest.approx(u["energy_per_token_j"] - 67.5 / u["tokens_per_s"])
    assert v["static_energy_per_token_j"] is None and v["energy_per_token_j"] is None
    assert v["energy_scope"] == "dynamic only (no static power in versal_vck190.yaml)"
    # 0.600 since session 14 (was 0.599): DRAM fills / write-backs now also cost SRAM accesses (tests/test_accel_audit14.py)
    assert v["dynamic_energy_per_token_j"] == pytest.approx(0.5996, abs=5e-4)


def test_collective_bytes_column_is_memory_traffic_and_a_note_says_so():
    """Llama-3-70B TP8 decode batch 64: each all-reduce carries a 64 x 8192 x 2 B = 1 MiB message; the
    `bytes` column (device memory: input read + output written) is 2 MiB per instance, 80 x 2 MiB per row."""
    rep = simulate(build_trace("llama3_70b", "decode", 64, 1024, parallel={"tp": 8}), "dgx_h100")
    r = next(r for r in rep.rows if r["op"] == "attn_allreduce")
    assert r["message_bytes"] == 64 * 8192 * 2 == 2 ** 20
    assert r["bytes"] == 80 * 2 * 2 ** 20
    note = next(n for n in rep.notes if n.startswith("collective rows: `bytes` is device-memory traffic"))
    assert "for a 1,048,576 B message" in note and "`message_bytes` is the message" in note


def test_compare_labels_energy_of_a_device_without_static_power():
    from cosim.compare import compare_traces
    b = build_trace("llama3_8b", "decode", 1, 1024)
    c = build_trace("llama3_8b", "decode", 1, 1024, weights="mxfp4")
    rows = {r.quantity: r for r in compare_traces(b, c, "mx_systolic_128")}
    assert "energy, dynamic only (no static power in mx_systolic_128.yaml)" in rows
    assert "energy" in {r.quantity for r in compare_traces(b, c, "h100_sxm")}


def test_plan_rows_carry_the_energy_scope(tmp_path):
    """A system of devices without static power: every plan row says its energy is dynamic only (audit s12)."""
    from cosim.plan import plan
    res = plan("llama3_8b", "mx_systolic_board_4", phase="decode", batch=1, seq=1024, weights="mxfp4",
               acts="mxfp8_e4m3", kv="mxfp8_e4m3")
    df = res.to_frame()
    assert len(df) and df["energy_scope"].str.startswith("dynamic only").all()
    h100 = plan("llama3_8b", "dgx_h100", phase="decode", batch=1, seq=1024).to_frame()
    assert (h100["energy_scope"] == "dynamic + static").all()  # filled, not blank (session 14)


def test_plan_plot_labels_dynamic_only_energy(tmp_path):
    """plan's bar chart labels each fitting bar with its energy per token; where the system's
    device gives no static power the x-axis label says the energy is dynamic only (was: no energy
    and no label on the plot, while the CSV rows said dynamic only)."""
    from cosim.humanize import si
    from cosim.plan import plan, plan_figure, plot_plan
    from cosim.plots import pyplot
    res = plan("llama3_8b", "mx_systolic_board_4", phase="decode", batch=1, seq=1024, weights="mxfp4",
               acts="mxfp8_e4m3", kv="mxfp8_e4m3")
    scope = res.rows[0].energy_scope
    assert scope.startswith("dynamic only (no static power in ")
    fig = plan_figure(res)
    ax = fig.axes[0]
    assert ax.get_xlabel() == f"step_latency_s; bar labels: energy per token, {scope}"
    texts = {t.get_text() for t in ax.texts}
    assert all(f" {si(r.energy_per_token_j, 'J')}/token" in texts for r in res.rows if r.fits)
    pyplot().close(fig)
    plot_plan(res, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    h100 = plan("llama3_8b", "dgx_h100", phase="decode", batch=1, seq=1024, max_devices=2)
    fig = plan_figure(h100)  # 210 W [D] static power: nothing to label
    assert fig.axes[0].get_xlabel() == "step_latency_s; bar labels: energy per token"
    pyplot().close(fig)
