"""Session 35: every result that a priced attention backend moves names it (a serving run's requests.csv, summary
and header, a sweep row) as simulate's inputs do; who chose it is said truly (engine leaves it to the calibration);
H2O under Hugging Face eager; review fixes."""

import itertools
import math

import pytest

import cosim
from cosim.dse import sweep
from hwmodels.estimate import attention_backends_priced
from hwmodels.levels import level_support


def test_the_backends_named_without_pricing_are_the_ones_simulate_priced():
    """hwmodels.estimate.attention_backends_priced (what a sweep row says) against the costs' own details (what
    simulate's inputs say), over models with GQA and MLA attention, both phases, every profile form, three levels."""
    ran = 0
    for model, hw_name, level, profile, phase in itertools.product(
            ("llama3_8b", "deepseek_v2_lite"), ("h100_sxm", "h200"), ("roofline", "analytical", "cycle"),
            (None, "hf_eager", "engine", "engine+fa2"), ("prefill", "decode")):
        hw = cosim.load_hw(hw_name)
        if not level_support(hw, level).ok:  # the cycle level models accelerators, not these GPUs
            continue
        trace = cosim.build_trace(model, phase, 2, 256, profile=profile)
        rep = cosim.simulate(trace, hw, level=level)
        assert (", ".join(attention_backends_priced(trace.ops, hw, level)) or None
                == rep.meta["inputs"]["attention_backend"]), (model, hw_name, level, profile, phase)
        ran += 1
    assert ran == 2 * 2 * 2 * 4 * 2  # roofline and analytical on both GPUs


def test_a_profile_that_leaves_attention_to_the_calibration_does_not_claim_the_backend():
    """engine fuses GEMMs and norms but names no attention backend: the calibration's default (the H100 re-fit's
    cuDNN) priced it, and the inputs say so; engine+fa2 chose FA2 itself."""
    got = {p: cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 512, profile=p), "h100_sxm",
                             level="analytical").meta["inputs"] for p in ("engine", "engine+fa2")}
    assert (got["engine"]["attention_backend"], got["engine"]["backend_chosen_by"]) == (
        "cudnn", "the calibration's default")
    assert (got["engine+fa2"]["attention_backend"], got["engine+fa2"]["backend_chosen_by"]) == (
        "fa2", "profile engine+fa2")


@pytest.mark.parametrize("level, profile, backend, line", [
    ("analytical", None, "cudnn", "attention backend: cudnn (the calibration's default)"),
    ("analytical", "hf_eager", "unfused", "attention backend: unfused (profile hf_eager)"),
    ("roofline", "hf_eager", "unfused", "attention backend: unfused (profile hf_eager)"),
    ("roofline", None, None, None)])
def test_a_serving_run_names_the_backend_its_steps_were_priced_with(tmp_path, level, profile, backend, line):
    import pandas as pd

    from cosim.serving import serve
    from cosim.serving.output import write_outputs
    res = serve("llama3_8b", "h100_sxm", level=level, profile=profile, qps=4, requests=6, prompt_len=256,
                output_len=8)
    assert res.summary["attention_backend"] == backend
    header = [ln for ln in res.format().splitlines() if ln.startswith("attention backend:")]
    assert header == ([line] if line else [])
    write_outputs(res, tmp_path)
    col = pd.read_csv(tmp_path / "requests.csv")["attention_backend"]
    assert len(col) == 6 and (col.tolist() == [backend] * 6 if backend else col.isna().all())


