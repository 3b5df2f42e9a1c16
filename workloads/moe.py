"""Mixture-of-experts arithmetic shared by the trace builder and the parallel sharder."""

__all__ = ["experts_touched"]


def experts_touched(num_experts: int, top_k: int, tokens: int) -> float:
    """Expected number of distinct experts hit by `tokens` tokens, each routed to top_k
    of num_experts uniformly: E * (1 - (1 - k/E)^T)."""
    return num_experts * (1.0 - (1.0 - top_k / num_experts) ** tokens)
