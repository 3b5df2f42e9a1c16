"""Review fixes of the session-9 GPU model (issue 11): each test failed on the tree before its fix.
(1) a GPU without its own optional-term set is fitted with the base (session-8) set unless a set is named,
    and the fit says which set in its report and the calibration's provenance;
(2) the cuDNN decode KV pipeline fill counts 128-row KV blocks (not FA2's 256-row blocks at head dim <= 64),
    is never negative (an empty KV cache), and a row at another head dim than 128 says it is unvalidated;
(3) microbench's env.json records the git commit (and a dirty flag) the measurement ran at, or says plainly
    why it cannot."""
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from cosim.calibrate import fit, microbench
from hwmodels import gpu
from hwmodels.gpu_params import GpuParams
from hwmodels.spec import load_hw
from workloads.io import InputError
from workloads.ops import Op, TensorSpec

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / "validation"


# ---------------------------------------------------------------------------- (1) term sets

def test_a_gpu_without_its_own_set_gets_the_base_set():
    name, terms, line = fit.terms_for("b200")
    assert name == "base" and terms is fit.BASE_TERMS
    # the session-9 to -12 terms only the H200's validation split chose are off, and round 13's (session 21) too; the
    # rest is the session-8 form
    assert terms["gemm_stream_k"] is False and terms["dec_fill"] == () and terms["unfused_dec_unaligned"] is False
    assert terms["prefill_soft"] == ("cudnn",)
    later = {**fit.S9_OFF, **fit.S10_OFF, **fit.S11_GEMM_OFF, **fit.S12_FA2_OFF, **fit.S24_OFF}  # S24: round 13
    assert {k: v for k, v in terms.items() if k not in later} == {k: v for k, v in fit.TERMS.items() if k not in later}
    assert line.startswith("base set") and "b200 has no set of its own" in line
    # a YAML path is named by its stem, as before
    assert fit.terms_for(ROOT / "cosim/configs/hw/mi300x.yaml")[0] == "base"


def test_the_validated_gpus_keep_their_sets():
    # the H200's default: its own set (fit.TERMS, the H200's validation splits' choices) and, since round 19 (session
    # 27), FA2 prefill priced as the kernel FlashAttention-2 runs; the set without it by name
    assert fit.terms_for("h200", "h200")[1] is fit.TERMS and fit.TERMS["gemm_stream_k"] is True
    assert fit.terms_for("h200")[1] is fit.TERM_SETS["r19_h200"] == {**fit.TERMS, "fa2_prefill_kernels": True}
    # the H100's default is its committed calibration's set (the H200's from the session-16 re-fit; since round 14,
    # session 23, the H200's plus the in-stream speedup; since round 18, session 26, plus FA2 prefill priced as the
    # kernel FlashAttention-2 runs; since round 22, session 32, with GEMM tiles from the nvjet menus); its session-9 set
    # by name
    assert fit.TERM_SETS["r14_h100"] == {**fit.TERMS, "stream_speedup": True}
    assert fit.TERM_SETS["r18_h100"] == {**fit.TERM_SETS["r14_h100"], "fa2_prefill_kernels": True}
    assert fit.terms_for("h100_sxm")[1] is fit.TERM_SETS["r22_h100"] == {**fit.TERM_SETS["r18_h100"],
                                                                          "gemm_tile_set": 2}
    assert fit.terms_for("h100_sxm", "h100_sxm")[1] is fit.TERMS_BY_HW["h100_sxm"]
    assert fit.terms_for("h200", "h200")[2].startswith("h200 set (chosen on the validation split of the H200 fit rows")
    assert "asked for" not in fit.terms_for("h200", "h200")[2]


def test_a_named_set_is_used_and_said():
    name, terms, line = fit.terms_for("b200", "h200")
    assert name == "h200" and terms is fit.TERMS and line.endswith("asked for (--terms h200)")
    with pytest.raises(InputError, match=r"--terms: got 'h300'; expected one of h100_sxm, h200, base"):
        fit.terms_for("b200", "h300")


def _quick_fit(monkeypatch, hw, terms=None):
    """fit() with the latency fit replaced by a recorder (the energy fit and provenance run for real)."""
    seen = []
    monkeypatch.setattr(fit, "fit_latency", lambda meas, hw, values, sms, l2, src, t: (seen.append(t) or ({}, None)))
    section, rep = fit.fit(VAL / "h100_ops.csv", hw, VAL / "h100_energy.csv", None, VAL / "h100_env.json", terms)
    return seen[0], section, rep


