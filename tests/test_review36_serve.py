"""Session 36 review of `cosim serve`: the --compute-fallback flag its own error names, one error for a typo in a
`serve:` block (file once, field serve.<name>, did-you-mean), a KV capacity below one block refused up front,
phase-labelled attention notes, and where a transferred calibration's host time per kernel comes from."""
from __future__ import annotations

import csv

import pytest

from cosim.cli import main
from cosim.serving import serve
from cosim.serving.config import ServeConfig
from workloads.io import InputError

_SERVE = ["serve", "--model", "llama3_8b", "--hw", "h100_sxm", "--qps", "5", "--requests", "3"]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ---- 1. --compute-fallback: the flag serve's own refusal names ------------------------------------------------

def test_serve_compute_fallback_flag_runs_the_fallback_and_records_it(tmp_path, capsys):
    argv = _SERVE + ["--prompt-len", "10", "--output-len", "3", "--recipe", "mxfp4_native"]
    assert main(argv) == 2  # refused without it, the error naming the flag
    assert "allow the explicit fallback (--compute-fallback / compute_fallback=True)" in _one_error(capsys)
    out = tmp_path / "a"
    assert main(argv + ["--compute-fallback", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # h100_sxm has no mxfp4 unit: the next wider format it has is fp8_e4m3
    assert "note: q_proj: h100_sxm has no mxfp4 unit; computed at the fp8_e4m3 peak (explicit fallback)" in printed
    rows = list(csv.DictReader((out / "requests.csv").open()))
    assert len(rows) == 3 and {r["compute_fallback"] for r in rows} == {"True"}


def test_an_experiments_compute_fallback_reaches_its_serving_run(tmp_path, capsys):
    exp = tmp_path / "e.yaml"
    exp.write_text("name: e\nmodel: llama3_8b\nhw: h100_sxm\nrecipe: mxfp4_native\ncompute_fallback: true\n"
                   "serve: {qps: 5, requests: 3, prompt_len: 10, output_len: 3}\n")
    assert main(["run", str(exp), "--out", str(tmp_path / "o"), "--no-accuracy"]) == 0
    assert "computed at the fp8_e4m3 peak (explicit fallback)" in capsys.readouterr().out


# ---- 2. a typo in a serve: block: one prefix, serve.<field>, did-you-mean -----------------------------------

_EXP = "name: {n}\nmodel: llama3_8b\nhw: h100_sxm\nserve: {{qps: 5, requests: 4, {extra}}}\n"


def test_experiment_serve_typo_names_the_file_once_and_suggests(tmp_path, capsys):
    p = tmp_path / "ex_s.yaml"
    p.write_text(_EXP.format(n="ex_s", extra="schedular: chunked"))
    assert main(["run", str(p)]) == 2
    err = _one_error(capsys)
    assert err.startswith(f"error: {p}: serve.schedular: got 'schedular'; expected a serve field "
                          f"(did you mean 'scheduler'?): arrival, block_size, "), err
    assert err.count(str(p)) == 1


def test_experiment_serve_block_refuses_a_top_level_field(tmp_path, capsys):
    """serve: {level: ...} clashed with the experiment's own level: a TypeError traceback before session 36."""
    p = tmp_path / "ex_l.yaml"
    p.write_text(_EXP.format(n="ex_l", extra="level: analytical"))
    assert main(["run", str(p)]) == 2
    assert _one_error(capsys) == (f"error: {p}: serve.level: got 'analytical'; expected no level under serve: the "
                                  f"serving run uses the experiment's own level (set `level:` at the top level)")


def test_sweep_base_serve_typo_names_the_file_once(tmp_path, capsys):
    p = tmp_path / "sv6.yaml"
    p.write_text("name: sv6\nbase:\n  model: llama3_8b\n  hw: h100_sxm\n"
                 "  serve: {qps: 5, requests: 4, schedular: chunked}\n"
                 f"axes:\n  - grid:\n      serve.qps: [5, 10]\noutput: {tmp_path / 'out'}\n")
    assert main(["sweep", str(p)]) == 2
    err = _one_error(capsys)
    assert err.startswith(f"error: {p}: base: serve.schedular: got 'schedular'; expected a serve field "
                          f"(did you mean 'scheduler'?): "), err
    assert err.count(str(p)) == 1


def test_sweep_axis_serve_typo_names_the_axis_once(tmp_path, capsys):
    p = tmp_path / "sv2.yaml"
    p.write_text("name: sv2\nbase:\n  model: llama3_8b\n  hw: h100_sxm\n  serve: {qps: 5, requests: 4}\n"
                 f"axes:\n  - grid:\n      serve.schedular: [continuous, chunked]\noutput: {tmp_path / 'out'}\n")
    assert main(["sweep", str(p)]) == 2
    err = _one_error(capsys)
    assert err.startswith(f"error: {p}: axes[0].grid.serve.schedular: got 'serve.schedular'; expected "
                          f"serve.<a serve field> (did you mean 'serve.scheduler'?), a serve field being one of "
                          f"arrival, "), err
    assert err.count(str(p)) == 1 and err.count("axes[0]") == 1


# ---- 3. a KV capacity below one block ------------------------------------------------------------------------

def test_kv_capacity_below_one_block_is_refused_up_front(capsys):
    argv = _SERVE + ["--prompt-len", "100", "--output-len", "8", "--kv-capacity-tokens", "10"]
    assert main(argv) == 2
    assert _one_error(capsys) == ("error: serve: kv_capacity_tokens (CLI --kv-capacity-tokens): got 10; expected at "
                                  "least one KV block, block_size 16 tokens (KV is held in whole blocks, so 10 tokens "
                                  "hold none)")
    with pytest.raises(InputError, match=r"got 7; expected at least one KV block, block_size 8 tokens"):
        ServeConfig(model="m", hw="h", qps=5, block_size=8, kv_capacity_tokens=7)
    ServeConfig(model="m", hw="h", qps=5, kv_capacity_tokens=16)  # one block: accepted


# ---- 4. attention notes name their phase, as generate's do ---------------------------------------------------

def test_serve_labels_each_phases_attention_note():
    res = serve("llama3_8b", "h100_sxm", level="analytical", profile="hf_eager", qps=2, requests=2, prompt_len=32,
                output_len=3)
    # HF eager attention: 8 kernels a prefill, 7 a decode step (as `cosim generate` prints them)
    assert "prefill: attention: unfused (Hugging Face eager) attention priced as 8 separate kernels" in res.notes
    assert "decode steps: attention: unfused (Hugging Face eager) attention priced as 7 separate kernels" in res.notes
    assert not [n for n in res.notes if n.startswith("attention:")], res.notes


# ---- 5. a transferred calibration's host time per kernel -----------------------------------------------------

def _host_note(hw):
    res = serve("llama3_8b", hw, level="analytical", profile="engine", qps=2, requests=2, prompt_len=32,
                output_len=3)
    return next(n for n in res.notes if n.startswith("host: "))


def test_b200_host_time_per_kernel_says_it_is_the_h100_calibration_hosts():
    # b200.yaml: `calibration: {from: h100_sxm, sm_count: 148}`: no calibration of its own
    assert ("eager.cpu_per_kernel 21.58 us transferred from h100_sxm's calibration, b200 having none of its own "
            "(the h100_sxm calibration host's CPU, not the GPU);") in _host_note("b200")
    assert "b200 calibration" not in _host_note("b200")
    assert ("eager.cpu_per_kernel 21.58 us from the h100_sxm calibration (that machine's host CPU, not the GPU);"
            in _host_note("h100_sxm"))
