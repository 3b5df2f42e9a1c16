"""Session 17 (issue 12): the held-out tables of a second xxrjun H100 cluster, checked by hand.

- the scored CSV is re-derived from the verbatim raw sections (nothing typed in); a few transcribed rows are pinned
  against the raw text;
- one node per table, 8 ranks, one process per GPU, NCCL 2.28.7, element type double, as the headers state;
- E4: no row reports a wrong value;
- the section cutter takes exactly one run out of a log holding five, and refuses a log it cannot cut;
- the source was not held before (rule Q4), with the one earlier mention said plainly: session 9's sources list names
  this cluster's two-node *pairwise* logs (cnode2 pairs) by file name; the single-node tables were not in the tree that
  session read, and no cnode2 number appears in any earlier file.
"""

import csv

import pytest

from cosim.calibrate import collective_heldout_s17 as s17
from cosim.calibrate.collective_holdout_s4b import stated_dtype
from cosim.calibrate.nccl_table import published_session, read_nccl_tests


def test_committed_rows_are_the_raw_tables_read_again():
    with open(s17.HELDOUT_S17_CSV, newline="") as f:
        assert list(csv.DictReader(f)) == s17.build_rows()


def test_transcribed_rows_pinned():
    rows = {(r["source"], int(r["size_bytes"])): r for r in s17.build_rows()}
    # (source, size) -> (out-of-place time us, out-of-place busbw GB/s), as printed in the raw logs
    want = {("xx_cnode2-001_allreduce", 1 << 25): ("183.38", "320.2"),
            ("xx_cnode2-001_allreduce", 1 << 30): ("4001.25", "469.62"),
            ("xx_cnode2-017_allreduce", 1 << 27): ("563.31", "416.96"),
            ("xx_cnode2-009_reducescatter", 1 << 30): ("2738.54", "343.07"),
            ("xx_cnode2-005_allgather", 1 << 27): ("383.88", "305.93")}
    for key, (t, bw) in want.items():
        assert (rows[key]["time_us"], rows[key]["busbw_GBps"]) == (t, bw), key
    # 2 - 16 GB are transcribed, not scored (X2)
    assert rows[("xx_cnode2-001_allreduce", 1 << 34)]["in_range"] == "no"


def test_each_table_is_one_node_of_eight_ranks_one_process_per_gpu():
    rows = s17.build_rows()
    assert {(r["gpu"], r["n_gpus"], r["launch"], r["nccl"]) for r in rows} == {("H100 SXM", "8", "one_process_per_gpu",
                                                                                "2.28.7")}
    assert {stated_dtype(r) for r in rows} == {"fp64"}  # the scorer passes the rows' element type (double = fp64)
    for t in s17.TABLES:
        text = (s17.RAW / t.raw).read_text()
        node = t.source.split("_")[1]
        ranks = [ln for ln in text.splitlines() if ln.startswith("#  Rank")]
        assert len(ranks) == 8 and {ln.split(" on ")[1].split()[0] for ln in ranks} == {node}, t.raw
        assert len({ln.split("Pid")[1].split()[0] for ln in ranks}) == 8  # eight processes
        assert "nGpus 1 " in text and "nccl-library=22807" in text and "graph: 0" in text
    heads = s17.headline_sources()
    assert len(heads) == 17
    ar = [r for r in rows if r["source"] in heads and r["in_range"] == "yes"]
    assert len(ar) == 102 and sorted({int(r["size_bytes"]) for r in ar}) == [1 << k for k in range(25, 31)]


def test_no_row_reports_a_wrong_value():
    # rule E4 (#wrong > 0 is a degraded node): both #wrong columns of every data row are 0
    for t in s17.TABLES:
        text = (s17.RAW / t.raw).read_text()
        data = [ln.split() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        assert len(data) == len(read_nccl_tests(s17.RAW / t.raw, t.collective).rows) == 10
        assert {(d[8], d[12]) for d in data} == {("0", "0")}, t.raw
        assert "# Out of bounds values : 0 OK" in text


_LOG = """# nccl-tests version 2.17.6 nccl-headers=22807 nccl-library=22807
# Collective test starting: alltoall_perf
# nThread 1 nGpus 1 minBytes 8 maxBytes 16 step: 2(factor) warmup iters: 5 iters: 20 agg iters: 1 validation: 1 graph: 0
# Collective test concluded: alltoall_perf

# nccl-tests version 2.17.6 nccl-headers=22807 nccl-library=22807
# Collective test starting: all_reduce_perf
           8             2    double     sum      -1    20.00    0.00    0.00       0    20.00    0.00    0.00       0
# Collective test concluded: all_reduce_perf
"""


def test_log_section_cuts_one_run_verbatim():
    got = s17.log_section(_LOG, "all_reduce_perf")
    assert got.startswith("# nccl-tests version") and got.endswith("concluded: all_reduce_perf\n")
    assert "alltoall" not in got and got in _LOG
    with pytest.raises(ValueError, match=r"x\.log: field '# Collective test starting/concluded: all_gather_perf': "
                                         r"found 0 start and 0 end lines"):
        s17.log_section(_LOG, "all_gather_perf", "x.log")
    broken = _LOG.replace("# nccl-tests version 2.17.6 nccl-headers=22807 nccl-library=22807\n# Collective test "
                          "starting: all_reduce", "# Collective test starting: all_reduce")
    with pytest.raises(ValueError, match="expected '# nccl-tests version ...' just before the all_reduce_perf"):
        s17.log_section(broken, "all_reduce_perf", "x.log")


def test_raw_provenance_names_every_log_with_its_blob():
    src = (s17.RAW / "SOURCES.txt").read_text()
    assert s17.XX_COMMIT in src
    for node in s17.NODES:
        line = next(ln for ln in src.splitlines() if f"nccl_N1_G8_{node}.log" in ln)
        assert "git blob " in line and len(line.split("git blob ")[1]) == 40


def test_the_source_was_not_held_before():
    pub = s17.RAW.parent
    earlier = [p for p in sorted(pub.rglob("*")) if p.is_file() and published_session(p.relative_to(pub)) < 17]
    assert "nccl_sources_session12.csv" in {p.name for p in earlier}
    mentions = []
    for p in earlier:
        text = p.read_text(errors="replace")
        assert "nccl_N1_G8_cnode2" not in text and "cnode2-0" not in text and s17.XX_COMMIT[:7] not in text, p
        if "example-cluster00" in text:
            mentions.append(p.name)
    # the one earlier mention: session 9's list of the same repository's pairwise / multi-node logs (file names only)
    assert mentions == ["nccl_sources_session9.csv"]


def _git(*args):
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)


