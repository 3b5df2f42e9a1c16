"""Which MX format should a 128x128 systolic accelerator use to serve a 7-8B GQA model
(Qwen2.5-7B) decode at 32K context with a KIVI-2 compressed KV cache?

Qwen2.5-7B is trained for 128K positions (max_position_embeddings 131072), so 32K is a
context it serves; Llama-3-8B (8K) would be refused at 32K unless the sweep opted in with
`allow_beyond_max_context: true` (docs/reliability.md).

Notebook-style: run top to bottom (`python examples/mx_format_for_systolic.py`), or
paste the cells into Jupyter. Needs the cycle-level accelerator model and the bundled
`mx_systolic_128` design (4 x 128x128 weight-stationary MX PE arrays) and the `kivi2`
recipe; prints what is missing otherwise.

COSIM_EXAMPLE_SMALL=1 runs two of the six format pairs (one under the 20 dB floor, one
over it) through the same code path, into sweeps/mx_format_for_systolic_small: the CI test
of the examples (tests/test_examples.py) uses it; the full sweep takes ~35 s.
"""

# %% The question as a sweep: formats (weights x activations) on one accelerator design
import os
import sys

from cosim.dse import sweep
from hwmodels.spec import list_hw

HW = "mx_systolic_128"
if HW not in list_hw():
    sys.exit(f"{HW} is not bundled in this installation (cosim list hw); the cycle-level models ship it")

spec = {
    "name": "mx_format_for_systolic",
    "base": {"model": "qwen2_5_7b", "phase": "decode", "batch": 16, "seq": 32768, "recipe": "kivi2",
             "hw": HW, "level": "cycle",
             "accuracy": {"layers": 1, "rows": 64, "tokens": 8, "seed": 0}},
    "axes": [{"zip": {  # (weights, activations): the GEMM runs in the wider of the two
        "weights": ["mxfp4", "mxfp4", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "bf16"],
        "acts": ["mxfp4", "mxfp8_e4m3", "mxfp6_e2m3", "mxfp8_e4m3", "mxint8", "bf16"]}}],
    "objectives": {"latency_s": "min", "energy_per_token_j": "min"},
    "constraints": ["gemm_sqnr_db >= 20"],  # the weight/activation formats' own cost; KIVI-2's is attention_sqnr_db
    "output": "sweeps/mx_format_for_systolic",
}
if os.environ.get("COSIM_EXAMPLE_SMALL") == "1":  # two pairs, same code path (tests/test_examples.py)
    spec["axes"] = [{"zip": {"weights": ["mxfp4", "mxfp6_e2m3"], "acts": ["mxfp4", "mxfp6_e2m3"]}}]
    spec["output"] = "sweeps/mx_format_for_systolic_small"

# %% Run it (results are stored; re-running is instant)
from workloads.io import InputError  # noqa: E402

try:
    df = sweep(spec, quiet=True)
except InputError as e:  # e.g. the kivi2 recipe is not installed
    sys.exit(f"error: {e}")

# %% The answer: every format with its cost and accuracy, feasible ones first
cols = ["weights", "acts", "latency_s", "tokens_per_s", "energy_per_token_j", "gemm_sqnr_db", "attention_sqnr_db",
        "area_mm2", "feasible",
        "pareto", "status"]
print(df[cols].sort_values(["feasible", "latency_s"], ascending=[False, True]).to_string(index=False))
best = df[df["pareto"]].sort_values("energy_per_token_j")
if len(best):
    b = best.iloc[0]
    print(f"\nlowest energy per token with GEMM SQNR >= 20 dB: weights {b['weights']}, acts {b['acts']} — "
          f"{b['tokens_per_s']:,.0f} tokens/s, {b['energy_per_token_j'] * 1e3:.3g} mJ/token, GEMM SQNR "
          f"{b['gemm_sqnr_db']:.1f} dB; KIVI-2 attention {b['attention_sqnr_db']:.1f} dB")
else:
    print("\nno format meets the 20 dB floor:", df["error"].dropna().unique()[:3])
print(f"plots and tables in {spec['output']}/")
