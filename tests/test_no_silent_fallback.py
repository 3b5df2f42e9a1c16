"""No silent fallback: every result row names the level that priced it and its provenance;
a sweep at a level the hardware cannot do fails clearly unless it allows the roofline;
memory fit is part of sweep feasibility."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import cosim
from cosim.dse import sweep
from hwmodels.levels import level_support
from workloads.io import InputError

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": "llama3_8b", "hw": "h100_sxm", "seq": 1024, "phase": "decode", "batch": 1}


def _spec(tmp_path, base=None, **kw):
    return {"name": "t", "base": {**BASE, **(base or {})}, "axes": [{"grid": {"batch": [1, 4]}}],
            "output": str(tmp_path / "out"), **kw}


def test_level_support_names_the_reason():
    assert level_support(cosim.load_hw("h100_sxm"), "analytical").ok
    cyc = level_support(cosim.load_hw("h100_sxm"), "cycle")
    assert not cyc.ok and "gpu" in cyc.reason
    assert level_support(cosim.load_hw("mx_systolic_128"), "cycle").ok
    assert not level_support(cosim.load_hw("mx_systolic_128"), "analytical").ok


def test_simulate_reports_the_level_that_ran():
    trace = cosim.build_trace("llama3_8b", "decode", 1, 1024)
    rep = cosim.simulate(trace, "h100_sxm", level="cycle")
    assert rep.level == "roofline" and rep.meta["level_requested"] == "cycle"
    assert {r["level"] for r in rep.rows} == {"roofline"}
    assert all(r["provenance"].startswith("fallback:") for r in rep.rows)
    assert any("requested" in n for n in rep.notes)
    rep = cosim.simulate(trace, "h100_sxm", level="analytical")
    assert rep.level == "analytical" and {r["level"] for r in rep.rows} == {"analytical"}
    assert rep.meta["priced_from"][0].startswith("calibrated:NVIDIA H100")


def test_cli_header_names_the_level_that_ran():
    r = subprocess.run([sys.executable, "-m", "cosim", "simulate", "--model", "llama3_8b", "--hw", "h100_sxm",
                        "--level", "cycle", "--phase", "decode", "--seq", "1024"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0]
    assert "level roofline (requested cycle: fell back)" in head
    assert "fallback:roofline" in r.stdout.splitlines()[1]


def test_sweep_at_an_unsupported_level_fails_clearly(tmp_path):
    with pytest.raises(InputError) as e:
        sweep(_spec(tmp_path, {"level": "cycle"}), quiet=True, write=False)
    msg = str(e.value)
    assert "level" in msg and "cycle" in msg and "fallback: roofline" in msg


@pytest.mark.parametrize("where,field", [("base", "base.level"), ("grid", "axes[0].grid.level"),
                                         ("random", "axes[0].random.fields.level")])
def test_the_unsupported_level_error_names_the_field_that_set_it(where, field):
    """Session 34's review: the error said `level:` wherever the level came from."""
    from cosim.dse.spec import sweep_from_dict
    base = {"model": "llama3_8b", "hw": "a100_sxm_80gb", "phase": "decode", "batch": 1, "seq": 512}
    axes = {"base": [{"grid": {"batch": [1, 2]}}], "grid": [{"grid": {"level": ["roofline", "analytical"]}}],
            "random": [{"random": {"samples": 2, "fields": {"level": {"choices": ["roofline", "analytical"]}}}}]}
    with pytest.raises(InputError, match=rf"^<sweep>: {re.escape(field)}: got 'analytical'; expected a level that "):
        sweep_from_dict({"name": "t", "base": {**base, **({"level": "analytical"} if where == "base" else {})},
                         "axes": axes[where], "output": "unused"})


def test_sweep_fallback_is_written_in_every_row(tmp_path):
    df = sweep(_spec(tmp_path, {"level": "cycle"}, fallback="roofline"), quiet=True, write=False)
    assert (df["status"] == "ok").all() and len(df) == 2
    assert (df["level_used"] == "roofline").all()
    assert df["provenance"].str.startswith("fallback:roofline (cycle unavailable").all()


