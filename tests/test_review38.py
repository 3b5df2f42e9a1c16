"""Session 38's review fixes: format notes a user could not see (activations narrower than the weights)."""

import cosim
from workloads.builder import acts_format_note, build_trace


def test_activations_narrower_than_the_weights_are_said():
    assert acts_format_note("mxfp4", {"bf16"}).startswith("acts mxfp4: activations are stored and moved in mxfp4, "
                                                         "but GEMMs compute in bf16")
    assert acts_format_note("bf16", {"bf16"}) is None  # weight-only quantization: the usual case, nothing to say
    assert acts_format_note("mxfp4", {"mxfp4"}) is None
    rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 1024, acts="fp8_e4m3"), "h100_sxm")
    assert sum(n.startswith("acts fp8_e4m3: ") for n in rep.notes) == 1
    # a recipe running the GEMMs in mxfp4 (mxfp4_native) leaves only the bf16 lm_head wider than the activations
    native = build_trace("llama3_8b", "decode", 1, 1024, acts="mxfp4", recipe="mxfp4_native")
    said = [n for n in native.meta.get("notes", ()) if n.startswith("acts mxfp4")]
    assert {o.compute_fmt for o in native.ops if o.kind == "gemm"} == {"mxfp4", "bf16"}
    assert len(said) == 1 and "GEMMs compute in bf16" in said[0]
    plain_fp8 = build_trace("llama3_8b", "decode", 1, 1024, acts="fp8_e4m3", weights="fp8_e4m3")
    assert not any(n.startswith("acts ") for n in plain_fp8.meta.get("notes", ()))
