"""Round 18 (issue 11, session 26): FA2-pinned prefill priced as the kernel FlashAttention-2 runs
(hwmodels.gpu.fa2_prefill_kernels_time, chosen by validation/model_selection/s33_fa2_kernels.py as GMS)."""
import json
import random
from pathlib import Path

import pytest

import cosim
from hwmodels import gpu, gpu_library
from hwmodels.gpu import GpuParams

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def h100():
    hw = cosim.load_hw("h100_sxm")
    return hw, gpu.params_for(hw)


def _with(P, **values):
    return GpuParams(values={**P.values, **values}, sm_count=P.sm_count, l2_bytes=P.l2_bytes, provenance="test",
                     attention_default=P.attention_default)


def test_both_calibrations_switch_it_on(h100):
    # the H100 since round 18 (session 26), the H200 since round 19 (session 27: s35_h200_fa2_kernels)
    for P in (h100[1], gpu.params_for(cosim.load_hw("h200"))):
        assert P.values["attn.prefill_kernels"] == 1.0
        assert 0 < P.values["attn.skv_combine"] < 10e-6 and 0.5e12 < P.values["attn.skv_combine_bw"] < 5e12


def test_greedy_makespan_by_hand():
    # CTAs 3, 1, 3, 1 on two slots: 3 -> A, 1 -> B (free at 1), 3 -> B (4), 1 -> A (4): the longest slot is 4
    assert gpu_library.greedy_makespan((3.0, 1.0), 2, 2) == 4.0
    # fewer CTAs than slots: each alone, the longest CTA
    assert gpu_library.greedy_makespan((3.0, 1.0), 2, 8) == 3.0
    # equal CTAs, 5 on 2 slots: three waves
    assert gpu_library.greedy_makespan((2.0,), 5, 2) == 6.0
    assert gpu_library.fa2_split_block_n(64) == 256 and gpu_library.fa2_split_block_n(128) == 128


def test_the_combine_reads_the_fp32_partial_outputs(h100):
    """b 1, h 16, q = kv = 768, d 128, non-causal: FA2 splits 6 ways; the combine reads 6 x 16 x 768 x 128 x 4 =
    37,748,736 bytes, so halving its rate adds exactly that many bytes at the slower rate."""
    hw, P = h100
    args = (1, 16, 768, 768, 128, 128, False, hw.peak("bf16"))
    assert gpu.fa2_prefill_splits(P, 1, 16, 768, 768, 128) == 6
    bw = P.values["attn.skv_combine_bw"]
    t1 = gpu.attention_prefill_time(P, *args)
    t2 = gpu.attention_prefill_time(_with(P, **{"attn.skv_combine_bw": bw / 2}), *args)
    assert t2 - t1 == pytest.approx(6 * 16 * 768 * 128 * 4 / bw, rel=1e-9)
    _, det = gpu.attention_prefill_time(P, *args, details=True)
    assert det["splits"] == 6 and det["block_q_k"] == (64, 128)


def test_the_uneven_terms_apply_only_past_the_masking_steps(h100):
    """d 64 (128 x 128 blocks): an uneven length runs ceil(128 / 128) + 1 = 2 masking steps. One query block of
    q = kv = 200 visits 2 KV blocks (no uneven term); q = kv = 300 visits 3 (the term applies); an even length never."""
    hw, P = h100
    off = _with(P, **{"attn.ragged": 0.0, "attn.ragged_wave": 0.0})
    pk = hw.peak("bf16")

    def extra(q):
        assert gpu.fa2_prefill_splits(P, 4, 32, q, q, 64) == 1  # one-pass launches
        return gpu.attention_prefill_time(P, 4, 32, q, q, 64, 64, True, pk) - gpu.attention_prefill_time(
            off, 4, 32, q, q, 64, 64, True, pk)
    assert extra(200) == 0.0 and extra(256) == 0.0 and extra(384) == 0.0
    assert extra(300) >= P.values["attn.ragged"] > 0


def test_cudnn_keeps_its_form(h100):
    """cuDNN prefill passes its own blocks: the switch does not touch it."""
    hw, P = h100
    args = (2, 32, 1000, 1000, 128, 128, True, hw.peak("bf16"))
    off = _with(P, **{"attn.prefill_kernels": 0.0})
    assert gpu.attention_prefill_time(P, *args, blocks=(128, 128)) == gpu.attention_prefill_time(
        off, *args, blocks=(128, 128))


def test_the_model_is_the_candidate_s33_scored(h100):
    """The form in the model prices every shape as s33's GMS candidate code did (the selection record's code)."""
    from validation.model_selection import s33_fa2_kernels as s33
    hw, P = h100
    cand = _with(P, **{"attn.prefill_kernels": 0.0, s33.M_FLAG: 1.0, s33.S_FLAG: 1.0, s33.G_FLAG: 1.0})
    rng = random.Random(18)
    for _ in range(300):
        b, h, d = rng.choice([1, 2, 3, 4, 8]), rng.choice([8, 16, 32, 40, 64]), rng.choice([64, 128])
        q = rng.randint(1, 4000)
        causal = rng.random() < 0.8
        with s33.candidate_code():
            want = gpu.attention_prefill_time(cand, b, h, q, q, d, d, causal, hw.peak("bf16"))
        assert gpu.attention_prefill_time(P, b, h, q, q, d, d, causal, hw.peak("bf16")) == want