def test_provenance_reaches_the_sweep_table(tmp_path):
    df = sweep(_spec(tmp_path, {"level": "analytical"}), quiet=True, write=False)
    assert (df["level_used"] == "analytical").all()
    assert df["provenance"].str.startswith("calibrated:NVIDIA H100").all()
    df = sweep(_spec(tmp_path / "r"), quiet=True, write=False)
    assert (df["level_used"] == "roofline").all() and (df["provenance"] == "speed-of-light").all()


def test_feasible_requires_memory_fit_by_default(tmp_path):
    # Llama-3-8B decode at its full 8K context: batch 64 needs 64 x 1.07 GB of KV cache + 16 GB of
    # weights > 80 GB
    spec = _spec(tmp_path, {"seq": 8192}, axes=[{"grid": {"batch": [1, 64]}}])
    df = sweep(spec, quiet=True, write=False).set_index("batch")
    assert bool(df.loc[1, "fits_in_memory"]) and not bool(df.loc[64, "fits_in_memory"])
    assert bool(df.loc[1, "feasible"]) and not bool(df.loc[64, "feasible"])
    spec = _spec(tmp_path / "nofit", {"seq": 8192}, axes=[{"grid": {"batch": [1, 64]}}], require_memory_fit=False)
    df = sweep(spec, quiet=True, write=False).set_index("batch")
    assert bool(df.loc[64, "feasible"])


def test_system_sweep_rows_name_the_level_and_provenance(tmp_path):
    """A sweep over layouts on a system (`system:` + `parallel.tp`) priced every point but
    left `level_used` and `provenance` empty (session-8 audit): each row now says what
    `cosim simulate` says for the same point."""
    spec = {"name": "tp", "base": {"model": "llama3_70b", "phase": "decode", "batch": 16, "seq": 4096,
                                   "system": "dgx_h100", "hw": "h100_sxm", "parallel": {"tp": 1},
                                   "level": "analytical"},
            "axes": [{"grid": {"parallel.tp": [4, 8]}}], "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False).set_index("parallel.tp")
    rep = cosim.simulate(cosim.build_trace("llama3_70b", phase="decode", batch=16, seq=4096, parallel={"tp": 4}),
                         "dgx_h100", level="analytical")
    assert df.loc[4, "latency_s"] == pytest.approx(rep.meta["parallel"]["step_latency_s"])
    assert df.loc[4, "level_used"] == rep.level
    assert df.loc[4, "provenance"] == "; ".join(rep.meta["priced_from"])
    assert "calibrated:" in df.loc[4, "provenance"] and "collectives" in df.loc[4, "provenance"]
    assert df["level_used"].notna().all() and df["provenance"].notna().all()


def test_sweep_console_and_summary_count_the_fallback_rows(tmp_path, capsys):
    """The rows said `fallback:roofline`, but the printed summary, the printed Pareto front
    and summary.json did not: a front mixing analytical and roofline points read as one
    model (session-8 audit). Now: a `levels:` line, a level_used column in the printed front,
    and `levels` / `fallback_rows` in summary.json."""
    import json
    from cosim.cli import main
    path = tmp_path / "s.yaml"
    path.write_text("name: fb\nbase: {model: llama3_8b, hw: h100_sxm, phase: decode, batch: 1, seq: 1024, level: analytical}\n"
                    "axes:\n  - grid: {hw: [h100_sxm, mi300x]}\nfallback: roofline\n"
                    f"output: {tmp_path / 'out'}\n")
    assert main(["sweep", str(path)]) == 0
    out = capsys.readouterr().out
    assert "levels: analytical 1, roofline 1 (1 by fallback: roofline)" in out
    front = out.split("Pareto front")[1]
    assert "level_used" in front and "roofline" in front
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["levels"] == {"analytical": 1, "roofline": 1} and summary["fallback_rows"] == 1


def test_sweep_over_systems_refuses_a_level_a_system_device_cannot_do(tmp_path):
    """A `system` axis at level analytical with mi300x_8 (its MI300X has no calibration) ran
    every mi300x_8 point on the roofline without `fallback: roofline` (the load-time check
    looked only at `hw`, not at the systems' devices; session-8 audit)."""
    spec = {"name": "s", "base": {"model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 2048,
                                  "system": "dgx_h100", "hw": "h100_sxm", "parallel": {"tp": 1},
                                  "level": "analytical"},
            "axes": [{"grid": {"system": ["dgx_h100", "mi300x_8"], "parallel.tp": [2]}}],
            "output": str(tmp_path / "out")}
    with pytest.raises(InputError) as e:
        sweep(spec, quiet=True, write=False)
    assert "level" in str(e.value) and "mi300x_8" in str(e.value) and "fallback: roofline" in str(e.value)
    df = sweep({**spec, "fallback": "roofline"}, quiet=True, write=False).set_index("system")
    assert df.loc["mi300x_8", "provenance"].startswith("fallback:")
    assert df.loc["dgx_h100", "level_used"] == "analytical"


def test_collectives_priced_by_the_roofline_alpha_beta_are_labelled_roofline():
    """At the cycle level (no cycle model for links) and at the analytical level on a system
    with no fitted collectives, collectives are priced by the roofline alpha-beta
    (provenance `speed-of-light:alpha-beta`) but their rows said level `cycle` /
    `analytical` and the header `level cycle` (session-8 audit)."""
    t = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=2048, weights="mxfp4", acts="mxfp8_e4m3",
                          kv="mxfp8_e4m3", parallel={"tp": 4})
    rep = cosim.simulate(t, "mx_systolic_board_4", level="cycle")
    coll = [r for r in rep.rows if r["kind"] in ("allreduce", "allgather")]
    assert coll and all(r["level"] == "roofline" and r["provenance"].startswith("speed-of-light") for r in coll)
    assert {r["level"] for r in rep.rows if r["kind"] == "gemm"} == {"cycle"}
    assert rep.level == "cycle+roofline" and any("priced at level cycle+roofline" in n for n in rep.notes)
    rep = cosim.simulate(cosim.build_trace("llama3_8b", phase="decode", batch=8, seq=2048, parallel={"tp": 2}),
                         "dgx_h100", level="analytical")  # fitted collectives: analytical throughout
    assert rep.level == "analytical"


