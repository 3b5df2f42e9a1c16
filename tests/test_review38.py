"""Session 38's review fixes: format notes a user could not see (activations narrower than the weights, a device's
fastest matrix unit left unused), pinned to the device files' peaks."""

import cosim
from hwmodels.roofline import unused_unit_note
from workloads.builder import acts_format_note, build_trace


def test_activations_narrower_than_the_weights_are_said():
    assert acts_format_note("bf16", "mxfp4").startswith("acts mxfp4: activations are stored and moved in mxfp4, "
                                                        "but GEMMs with bf16 weights compute in bf16")
    assert acts_format_note("mxfp4", "bf16") is None  # weight-only quantization: the usual case, nothing to say
    assert acts_format_note("mxfp4", "mxfp4") is None
    rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 1024, acts="fp8_e4m3"), "h100_sxm")
    assert any(n.startswith("acts fp8_e4m3: ") for n in rep.notes)


def test_an_unused_fast_unit_is_said_with_its_rate():
    # mxfp4_systolic_256.yaml: 262.1 TFLOP/s in mxfp4/nvfp4, 65.5 in bf16: 4.0x, said; the H100's fp8 is 2x: not
    hw = cosim.load_hw("mxfp4_systolic_256")
    note = unused_unit_note([("gemm", "bf16"), ("add", "bf16")], hw)[0]
    assert "(mxfp4/nvfp4: 262.1 TFLOP/s) is 4.0x" in note and "(bf16: 65.5 TFLOP/s)" in note
    assert unused_unit_note([("gemm", "mxfp4")], hw) == ()
    assert unused_unit_note([("gemm", "bf16")], cosim.load_hw("h100_sxm")) == ()
    for level in ("roofline", "cycle"):  # the template fast path and the per-op path say it alike
        rep = cosim.simulate(build_trace("llama3_8b", "decode", 1, 1024), hw, level)
        assert sum("fastest matrix arithmetic" in n for n in rep.notes) == 1
    narrow = cosim.simulate(build_trace("llama3_8b", "decode", 1, 1024, weights="mxfp4", acts="mxfp4"), hw)
    assert not any("fastest matrix arithmetic" in n for n in narrow.notes)