def test_sweep_rows_name_the_attention_backend_as_simulate_does(tmp_path):
    base = {"model": "llama3_8b", "phase": "prefill", "batch": 1, "seq": 1024, "hw": "h100_sxm", "level": "roofline"}
    df = sweep({"name": "backends", "base": base, "output": str(tmp_path / "o"), "workers": 1,
                "axes": [{"grid": {"profile": ["hf_eager", "engine", "engine+fa2"],
                                   "level": ["roofline", "analytical"]}}]}, quiet=True, write=False)
    got = {(r.profile, r.level): (None if isinstance(r.attention_backend, float) and math.isnan(r.attention_backend)
                                  else r.attention_backend) for r in df.itertuples()}
    assert got == {("hf_eager", "roofline"): "unfused", ("hf_eager", "analytical"): "unfused",
                   ("engine", "roofline"): None, ("engine", "analytical"): "cudnn",
                   ("engine+fa2", "roofline"): None, ("engine+fa2", "analytical"): "fa2"}
    for (profile, level), b in got.items():
        rep = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 1024, profile=profile), "h100_sxm",
                             level=level)
        assert rep.meta["inputs"]["attention_backend"] == b
    # a serving point names its steps' backend (its profile is under `serve`, not the sweep's base)
    served = sweep({"name": "served", "output": str(tmp_path / "s"), "workers": 1,
                    "base": {**base, "serve": {"profile": "hf_eager", "qps": 2, "requests": 4, "prompt_len": 256,
                                               "output_len": 4}},
                    "axes": [{"grid": {"level": ["roofline", "analytical"]}}]}, quiet=True, write=False)
    assert served["attention_backend"].tolist() == ["unfused", "unfused"]


def _sweep_spec(tmp_path, axes, **base):
    return {"name": "forms", "output": str(tmp_path / "o"), "workers": 1, "axes": axes,
            "base": {"model": "llama3_8b", "phase": "prefill", "batch": 1, "seq": 1024, "hw": "h100_sxm", **base}}


def test_a_sweep_pairing_the_unfused_algorithm_with_a_backend_profile_is_checked_up_front(tmp_path):
    """build_trace refuses attention "unfused" (or H2O's prefill) beside a profile naming a backend; a sweep said it
    only in each point's error row. Now: a value no partner can price is refused at load, naming its axis path; a
    pair that fails only with some partners is announced and is an error row; profile engine (attention left to the
    default) prices the unfused algorithm's kernels and is no conflict."""
    from cosim.dse.spec import sweep_from_dict
    from workloads.io import InputError
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.attention\[0\]: got 'unfused'.*contradict each other"):
        sweep_from_dict(_sweep_spec(tmp_path, [{"grid": {"attention": ["unfused"],
                                                          "profile": ["hf_eager", "engine+fa2"]}}]))
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.profile\[0\]: got 'engine\+fa2'.*recipe 'h2o'"):
        sweep_from_dict(_sweep_spec(tmp_path, [{"grid": {"recipe": ["h2o"], "profile": ["engine+fa2", "hf_eager"]}}]))
    with pytest.raises(InputError, match=r"base: build_trace: attention 'unfused'"):
        sweep_from_dict(_sweep_spec(tmp_path, [{"grid": {"batch": [1, 2]}}], attention="unfused", profile="hf_eager"))
    spec = _sweep_spec(tmp_path, [{"grid": {"attention": ["fused", "unfused"], "profile": ["hf_eager", "engine"]}}])
    with pytest.warns(UserWarning, match=r"1 combination of valid values cannot be priced.*\(attention 'unfused', "
                                         r"profile 'hf_eager'\)"):
        df = sweep(spec, quiet=True, write=False)
    bad = df[df["status"] == "error"]
    assert [(r.attention, r.profile) for r in bad.itertuples()] == [("unfused", "hf_eager")]
    assert "contradict each other" in bad["error"].iloc[0] and (df["status"] == "ok").sum() == 3


@pytest.mark.parametrize("form", [{"attention": "unfused"}, {"recipe": "h2o"}])
def test_chunked_prefill_reserves_the_unfused_algorithms_scores_over_the_longest_prompt(form):
    """Session 34 reserved eager attention's scores of a 512-token chunk over a 32,768-token prompt; the unfused
    algorithm in the trace (attention "unfused", H2O's prefill) keeps a score matrix too: the builder counts one of
    512 x 512 bf16 scores a head, a chunk over the prompt holds 512 x 32,768 (Qwen2.5-7B: 28 heads). 924.8 MB more."""
    from cosim.serving.kv_memory import kv_capacity
    from cosim.serving.steptime import Workload
    from workloads.models import load_model
    hw = cosim.load_hw("h100_sxm")
    w = Workload(load_model("qwen2_5_7b"), **form)
    short, long = (kv_capacity(w, hw, 16, 512, longest_prompt=n) for n in (512, 32768))
    assert long.activations_bytes - short.activations_bytes == 28 * 512 * (32768 - 512) * 2
    assert "the unfused algorithm's score matrix over a 32,768-token prompt included" in long.source
    assert long.blocks < short.blocks


