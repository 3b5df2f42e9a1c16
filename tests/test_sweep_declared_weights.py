"""A sweep whose base names no `weights` prices each model of a `model` axis in that model's own declared
checkpoint format (config.json quantization_config), not the base model's."""

from pathlib import Path

import pytest

DSV3 = str(Path("tests/data/hf_configs/deepseek_v3.json").resolve())


def _sweep(tmp_path, base_extra=None, axis=None):
    from cosim.dse import sweep
    base = {"model": DSV3, "hw": "h200", "phase": "decode", "batch": 1, "seq": 128, **(base_extra or {})}
    spec = {"name": "s", "base": base, "axes": [{"grid": axis or {"model": [DSV3, "llama3_8b"]}}],
            "require_memory_fit": False, "output": str(tmp_path / "o")}
    return sweep(spec, quiet=True, write=False)


def test_each_model_point_takes_its_own_declared_weights(tmp_path):
    df = _sweep(tmp_path)
    by = {("llama" if "llama" in m else "dsv3"): r for m, r in zip(df["model"], df.to_dict("records"))}
    # Llama-3-8B declares nothing: bf16, 2 bytes a weight (16.1 GB of weights, not 8.0 GB at fp8 blocks)
    assert by["llama"]["weights"] == "bf16"
    assert by["dsv3"]["weights"] == "fp8_e4m3_b128x128"
    assert by["llama"]["memory_bytes"] == pytest.approx(16.08e9, rel=0.01)  # 8.03e9 params x 2 B + KV
    assert by["dsv3"]["memory_bytes"] == pytest.approx(673.05e9, rel=0.001)  # docs/quantized-checkpoints.md
    # reversed base: a Llama base names no weights either, so the DeepSeek-V3 point is still fp8 (673 GB)
    df2 = _sweep(tmp_path, {"model": "llama3_8b"})
    w = dict(zip(["dsv3" if "deepseek" in m else "llama" for m in df2["model"]], df2["weights"]))
    assert w == {"dsv3": "fp8_e4m3_b128x128", "llama": "bf16"}


def test_explicit_base_weights_apply_to_every_model(tmp_path):
    df = _sweep(tmp_path, {"weights": "mxfp4"})
    assert "weights" not in df.columns  # one format for every point: the base's, as written
    llama = df[df["model"] == "llama3_8b"].iloc[0]
    assert llama["memory_bytes"] < 5e9  # 8.03e9 params x 4.25 / 8 B = 4.27 GB (+ KV), not bf16's 16 GB
