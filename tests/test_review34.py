"""Session 34's first-user review of profiles and eager attention: generate's notes name the phase a note is about
and say a beyond-context length once; the memory rule is not read as a verdict."""

import cosim  # noqa: F401  (the package's import order)
from cosim.serving.generate import generate


def test_generate_names_the_phase_of_a_phase_only_note_and_the_context_limit_once():
    g = generate("llama3_8b", "h100_sxm", 8200, 4, level="analytical", profile="hf_eager",
                 allow_beyond_max_context=True)
    kernels = [n for n in g.notes if "separate kernels" in n]
    # GQA prefill: repeat_k, repeat_v, score GEMM, scale, mask, softmax, cast, PV GEMM; decode has no mask
    assert kernels == ["prefill: attention: unfused (Hugging Face eager) attention priced as 8 separate kernels",
                       "decode steps: attention: unfused (Hugging Face eager) attention priced as 7 separate kernels"]
    beyond = [n for n in g.notes if "beyond llama3_8b's maximum context" in n]
    # the prompt (8,200) is beyond it too: the largest step's note (8200 + 4 - 1) covers it
    assert len(beyond) == 1 and beyond[0].startswith("seq 8,203 is beyond")


def test_the_memory_rule_is_not_a_verdict():
    g = generate("llama3_8b", "h100_sxm", 128, 4)
    assert not any(n.startswith("fits:") for n in g.notes)
    assert any(n.startswith("memory rule: the footprint (weights + KV + activations) fits if it uses at most 100 %")
               for n in g.notes)


def test_chunked_prefill_reserves_eager_scores_over_the_longest_prompt():
    """Session 34's review: a 512-token chunk of a 32,768-token prompt attends over all 32,768 keys; eager attention
    holds (2 + 4 + 2) bytes per score and repeat_kv's copies (Qwen2.5-7B: 28 heads on 4 KV heads, head dim 128),
    not the 512 x 512 block the chunk's own trace counts. A flash backend keeps no scores: nothing added."""
    from cosim.serving.kv_memory import kv_capacity
    from cosim.serving.steptime import Workload
    from workloads.models import load_model

    def peak(q, kv):
        return 2 * 28 * kv * 128 * 2 + 8 * 28 * q * kv
    hw = cosim.load_hw("h100_sxm")
    eager = Workload(load_model("qwen2_5_7b"), profile="hf_eager")
    short, long = (kv_capacity(eager, hw, 16, 512, longest_prompt=n) for n in (512, 32768))
    assert long.activations_bytes - short.activations_bytes == peak(512, 32768) - peak(512, 512)  # 4.16 GB
    assert long.blocks < short.blocks and "eager attention's scores over a 32,768-token prompt" in long.source
    flash = Workload(load_model("qwen2_5_7b"), profile="engine")
    assert kv_capacity(flash, hw, 16, 512, longest_prompt=32768) == kv_capacity(flash, hw, 16, 512)


def test_generate_saves_the_attention_backend_that_priced_it():
    """`attention` is the trace's form (fused); the backend is what priced it: the profile's, or the calibration's
    default at the analytical level, none at the roofline (one attention whatever the library)."""
    got = {(p, lv): generate("llama3_8b", "h100_sxm", 512, 4, profile=p, level=lv).summary()["inputs"]
           for p in ("hf_eager", None) for lv in ("roofline", "analytical")}
    assert {k: (v["attention"], v["attention_backend"]) for k, v in got.items()} == {
        ("hf_eager", "roofline"): ("fused", "unfused"), ("hf_eager", "analytical"): ("fused", "unfused"),
        (None, "roofline"): ("fused", None), (None, "analytical"): ("fused", "cudnn")}


def test_the_static_schedulers_memory_hint_only_on_a_memory_refusal():
    """The hint (lower max_num_seqs or give max_batched_tokens) is about the static budget's activations; a
    contradiction in the workload is said as it is (the diff review found the hint appended to it)."""
    import pytest

    from cosim.serving import serve
    from workloads.io import InputError
    with pytest.raises(InputError) as e:
        serve("llama3_8b", "h100_sxm", qps=5, requests=4, attention="unfused", profile="hf_eager", scheduler="static")
    assert "contradict each other" in str(e.value) and "max_num_seqs" not in str(e.value)


def test_the_calibrated_eager_row_leaves_out_the_soft_cap_it_does_not_price_and_says_so():
    from hwmodels.estimate import SOFTCAP_NOT_FITTED, estimate_ops
    from workloads.profiles import eager_attention_kernels
    gemma2 = str(__import__("pathlib").Path(__file__).parent / "data" / "hf_configs" / "gemma2_9b.json")
    att = next(op for op in cosim.build_trace(gemma2, "prefill", 1, 1024, profile="hf_eager").ops
               if op.kind == "attention")
    costs, notes = estimate_ops([att], cosim.load_hw("h100_sxm"), "analytical")
    priced = eager_attention_kernels(att, softcap=False)
    assert costs[0].details["kernel_bytes"] == sum(k.bytes for k in priced) < sum(
        k.bytes for k in eager_attention_kernels(att))  # three soft-cap passes fewer
    assert SOFTCAP_NOT_FITTED in notes