def test_every_public_name_a_module_lists_exists():
    """`from cosim.parallel_timing import *` raised AttributeError: its __all__ named static_power_w, which lives in
    hwmodels.energy. Every module of the three packages imports and defines what its __all__ lists."""
    import importlib
    import pkgutil
    missing, modules = [], 0
    for name in ("cosim", "hwmodels", "workloads"):
        for info in pkgutil.walk_packages(importlib.import_module(name).__path__, name + "."):
            mod = importlib.import_module(info.name)
            modules += 1
            missing += [f"{info.name}.{n}" for n in getattr(mod, "__all__", ()) if not hasattr(mod, n)]
    assert modules > 100 and missing == []


def test_the_html_summary_names_the_attention_backend_and_who_chose_it():
    from cosim.html_report import _summary

    def rows(profile, level):
        rep = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 1024, profile=profile), "h100_sxm", level)
        return {label: value for label, value, _ in _summary(rep)}
    assert rows(None, "analytical")["attention backend"] == "cudnn (the calibration's default)"
    assert rows("engine+fa2", "analytical")["attention backend"] == "fa2 (profile engine+fa2)"
    assert rows("hf_eager", "roofline")["attention backend"] == "unfused (profile hf_eager)"
    assert "attention backend" not in rows("engine", "roofline")  # one attention whatever the library


def test_a_draft_models_backend_is_its_own_not_credited_to_the_profile(tmp_path):
    """The draft is priced without the profile (serving._draft): with hf_eager the target's steps are eager
    ("unfused") and the draft's the calibration's default (the H100 re-fit's cuDNN); the header said
    "unfused, cudnn (profile hf_eager)". Each is now named with who chose it, and requests.csv has both columns."""
    import pandas as pd

    from cosim.serving import serve
    from cosim.serving.output import write_outputs
    res = serve("llama3_8b", "h100_sxm", level="analytical", profile="hf_eager", qps=4, requests=6, prompt_len=256,
                output_len=8, speculative={"draft_model": "llama3_2_3b", "draft_len": 4, "acceptance": 0.7})
    assert (res.summary["attention_backend"], res.summary["draft_attention_backend"]) == ("unfused", "cudnn")
    lines = [ln for ln in res.format().splitlines() if "attention backend:" in ln]
    assert lines == ["attention backend: unfused (profile hf_eager)",
                     "draft attention backend: cudnn (the calibration's default; the draft is priced without a "
                     "profile)"]
    write_outputs(res, tmp_path)
    df = pd.read_csv(tmp_path / "requests.csv")
    assert set(df["attention_backend"]) == {"unfused"} and set(df["draft_attention_backend"]) == {"cudnn"}
    plain = serve("llama3_8b", "h100_sxm", level="analytical", qps=4, requests=6, prompt_len=256, output_len=8)
    assert "draft_attention_backend" not in plain.summary


def test_serving_checks_its_profile_against_the_attention_form_up_front(tmp_path):
    """A serving sweep's profile is under `serve`; the check ran only for non-serving sweeps, so every point of
    attention "unfused" with serve.profile hf_eager was an error row."""
    from cosim.dse.spec import sweep_from_dict
    from workloads.io import InputError
    spec = _sweep_spec(tmp_path, [{"grid": {"attention": ["unfused", "fused"]}}],
                       serve={"profile": "hf_eager", "qps": 2, "requests": 4, "prompt_len": 256, "output_len": 4})
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.attention\[0\]: got 'unfused'.*profile 'hf_eager'"):
        sweep_from_dict(spec)


