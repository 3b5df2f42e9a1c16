"""A recipe's effect next to the uncompressed baseline, as plain rows (for `cosim recipe`).
It prices both traces, so it lives in cosim, above the hardware models (it was in
workloads.compression, which must not import cosim)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Comparison", "compare_traces"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One quantity of the baseline and the compressed trace, in SI units."""
    quantity: str
    unit: str
    baseline: float
    compressed: float
    ratio: float  # baseline / compressed (inf when the compressed figure is 0)

    def to_dict(self) -> dict:
        return asdict(self)


def compare_traces(baseline, compressed, hw=None, level: str = "roofline",
                   compute_fallback: bool = False) -> list[Comparison]:
    """One row per quantity: FLOPs, bytes moved, the footprint parts and, with `hw`,
    latency and energy."""
    rows = [("FLOPs", "FLOP", baseline.total_flops, compressed.total_flops),
            ("bytes moved", "B", baseline.total_bytes, compressed.total_bytes)]
    for key in ("weights", "kv_cache", "activations"):
        rows.append((f"footprint {key}", "B", (baseline.meta.get("footprint") or {}).get(key, 0.0),
                     (compressed.meta.get("footprint") or {}).get(key, 0.0)))
    if hw is not None:
        from cosim.simulate import simulate
        rb = simulate(baseline, hw, level, compute_fallback)
        rc = simulate(compressed, hw, level, compute_fallback)
        rows += [(f"latency on {rb.hw}", "s", rb.total_latency_s, rc.total_latency_s),
                 ("energy" + (f", {rb.meta['energy_scope']}" if rb.meta.get("energy_scope") else ""), "J",
                  rb.total_energy_j, rc.total_energy_j)]
    return [Comparison(q, u, b, c, b / c if c else float("inf")) for q, u, b, c in rows]
