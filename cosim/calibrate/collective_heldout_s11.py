"""Session 11: a held-out round of published single-node 8 x H100 nccl-tests tables, scored once on the model frozen
at main's f26af7b (validation/published/PREREGISTRATION_nccl_session11.md, committed before the table's rows were
read). Nothing here fits anything.

The one table that qualified is NVIDIA's own sample output of its DGX Cloud NCCL recipe (NVIDIA/dgxc-benchmarking
nccl/README.md), copied verbatim (header lines and numeric rows) into validation/published/raw_s11/; every row of
nccl_8xh100_heldout_session11.csv is re-derived from that text by ``build_rows`` (a test checks it). GPU and ranks
come from its ``# Rank ... device ...`` lines, the launch mode from its ``nGpus`` header (nccl_table); the text states
no NCCL version.
"""

from __future__ import annotations

from cosim.calibrate.nccl_table import IN_RANGE, PUB, HeldoutRound, Table

__all__ = ["RAW", "HELDOUT_S11_CSV", "ACCESSED", "FROZEN", "TABLES", "ROUND", "build_rows", "write_csv",
           "headline_sources"]

RAW = PUB / "raw_s11"
HELDOUT_S11_CSV = PUB / "nccl_8xh100_heldout_session11.csv"
ACCESSED = "2026-12-04"
FROZEN = "f26af7b71e5c85eabf6166e01f52e30d82644980"  # main's HEAD named by PREREGISTRATION_nccl_session11.md
_DGXC = ("https://github.com/NVIDIA/dgxc-benchmarking/blob/8e77d607c06f8c8603568ba7e49e65f8ff88c1b8/nccl/README.md")

TABLES = (
    Table("dgxc_pool0_01806_all_reduce", "dgxc_pool0_01806_all_reduce_perf.txt", _DGXC, "allreduce", "", "headline",
          "NVIDIA/dgxc-benchmarking v25.10 NCCL recipe, README 'sample output (AllReduce excerpt)', node pool0-01806, "
          "8 x H100 80GB HBM3 (recipe: DGX H100); recipe settings at the same commit (nccl/config/testset.toml): -t 1 "
          "-g 1 -f 2 -n 20 -w 5 -b 8 -e 16G -d float -R 0, no NCCL_ALGO / NCCL_PROTO / NCCL_NVLS_ENABLE, no -G; "
          "header nGpus 1 with 8 ranks: one process per GPU; graph 0; NCCL version not stated (container "
          "nvcr.io/nvidia/nemo:25.09.00, Nvidia-Comms-Perf-Suite nccl-tests build); out-of-place time"),
)

ROUND = HeldoutRound(TABLES, RAW, ACCESSED, HELDOUT_S11_CSV, IN_RANGE)
headline_sources, build_rows, write_csv = ROUND.headline_sources, ROUND.build_rows, ROUND.write_csv