def test_a_system_axis_says_when_it_overrides_the_base_hw(tmp_path):
    """A sweep's `system` axis prices each system's own device; a base `hw:` naming another device is overridden
    for those points, and the load says so (an experiment file refuses the same mismatch)."""
    spec = {"name": "s", "base": {"model": "llama3_8b", "phase": "decode", "batch": 8, "seq": 2048,
                                  "system": "dgx_h100", "hw": "h100_sxm", "parallel": {"tp": 1}, "level": "roofline"},
            "axes": [{"grid": {"system": ["dgx_h100", "mi300x_8"], "parallel.tp": [2]}}], "output": str(tmp_path / "o")}
    with pytest.warns(UserWarning, match=r"mi300x_8 \(mi300x\).*priced on its own device"):
        df = sweep(spec, quiet=True, write=False).set_index("system")
    assert df.loc["mi300x_8", "latency_s"] != df.loc["dgx_h100", "latency_s"]


def test_list_hw_says_which_levels_each_devices_own_model_prices(capsys):
    from cosim.cli import main

    assert main(["list", "hw"]) == 0
    lines = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()}
    assert "roofline, analytical (calibrated) " in lines["h100_sxm"] and "analytical (calibrated)" in lines["h200"]
    assert "roofline, analytical (from h100_sxm) " in lines["h100_pcie"]
    assert "analytical (from h100_sxm, cross-arch)" in lines["b200"]
    assert " roofline " in lines["a100_sxm_80gb"] and "analytical" not in lines["a100_sxm_80gb"]
    assert "roofline, cycle " in lines["mx_systolic_128"]
