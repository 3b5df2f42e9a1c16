"""One context rule for `cosim roofline`, `cosim serve` and `cosim generate` (audit s11): a step holds at
most max_context tokens of KV, its new token included (workloads.builder's decode convention), so the
last decodable position is max_context - 1 and decode seq = max_context is the last step. A request's
largest step is its last decode, which feeds output token O - 1 and holds P + O - 1 tokens (the last
token is sampled, never fed back): serve and generate accept P + O - 1 <= max_context."""

from __future__ import annotations

import pytest

import cosim
from cosim.cli import main
from cosim.serving import generate, serve
from cosim.serving.steptime import StepCost
from workloads.io import InputError
from workloads.models import load_model

MODEL, HW = "llama3_8b", "h100_sxm"
MAX = load_model(MODEL).max_context  # 8192, max_position_embeddings of meta-llama/Meta-Llama-3-8B


class _Recorder:
    """Records the KV lengths of every decode step the engine prices (1 ms a step)."""
    notes = ()

    def __init__(self):
        self.decode_kv, self.prefill = [], []

    def step_cost(self, batch):
        self.decode_kv += list(batch.decode_kv)
        self.prefill += [c + done for c, done, _ in batch.prefill]
        return StepCost(1e-3, 1.0)


def test_max_context_is_8192_for_the_pinned_cases():
    assert MAX == 8192


def test_roofline_decode_accepts_seq_max_context_and_refuses_one_more(capsys):
    assert cosim.build_trace(MODEL, phase="decode", seq=MAX).seq == MAX  # new token at position 8191
    with pytest.raises(InputError, match="seq: got 8,193; expected at most 8,192"):
        cosim.build_trace(MODEL, phase="decode", seq=MAX + 1)
    assert main(["roofline", "--model", MODEL, "--hw", HW, "--phase", "decode", "--seq", str(MAX)]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("prompt, output", [(MAX - 1, 2), (MAX, 1), (100, MAX - 99)])
def test_serve_runs_a_request_whose_last_step_is_decode_seq_max_context(prompt, output):
    rec = _Recorder()
    res = serve(MODEL, HW, step_model=rec, qps=1, requests=1, prompt_len=prompt, output_len=output)
    assert res.requests["output_len"].iloc[0] == output
    # the engine's largest step holds P + O - 1 = max_context tokens: the step build_trace accepts last
    assert max(rec.decode_kv + rec.prefill) == prompt + output - 1 == MAX
    if output > 1:
        assert max(rec.decode_kv) == MAX and len(rec.decode_kv) == output - 1


@pytest.mark.parametrize("prompt, output, field", [(MAX - 1, 3, "output_len"), (MAX + 1, 1, "prompt_len"),
                                                   (100, MAX - 98, "output_len")])
def test_serve_and_generate_refuse_one_position_more(prompt, output, field):
    with pytest.raises(InputError) as e:
        serve(MODEL, HW, step_model=_Recorder(), qps=1, requests=1, prompt_len=prompt, output_len=output)
    msg = str(e.value)
    assert msg.startswith(f"serve: {field}: request 0 has prompt {prompt} + output {output} = {prompt + output} "
                          f"tokens, so its largest step holds {MAX + 1} tokens of KV")
    assert "expected at most 8192 (llama3_8b's max_context" in msg
    with pytest.raises(InputError) as e:
        generate(MODEL, HW, prompt, output)
    assert str(e.value).startswith(f"generate: {field}: prompt {prompt} + output {output} tokens put the largest "
                                   f"step at {MAX + 1} tokens of KV")


def test_generate_accepts_the_boundary_and_prices_decode_seq_max_context():
    g = generate(MODEL, HW, MAX - 2, 3)  # decode steps at KV 8191 and 8192
    ref = cosim.simulate(cosim.build_trace(MODEL, phase="decode", seq=MAX), HW)
    assert g.decode_times_s[-1] == pytest.approx(ref.total_latency_s, rel=1e-9)


def test_a_prompt_over_the_step_budget_is_an_error_not_a_stall():
    # was: RuntimeError "serving engine stalled" (continuous prefills a prompt whole in one step)
    with pytest.raises(InputError, match=r"^serve: max_batched_tokens: got 64 \(the token budget of a step\); "
                                         r"expected at least request 0's prompt of 100 tokens, which scheduler "
                                         r"continuous prefills in one step"):
        serve(MODEL, HW, step_model=_Recorder(), qps=1, requests=2, prompt_len=100, output_len=2,
              max_batched_tokens=64)
    rec = _Recorder()  # chunked prefill splits it: 64 + 36
    serve(MODEL, HW, step_model=rec, qps=1, requests=1, prompt_len=100, output_len=2, max_batched_tokens=64,
          scheduler="chunked")
    assert rec.prefill == [64, 100]