def test_the_preregistration_came_before_the_transcription():
    pre = _git("log", "--diff-filter=A", "--format=%H", "--", "validation/published/PREREGISTRATION_nccl_session17.md")
    src = _git("log", "--diff-filter=A", "--format=%H", "--", "validation/published/nccl_sources_session17.csv")
    raw = _git("log", "--diff-filter=A", "--format=%H", "--", f"validation/published/raw_s17/{s17.TABLES[0].raw}")
    if pre.returncode or not pre.stdout.strip() or not raw.stdout.strip():
        pytest.skip("no git history in this copy (or the transcription is not committed yet)")
    a, s, b = pre.stdout.split()[-1], src.stdout.split()[-1], raw.stdout.split()[-1]
    assert a == s  # the sources list was committed with the pre-registration (5.1.10's review finding)
    if a == b:
        pytest.skip("history squashed: the two commits are one here")
    assert _git("merge-base", "--is-ancestor", a, b).returncode == 0
    text = (s17.RAW.parent / "PREREGISTRATION_nccl_session17.md").read_text()
    assert s17.XX_COMMIT in text and "55335a28cd6a855b6f781abd5d2fbcd2b5889478" in text


def _bench():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "collective_heldout_s17.py"
    spec = importlib.util.spec_from_file_location("bench_s17", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_frozen_commit_is_the_preregistration_s():
    assert _bench().frozen_commit() == "55335a28cd6a855b6f781abd5d2fbcd2b5889478"


def test_scored_once_result_pinned():
    import json
    from pathlib import Path
    res = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "results" /
                      "collective_heldout_s17.json").read_text())
    assert res["frozen"].startswith("55335a2") and res["moved"] == 0
    assert res["verdict"] == "met on the covered bands only"
    assert res["bands_covered"] == ["1 MB - 64 MB", "128 MB - 1 GB"]
    head = res["headline"]["all-reduce, 17 nodes (headline)"]["time"]
    assert (head["points"], head["within"]) == (102, 102) and head["max"] == pytest.approx(11.7, abs=0.05)
    ar = [r for r in res["rows"] if r["collective"] == "allreduce" and r["in_range"]]
    worst = max(ar, key=lambda r: abs(r["model_us"] / r["published_us"] - 1))
    assert worst["size"] == 1 << 25 and worst["algorithm"] == "ring/simple"  # 32 MB, below the ring -> NVLS switch
    assert res["others"]["allgather"]["time"]["within"] == 85  # the 17 misses: every node's 32 MB all-gather row


def test_one_price_by_hand():
    # 1 GB fp64 all-reduce, 8 ranks, NVLS (Simple), one process per GPU (dgx_h100.yaml): base latency 3.6 us + fixed
    # 75.02 us + 2 x 0.47 us + S / (0.618 x 450 GB/s x (1 - 0.35 / 8)); NVLS reduces doubles (5.1.13)
    from cosim.calibrate.collective_holdout_s4b import score_file
    want = 3.6 + 75.02 + 2 * 0.47 + (1 << 30) / (0.618 * 450e9 * (1 - 0.35 / 8)) * 1e6
    row = next(r for r in score_file(s17.HELDOUT_S17_CSV)
               if r.source == "xx_cnode2-001_allreduce" and r.size_bytes == 1 << 30)
    assert row.algorithm == "nvls/simple" and row.model_us == pytest.approx(want, rel=1e-9)
    assert row.published_us == 4001.25 and row.err_pct == pytest.approx(100 * (want / 4001.25 - 1))


def test_a_preregistration_naming_no_single_commit_is_one_error(tmp_path):
    from cosim.calibrate.frozen_commit import named_commit
    p = tmp_path / "PRE.md"
    p.write_text("## Frozen model\n" + "a" * 40 + " and " + "b" * 40 + "\n")
    with pytest.raises(SystemExit, match=r"PRE.md: expected one 40-hex commit in its 'Frozen model' section; found"):
        named_commit(p, "Frozen model")
    p.write_text("## Frozen model\nthe model at " + "c" * 40 + ", twice: " + "c" * 40 + "\n")
    assert named_commit(p, "Frozen model") == "c" * 40


def test_tables_read_each_raw_file_once(monkeypatch):
    # the tables, their nccl-library version and their graph note all come from one read of each raw file
    # (raw_text, cached): 17 nodes x 3 collectives = 51 reads, none repeated, and the same tables as at import
    from pathlib import Path
    reads = []
    real = Path.read_text

    def counting(self, *a, **k):
        reads.append(self.name)
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", counting)
    s17.raw_text.cache_clear()
    try:
        assert s17._tables() == s17.TABLES
        assert len(reads) == 51 == len(set(reads)) == len(s17.NODES) * len(s17.KINDS)
        assert s17._tables() == s17.TABLES and len(reads) == 51  # a second build reads nothing
    finally:
        s17.raw_text.cache_clear()