def test_the_form_check_combines_its_own_fields_only(tmp_path):
    """Combined with model x seq x batch, the form's fields pushed a grid past MAX_COMBOS and the context check
    was skipped: seq 1,000,000 on Llama-3-8B loaded. The rules combine their own fields, so it is refused."""
    from cosim.dse.spec import sweep_from_dict
    from workloads.io import InputError
    grid = {"model": ["llama3_8b", "llama2_7b", "mistral_7b", "llama3_2_3b", "qwen2_5_7b"],
            "seq": [256 * i for i in range(1, 20)] + [1_000_000], "batch": list(range(1, 14)),
            "profile": ["eager", "engine", "hf_eager", "engine+fa2"], "phase": ["prefill", "decode"],
            "attention": ["fused", "unfused"], "kv": ["bf16", "int8"]}  # 20,800 combinations of all seven
    with pytest.raises(InputError, match=r"axes\[0\]\.grid\.seq\[19\]: got 1000000"):
        sweep_from_dict(_sweep_spec(tmp_path, [{"grid": grid}]))


def test_rows_stored_before_the_backend_was_recorded_say_so(tmp_path):
    """A resumed store's rows written before session 35 have no attention_backend: an empty field would read as
    "the level names none"; they say they were not recorded."""
    import json

    from cosim.dse.runner import NOT_RECORDED
    spec = _sweep_spec(tmp_path, [{"grid": {"profile": ["hf_eager", "engine+fa2"]}}], level="analytical")
    first = sweep(spec, quiet=True, write=False)
    assert first["attention_backend"].tolist() == ["unfused", "fa2"]
    store = tmp_path / "o" / "results.jsonl"
    lines = [json.loads(ln) for ln in store.read_text().splitlines() if ln.strip()]
    assert all("attention_backend" in r for r in lines)
    store.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "attention_backend"}) + "\n"
                             for r in lines))
    again = sweep(spec, quiet=True, write=False)  # read back, nothing re-priced
    assert again["attention_backend"].tolist() == [NOT_RECORDED] * 2
    assert (again["latency_s"] == first["latency_s"]).all()


def test_plan_and_generate_name_the_backend_their_level_priced(capsys):
    """plan priced attention with the H100 calibration's default (cuDNN) and said so nowhere; generate put it in its
    CSV but not in its printed header."""
    from cosim.cli import main
    from cosim.plan import plan
    res = plan("llama3_8b", "dgx_h100", level="analytical", max_devices=2)
    assert {r.attention_backend for r in res.rows} == {"cudnn"} and "attention_backend" in res.to_frame()
    assert {r.attention_backend for r in plan("llama3_8b", "dgx_h100", max_devices=2).rows} == {""}  # roofline
    assert main(["plan", "--model", "llama3_8b", "--system", "dgx_h100", "--level", "analytical",
                 "--max-devices", "2"]) == 0
    assert "attention backend: cudnn (the calibration's default)" in capsys.readouterr().out.splitlines()
    assert main(["generate", "--model", "llama3_8b", "--hw", "h100_sxm", "--level", "analytical", "--prompt-len",
                 "128", "--output-len", "2", "--profile", "engine+fa2"]) == 0
    assert "attention backend: fa2 (profile engine+fa2)" in capsys.readouterr().out.splitlines()


def test_h2o_under_hugging_face_eager_reads_eagers_own_probabilities():
    """H2O's reference code runs Hugging Face eager attention and sums the probabilities it writes. The pair was
    refused (session 34); now the prefill keeps eager's attention op, priced as eager's kernels at every level (the
    same row as hf_eager without H2O), and H2O adds only its column sums, selection and gather: no second
    (unfused-algorithm) score matrix, in time or in memory."""
    hw = cosim.load_hw("h100_sxm")
    plain = cosim.build_trace("llama3_8b", "prefill", 1, 4096, profile="hf_eager")
    h2o = cosim.build_trace("llama3_8b", "prefill", 1, 4096, profile="hf_eager", recipe="h2o")
    assert not [op for op in h2o.ops if op.name in ("attn_scores", "attn_softmax", "attn_pv")]
    assert [op.name for op in h2o.ops if op.name.startswith("h2o.")] == ["h2o.column_sums", "h2o.select",
                                                                          "h2o.gather"]
    for level in ("roofline", "analytical"):
        a, b = (cosim.simulate(t, hw, level=level) for t in (plain, h2o))
        row = {r["op"]: r for r in a.rows}["attention"]
        assert {r["op"]: r for r in b.rows}["attention"]["latency_s"] == row["latency_s"]
        assert b.meta["inputs"]["attention_backend"] == "unfused"
        extra = sum(r["latency_s"] for r in b.rows if r["op"].startswith("h2o."))
        assert b.total_latency_s == pytest.approx(a.total_latency_s + extra, rel=1e-12)
    # memory: eager's peak once (as hf_eager alone), plus H2O's fp32 column sums (32 heads x 4,096 x 4 B) and the
    # layer still holding its whole prompt's K/V while it is evicted (prefill_transient_kv)
    # (131,072 B a token over 32 layers, bf16), H2O keeping 818 of 4,096 (heavy and recent ratios 0.1 each)
    grown = h2o.meta["footprint"]["activations"] - plain.meta["footprint"]["activations"]
    kept = h2o.meta["recipe_effects"]["h2o"]["kept_tokens"]
    assert kept == 818 and grown == pytest.approx(32 * 4096 * 4 + (4096 - kept) * 131072 / 32, rel=1e-12)
    decode = cosim.build_trace("llama3_8b", "decode", 1, 4096, profile="hf_eager", recipe="h2o")
    assert {op.dims.get("backend") for op in decode.ops if op.kind == "attention"} == {"unfused"}


