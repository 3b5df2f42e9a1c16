"""Experiments: schema validation, run = simulate + functional accuracy, reports, checkpoints."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import cosim
from cosim.experiment import experiment_from_dict, load_experiment, run_experiment
from cosim.functional.checkpoint.lazy import LazySafetensors as SafetensorsFile
from cosim.layer_accuracy import trace_accuracy
from workloads.io import InputError

ROOT = Path(__file__).resolve().parents[1]
SMALL_ACC = {"layers": 1, "rows": 32, "tokens": 4, "seed": 0}


def _has_functional() -> bool:
    try:
        from cosim.functional import quantize  # noqa: F401
        return True
    except ImportError:
        return False


needs_functional = pytest.mark.skipif(not _has_functional(),
                                      reason="cosim.functional.quantize (functional core) not merged yet")


def test_quickstart_is_bundled_and_valid():
    exp = load_experiment("quickstart")
    c = exp.config
    assert (c["model"], c["hw"]["name"], c["weights"], c["phase"], c["level"]) == \
        ("llama3_8b", "h100_sxm", "mxfp4", "decode", "roofline")
    assert c["accuracy"]["source"] == "synthetic"
    assert (c["batch"], c["seq"]) == (8, 4096)  # README: "Llama-3-8B decode at 4K context", batch 8


def test_run_without_accuracy_is_exactly_simulate():
    exp = experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", "weights": "mxfp4", "seq": 4096})
    rep = run_experiment(exp)
    ref = cosim.simulate(cosim.build_trace("llama3_8b", "decode", 1, 4096, weights="mxfp4"), cosim.load_hw("h100_sxm"))
    assert rep.total_latency_s == ref.total_latency_s and rep.total_energy_j == ref.total_energy_j
    assert "sqnr_db" not in rep.rows[0]
    # one label scheme (hwmodels/cost.py): the level is its own column, never a provenance prefix
    assert all(r["provenance"] == "speed-of-light" and r["level"] == "roofline" for r in rep.rows)
    assert rep.meta["area_mm2"] is None


def test_hw_overrides_inline():
    exp = experiment_from_dict({"model": "llama3_8b", "hw": {"name": "h100_sxm",
                                                             "overrides": {"memory.hbm.bandwidth": "6.7 TB/s"}}})
    fast = run_experiment(exp).total_latency_s
    slow = run_experiment(experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm"})).total_latency_s
    assert slow / fast == pytest.approx(2.0, rel=0.01)  # decode batch 1: HBM-bound, 2x bandwidth


@needs_functional
def test_accuracy_per_op_orders_formats_and_reports_sample():
    def worst(w):
        exp = experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", "weights": w, "accuracy": SMALL_ACC})
        rep = run_experiment(exp)
        gemm = {r["op"]: r["sqnr_db"] for r in rep.rows if r["kind"] == "gemm"}
        assert set(gemm) >= {"q_proj", "down_proj", "lm_head"}
        assert all(math.isnan(r["sqnr_db"]) for r in rep.rows if r["kind"] in ("rmsnorm", "add"))
        s = rep.meta["accuracy"]["sample"]
        assert s["rows"] == 32 and s["tokens"] == 4 and s["layers"] == 1
        return rep.meta["accuracy"]["min_sqnr_db"]
    fp4, fp8, bf16 = worst("mxfp4"), worst("mxfp8_e4m3"), worst("bf16")
    # 1 mantissa bit vs 3 vs 7: each extra bit is ~6 dB of SQNR
    assert 12 < fp4 < 24
    assert fp8 > fp4 + 8
    assert bf16 > fp8 + 10


@needs_functional
def test_report_files_and_html_plots(tmp_path):
    exp = experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", "weights": "mxfp4", "accuracy": SMALL_ACC})
    run_experiment(exp, out_dir=tmp_path)
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["totals"]["model"] == "llama3_8b" and doc["accuracy"]["sample"]["rows"] == 32
    assert "sqnr_db" in doc["provenance"] and "latency_s" in doc["provenance"]
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4  # roofline, breakdown, footprint, accuracy by layer
    assert "sqnr_db" in (tmp_path / "report.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("doc,field", [
    ({"model": "llama3_8b", "hw": "h100_sxm", "levle": "roofline"}, "levle"),
    ({"model": "llama3_8b", "hw": "h100_sxm", "level": "rtl"}, "level"),
    ({"model": "llama3_8b"}, "hw"),
    ({"model": "llama3_8b", "hw": "h100_sxm", "batch": 0}, "batch"),
    ({"model": "llama3_8b", "hw": "h100_sxm", "weights": "mxfp3"}, "weights"),
    ({"model": "llama3_8b", "hw": "h100_sxm", "accuracy": {"rows": 8, "colums": 2}}, "accuracy.colums"),
    ({"model": "llama3_8b", "hw": "h100_sxm", "accuracy": {"source": "missing.safetensors"}}, "accuracy.source"),
    ({"model": "llama3_8b", "hw": {"name": "h100_sxm", "overrides": {"memory.hbm.bandwidth": "3 TB"}}}, "hw"),
])
def test_bad_experiments_name_file_and_field(doc, field):
    with pytest.raises(InputError) as e:
        experiment_from_dict(doc, source="exp.yaml")
    assert "exp.yaml" in str(e.value) and field in str(e.value)


def _tiny_model(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({"name": "tiny", "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2,
                                 "intermediate": 128, "vocab": 256}))
    return p


def _write_safetensors(path, tensors: dict, dtype="F32"):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        raw = (a.view(np.uint32) >> 16).astype("<u2").tobytes() if dtype == "BF16" else a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    path.write_bytes(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def test_safetensors_reader_rows_f32_and_bf16(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 5)).astype(np.float32)
    a_bf16 = (a.view(np.uint32) & 0xFFFF0000).view(np.float32)  # exactly representable in bf16
    _write_safetensors(tmp_path / "f.safetensors", {"x": a})
    _write_safetensors(tmp_path / "b.safetensors", {"x": a_bf16}, "BF16")
    idx = np.array([4, 1])
    assert np.array_equal(SafetensorsFile(tmp_path / "f.safetensors").rows("x", idx), a[[1, 4]])
    assert np.array_equal(SafetensorsFile(tmp_path / "b.safetensors").rows("x", idx), a_bf16[[1, 4]])
    with pytest.raises(InputError, match="not a readable safetensors file"):
        (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 16)
        SafetensorsFile(tmp_path / "bad.safetensors")


@needs_functional
def test_checkpoint_weights_are_used(tmp_path):
    """Weights that are exactly representable in MXFP4 (E2M1 grid values, one power-of-two
    scale per 32-block) quantize with zero error — impossible for the synthetic ones —
    so an infinite weight SQNR proves the checkpoint's rows were read."""
    model = _tiny_model(tmp_path)
    m = cosim.load_model(model)
    rng = np.random.default_rng(1)
    grid = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], dtype=np.float32)

    def exact(n, k):
        w = grid[rng.integers(0, 8, (n, k))] * rng.choice([-1, 1], (n, k))
        w[:, ::32] = 6.0  # every 32-block holds its max, so the shared scale is exactly 1
        return w.astype(np.float32)

    tensors = {}
    for layer in range(m.layers):
        for name, (n, k) in {"q_proj": (m.q_dim, m.hidden), "k_proj": (m.kv_dim, m.hidden),
                             "v_proj": (m.kv_dim, m.hidden), "o_proj": (m.hidden, m.q_dim),
                             "gate_proj": (m.intermediate, m.hidden), "up_proj": (m.intermediate, m.hidden),
                             "down_proj": (m.hidden, m.intermediate)}.items():
            part = "self_attn" if name.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            tensors[f"model.layers.{layer}.{part}.{name}.weight"] = exact(n, k)
    tensors["lm_head.weight"] = exact(m.vocab, m.hidden)
    _write_safetensors(tmp_path / "model.safetensors", tensors)
    trace = cosim.build_trace(m, "decode", 1, 64, weights="mxfp4")
    res = trace_accuracy(trace, layers=2, rows=16, tokens=4, checkpoint=tmp_path / "model.safetensors")
    gemms = [r for r in res.by_layer if r["op"] != "attention"]
    assert gemms and all(r["source"] == "checkpoint" for r in gemms)
    assert all(r["weight_sqnr_db"] == math.inf for r in gemms)
    assert {r["layer"] for r in gemms if r["op"] == "q_proj"} == {0, 1}
    assert res.to_dict()["sample"] == res.sample and res.to_dict()["by_op"] == res.by_op
    syn = trace_accuracy(trace, layers=1, rows=16, tokens=4)
    assert all(math.isfinite(r["weight_sqnr_db"]) for r in syn.by_layer if r["op"] != "attention")
    # a checkpoint of another model is refused with the tensor and both shapes named
    _write_safetensors(tmp_path / "wrong.safetensors", {"model.layers.0.self_attn.q_proj.weight": exact(8, 8)})
    with pytest.raises(InputError, match=r"q_proj.*\(8, 8\)"):
        trace_accuracy(trace, layers=1, rows=4, tokens=2, checkpoint=tmp_path / "wrong.safetensors")


