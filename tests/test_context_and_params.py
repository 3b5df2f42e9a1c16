"""Issue 15 follow-ups: `seq` beyond a model's maximum context is refused unless opted in
(then every report carries the note); rope scaling in an HF config extends the maximum;
names inside `analytical.params` are checked against the parameter table; after Ctrl-C
the `cosim` process ends even when interpreter exit would block."""

from __future__ import annotations

import json
import subprocess
import sys
import re
import time
from pathlib import Path

import pytest
import yaml

import cosim
from cosim.cli import main
from cosim.experiment import experiment_from_dict, run_experiment
from workloads.io import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_seq_beyond_max_context_is_refused_naming_field_value_and_max():
    with pytest.raises(InputError) as e:
        cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=8193)
    msg = str(e.value)
    assert "seq: got 8,193" in msg and "at most 8,192" in msg and "llama3_8b" in msg
    assert "allow_beyond_max_context" in msg and "\n" not in msg
    assert cosim.build_trace("llama3_8b", seq=8192).meta.get("notes") is None  # the maximum itself is fine


def test_opt_in_prices_it_and_every_report_carries_the_note():
    t = cosim.build_trace("llama3_8b", phase="decode", batch=1, seq=32768, allow_beyond_max_context=True)
    assert t.meta["notes"] == ["seq 32,768 is beyond llama3_8b's maximum context of 8,192 positions (max_context, "
                               "from meta-llama/Meta-Llama-3-8B config.json); priced on request "
                               "(allow_beyond_max_context); the model was not trained there"]
    rep = cosim.simulate(t, "h100_sxm")
    assert any("beyond llama3_8b's maximum context" in n for n in rep.notes)
    # the same numbers as a model whose stated maximum covers 32K: the opt-in changes no figure
    longer = cosim.load_model("llama3_8b").__class__(**{**cosim.load_model("llama3_8b").__dict__,
                                                        "max_context": 32768})
    ref = cosim.simulate(cosim.build_trace(longer, phase="decode", batch=1, seq=32768), "h100_sxm")
    assert rep.total_latency_s == ref.total_latency_s and rep.total_energy_j == ref.total_energy_j


def test_parallel_layout_keeps_the_check_and_the_note():
    with pytest.raises(InputError, match="maximum context"):
        cosim.build_trace("llama3_70b", seq=16384, parallel={"tp": 8})
    t = cosim.build_trace("llama3_70b", seq=16384, parallel={"tp": 8}, allow_beyond_max_context=True)
    assert any("beyond llama3_70b's maximum context" in n for n in t.meta["notes"])


def test_experiment_refuses_at_load_and_opt_in_runs_with_the_note(tmp_path):
    doc = {"name": "long", "model": "llama3_8b", "hw": "h100_sxm", "seq": 32768, "accuracy": False}
    with pytest.raises(InputError) as e:
        experiment_from_dict(doc, source="long.yaml")
    assert str(e.value).startswith("long.yaml: seq: got 32,768; expected at most 8,192")
    with pytest.raises(InputError, match="allow_beyond_max_context: got 'yes'; expected true or false"):
        experiment_from_dict({**doc, "allow_beyond_max_context": "yes"}, source="long.yaml")
    rep = run_experiment(experiment_from_dict({**doc, "allow_beyond_max_context": True}), accuracy=False)
    assert any("maximum context" in n for n in rep.notes)
    # an explicit `false` is the default: the resolved config (and so a sweep key) is unchanged
    a = experiment_from_dict({**doc, "seq": 4096}).config
    assert experiment_from_dict({**doc, "seq": 4096, "allow_beyond_max_context": False}).config == a


def test_sweep_base_opt_in_reaches_every_point(tmp_path):
    from cosim.dse import sweep
    doc = {"name": "ctx", "base": {"model": "llama3_8b", "hw": "h100_sxm", "allow_beyond_max_context": True},
           "axes": [{"grid": {"seq": [4096, 32768]}}], "objectives": {"latency_s": "min"},
           "store": str(tmp_path / "s.jsonl"), "output": str(tmp_path / "o")}
    df = sweep(doc, quiet=True, write=False)
    assert list(df["status"]) == ["ok", "ok"] and df["latency_s"].iloc[1] > df["latency_s"].iloc[0]
    doc["base"] = {"model": "llama3_8b", "hw": "h100_sxm"}
    doc["store"] = str(tmp_path / "t.jsonl")
    # without it, no point can price the 32K value: refused before any run (was an error row; audit s11)
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.seq\[1\]: got 32768; .*maximum context"):
        sweep(doc, quiet=True, write=False)
    assert not (tmp_path / "t.jsonl").exists()


