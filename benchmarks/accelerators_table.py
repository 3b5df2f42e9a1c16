"""Llama-3-8B on every bundled accelerator / FPGA at level="cycle" (and roofline beside it).

Writes benchmarks/results/accelerators_llama3_8b.md.
    PYTHONPATH=. python benchmarks/accelerators_table.py
"""

from __future__ import annotations

from pathlib import Path

import cosim
from hwmodels.accelerators import config_for
from hwmodels.cycle import area_breakdown
from hwmodels.energy import bitcell_mm2, sram_area_mm2
from hwmodels.spec import load_hw

OUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
CASES = [  # hardware, weights, acts, kv, compute_fallback
    ("tpu_v4_like_128", "bf16", "bf16", "bf16", False),
    ("mx_systolic_128", "bf16", "bf16", "bf16", False),
    ("mx_systolic_128", "mxfp4", "mxfp8_e4m3", "mxfp8_e4m3", False),
    ("mxfp4_systolic_256", "mxfp4", "mxfp4", "mxfp4", False),
    ("mx6_systolic_128", "mx6", "mx6", "mx6", False),
    ("alveo_u280", "int4", "int8", "int8", False),
    ("versal_vck190", "int4", "int8", "int8", False),
]


def main() -> int:
    lines = ["| hardware | W / A / KV | decode tok/s (cycle) | decode tok/s (roofline) | decode J/token (cycle) "
             "| prefill 2048 ms (cycle) | prefill ms (roofline) | area mm2 (PE / SRAM / total) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, w, a, kv, fb in CASES:
        hw = load_hw(name)
        dec = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=4096, weights=w, acts=a, kv=kv)
        pre = cosim.build_trace("llama3_8b", phase="prefill", batch=1, seq=2048, weights=w, acts=a, kv=kv)
        dc = cosim.simulate(dec, hw, level="cycle", compute_fallback=fb)
        dr = cosim.simulate(dec, hw, level="roofline", compute_fallback=True)
        pc = cosim.simulate(pre, hw, level="cycle", compute_fallback=fb)
        pr = cosim.simulate(pre, hw, level="roofline", compute_fallback=True)
        ar = area_breakdown(hw)
        lines.append(f"| {name} | {w} / {a} / {kv} | {dc.tokens_per_s:.1f} | {dr.tokens_per_s:.1f} | "
                     f"{dc.energy_per_token_j:.3f}{' (dynamic only)' if hw.energy_scope else ''} | "
                     f"{pc.total_latency_s * 1e3:.0f} | {pr.total_latency_s * 1e3:.0f} | "
                     f"{ar['pe_array']:.1f} / {ar['sram']:.0f} / {ar['total']:.0f} |")
    # the VCK190's SRAM: three small arrays per AI Engine tile, so periphery dominates (derived, not typed in)
    vck = load_hw("versal_vck190")
    cfg = config_for(vck)
    sram = area_breakdown(vck)["sram"]
    cells = sum(cfg.sram_bytes.values()) * 8 * bitcell_mm2(cfg.node_nm) * cfg.arrays
    one = sram_area_mm2(sum(cfg.sram_bytes.values()), cfg.node_nm) * cfg.arrays
    kib = " + ".join(f"{v / 1024:g}" for v in cfg.sram_bytes.values())
    lines += ["", "dynamic only: the device file gives no `energy.static_power` (no TDP to take the bundled GPUs' "
              "30 % static share of, no cited leakage figure), so the static energy is unknown, not zero. SRAM area: "
              "raw 6T bit cells (TSMC N7 0.027 um^2, 16 nm 0.070 um^2; docs/hardware-sources.md) plus a periphery "
              "interpolated between LLMCompass's CACTI 4 KB and 128 KB array efficiencies (hwmodels.energy), per "
              f"buffer: the VCK190's {kib} KiB buffers per tile are three arrays, so periphery is "
              f"{sram - cells:.0f} of its {sram:.0f} mm2 (one {sum(cfg.sram_bytes.values()) / 1024:g} KiB array per "
              f"tile would be about {one:.0f} mm2). SRAM energy: every array-side access plus one per DRAM byte "
              "(fill / write-back), each priced at one 128 KiB bank + the wire to it."]
    text = "\n".join(lines) + "\n"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "accelerators_llama3_8b.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
