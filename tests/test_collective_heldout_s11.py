"""Session 11 (issue 12): the held-out nccl-tests table of NVIDIA's DGX Cloud NCCL recipe, checked by hand.

- the rows are re-derived from the raw nccl-tests text (nothing typed in): one node, 8 ranks, one process per GPU;
- the pre-registration was committed before the table was transcribed; the source was not held before (rule Q4);
- the score is pinned, one price is recomputed from the system file's constants, the committed result is this tree's.
"""

import csv
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from cosim.calibrate.collective_heldout_s11 import FROZEN, HELDOUT_S11_CSV, RAW, TABLES, build_rows, headline_sources
from cosim.calibrate.collective_holdout_s4b import score_file
from cosim.calibrate.nccl_heldout_score import stats
from cosim.calibrate.nccl_table import published_session

ROOT = Path(__file__).resolve().parents[1]
PUB = HELDOUT_S11_CSV.parent


def _git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def test_committed_rows_are_the_raw_table_read_again():
    with open(HELDOUT_S11_CSV, newline="") as f:
        assert list(csv.DictReader(f)) == build_rows()


def test_one_node_of_eight_ranks_one_process_per_gpu():
    rows = build_rows()
    assert {(r["gpu"], r["n_gpus"], r["launch"], r["status"]) for r in rows} == {
        ("H100 SXM", "8", "one_process_per_gpu", "V")}
    text = (RAW / TABLES[0].raw).read_text()
    hosts = {ln.split(" on ")[1].split()[0] for ln in text.splitlines() if ln.startswith("#  Rank")}
    pids = {ln.split(" Pid ")[1].split()[0] for ln in text.splitlines() if ln.startswith("#  Rank")}
    assert hosts == {"pool0-01806"} and len(pids) == 8 and "nGpus 1 " in text and "graph: 0" in text
    assert len(rows) == 32 and sum(r["in_range"] == "yes" for r in rows) == 21  # 8 B - 16 GB; X2 keeps 1 KB - 1 GB
    assert all(r["url"] == TABLES[0].url and "/blob/8e77d607c06f8c8603568ba7e49e65f8ff88c1b8/" in r["url"] for r in rows)
    assert headline_sources() == ("dgxc_pool0_01806_all_reduce",)


def test_the_source_was_not_held_before():
    # the files of earlier rounds only: a later round's source list may name this round's source
    earlier = [p for p in sorted(PUB.rglob("*")) if p.is_file() and published_session(p.relative_to(PUB)) < 11]
    assert {"nccl_sources_session9.csv", "nccl_sources_session4.csv"} <= {p.name for p in earlier}
    assert not [p for p in earlier if "session11" in p.name or "raw_s11" in p.parts]
    for p in earlier:
        text = p.read_text(errors="replace")
        assert "dgxc-benchmarking" not in text and "pool0-01806" not in text, p
    # nor in docs/ or validation/ at the frozen commit (docs/multi-device.md 5.1.10 cites it since the score)
    if _git("cat-file", "-e", FROZEN).returncode:
        pytest.skip("the frozen commit is not in this clone's history")
    for key in ("dgxc-benchmarking", "pool0-01806"):
        hit = _git("grep", "-l", key, FROZEN, "--", "docs", "validation")
        assert hit.returncode == 1 and not hit.stdout, hit.stdout


def test_the_preregistration_came_before_the_transcription():
    pre = _git("log", "--diff-filter=A", "--format=%H", "--", "validation/published/PREREGISTRATION_nccl_session11.md")
    raw = _git("log", "--diff-filter=A", "--format=%H", "--", f"validation/published/raw_s11/{TABLES[0].raw}")
    if pre.returncode or not pre.stdout.strip() or not raw.stdout.strip():
        pytest.skip("no git history in this copy")
    a, b = pre.stdout.split()[-1], raw.stdout.split()[-1]
    if a == b:
        pytest.skip("history squashed: the two commits are one here")
    assert _git("merge-base", "--is-ancestor", a, b).returncode == 0
    text = (PUB / "PREREGISTRATION_nccl_session11.md").read_text()
    assert FROZEN in text and TABLES[0].url in text


def _result():
    return json.loads((ROOT / "benchmarks" / "results" / "collective_heldout_s11.json").read_text())