def test_the_refit_quality_is_recorded():
    import yaml
    doc = yaml.safe_load((ROOT / "cosim/configs/hw/calibration/h100_sxm.yaml").read_text())
    # round 17: 7.02 / 18.43 over the same 824 rows
    assert doc["fit_quality"]["attention_prefill"] == {"rows": 824, "median_abs_pct": 4.21, "p90_abs_pct": 12.98}


def test_the_selection_record_reproduces(tmp_path, monkeypatch):
    """s33's record (the choice of round 18) regenerates from the fit rows with the term set it scored against
    (common.r17_h100_terms), after round 18 made r18_h100 the H100's default; title and load line aside."""
    import sys
    from validation.model_selection import common, s33_fa2_kernels as s33
    monkeypatch.setattr(sys, "argv", ["s33_fa2_kernels.py", "h100_sxm"])
    out = tmp_path / "s33.txt"
    common.run_selection(out, s33.run_prefill)
    committed = (ROOT / "validation/model_selection/s33_fa2_kernels.txt").read_text().splitlines()
    assert out.read_text().splitlines()[1:-1] == committed[1:-1]
    assert "chosen (p90, resolved gains only): GMS = MS + greedy two-slot schedule" in committed


def _op(b, h, kvh, q, kv, d, causal, impl="sdpa:FLASH_ATTENTION"):
    from cosim.calibrate import dataset
    dims = {"batch": b, "heads": h, "kv_heads": kvh, "q_len": q, "kv_len": kv, "head_dim": d, "causal": causal}
    return dataset.op_from_row({"kind": "attention", "fmt": "bf16", "impl": impl, "dims": json.dumps(dims)})


def test_a_split_prefill_counts_its_combine_kernel(h100):
    """In a stream or graph each kernel hides its launch: the split-KV prefill is two kernels (the split kernel and
    the combine), a one-pass prefill one, cuDNN's prefill one (session 26 review finding)."""
    _, P = h100
    assert gpu.fa2_prefill_splits(P, 1, 16, 768, 768, 128) == 6
    assert gpu.fa2_prefill_splits(P, 4, 32, 2048, 2048, 128) == 1
    assert gpu.kernels_of(_op(1, 16, 16, 768, 768, 128, False), P) == 2
    assert gpu.kernels_of(_op(4, 32, 8, 2048, 2048, 128, True), P) == 1
    assert gpu.kernels_of(_op(1, 16, 16, 768, 768, 128, False, "sdpa:CUDNN_ATTENTION"), P) == 1


def test_unvalidated_head_dims_say_so_and_no_block_is_negative(h100):
    hw, P = h100
    notes = gpu.estimate(_op(2, 16, 16, 512, 512, 96, True), hw, params=P).notes
    assert any("validated at head dims 64 and 128 only" in n for n in notes)
    assert not any("validated at head dims" in n for n in gpu.estimate(_op(2, 16, 16, 512, 512, 128, True), hw,
                                                                          params=P).notes)
    # causal q > kv: query blocks above the diagonal compute nothing (FA2 exits them early), never negative work
    assert list(gpu._visible_blocks(1000, 100, 128, 64, True)) == [0.0] * 7 + [2.0]


def test_the_probe_summary_regenerates(tmp_path):
    from validation.diagnostics import fa2_uneven_probe as probe
    out = tmp_path / "probe.txt"
    assert probe.main(["summary", str(ROOT / "validation/diagnostics/h100_fa2_uneven_probe.csv"), str(out)]) == 0
    text = out.read_text()
    assert text == (ROOT / "validation/diagnostics/h100_fa2_uneven_probe.txt").read_text()
    # the figures the docs and s33 quote
    assert "uneven causal d128           |     61 |               13.6 |                     10.8 |" in text
    assert "d128 past   the masking steps, single-wave |   8 shapes | median  15.1 us" in text
    assert "d64 within the masking steps, single-wave |  10 shapes | median   3.0 us" in text


def test_a_one_wave_price_by_hand(h100):
    """b 1, h 8, q = kv = 128, d 128, non-causal: one KV block of 128 keys for the split kernel, so no split; 8 CTAs
    of 128 query rows alone on their SMs, each 2 score blocks of 128 x 64. Price = floor + 2 blocks x t_blk +
    one CTA overhead, t_blk = 2 x 128 x 64 x (128 + 128 + soft_c x 256) / (peak / SMs x eff); no uneven term."""
    hw, P = h100
    v, peak = P.values, hw.peak("bf16")
    assert gpu.fa2_prefill_splits(P, 1, 8, 128, 128, 128) == 1
    t_blk = 2 * 128 * 64 * (128 + 128 + v["attn.soft_c"] * 256) / (peak / P.sm_count * v["attn.eff"])
    want = v["attn.floor"] + 2 * t_blk + v["attn.cta_overhead"]
    assert gpu.attention_prefill_time(P, 1, 8, 128, 128, 128, 128, False, peak) == pytest.approx(want, rel=1e-12)
