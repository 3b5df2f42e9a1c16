"""Functional twins of the compression recipes: run a method on tensors and measure
what it costs in accuracy (numpy in, numpy out).

- `twin.run_twin(spec, model=None, checkpoint=None)`: one metrics dict per recipe part;
- `attention.evaluate_policy(policy, seq)`: a KV-cache policy over a decode run;
- `kv`, `eviction`, `lowrank`, `crosslayer`: cache policies per method family;
- `weights`, `moe`: weight and MoE-layer twins; `quant`: the methods' own quantizers;
- `synthetic`: tensors with outlier channels, sinks, heavy hitters and locality;
"""