def test_chunked_serving_with_h2o_prices_a_short_chunk_of_a_long_prompt():
    """A chunk's trace is a part of a longer prompt; H2O's ratios (10 % + 10 %) refuse a 4-token *prompt* (they keep
    no token), and `cosim serve --recipe h2o --scheduler chunked` stopped with that refusal when a step's budget left
    a 4-token first chunk. A part keeps every token (its selection and gather are the whole prompt's); a chunk that
    completes its prompt is the prompt's own trace."""
    from cosim.serving import serve
    from cosim.serving.steptime import DeviceStepCost, Workload
    from workloads.compression.eviction import NoTokenKept
    from workloads.models import load_model
    with pytest.raises(NoTokenKept, match="0 of the 4 prompt tokens"):
        cosim.build_trace("llama3_8b", "prefill", 1, 4, recipe="h2o")
    w = Workload(load_model("llama3_8b"), recipe="h2o")
    part = w.prompt_part(4)
    whole_kept = cosim.build_trace("llama3_8b", "prefill", 1, 4, recipe="h2o(budget=4)")
    assert ([(o.name.replace("h2o(budget=4)", "h2o"), o.flops, o.bytes) for o in whole_kept.ops]
            == [(o.name, o.flops, o.bytes) for o in part.ops])
    steps = DeviceStepCost(w, cosim.load_hw("h100_sxm"))
    given = DeviceStepCost(Workload(load_model("llama3_8b"), recipe="h2o(budget=512)"), cosim.load_hw("h100_sxm"))
    for c, ctx in ((4, 0), (9, 0), (4, 2044)):  # parts priced as with any budget: no number depends on the form
        assert steps.prefill_context_cost(c, ctx, last=False) == given.prefill_context_cost(c, ctx, last=False)
    with pytest.raises(NoTokenKept):  # a chunk completing a 4-token prompt is that prompt
        steps.prefill_context_cost(4, 0, last=True)
    res = serve("llama3_8b", "h100_sxm", recipe="h2o", scheduler="chunked", qps=2, requests=6, prompt_len=2048,
                output_len=8)
    assert res.summary["requests"] == 6 and any("chunked prefill: h2o.select, h2o.gather" in n for n in res.notes)


@pytest.mark.parametrize("scheduler", ["chunked", "continuous"])
def test_a_prompt_h2o_cannot_compress_is_refused_before_the_run(scheduler):
    """A 4-token prompt with H2O's ratios keeps no token; a 9-token one keeps 0 + 0 too. Refused up front, naming
    the request and its prompt (it was said from inside the run, naming the first decode step's 5 tokens, or, since
    the part-of-prompt fix, priced)."""
    from cosim.serving import serve
    from workloads.io import InputError
    for n in (4, 9):
        with pytest.raises(InputError, match=rf"serve: prompt_len: request 0 has a {n}-token prompt, which recipe "
                                             rf"'h2o' cannot compress: .*0 of the {n} prompt tokens"):
            serve("llama3_8b", "h100_sxm", recipe="h2o", scheduler=scheduler, qps=2, requests=3, prompt_len=n,
                  output_len=1)
