"""Expert-routing skew under expert parallelism: which device is busiest, and by how much.

Under EP each device holds E/ep whole experts and computes every token-expert pair routed to
them, so the MoE block finishes when the busiest device does. ``ep_imbalance`` returns
gamma = busiest device's token-expert rows / the mean device's, from one of:

- ``"uniform"`` (default): every expert equally likely and expected counts: gamma = 1 (the
  assumption of the earlier model, kept as the default so no figure moves silently);
- ``"sampled"``: a uniform router, but a finite batch: a device's count of the N x k
  token-expert pairs of its group is a sum of N per-token hypergeometric draws (k distinct
  experts of E, El = E/ep of them here), mean mu = N k / ep, variance
  sigma^2 = N k (1/ep)(1 - 1/ep)(E - k)/(E - 1); the busiest of ep devices sits z_ep sigma above
  the mean, z_ep = E[max of ep standard normals] (1.4236 for 8), so gamma = 1 + z_ep sigma / mu
  (normal approximation, the devices' small negative correlation ignored: slightly pessimistic);
- ``"zipf:<s>"``: expert popularity proportional to rank^-s (s >= 0; s = 0 is uniform), the
  hottest experts on one device;
- a list of E non-negative per-expert loads (e.g. token counts an engine logged, vLLM's EPLB
  ``expert_load``), normalised here.
Experts sit on devices in contiguous blocks (vLLM's default "linear" placement): device d holds
experts d El .. (d + 1) El - 1, so a skewed list or Zipf order puts the hottest block on one device.
"""

from __future__ import annotations

import math
from functools import lru_cache

from workloads.io import InputError

__all__ = ["expert_shares", "device_shares", "ep_imbalance", "expected_max_normal", "parse_routing", "describe"]


def parse_routing(value, num_experts: int | None = None, source: str = "parallel.routing"):
    """A checked routing spec: "uniform", "sampled", "zipf:<s>" or a tuple of E loads."""
    if isinstance(value, str):
        if value in ("uniform", "sampled"):
            return value
        if value.startswith("zipf:"):
            try:
                s = float(value[5:])
            except ValueError:
                s = -1.0
            if not (s >= 0 and math.isfinite(s)):
                raise InputError(f"{source}: got {value!r}; expected zipf:<s> with s >= 0, e.g. zipf:1.0")
            return f"zipf:{s:g}"
        raise InputError(f"{source}: got {value!r}; expected 'uniform', 'sampled', 'zipf:<s>' or a list of "
                         "per-expert loads")
    if isinstance(value, (list, tuple)):
        loads = tuple(value)
        bad = [x for x in loads if isinstance(x, bool) or not isinstance(x, (int, float)) or not x >= 0]
        if bad or not loads or sum(loads) <= 0:
            raise InputError(f"{source}: got {list(value)!r}; expected non-negative per-expert loads, not all zero")
        if num_experts is not None and len(loads) != num_experts:
            raise InputError(f"{source}: got {len(loads)} loads; expected one per expert ({num_experts})")
        return tuple(float(x) for x in loads)
    raise InputError(f"{source}: got {value!r}; expected 'uniform', 'sampled', 'zipf:<s>' or a list of loads")


def expert_shares(routing, num_experts: int) -> list[float]:
    """Each expert's share of the token-expert pairs (sums to 1)."""
    if routing in ("uniform", "sampled"):
        return [1.0 / num_experts] * num_experts
    if isinstance(routing, str):  # zipf:<s>
        s = float(routing[5:])
        w = [(r + 1) ** -s for r in range(num_experts)]
    else:
        w = list(routing)
    total = sum(w)
    return [x / total for x in w]


def device_shares(routing, num_experts: int, ep: int) -> list[float]:
    """Each EP device's share under contiguous placement."""
    per = num_experts // ep
    sh = expert_shares(routing, num_experts)
    return [sum(sh[d * per:(d + 1) * per]) for d in range(ep)]


@lru_cache(maxsize=64)
def expected_max_normal(n: int) -> float:
    """E[max of n iid standard normals], by numerical integration of x n phi(x) Phi(x)^(n-1)."""
    if n <= 1:
        return 0.0
    h, total = 1e-3, 0.0
    for i in range(-8000, 8001):  # x in [-8, 8]
        x = i * h
        phi = math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        Phi = 0.5 * (1.0 + math.erf(x / math.sqrt(2)))
        total += x * n * phi * Phi ** (n - 1)
    return total * h


def ep_imbalance(routing, num_experts: int, top_k: int, ep: int, group_tokens: int) -> float:
    """gamma = busiest device's token-expert rows / mean device's (>= 1); see the module docstring."""
    if ep <= 1:
        return 1.0
    if routing == "sampled":
        N, k, E = group_tokens, top_k, num_experts
        mu = N * k / ep
        var = N * k * (1 / ep) * (1 - 1 / ep) * (E - k) / max(E - 1, 1)
        return 1.0 + expected_max_normal(ep) * math.sqrt(var) / mu if mu > 0 else 1.0
    return max(device_shares(routing, num_experts, ep)) * ep


def describe(routing) -> str:
    return f"measured loads ({len(routing)} experts)" if isinstance(routing, tuple) else routing