def test_cli_flag_and_one_error_line(capsys):
    argv = ["roofline", "--model", "llama3_8b", "--hw", "h100_sxm", "--seq", "32768"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "maximum context" in err[0] and "--allow-beyond-max-context" in err[0]
    assert main(argv + ["--allow-beyond-max-context"]) == 0
    assert "beyond llama3_8b's maximum context" in capsys.readouterr().out


def _hf(tmp_path, **extra) -> Path:
    cfg = {"hidden_size": 512, "num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2,
           "intermediate_size": 1024, "vocab_size": 1000, "max_position_embeddings": 32768, "model_type": "qwen2",
           **extra}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    return p


@pytest.mark.parametrize("rope,expected", [
    (None, 32768),
    ({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}, 131072),  # Qwen2.5's documented YaRN
    # linear without original_max_position_embeddings: max_position_embeddings is already the
    # interpolated length (Gemma-3: linear x8, 131,072 positions)
    ({"rope_type": "linear", "factor": 2.0}, 32768),
    ({"rope_type": "linear", "factor": 2.0, "original_max_position_embeddings": 8192}, 32768),
    ({"rope_type": "linear", "factor": 8.0, "original_max_position_embeddings": 8192}, 65536),
    # Llama-3.1 states the extended length in max_position_embeddings already: 8192 x 8 < 32768 here
    ({"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}, 32768),
    ({"type": "yarn", "factor": 1.0}, 32768),
])
def test_rope_scaling_extends_the_hf_maximum(tmp_path, rope, expected):
    m = cosim.load_model(_hf(tmp_path, **({"rope_scaling": rope} if rope else {})))
    assert m.max_context == expected


def test_absurd_rope_factor_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match=r"rope_scaling\.factor: got 1000000000000.0; expected a factor keeping "
                                         r"the context \(32,768 x factor\) at most 134,217,728"):
        cosim.load_model(_hf(tmp_path, rope_scaling={"type": "yarn", "factor": 1e12}))


# ---------------------------------------------------------------- analytical.params names

def _hw_with(tmp_path, calib_edit=None, inline: str = "") -> Path:
    cal = (ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text()
    if calib_edit:
        assert calib_edit[0] in cal
        cal = cal.replace(calib_edit[0], calib_edit[1])
    (tmp_path / "cal.yaml").write_text(cal)
    hw = (ROOT / "cosim/configs/hw/h100_sxm.yaml").read_text().replace("calibration/h100_sxm.yaml", "cal.yaml")
    (tmp_path / "hw.yaml").write_text(hw + inline)
    return tmp_path / "hw.yaml"


def test_unknown_parameter_in_the_calibration_file_names_that_file(tmp_path):
    line = re.search(r"^    bw: .+$", (ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text(), re.M).group(0)
    p = _hw_with(tmp_path, (line, line.replace("bw:", "bww:")))
    with pytest.raises(InputError) as e:
        cosim.load_hw(p)
    assert str(e.value) == (f"{tmp_path / 'cal.yaml'}: analytical.params.gemm.bww: got '{line.split(': ')[1]}'; expected a "
                            "parameter of hwmodels.gpu.PARAMS (did you mean 'bw'?); known here: bw, floor, fp8_no_stream_k, "
                            "mma_eff, overlap_p, splitk_ws, stream_k, tile_c, tile_set")


def test_unknown_parameter_inline_names_the_hardware_file_and_every_typo(tmp_path):
    cal = yaml.safe_load((ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text())
    cal["params"]["atn"] = cal["params"].pop("attn")
    cal["params"]["gemm"]["mma_eff"]["bf61"] = 0.8
    p = _hw_with(tmp_path, inline="\n" + yaml.safe_dump({"analytical": {"params": cal["params"]}}))
    with pytest.raises(InputError) as e:
        cosim.load_hw(p)
    msg = str(e.value)
    assert f"{p}: analytical.params.atn: got" in msg and "(did you mean 'attn'?)" in msg
    assert "analytical.params.gemm.mma_eff.bf61: got 0.8;" in msg and "(did you mean 'bf16'?)" in msg


def test_every_bundled_calibration_uses_only_known_names():
    from hwmodels.gpu_params import unknown_param_errors
    for f in sorted((ROOT / "cosim/configs/hw/calibration").glob("*.yaml")):
        assert unknown_param_errors(yaml.safe_load(f.read_text())["params"], str(f)) == []
    from hwmodels.spec import list_hw
    for name in list_hw():
        cosim.load_hw(name)


# ---------------------------------------------------------------- Ctrl-C exit guard

def test_exit_guard_ends_a_process_whose_exit_would_block():
    """A non-daemon thread that never ends blocks interpreter exit forever (how three
    interrupted sweeps once stayed alive); the guard ends the process with the code."""
    code = ("import threading, time\n"
            "from cosim.cli import _exit_guard\n"
            "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
            "_exit_guard(130, 0.5)\n")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=60, capture_output=True)
    assert p.returncode == 130 and time.time() - t0 < 30