def _frozen_scored():
    """The rows as scored: this tree's reading of the CSV with the committed frozen-commit prices (the slow test
    checks those are the frozen commit's own), so the held-out score stands whatever later changes the model."""
    head = score_file(HELDOUT_S11_CSV)
    res = _result()
    assert [(j["source"], j["size"], j["published_us"]) for j in res["rows"]] == [
        (r.source, r.size_bytes, r.published_us) for r in head]
    return [dataclasses.replace(r, model_us=j["model_us"]) for r, j in zip(head, res["rows"])]


def test_score_pinned_and_one_price_by_hand():
    ar = [r for r in _frozen_scored() if r.source in headline_sources() and r.in_range]
    assert len(ar) == 21 and sum(abs(r.err_pct) <= 15.0 for r in ar) == 18
    assert sorted(r.size_bytes for r in ar if abs(r.err_pct) > 15.0) == [4096, 1 << 19, 1 << 20]
    t = stats(ar)
    assert (t["within"], t["points"], round(t["median"], 1), round(t["max"], 1)) == (18, 21, 5.2, 30.3)
    # 1 GB all-reduce, 8 ranks, NVLS (Simple), one process per GPU: base latency 3.6 us + fixed 75.02 us + 2 x 0.47 us
    # + S / (0.618 x 450 GB/s x (1 - 0.35 / 8))  (dgx_h100.yaml at the frozen commit; as session 9's test)
    want = 3.6 + 75.02 + 2 * 0.47 + (1 << 30) / (0.618 * 450e9 * (1 - 0.35 / 8)) * 1e6
    row = next(r for r in ar if r.size_bytes == 1 << 30)
    assert row.algorithm == "nvls/simple" and row.model_us == pytest.approx(want, rel=1e-9)
    assert row.published_us == 4029.4 and row.err_pct == pytest.approx(100 * (want / 4029.4 - 1))


def test_committed_result_is_this_trees_score():
    res = _result()
    assert res["frozen"] == FROZEN and res["verdict"] == "not met"
    assert res["bands_covered"] == ["1 KB - 512 KB", "1 MB - 64 MB", "128 MB - 1 GB"]
    head = score_file(HELDOUT_S11_CSV)  # this tree's prices: the result's head column (re-run after a model change)
    assert [(r["size"], r["head_model_us"]) for r in res["rows"]] == [(r.size_bytes, r.model_us) for r in head]
    assert res["moved"] == sum(r["model_us"] != r["head_model_us"] for r in res["rows"])
    t = res["allreduce"]["all-reduce, pool0-01806 (headline)"]
    assert (t["time"]["within"], t["time"]["points"], t["time_kept"]["within"]) == (18, 21, 18)
    assert (round(t["time"]["median"], 1), round(t["time"]["max"], 1)) == (5.2, 30.3)


def test_every_source_considered_is_listed_with_a_reason():
    with open(PUB / "nccl_sources_session11.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(r["role"] and r["reason"] and r["accessed"] for r in rows)
    head = [r for r in rows if r["role"] == "headline"]
    assert [r["url"] for r in head] == [TABLES[0].url]


@pytest.mark.slow
def test_the_scored_prices_are_the_frozen_commits_own():
    from cosim.calibrate import frozen_commit
    if _git("cat-file", "-e", FROZEN).returncode:
        pytest.skip("the frozen commit is not in this clone's history")
    assert frozen_commit.frozen_prices(FROZEN, HELDOUT_S11_CSV, ROOT) == [r["model_us"] for r in _result()["rows"]]


def test_the_harness_names_the_tables_collective():
    """The harness column is the table's own binary (it was all_reduce_perf whatever the table measured)."""
    from dataclasses import replace
    from cosim.calibrate.collective_heldout_s9 import RAW as RAW9, TABLES as TABLES9
    ag = next(t for t in TABLES9 if t.collective == "allgather")
    rows = build_rows((replace(TABLES[0], raw=ag.raw, collective="allgather"),), RAW9)
    assert {r["harness"] for r in rows} == {"nccl-tests all_gather_perf (header: nThread 1 nGpus 1; 8 ranks, one per "
                                            "process)"}
    assert {r["collective"] for r in rows} == {"allgather"}