def test_cli_run(tmp_path):
    r = subprocess.run([sys.executable, "-m", "cosim", "run", "quickstart", "--out", str(tmp_path), "--no-accuracy"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "tokens/s" in r.stdout and (tmp_path / "report.html").exists()
    r = subprocess.run([sys.executable, "-m", "cosim", "run", "quickstrat"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "quickstart" in r.stderr


@needs_functional
def test_a_kv_recipe_takes_its_attention_accuracy_from_the_recipe_twin():
    twin = pytest.importorskip("cosim.functional.compression.twin")
    exp = experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm", "seq": 2048, "recipe": "kivi2",
                                "accuracy": SMALL_ACC})
    rep = run_experiment(exp)
    rel = twin.run_twin("kivi2", model="llama3_8b", seed=0, prompt=2048, steps=8)["kivi2"]["attn_rel_error"]
    att = next(r for r in rep.rows if r["kind"] == "attention")
    assert att["sqnr_db"] == pytest.approx(-20 * math.log10(rel), rel=1e-12)  # 10 log10(1/rel^2)
    assert "attention: KV-cache twin" in rep.meta["accuracy"]["provenance"]
    assert rep.meta["accuracy"]["recipe_twin"]["kivi2"]["method"] == "kivi"


def test_cycle_level_reports_area_of_the_accelerator():
    cycle = pytest.importorskip("hwmodels.cycle")
    from hwmodels.spec import list_hw
    if "mx_systolic_128" not in list_hw():
        pytest.skip("mx_systolic_128 not bundled")
    exp = experiment_from_dict({"model": "llama3_8b", "hw": "mx_systolic_128", "level": "cycle", "batch": 8,
                                "weights": "mxfp4", "acts": "mxfp8_e4m3"})
    rep = run_experiment(exp)
    hw = cosim.load_hw("mx_systolic_128")
    assert rep.meta["area_mm2"] == cycle.area_breakdown(hw)["total"]
    assert rep.total_latency_s == cosim.simulate(cosim.build_trace("llama3_8b", "decode", 8, 2048, weights="mxfp4",
                                                                   acts="mxfp8_e4m3"), hw, level="cycle").total_latency_s
    # a GPU at the roofline has no area model
    assert run_experiment(experiment_from_dict({"model": "llama3_8b", "hw": "h100_sxm"})).meta["area_mm2"] is None
