"""Session 8: a fresh held-out round of published single-node 8 x H100 nccl-tests tables, scored once on the frozen
bundled dgx_h100 (validation/collective_heldout_s8_rules.md, committed before the search). Nothing here fits anything.

The tables are kept verbatim (validation/published/raw_s8/*.txt, as nccl-tests printed them) and turned into rows
by the project's nccl-tests reader (cosim.calibrate.nccl_table), so the transcription is mechanical: every row of
validation/published/nccl_8xh100_heldout_session8.csv is re-derived from the raw text by ``build_rows`` (a test
checks it). Each table's role follows the rules: ``headline`` (qualifies), or ``info`` (scored for information,
out of the headline, with the rule that keeps it out). The GPU and the rank count come from the table's own header
(its ``# Rank ... device ... NVIDIA <name>`` lines, rule Q3); the status is the source's: V with a stable URL, R
for the one without (rule Q1).
"""

from __future__ import annotations

from cosim.calibrate.nccl_table import GPU_OF_DEVICE, IN_RANGE, PUB, HeldoutRound, Table, ranks_and_gpu

__all__ = ["PUB", "RAW", "HELDOUT_S8_CSV", "ACCESSED", "Table", "TABLES", "IN_RANGE", "ROUND", "build_rows", "write_csv",
           "headline_sources", "ranks_and_gpu", "GPU_OF_DEVICE"]

RAW = PUB / "raw_s8"
HELDOUT_S8_CSV = PUB / "nccl_8xh100_heldout_session8.csv"
ACCESSED = "2026-12-04"
_VP = ("https://github.com/ZiyanIshani/vpbenchmarking/blob/483959d960101f0cdf87fc0c962949c6a9975f77/results/nccl/")
# Table, PUB, IN_RANGE (X2: 1 KB - 1 GB scored), GPU_OF_DEVICE and ranks_and_gpu are the rounds' shared ones
# (cosim.calibrate.nccl_table), named here as before


TABLES = (
    Table("vp_g138_all_reduce", "vp_g138_all_reduce_perf.txt", _VP + "nccl_allreduce_20260224_223444.txt",
          "allreduce", "2.24.3", "headline",
          "Voltage Park bare-metal node g138, 8 x H100 80GB HBM3 SXM5 (repo README and results/nccl/nccl_singlenode/"
          "nccl_summary.md: CUDA 12.6, driver 560.35.03, NCCL 2.24.3, single-process -g 8); header nccl-library=22403; "
          "NCCL_ALGO not forced; out-of-place time"),
    Table("vp_g138_all_gather", "vp_g138_all_gather_perf.txt", _VP + "nccl_allgather_.txt",
          "allgather", "2.24.3", "headline",
          "same node and run set as vp_g138_all_reduce; all_gather_perf size = the gathered (output) buffer; "
          "out-of-place time; the table is erratic (4183 us at 128 B, 885-990 us from 4 to 32 MB, 1283 us at 256 MB "
          "between 1852 and 5477 us): kept as published, X3 applied in the 'without' columns"),
    Table("nccl_tests_290", "nccl_tests_290_single_node.txt", "https://github.com/NVIDIA/nccl-tests/issues/290",
          "allreduce", "", "info",
          "Q4: the source is listed as read in nccl_sources_session4.csv (its rows were not transcribed then); "
          "node005, 8 x H100 80GB HBM3, -g 8, iters: 2; scored for information only"),
    Table("index_15601983362", "index_15601983362_single_node_readme.txt",
          "find_string id 15601983362 (a 'Single Node NCCL Test' README; repository not named by the index)",
          "allreduce", "", "info",
          "Q1: no stable URL (the search index does not name the repository); 8 x H100 80GB HBM3, -g 8, CUDA 12.4, "
          "driver 550.90.07; scored for information only", status="R"),
)


ROUND = HeldoutRound(TABLES, RAW, ACCESSED, HELDOUT_S8_CSV, IN_RANGE)
headline_sources, build_rows, write_csv = ROUND.headline_sources, ROUND.build_rows, ROUND.write_csv