def test_fit_uses_the_set_and_writes_it_into_provenance(monkeypatch):
    t, section, rep = _quick_fit(monkeypatch, "b200")
    assert t is fit.BASE_TERMS and t["gemm_stream_k"] is False  # the old fit gave b200 the H200's TERMS
    assert section["provenance"]["terms"] == rep["terms"] == fit.terms_for("b200")[2]
    t, section, _ = _quick_fit(monkeypatch, "b200", "h200")
    assert t is fit.TERMS and section["provenance"]["terms"].endswith("(--terms h200)")


def test_cli_refuses_an_unknown_term_set_before_measuring(tmp_path, capsys):
    from cosim.cli import calibrate as cli
    ns = SimpleNamespace(hw="b200", out_dir=str(tmp_path), measurements=str(VAL / "h100_ops.csv"), calibration=None,
                         fit_only=False, variant="default", sections="gemm", run_name=None, terms="h300")
    assert cli.run(ns) == 2
    assert "--terms: got 'h300'" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_committed_calibrations_say_their_set():
    import yaml
    # the H100 re-fit (session 16) asked for the H200's set, round 14's (session 23) for r14_h100, round 18's (session
    # 26) for r18_h100, round 22's (session 32) for r22_h100, as its header's command says (--terms r22_h100); the
    # H200's round 19 (session 27) for r19_h200
    for hw, asked in (("h200", "r19_h200"), ("h100_sxm", "r22_h100")):
        doc = yaml.safe_load((ROOT / f"cosim/configs/hw/calibration/{hw}.yaml").read_text())
        assert doc["provenance"]["terms"] == fit.terms_for(hw, asked)[2], hw


# ---------------------------------------------------------------------------- (2) decode KV pipeline fill

def _cudnn_h200():
    P = gpu.for_backend(gpu.params_for(load_hw("h200")), "cudnn")
    P0 = GpuParams(values={k: v for k, v in P.values.items() if k != "attn.dec_fill"}, sm_count=132,
                   l2_bytes=P.l2_bytes, provenance="t")
    return P, P0, P.values["attn.dec_fill"]


def test_fill_is_never_negative():
    """An empty KV cache pays no fill (the old term was -1 block: -1.09 us under the H200 calibration)."""
    P, P0, fill = _cudnn_h200()
    assert fill > 0
    for d in (64, 128):
        assert gpu.attention_decode_time(P, 1, 32, 8, 1, 0, d, d) == gpu.attention_decode_time(P0, 1, 32, 8, 1, 0, d, d)


def test_fill_counts_128_row_blocks_at_every_head_dim():
    """The fill is per 128-row KV block (gpu_params.DEC_FILL_ROWS), not FA2's 256-row block at head dim <= 64:
    at head dim 64, context 256 pays one block, 384 two, 512 and 4 K three (the old code: 0, 1, 1, 3)."""
    from hwmodels.gpu_params import DEC_FILL_ROWS
    assert DEC_FILL_ROWS == 128
    P, P0, fill = _cudnn_h200()
    for d in (64, 96, 128, 256):
        for ctx, n in ((1, 0), (128, 0), (129, 1), (256, 1), (384, 2), (512, 3), (4096, 3)):
            a = gpu.attention_decode_time(P, 2, 32, 8, 1, ctx, d, d)
            b = gpu.attention_decode_time(P0, 2, 32, 8, 1, ctx, d, d)
            assert a - b == pytest.approx(n * fill), (d, ctx)


def _decode_op(d, ctx=1024):
    q = TensorSpec("q", (1, 32, 1, d), "bf16")
    k = TensorSpec("k", (1, 8, ctx, d), "bf16", "kv")
    v = TensorSpec("v", (1, 8, ctx, d), "bf16", "kv")
    dims = {"batch": 1, "heads": 32, "kv_heads": 8, "q_len": 1, "kv_len": ctx, "head_dim": d, "causal": True}
    return Op("attn", "attention", dims, (q, k, v), (TensorSpec("o", (1, 32, 1, d), "bf16"),), "bf16")


def test_a_row_outside_the_validated_head_dim_says_so(h100_session9):
    hw = load_hw("h200")  # cuDNN is its default backend: the fill applies
    c64 = gpu.estimate(_decode_op(64), hw)
    assert c64.details["attention_backend"] == "cudnn"
    assert any("validated at head dim 128 only" in n for n in c64.notes)
    assert not any("dec_fill" in n for n in gpu.estimate(_decode_op(128), hw).notes)
    # the H100 re-fit (H200 term set) has the fill too, and says the same; a calibration without it says nothing
    assert any("validated at head dim 128 only" in n for n in gpu.estimate(_decode_op(64), load_hw("h100_sxm")).notes)
    assert not any("dec_fill" in n for n in gpu.estimate(_decode_op(64), h100_session9).notes)  # session 9: no fill


