"""H100 vs B200 vs MI300X for Mixtral-8x7B decode with MXFP4 experts.

Notebook-style: run top to bottom (`python examples/gpus_for_mixtral.py`) or paste the
cells into Jupyter. Roofline level (speed of light from each datasheet) for three
batch sizes at 4K context; accuracy of the MXFP4 weights from the functional core.
"""

# %% One sweep: device x batch
import cosim
from cosim.dse import sweep

spec = {
    "name": "gpus_for_mixtral",
    "base": {"model": "mixtral_8x7b", "phase": "decode", "seq": 4096, "weights": "mxfp4", "hw": "h100_sxm",
             "level": "roofline",  # bf16 activations: MXFP4 weights are dequantized, GEMMs run at the bf16 peak
             "accuracy": {"layers": 1, "rows": 64, "tokens": 8, "seed": 0}},
    "axes": [{"grid": {"hw": ["h100_sxm", "b200", "mi300x"], "batch": [1, 16, 128]}}],
    "objectives": {"latency_s": "min", "energy_per_token_j": "min"},
    "output": "sweeps/gpus_for_mixtral",
}
df = sweep(spec, quiet=True)

# %% Tokens/s and energy per token by device and batch
table = df.pivot_table(index="batch", columns="hw", values="tokens_per_s")
print("tokens/s (one decode step of the whole batch)\n", table.round(0).to_string(), "\n")
print("mJ per token\n", (df.pivot_table(index="batch", columns="hw", values="energy_per_token_j") * 1e3)
      .round(2).to_string(), "\n")
print("fits in memory:\n", df.pivot(index="batch", columns="hw", values="fits_in_memory").to_string(), "\n")
print(f"worst-op SQNR of MXFP4 experts (functional core): {df['sqnr_db'].iloc[0]:.1f} dB")

# %% Why: the per-op roofline of the largest batch on the B200
rep = cosim.simulate(cosim.build_trace("mixtral_8x7b", "decode", 128, 4096, weights="mxfp4"), cosim.load_hw("b200"))
from cosim.cli.roofline import format_report  # noqa: E402
print(format_report(rep, top=6))
print(f"plots and tables in {spec['output']}/")
