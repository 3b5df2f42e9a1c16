"""`cosim generate` prices the kernels of the implementation profile it is given and names it (session 30: it had no
profile, so a generation was always a plain HF model's kernels and said nothing of it)."""

import subprocess
import sys

import pytest

import cosim
from cosim.eager_host import GENERATION_GPU_TIME_NOTE
from cosim.serving.generate import generate


@pytest.mark.parametrize("profile", [None, "engine", "engine+fa2"])
def test_ttft_is_the_profiles_prefill_pass(profile):
    g = generate("llama3_8b", "h100_sxm", prompt_len=256, output_len=3, level="analytical", profile=profile)
    pre = cosim.simulate(cosim.build_trace("llama3_8b", "prefill", 1, 256, profile=profile), "h100_sxm", "analytical")
    assert g.ttft_s == pytest.approx(pre.total_latency_s, rel=1e-12)
    assert g.inputs.profile == profile and g.inputs.implementation == pre.meta.get("implementation")
    # CUDA graphs off (no profile: eager) -> the times are GPU time, and the result says so
    assert (GENERATION_GPU_TIME_NOTE in g.notes) == (profile is None)


def test_bad_profile_is_one_clear_error():
    p = subprocess.run([sys.executable, "-m", "cosim", "generate", "--model", "llama3_8b", "--hw", "h100_sxm",
                        "--profile", "engien"], capture_output=True, text=True)
    assert p.returncode != 0 and "profile: got 'engien'; expected one of eager, hf_eager, engine" in p.stderr
    assert "Traceback" not in p.stderr


def test_cli_names_the_implementation():
    out = subprocess.run([sys.executable, "-m", "cosim", "generate", "--model", "llama3_8b", "--hw", "h100_sxm",
                          "--prompt-len", "64", "--output-len", "2", "--profile", "engine"],
                         capture_output=True, text=True, check=True).stdout
    assert "implementation: engine: attention default, fused qkv+gate_up+rope+add_norm, CUDA graphs on" in out
