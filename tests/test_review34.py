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
