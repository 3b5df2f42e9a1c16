"""The H100 kernel profile of fit shapes (validation/diagnostics/kernel_profile.py, session 25): what the model's
library rules are checked against. FlashAttention-2's prefill dispatch rule, read from flash_api.cpp
(set_params_splitkv: the split-KV kernel with 64-row query blocks when num_splits_heuristic(batch x heads x
ceil(q / 64), 2 x SMs, ceil(kv / Bn)) > 1), names exactly the profiled shapes that ran the split-KV kernel; no
profiled cuBLAS bf16 GEMM kernel's name says stream-K; and the comparison record docs/gpu-validation.md quotes
(session 25) regenerates from the committed profile and the committed H100 calibration byte for byte (a re-fit changes
its error columns: regenerate it then, the docs keep session 25's figures)."""
import csv
import dataclasses
import json
import sys
from pathlib import Path

import pytest

from hwmodels import gpu
from hwmodels.spec import load_hw
from validation.diagnostics import kernel_profile_compare as kpc

PROFILE = Path("validation/diagnostics/h100_kernel_profile.csv")


@pytest.fixture(scope="module")
def rows():
    return list(csv.DictReader(open(PROFILE)))


def test_fa2_prefill_split_kv_dispatch_matches_the_profile(rows):
    cases = {}
    for r in rows:
        if r["case"] == "fa2_prefill" and r["call"] == "0":
            cases.setdefault(r["dims"], []).append(r["kernel"])
    assert len(cases) == 160
    split = {dims for dims, ks in cases.items() if any("splitkv" in k for k in ks)}
    assert len(split) == 19
    sms = json.loads(Path("validation/raw_h100_run21/env.json").read_text())["sm_count"]  # the profiled unit's
    P = dataclasses.replace(gpu.params_for(load_hw("h100_sxm")), sm_count=sms)
    predicted = {dims for dims in cases if kpc.fa2_prefill_splits(json.loads(dims), P) > 1}
    assert predicted == split
    # the split launches also run the combine kernel
    assert all(any("splitkv_combine" in k for k in cases[d]) for d in split)


def test_no_stream_k_gemm_kernel_and_token_tiles_in_steps_of_8(rows):
    gemm = [r for r in rows if r["case"] == "gemm_bf16"]
    assert len({r["dims"] for r in gemm}) == 1144
    assert not any("stream" in r["kernel"].lower() for r in gemm)
    assert kpc.tile_of("nvjet_sm90_tst_192x8_64x8_2x1_v_bz_TNT") == (8, 192)  # (tokens, weight rows)
    tiles = {kpc.tile_of(r["kernel"]) for r in gemm if r["kernel"].startswith("nvjet")}
    assert all(bm % 8 == 0 for bm, _ in tiles)


def test_the_comparison_record_regenerates(tmp_path, monkeypatch, capsys):
    out = tmp_path / "record.txt"
    monkeypatch.setattr(sys, "argv", ["kernel_profile_compare.py"])
    assert kpc.main([str(PROFILE), str(out)]) == 0
    text = out.read_text()
    assert text == Path("validation/diagnostics/h100_kernel_profile.txt").read_text()
    assert "says split on exactly those: 160 of 160 shapes agree" in text
    # the committed model's in-sample errors there: round 17 (session 25's record) 10.2 / 27.0, round 18 (its form
    # prices the split-KV kernel, session 26) 4.8 / 9.1
    assert "split-KV kernel (rule): |pred/meas - 1| %  137 |   4.8 /   9.1" in text
    # round 22 (session 32: tiles from the nvjet menus) regenerated it: stream-K on 646 -> 392 shapes, the model's tile
    # the kernel's on 69 -> 261 of 1,144
    assert "'_splitK_': 364" in text and "the model chose stream-K on 392 shapes" in text
    assert "model tile = kernel tile on 261 of 1144" in text


def test_the_profiled_cases_are_the_fit_shapes():
    """Every case the device profiled is a shape of the H100's fit rows (kernel_profile.fit_cases: split_of fit), so
    no held-out row chose a profiled shape; 1,144 GEMMs and 160 FA2 prefills, none twice. (A later fit suite adds
    shapes to fit_cases; the committed list stays session 25's.)"""
    from validation.diagnostics import kernel_profile
    cases = csv.DictReader(open("validation/diagnostics/h100_kernel_profile_cases.csv"))
    committed = [(r["case"], r["dims"]) for r in cases]
    assert len(set(committed)) == len(committed) == 1144 + 160
    assert set(committed) <= set(kernel_profile.fit_cases(Path(".").resolve()))
