"""Micro-batches as a searched planner dimension (issue 12)."""

import pytest

import cosim
from cosim.cli import main
from cosim.parallel_timing import pipeline_timing
from cosim.plan import microbatch_options, plan
from workloads.io import InputError


def test_options_are_divisors_of_the_replica_batch_up_to_4pp():
    assert microbatch_options(64, 1, 1) == [1]            # no pipeline: nothing to search
    assert microbatch_options(64, 1, 2) == [1, 2, 4, 8]
    assert microbatch_options(64, 2, 4) == [1, 2, 4, 8, 16]
    assert microbatch_options(12, 1, 2) == [1, 2, 3, 4, 6]
    assert microbatch_options(64, 1, 4, fixed=4) == [4]
    assert microbatch_options(64, 1, 2, cap=32) == [1, 2, 4, 8, 16, 32]


def _step(m, phase, batch, seq):
    tr = cosim.build_trace("llama3_70b", phase=phase, batch=batch, seq=seq,
                           parallel={"tp": 4, "pp": 2, "microbatches": m})
    rep = cosim.simulate(tr, "dgx_h100")
    t = pipeline_timing(rep.rows, rep.meta["parallel"])
    # the synchronous step by hand: (m + p - 1) x the slowest stage of one micro-batch
    assert t["step_latency_s"] == pytest.approx((m + 1) * max(t["stage_latency_s"]))
    return t["step_latency_s"]


def test_decode_prefers_few_microbatches_prefill_many():
    # decode re-reads each stage's weights per micro-batch, so more micro-batches cost more than the
    # bubble they save; prefill is compute-bound, so the bubble dominates
    res = plan("llama3_70b", "dgx_h100", phase="decode", batch=64, seq=8192)
    row = next(r for r in res.rows if (r.tp, r.pp, r.dp) == (4, 2, 1))
    steps = {m: _step(m, "decode", 64, 8192) for m in (1, 2, 4, 8)}
    assert row.microbatches == min(steps, key=steps.get) == 1
    assert row.step_latency_s == pytest.approx(steps[1])
    assert "micro-batches searched" in row.note and "best m = 1" in row.note
    res = plan("llama3_70b", "dgx_h100", phase="prefill", batch=16, seq=2048, objective="throughput")
    row = next(r for r in res.rows if (r.tp, r.pp, r.dp) == (4, 2, 1))
    steps = {m: _step(m, "prefill", 16, 2048) for m in (1, 2, 4, 8)}
    assert row.microbatches == min(steps, key=steps.get) == 8
    assert row.bubble_fraction == pytest.approx(1 / 9)


def test_fixed_microbatches_and_bad_value():
    res = plan("llama3_70b", "dgx_h100", phase="decode", batch=64, seq=8192, microbatches=2)
    assert {r.microbatches for r in res.rows if r.pp > 1} == {2}
    assert all("searched" not in r.note for r in res.rows)
    with pytest.raises(InputError, match="microbatches: got 0"):
        plan("llama3_70b", "dgx_h100", microbatches=0)


def test_cli_microbatches_flag(capsys):
    assert main(["plan", "--model", "llama3_70b", "--system", "dgx_h100", "--batch", "64", "--seq", "8192",
                 "--microbatches", "4", "--top", "40"]) == 0
    assert "-mb4" in capsys.readouterr().out
    assert main(["plan", "--model", "llama3_70b", "--system", "dgx_h100", "--microbatches", "lots"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "--microbatches" in err