# ---------------------------------------------------------------------------- (3) env.json's git commit

def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True)


def test_git_state_of_a_plain_folder(tmp_path):
    assert microbench.git_state(str(tmp_path)) == {"git_commit": "unknown: not a git checkout", "git_dirty": None}


def test_git_state_of_a_checkout(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1\n")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert len(head) == 40
    assert microbench.git_state(str(tmp_path)) == {"git_commit": head, "git_dirty": False}
    (tmp_path / "raw_run").mkdir()
    (tmp_path / "raw_run" / "ops.csv").write_text("x\n")  # the run's own (untracked) output is not "dirty"
    assert microbench.git_state(str(tmp_path))["git_dirty"] is False
    (tmp_path / "a.txt").write_text("2\n")
    assert microbench.git_state(str(tmp_path)) == {"git_commit": head, "git_dirty": True}
    # a folder inside that repository whose probe file it does not track is not given its commit
    assert microbench.git_state(str(tmp_path / "raw_run"), probe="ops.csv")["git_commit"].startswith(
        "unknown: not a git checkout of this code")


def test_git_state_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable on the path
    assert microbench.git_state(str(tmp_path)) == {"git_commit": "unknown: git not installed", "git_dirty": None}


def test_env_record_carries_the_git_state(tmp_path, monkeypatch):
    props = SimpleNamespace(name="GPU", multi_processor_count=132, L2_cache_size=60 * 2 ** 20, total_memory=1,
                            major=9, minor=0)
    torch = SimpleNamespace(__version__="t", version=SimpleNamespace(cuda="13.0"),
                            backends=SimpleNamespace(cudnn=SimpleNamespace(version=lambda: 91900)),
                            cuda=SimpleNamespace(get_device_properties=lambda i: props))
    nvml = SimpleNamespace(static_info=lambda: {"driver": "580"}, state=lambda: {"sm_clock_mhz": 1980})
    info = microbench.env_record(torch, nvml, src_dir=str(tmp_path))
    assert info["git_commit"] == "unknown: not a git checkout" and info["git_dirty"] is None
    assert info["device_name"] == "GPU" and info["nvml_driver"] == "580"
    # section_env writes it; the default asks the tree microbench.py is in (this checkout, or a plain copy)
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setattr(microbench, "log", lambda *a, **k: None)
    import json
    written = json.loads((out / "env.json").read_text()) if microbench.section_env(torch, nvml, str(out)) else {}
    assert written["git_commit"] == microbench.git_state()["git_commit"]


def test_late_review_fixes(tmp_path, monkeypatch):
    """Final session-9 review: a manifest with _runs inside its name is read as a manifest (it was parsed as
    a flat ops CSV and every row skipped: 'no test-split rows'); a CSV without the ops columns is refused
    naming them; a caller-given commit reaches env.json; the H100 set leaves session 10's term off."""
    from cosim.calibrate import dataset
    assert dataset.is_manifest("v/h200_runs_v2.csv") and dataset.is_manifest("v/h200_runs.csv")
    assert not dataset.is_manifest("v/h200_ops.csv") and not dataset.is_manifest("v/h200_ops_v2.csv")
    flat = tmp_path / "x_ops.csv"
    flat.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"header: missing column\(s\) kind, median_s"):
        dataset._parse_ops(flat)
    monkeypatch.setenv("COSIM_GIT_COMMIT", "7afb60e")
    assert microbench.git_state(str(tmp_path))["git_commit"] == "7afb60e (given by the caller: COSIM_GIT_COMMIT)"
    assert fit.TERMS_BY_HW["h100_sxm"]["unfused_dec_unaligned"] is False


def test_readme_lists_every_term_set_and_the_default_sets():
    """README's `cosim calibrate [--terms ...]` row names exactly fit.TERM_SETS and each validated GPU's default set
    (fit.DEFAULT_SET): a new term set or a new default fails here instead of leaving the README behind."""
    import re
    lines = Path("README.md").read_text().splitlines()
    row = next(line for line in lines if "`cosim calibrate [--fit-only] [--terms" in line)
    listed = re.search(r"--terms ([^\]]+)\]", row).group(1).split("\\|")
    assert sorted(listed) == sorted(fit.TERM_SETS)
    assert f"the H100: {fit.DEFAULT_SET['h100_sxm']}, the H200: {fit.DEFAULT_SET['h200']}" in row
