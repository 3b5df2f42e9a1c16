"""Session 9 (issue 12): the held-out nccl-tests tables, checked by hand.

- the rows are re-derived from the raw nccl-tests text (nothing typed in), one node per table, 8 ranks, one process
  per GPU as the headers state;
- the source was not held before (rule Q4);
- the headline score is pinned and one price is recomputed from the system file's constants.
"""

import csv
import subprocess
from pathlib import Path

import pytest

from cosim.calibrate.collective_heldout_s9 import FROZEN, HELDOUT_S9_CSV, RAW, TABLES, build_rows, headline_sources
from cosim.calibrate.collective_holdout_s4b import score_file
from cosim.calibrate.nccl_table import published_session
from hwmodels.system import load_system

ROOT = Path(__file__).resolve().parents[1]
H100 = load_system("dgx_h100")


def test_committed_rows_are_the_raw_tables_read_again():
    with open(HELDOUT_S9_CSV, newline="") as f:
        assert list(csv.DictReader(f)) == build_rows()


def test_each_table_is_one_node_of_eight_ranks_one_process_per_gpu():
    rows = build_rows()
    assert {(r["gpu"], r["n_gpus"], r["launch"]) for r in rows} == {("H100 SXM", "8", "one_process_per_gpu")}
    for t in TABLES:
        text = (RAW / t.raw).read_text()
        node = t.source.split("_")[1]
        hosts = {ln.split(" on ")[1].split()[0] for ln in text.splitlines() if ln.startswith("#  Rank")}
        assert hosts == {node}, t.raw  # every rank on the node the source names: single node (rule Q3)
        assert "nGpus 1 " in text and "nccl-library=22902" in text
    assert len(headline_sources()) == 10


def test_the_source_was_not_held_before():
    pub = HELDOUT_S9_CSV.parent
    # the files of earlier rounds only (nccl_table.published_session): a later round's file may name this round's source
    earlier = [p for p in sorted(pub.rglob("*")) if p.is_file() and published_session(p.relative_to(pub)) < 9]
    assert "nccl_sources_session4.csv" in {p.name for p in earlier}
    assert not [p for p in earlier if "session9" in p.name or "raw_s9" in p.relative_to(pub).parts]
    for p in earlier:
        text = p.read_text(errors="replace")
        assert "xxrjun" not in text and "nccl-tests-cluster" not in text and "cnode3-0" not in text, p


def test_headline_score_pinned():
    ar = [r for r in score_file(HELDOUT_S9_CSV) if r.source in headline_sources() and r.in_range]
    assert len(ar) == 60 and sorted({r.size_bytes for r in ar}) == [1 << k for k in range(25, 31)]
    errs = [abs(r.err_pct) for r in ar]
    assert sum(e <= 15.0 for e in errs) == 60 and max(errs) == pytest.approx(11.9, abs=0.05)
    # the largest errors are the 32 MB rows, priced on the ring (Simple) below the ring -> NVLS switch
    worst = max(ar, key=lambda r: abs(r.err_pct))
    assert worst.size_bytes == 1 << 25 and worst.algorithm == "ring/simple"


def test_one_price_by_hand():
    # 1 GB all-reduce, 8 ranks, NVLS (Simple), one process per GPU: base latency 3.6 us + fixed 75.02 us + 2 x 0.47 us
    # + S / (0.618 x 450 GB/s x (1 - 0.35 / 8))  (dgx_h100.yaml)
    want = 3.6 + 75.02 + 2 * 0.47 + (1 << 30) / (0.618 * 450e9 * (1 - 0.35 / 8)) * 1e6
    row = next(r for r in score_file(HELDOUT_S9_CSV) if r.source == "xx_cnode3-002_allreduce" and r.size_bytes == 1 << 30)
    assert row.algorithm == "nvls/simple" and row.model_us == pytest.approx(want, rel=1e-9)
    assert row.published_us == 4000.82 and row.err_pct == pytest.approx(100 * (want / 4000.82 - 1))


@pytest.mark.slow
def test_frozen_commit_prices_every_row_the_same():
    from cosim.calibrate import frozen_commit
    if subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", FROZEN], capture_output=True).returncode:
        pytest.skip("the frozen commit is not in this clone's history")
    assert frozen_commit.frozen_prices(FROZEN, HELDOUT_S9_CSV, ROOT) == [r.model_us for r in score_file(HELDOUT_S9_CSV)]


def test_nccl_version_and_launch_are_read_from_each_log(tmp_path):
    from cosim.calibrate.collective_heldout_s9 import nccl_library
    assert nccl_library(RAW / TABLES[0].raw) == (22902, "2.29.2")
    p = tmp_path / "log.txt"
    p.write_text("# nccl-tests version 2.13.8 nccl-headers=21803 nccl-library=21803\n")
    assert nccl_library(p) == (21803, "2.18.3")
    p.write_text("# nccl-tests version 2.13.8\n")
    with pytest.raises(ValueError, match=r"log\.txt: field nccl-library: not in the header"):
        nccl_library(p)
    # every table's version and nGpus come from its own header (nothing typed in)
    for t in TABLES:
        text = (RAW / t.raw).read_text()
        assert t.nccl == "2.29.2" and f"nccl-library=22902 (NCCL {t.nccl})" in t.note and "nGpus 1 " in text
        assert "header nGpus 1: one process per GPU" in t.note and "dtype double" in t.note


def test_committed_results_tables_have_as_many_cells_as_headers():
    # every markdown table row of the committed result has the header's column count (the 'without X3 / X4' group
    # was 3 cells under 1 header before)
    md = (ROOT / "benchmarks" / "results" / "collective_heldout_s9.md").read_text().splitlines()
    width = None
    for ln in md:
        if not ln.startswith("|"):
            width = None
            continue
        cells = ln.count("|") - 1
        width = width or cells
        assert cells == width, ln
    text = "\n".join(md)
    assert "## Session-8 term (information, not the score)" in text and "one machine configuration" in text


def test_session8_term_prices_these_rows_the_same():
    # one process per GPU does not use the single-process launch term: the session-8 term (8.35 + 3.72 n) and the
    # session-9 term (17.50 + 2.08 n) price every row alike (the preregistration's information line)
    from cosim.calibrate.collective_holdout_s4b import session8_systems
    now, old = score_file(HELDOUT_S9_CSV), score_file(HELDOUT_S9_CSV, systems=session8_systems())
    assert {r.launch for r in now} == {"one_process_per_gpu"}
    assert [r.model_us for r in now] == [r.model_us for r in old] and len(now) == 300


def test_the_rounds_share_one_table_type_and_range():
    """Session 8's and 9's tables are the one nccl_table.Table (no per-round copy), with the one X2 range."""
    from cosim.calibrate import collective_heldout_s8 as s8
    from cosim.calibrate import collective_heldout_s9 as s9
    from cosim.calibrate import nccl_table
    assert s8.Table is s9.Table is nccl_table.Table
    assert all(type(t) is nccl_table.Table for t in s8.TABLES + s9.TABLES)
    assert s8.IN_RANGE == s9.IN_RANGE == nccl_table.IN_RANGE == (1024, 1024 ** 3)
    assert {t.status for t in s9.TABLES} == {"V"}  # every session-9 source has a stable URL (rule Q1)
