"""Session-4b held-out (Azure ND H100 v5 / ND H200 v5 nccl-tests, NVLS forced, -g 8) scored once against
the frozen model with its launch-mode term; the seen sets re-scored in their harness's launch mode.
The pins are the published numbers of benchmarks/results/collective_holdout_s4b.md."""

import csv

import pytest
from hypothesis import given, strategies as st

from cosim.calibrate.collective_holdout import HOLDOUT_CSV, HOLDOUT_S4_CSV
from cosim.calibrate.collective_holdout_s4b import HELDOUT_S4B_CSV, score_file, session4b_systems, summary, x3_x4
from hwmodels.spec import HardwareError


S4B = session4b_systems()  # the frozen session-4b model: one NVLS line (the session-7 small-chunk line left out)


@pytest.fixture(scope="module")
def azure():
    return score_file(HELDOUT_S4B_CSV, systems=S4B)


def test_every_row_is_cited_with_status_launch_and_forced_algorithm():
    with open(HELDOUT_S4B_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 42 and {r["source"] for r in rows} == {"azure_nd_h100_v5", "azure_nd_h200_v5"}
    for r in rows:
        assert r["status"] == "V" and r["url"].startswith("https://github.com/Azure/AI-benchmarking-guide/blob/8fd0c6e")
        assert r["launch"] == "single_process" and r["forced"] == "nvls" and "-g 8" in r["harness"]
        assert 1024 <= int(r["size_bytes"]) <= 1 << 30


def test_one_row_by_hand(azure):
    r = azure[0]  # ND H100 v5, 1 KB: busbw 0.07 GB/s -> 1024 x 2 (7/8) / 0.07e9 = 25.6 us
    assert (r.source, r.size_bytes, r.published_us) == ("azure_nd_h100_v5", 1024, pytest.approx(1024 * 1.75 / 0.07e3))
    # forced NVLS: base 3.6 + fixed 75.02 + 2 x 0.47 link alpha + 1 KB at 0.618 x 450 GB/s x (1 - 0.35/8)
    assert r.model_us == pytest.approx(3.6 + 75.02 + 0.94 + 1024 / (0.618 * 450e3 * (1 - 0.35 / 8)), abs=0.01)
    assert r.algorithm == "nvls/simple" and r.launch == "single_process"
    # the model's own choice (information only): ring/LL under the single-process floor 8.35 + 3.72 x 8
    assert r.free_algorithm == "ring/ll" and r.free_us == pytest.approx(38.11)


def test_heldout_scores_pin_the_published_table(azure):
    x3, x4 = x3_x4(azure)
    assert x3 == set() and [azure[i].size_bytes for i in sorted(x4)] == [1024, 1024]  # X4: busbw 0.07 / 0.06
    s = summary(azure)
    assert (s["points"], s["within"]) == (42, 13) and s["median_abs_err_pct"] == pytest.approx(90.2, abs=0.05)
    big = summary([r for r in azure if r.size_bytes >= 1 << 27])
    small = summary([r for r in azure if r.size_bytes <= 1 << 19])
    assert (big["within"], big["points"]) == (8, 8) and big["max_abs_err_pct"] < 2.7
    assert (small["within"], small["points"]) == (0, 20)
    assert summary(azure, free=True)["within"] == 27  # information only, not the score


def test_seen_sets_in_their_harness_launch_mode():
    s3 = score_file(HOLDOUT_CSV, systems=S4B)
    assert {r.launch for r in s3 if r.source == "triton_dist_57"} == {"one_process_per_gpu"}
    assert {r.launch for r in s3 if r.source == "nccl_collectives_bench"} == {"single_process"}
    assert summary(s3)["within"] == 18  # 10 of 33 with every row priced one process per GPU
    tg = score_file(HOLDOUT_S4_CSV, systems=S4B)
    assert {r.launch for r in tg} == {"single_process"} and summary(tg)["within"] == 154


_HEADER = "source,url,gpu,n_gpus,harness,launch,collective,size_bytes,time_us,in_range\n"


@pytest.mark.parametrize("header, row, message", [
    # no harness and no launch column: the mode cannot be read and is never guessed
    ("source,url,gpu,n_gpus,collective,size_bytes,time_us,in_range\n", "mystery,u,H100 SXM,8,allreduce,1024,20,yes\n",
     r"rows\.csv: source 'mystery': launch read from its harness / header \[\]"),
    # -g 1 under mpirun is one process per GPU; a row stating single_process contradicts its own command line
    (_HEADER, "x,u,H100 SXM,8,mpirun -np 8 all_reduce_perf -g 1,single_process,allreduce,1024,20,yes\n",
     r"read from .* \['one_process_per_gpu'\], stated \['single_process'\]"),
], ids=["missing_launch_mode", "contradicting_launch_mode"])
def test_a_bad_launch_mode_is_one_clear_error(tmp_path, header, row, message):
    p = tmp_path / "rows.csv"
    p.write_text(header + row)
    with pytest.raises(HardwareError, match=message):
        score_file(p)


@given(n=st.integers(1, 64), threads=st.integers(1, 4), cmd=st.booleans(), graph=st.sampled_from([0, 1, 10]))
def test_launch_mode_read_from_header_or_command_line(n, threads, cmd, graph):
    from hwmodels.nccl import launch_from_harness
    text = (f"mpirun ./build/all_reduce_perf -b 8 -e 8G -f 2 -t {threads} -g {n} -G {graph}" if cmd else
            f"# nThread {threads} nGpus {n} minBytes 8 maxBytes 8589934592 step: 2(factor) warmup iters: 5 "
            f"iters: 20 agg iters: 1 validation: 1 graph: {graph}")
    # CUDA-graph launches (-G N / graph: N, N > 0) are the graph mode whatever the process layout
    want = "graph" if graph else ("single_process" if n > 1 else "one_process_per_gpu")
    assert launch_from_harness(text) == want


def test_launch_mode_is_never_guessed():
    from hwmodels.nccl import launch_from_harness
    assert launch_from_harness("nccl-tests") is None
    assert launch_from_harness("./all_reduce_perf -G 0") is None  # -G 0: no CUDA graph, and no -g / nGpus given
    assert launch_from_harness("./all_reduce_perf -G 10") == "graph"  # -G: CUDA graphs, not GPUs per process
    assert launch_from_harness("torch.distributed NCCL") == "one_process_per_gpu"
