"""The layout planner and `cosim plan`."""

import time

import pytest

from cosim.cli import main
from cosim.plan import enumerate_layouts, plan
from workloads.io import InputError
from workloads.models import load_model


def test_llama3_70b_decode_on_dgx_h100_picks_tp8_for_latency_fast():
    t0 = time.perf_counter()
    res = plan("llama3_70b", "dgx_h100", phase="decode", batch=64, seq=8192, objective="latency")
    assert time.perf_counter() - t0 < 1.0
    assert res.best.layout == "tp8-pp1-ep1-dp1"
    # a single H100 cannot hold 141 GB of weights: explicit fits=False rows, never ranked
    one = next(r for r in res.rows if r.layout == "tp1-pp1-ep1-dp1")
    assert not one.fits and one.memory_per_device_bytes > one.capacity_bytes
    fits = [r.fits for r in res.rows]
    assert fits == sorted(fits, reverse=True)  # all fitting rows first
    steps = [r.step_latency_s for r in res.rows if r.fits]
    assert steps == sorted(steps)


def test_objectives_rank_differently():
    res = plan("llama3_70b", "dgx_h100", phase="decode", batch=64, seq=8192, objective="cost")
    costs = [r.device_s_per_token for r in res.rows if r.fits]
    assert costs == sorted(costs)
    res = plan("llama3_70b", "dgx_h100", phase="decode", batch=64, seq=8192, objective="throughput")
    tps = [r.tokens_per_s for r in res.rows if r.fits]
    assert tps == sorted(tps, reverse=True)


def test_enumeration_skips_layouts_that_cannot_shard_exactly():
    valid, skipped = enumerate_layouts(load_model("mixtral_8x7b"), 8, 64)
    labels = {L.label() for L in valid}
    assert "tp8-pp1-ep8-dp1" in labels and "tp1-pp1-ep8-dp8" in labels
    assert all(L.devices <= 8 for L in valid)
    with pytest.raises(InputError, match="objective"):
        plan("llama3_70b", "dgx_h100", objective="speed")


def test_cli_plan_prints_ranked_table_and_writes_outputs(tmp_path, capsys):
    out, png = tmp_path / "plan.csv", tmp_path / "plan.png"
    rc = main(["plan", "--model", "llama3_70b", "--system", "dgx_h100", "--phase", "decode", "--batch", "64",
               "--seq", "8192", "--objective", "latency", "--out", str(out), "--plot", str(png)])
    text = capsys.readouterr().out
    assert rc == 0 and "best: tp8-pp1-ep1-dp1" in text and "False" in text
    assert out.read_text().startswith("layout,") and png.stat().st_size > 1000


def test_cli_plan_bad_system_is_one_error_line(capsys):
    rc = main(["plan", "--model", "llama3_70b", "--system", "dgx_h1000"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "dgx_h100" in err


def test_tensor_parallel_degree_as_a_sweep_axis(tmp_path):
    from cosim.dse import sweep
    import cosim
    spec = {"name": "tp", "base": {"model": "llama3_70b", "phase": "decode", "batch": 64, "seq": 8192,
                                   "system": "dgx_h100", "parallel": {"tp": 1}},
            "axes": [{"grid": {"parallel.tp": [1, 2, 4, 8]}}], "output": str(tmp_path / "out")}
    df = sweep(spec, quiet=True, write=False).set_index("parallel.tp")
    assert (df["status"] == "ok").all()
    assert list(df.loc[[1, 2, 4, 8], "fits_in_memory"]) == [False, False, True, True]
    t = cosim.build_trace("llama3_70b", phase="decode", batch=64, seq=8192, parallel={"tp": 8})
    rep = cosim.simulate(t, "dgx_h100")
    assert df.loc[8, "latency_s"] == pytest.approx(rep.meta["parallel"]["step_latency_s"])
    assert df.loc[8, "latency_s"] < df.loc[4, "latency_s"] < df.loc[1, "latency_s"]


def test_parallel_sweep_field_needs_a_system(tmp_path):
    from cosim.dse import sweep
    spec = {"name": "tp", "base": {"model": "llama3_70b", "hw": "h100_sxm"},
            "axes": [{"grid": {"parallel.tp": [1, 2]}}], "output": str(tmp_path / "out")}
    with pytest.raises(InputError, match="system"):
        sweep(spec, quiet=True, write=False)


def test_cli_simulate_accepts_a_system_and_a_layout(capsys):
    rc = main(["simulate", "--model", "llama3_70b", "--hw", "dgx_h100", "--parallel", "tp=8", "--batch", "64",
               "--seq", "8192"])
    out = capsys.readouterr().out
    assert rc == 0 and "attn_allreduce" in out and "link:intra_node" in out and "(fits)" in out
    rc = main(["simulate", "--model", "llama3_70b", "--hw", "dgx_h100", "--parallel", "tp=eight"])
    assert rc == 2 and "expected a positive integer" in capsys.readouterr().err
