"""The nccl-tests text-table parser (cosim.calibrate.nccl_table): round trips, real formats, clear errors."""

import pytest
from hypothesis import given, settings, strategies as st

from cosim.calibrate.nccl_table import (NcclTableError, parse_nccl_tests, read_nccl_tests, table_rows,
                                       write_table_rows)

# nccl-tests 2.20.0 output, first rows as posted in NVIDIA/dgx-spark-playbooks PR #103 (2 x GB10): the format only
REAL = """# nccl-tests version 2.20.0 (b4d5bee) nccl-headers=23102 nccl-library=23102
# Collective test starting: all_reduce_perf
# nThread 1 nGpus 1 minBytes 8192 maxBytes 8589934592 step: 2(factor) warmup iters: 10 iters: 100 agg iters: 1 validation: 1 graph: 0 unalign: 0
#                                                              out-of-place                       in-place
#       size         count      type   redop    root     time   algbw   busbw  #wrong     time   algbw   busbw  #wrong
#        (B)    (elements)                               (us)  (GB/s)  (GB/s)             (us)  (GB/s)  (GB/s)
        8192          2048     float     sum      -1    35.15    0.23    0.23       0    30.33    0.27    0.27       0
       16384          4096     float     sum      -1    31.67    0.52    0.52       0    30.75    0.53    0.53       0
       32768          8192     float     sum      -1    39.56    0.83    0.83       0    37.44    0.88    0.88       0
"""

# an older nccl-tests (no root column, '#wrong' as N/A / float), one process driving 8 GPUs
OLD = """# nThread 1 nGpus 8 minBytes 134217728 maxBytes 268435456 step: 2(factor) warmup iters: 5 iters: 20 validation: 1
#       size         count      type   redop     time   algbw   busbw  error     time   algbw   busbw  error
   134217728      33554432     float     sum   1211.2  110.81  193.92  0e+00   1211.8  110.76  193.83    N/A
NCCL INFO some log line that is not table
   268435456      67108864     float     sum   1423.3  188.60  330.05  0e+00   1420.2  189.01  330.77    N/A
"""


def test_real_format_by_hand():
    t = parse_nccl_tests(REAL, "pr103.txt")
    assert t.collective == "allreduce" and t.n_gpus_per_process == 1 and t.launch == "one_process_per_gpu"
    assert [(r.size_bytes, r.oop_time_us, r.ip_time_us, r.line) for r in t.rows] == \
        [(8192, 35.15, 30.33, 7), (16384, 31.67, 30.75, 8), (32768, 39.56, 37.44, 9)]


def test_old_format_without_root_and_log_lines():
    t = parse_nccl_tests(OLD, "old.txt", collective="allreduce")
    assert t.launch == "single_process" and [r.size_bytes for r in t.rows] == [134217728, 268435456]
    assert t.rows[1].oop_busbw_GBps == 330.05 and t.rows[1].line == 5


def test_collective_must_be_known():
    with pytest.raises(NcclTableError, match=r"old\.txt: collective: not named by the text"):
        parse_nccl_tests(OLD, "old.txt")
    with pytest.raises(NcclTableError, match=r"given 'allgather', the text names all_reduce_perf"):
        parse_nccl_tests(REAL, "x.txt", collective="allgather")


@pytest.mark.parametrize("old,new,field,expected", [
    ("35.15", "abc", "oop_time", "a number"),
    ("35.15", "-1.0", "oop_time", "a time in us > 0"),
    ("    2048", "  20x8  ", "count", "a whole number"),
    ("0.23       0    30.33", "0.23       0", "row", "13 fields as the column header states"),
])
def test_malformed_row_is_one_clear_error(old, new, field, expected):
    bad = REAL.replace(old, new, 1)
    with pytest.raises(NcclTableError) as e:
        parse_nccl_tests(bad, "node7/all_reduce.txt")
    msg = str(e.value)
    assert msg.startswith("node7/all_reduce.txt:7: field " + field) and expected in msg


def test_no_rows_and_unreadable_file(tmp_path):
    with pytest.raises(NcclTableError, match="no data rows"):
        parse_nccl_tests("# all_reduce_perf\n# nothing\n", "empty.txt")
    with pytest.raises(NcclTableError, match=r"missing\.txt: cannot read"):
        read_nccl_tests(tmp_path / "missing.txt")


_row = st.tuples(st.integers(1, 1 << 33), st.floats(0.01, 1e6), st.floats(0, 1e4), st.floats(0.01, 1e6),
                 st.floats(0, 1e4), st.booleans())


@settings(max_examples=60, deadline=None)
@given(st.lists(_row, min_size=1, max_size=12), st.sampled_from(["all_reduce", "all_gather", "reduce_scatter"]),
       st.integers(1, 8))
def test_round_trip(rows, binary, ngpus):
    lines = [f"# nThread 1 nGpus {ngpus} minBytes 8", f"# Collective test starting: {binary}_perf"]
    for S, t1, b1, t2, b2, root in rows:
        mid = "     -1" if root else ""
        lines.append(f"{S:12d} {S // 4:12d} float sum{mid} {t1:.2f} 0.00 {b1:.2f} 0 {t2:.2f} 0.00 {b2:.2f} N/A")
    t = parse_nccl_tests("\n".join(lines), "gen.txt")
    assert t.collective == binary.replace("_", "") and t.n_gpus_per_process == ngpus
    assert t.launch == ("single_process" if ngpus > 1 else "one_process_per_gpu")
    assert [(r.size_bytes, r.oop_time_us, r.oop_busbw_GBps, r.ip_time_us, r.ip_busbw_GBps) for r in t.rows] == \
        [(S, float(f"{t1:.2f}"), float(f"{b1:.2f}"), float(f"{t2:.2f}"), float(f"{b2:.2f}")) for S, t1, b1, t2, b2, _ in rows]


def test_table_rows_and_csv_by_hand(tmp_path):
    """The published-table CSV rows: out-of-place time / busbw as %g, in_range inclusive at both ends, the exact
    header and '\\n' line ends."""
    tab = parse_nccl_tests(REAL, "real.txt")
    rows = table_rows(tab, (8192, 16384), source="s", url="u", accessed="2026-12-04", gpu="H100 SXM", n_gpus=8,
                      harness="h", nccl="2.31.2", status="V", role="headline", note="n")
    assert [(r["size_bytes"], r["time_us"], r["busbw_GBps"], r["in_range"]) for r in rows] == [
        ("8192", "35.15", "0.23", "yes"), ("16384", "31.67", "0.52", "yes"), ("32768", "39.56", "0.83", "no")]
    assert rows[0]["n_gpus"] == "8" and rows[0]["forced"] == "" and rows[0]["collective"] == "allreduce"
    assert rows[0]["launch"] == tab.launch
    text = write_table_rows(tmp_path / "t.csv", rows[:1]).read_bytes().decode()
    assert text == ("source,url,accessed,gpu,n_gpus,harness,launch,collective,forced,nccl,size_bytes,busbw_GBps,"
                    "time_us,status,in_range,role,note\n"
                    f"s,u,2026-12-04,H100 SXM,8,h,{tab.launch},allreduce,,2.31.2,8192,0.23,35.15,V,yes,headline,n\n")


def test_one_collective_binary_map_both_ways():
    from cosim.calibrate.nccl_table import BINARY_OF_COLLECTIVE, COLLECTIVE_OF_BINARY, perf_binary
    assert perf_binary("allreduce") == "all_reduce_perf" and perf_binary("reducescatter") == "reduce_scatter_perf"
    assert {COLLECTIVE_OF_BINARY[BINARY_OF_COLLECTIVE[c]] for c in COLLECTIVE_OF_BINARY.values()} == set(
        COLLECTIVE_OF_BINARY.values())


def test_table_harness_states_the_header_layout():
    from cosim.calibrate.nccl_table import NcclTable, Table, table_harness
    from hwmodels.nccl import launch_from_harness
    t = Table("s", "s.txt", "u", "allgather", "", "headline", "")
    per_gpu, one = (NcclTable("s", "allgather", n, None, ()) for n in (1, 8))
    assert table_harness(t, per_gpu, 8) == ("nccl-tests all_gather_perf (header: nThread 1 nGpus 1; 8 ranks, one per "
                                            "process)")
    assert table_harness(t, one, 8) == "nccl-tests all_gather_perf (header: nThread 1 nGpus 8)"
    assert launch_from_harness(table_harness(t, per_gpu, 8)) == "one_process_per_gpu"
    assert launch_from_harness(table_harness(t, one, 8)) == "single_process"


def test_published_session_of_a_file():
    from pathlib import PurePosixPath as P
    from cosim.calibrate.nccl_table import published_session
    assert [published_session(P(x)) for x in ("nccl_sources_session9.csv", "nccl_sources_session4b.csv",
                                              "raw_s11/x.txt", "raw_s8/nccl_sources_session4.csv",
                                              "vidur_h100_dgx_allreduce.csv", "nccl_sources_session12.csv")] == \
        [9, 4, 11, 4, 0, 12]


def test_heldout_round_builds_writes_and_filters_its_rows(tmp_path):
    import csv
    from dataclasses import replace

    from cosim.calibrate.collective_heldout_s8 import RAW, ROUND, TABLES
    from cosim.calibrate.nccl_table import IN_RANGE, HeldoutRound, published_rows, table_harness
    g138 = TABLES[0]
    r = HeldoutRound((g138, replace(g138, source="info_copy", role="info")), RAW, "2026-12-05", tmp_path / "rows.csv")
    assert r.headline_sources() == ("vp_g138_all_reduce",)
    rows = r.build_rows()
    assert rows == published_rows(r.tables, RAW, accessed="2026-12-05", harness=table_harness, in_range=IN_RANGE)
    assert len(rows) == 2 * 31 and {x["accessed"] for x in rows} == {"2026-12-05"}
    with open(r.write_csv(), newline="") as f:
        assert list(csv.DictReader(f)) == rows
    # the round's defaults can be overridden per call (a test builds one table from another folder)
    assert r.build_rows((g138,)) == rows[:31]
    assert ROUND.headline_sources() == ("vp_g138_all_reduce", "vp_g138_all_gather")

    class S:  # a scored row: source, in_range, collective
        def __init__(self, source, in_range, collective="allreduce"):
            self.source, self.in_range, self.collective = source, in_range, collective
    scored = [S("vp_g138_all_reduce", True), S("vp_g138_all_reduce", False), S("info_copy", True),
              S("vp_g138_all_reduce", True, "allgather")]
    assert r.headline_rows(scored) == [scored[0], scored[3]]
    assert r.headline_rows(scored, "allreduce") == [scored[0]]


def test_frozen_rows_or_error_is_one_error_line(capsys):
    from cosim.calibrate.collective_heldout_s11 import HELDOUT_S11_CSV
    from cosim.calibrate.nccl_heldout_score import frozen_rows_or_error
    from cosim.calibrate.frozen_commit import ROOT
    assert frozen_rows_or_error("0" * 40, HELDOUT_S11_CSV, ROOT) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: frozen commit 0000000 could not price "
                                               "nccl_8xh100_heldout_session11.csv")
