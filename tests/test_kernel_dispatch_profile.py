"""scripts/kernel_dispatch_profile.py on CPU: case selection (fit suites only), the streamed CSV, the Chrome-trace
parsing (synthetic events, no GPU) and the one-line error without CUDA."""

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "kernel_dispatch_profile.py"


def _load():
    spec = importlib.util.spec_from_file_location("kernel_dispatch_profile", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    sys.modules["kernel_dispatch_profile"] = m
    spec.loader.exec_module(m)
    return m


kdp = _load()
mb = kdp.mb


# ----------------------------------------------------------------------------- case selection

def test_fit3_cases_hand_counted():
    cases = kdp.select_cases(["fit3"])
    by = {}
    for c in cases:
        by[(c.kind, c.impl)] = by.get((c.kind, c.impl), 0) + 1
    # GEMM: 3 (n, k) x 8 m = 24 shapes, bf16 and fp8; fast accumulation only where section_gemm adds it:
    # m in (16, 1024, 8192) and n <= 14336 -> (5120, 4096) x 3
    assert by[("gemm", "F.linear")] == 24 and by[("gemm", "torch._scaled_mm")] == 24
    assert by[("gemm", "torch._scaled_mm+fast_accum")] == 3
    # softmax: 8 sizes 2^16..2^30 (x4) x 13 widths, rows = size/2/cols >= 1 drops 65536..262144 at 64 KiB
    # (3) and 262144 at 256 KiB (1): 104 - 4 = 100; rmsnorm / add_rmsnorm 5 widths x 8 sizes
    assert by[("softmax", "torch.softmax")] == 100
    assert by[("rmsnorm", "F.rms_norm")] == 40 and by[("add_rmsnorm", "triton:fused_add_rmsnorm")] == 40
    assert len(cases) == 231
    assert {tuple(c.suites) for c in cases} == {("fit3",)}


def test_cases_are_microbench_cases_of_their_suites_only():
    cases = kdp.select_cases(list(kdp.FIT_SUITES))
    keys = set()
    for c in cases:
        assert set(c.suites) <= set(kdp.FIT_SUITES)
        for s in c.suites:
            if c.kind == "gemm":
                d = c.dims
                assert (d["m"], d["n"], d["k"]) in kdp._gemm_mnk(s)
            else:
                ew = {(k, cols, (sz // 2) // cols) for (k, cols, sz) in mb._elementwise_cases(s) if k == c.kind}
                assert (c.kind, c.dims["cols"], c.dims["rows"]) in ew
        keys.add(c.key())
    assert len(keys) == len(cases)  # a shape in several suites once
    # default and fit4 share their GEMMs: one case, both suites named
    m1 = [c for c in cases if c.kind == "gemm" and c.dims == {"m": 1, "n": 4096, "k": 4096} and c.fmt == "bf16"]
    assert len(m1) == 1 and m1[0].suites == ["default", "fit4"]
    kinds = {c.kind for c in cases}
    assert kinds == {"gemm", "softmax", "rmsnorm", "add_rmsnorm"}


def test_budget_cut_samples_every_group():
    cases = kdp.select_cases(list(kdp.FIT_SUITES))
    head = cases[: len(cases) // 10]
    groups = {(c.kind, c.impl, c.suites[0]) for c in cases}
    assert {(c.kind, c.impl, c.suites[0]) for c in head} == groups
    assert kdp.select_cases(list(kdp.FIT_SUITES)) == cases  # fixed order


@pytest.mark.parametrize("name", ["heldout", "heldout2", "heldout8", "heldout13", "HELDOUT5", "heldout11"])
def test_heldout_refused(name):
    with pytest.raises(SystemExit, match="held-out suite"):
        kdp.parse_suites(f"fit5,{name}")
    with pytest.raises(SystemExit, match="held-out suite"):
        kdp.select_cases(["fit5", name])
    with pytest.raises(SystemExit, match="held-out suite"):
        kdp.main(["--out-dir", "unused", "--suites", name])


def test_unknown_suite_refused():
    with pytest.raises(SystemExit, match="unknown suite 'fit9'"):
        kdp.parse_suites("fit9")


# ----------------------------------------------------------------------------- trace parsing

def _ev(cat, name, ts, dur, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "args": args}


def _synthetic_trace():
    """Two calls of a split-K GEMM (nvjet kernel via the driver API, memset + reduce via the runtime API),
    each after an L2 flush kernel launched outside the annotation."""
    ev = []
    for rep, t in enumerate((0.0, 1000.0)):
        ev.append(_ev("cuda_runtime", "cudaLaunchKernel", t + 1, 2, correlation=10 * rep + 1))  # the flush
        ev.append(_ev("kernel", "reduce_kernel<flush>", t + 5, 300, correlation=10 * rep + 1,
                      grid=[1056, 1, 1], block=[512, 1, 1]))
        ev.append(_ev("user_annotation", f"kdp_rep{rep}", t + 10, 50))
        ev.append(_ev("cuda_runtime", "cudaMemsetAsync", t + 12, 1, correlation=10 * rep + 2))
        ev.append(_ev("cuda_driver", "cuLaunchKernelEx", t + 15, 3, correlation=10 * rep + 3))
        ev.append(_ev("cuda_runtime", "cudaLaunchKernel", t + 20, 2, correlation=10 * rep + 4))
        ev.append(_ev("gpu_memset", "Memset (Device)", t + 306, 1.0, correlation=10 * rep + 2))
        ev.append(_ev("kernel", "nvjet_sm90_tst_128x128_64x4_2x1_v_bz_splitK_TNT", t + 310, 40.0 + 10 * rep,
                      correlation=10 * rep + 3, grid=[66, 2, 4], block=[384, 1, 1],
                      **{"registers per thread": 168, "shared memory": 213000, "cluster": [2, 1, 1]}))
        ev.append(_ev("kernel", "cublasLt::splitKreduce_kernel", t + 352, 4.0, correlation=10 * rep + 4,
                      grid=[128, 1, 1], block=[256, 1, 1]))
    ev.append({"ph": "f", "cat": "ac2g", "name": "flow", "ts": 3, "id": 1})  # flow events ignored
    return ev


def test_parse_trace_attributes_calls_and_drops_the_flush():
    ks, note = kdp.parse_trace(_synthetic_trace(), reps=2)
    assert note == ""
    assert [k[0] for k in ks] == [0, 0, 0, 1, 1, 1]
    assert [k[1] for k in ks[:3]] == ["Memset (Device)", "nvjet_sm90_tst_128x128_64x4_2x1_v_bz_splitK_TNT",
                                     "cublasLt::splitKreduce_kernel"]
    assert ks[1][2] == [66, 2, 4] and ks[1][3] == [384, 1, 1]
    assert ks[1][4] == pytest.approx(40e-6) and ks[4][4] == pytest.approx(50e-6)
    rows = kdp.aggregate(ks, 2)
    assert [r["kernel"] for r in rows] == [k[1] for k in ks[:3]]
    gemm = rows[1]
    assert gemm["grid"] == "[66, 2, 4]" and gemm["block"] == "[384, 1, 1]"
    assert gemm["n_kernels"] == 3 and gemm["count"] == 1.0
    assert gemm["kernel_time_s"] == pytest.approx(45e-6)  # median of 40 and 50 us
    assert gemm["call_kernel_time_s"] == pytest.approx(50e-6)  # median of 45 and 55 us
    assert gemm["regs_per_thread"] == 168 and gemm["shared_mem_bytes"] == 213000
    assert json.loads(gemm["args"]) == {"cluster": [2, 1, 1]}
    assert rows[0]["grid"] == '""'  # a memset has no grid: empty, not invented


def test_parse_trace_kernel_without_launch_event_by_gpu_time():
    """A trace without driver-API events (e.g. no cuLaunchKernelEx of cuBLASLt / Triton): the nvjet kernels
    are attributed by the time they ran, and the note counts them; one outside every call is dropped, said."""
    ev = [e for e in _synthetic_trace() if e["name"] != "cuLaunchKernelEx"]
    for e in ev:
        if e["cat"] == "user_annotation":
            e["dur"] = 400  # with the synchronize inside, the call's GPU work ends inside its annotation
    ev.append(_ev("kernel", "stray", 900.0, 1.0, correlation=999))
    ks, note = kdp.parse_trace(ev, reps=2)
    assert [k[1] for k in ks].count("nvjet_sm90_tst_128x128_64x4_2x1_v_bz_splitK_TNT") == 2
    assert "stray" not in [k[1] for k in ks] and len(ks) == 6
    assert note == ("2 GPU ops without a launch event in the trace attributed by their GPU time; "
                    "1 GPU ops without a launch event outside every call: not counted")


def test_parse_trace_without_annotation_says_so():
    ev = [e for e in _synthetic_trace() if e["cat"] != "user_annotation"]
    ks, note = kdp.parse_trace(ev, reps=2)
    assert note.startswith("UNATTRIBUTED") and len(ks) == 8  # the flush's kernels counted, and said
    rows = kdp.aggregate(ks, 2)
    assert rows[0]["kernel"] == "reduce_kernel<flush>" and rows[0]["n_kernels"] == 4.0
    assert rows[0]["kernel_time_s"] == pytest.approx(300e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(0.5, 5000.0), min_size=3, max_size=3), min_size=1, max_size=5))
def test_aggregate_median_per_kernel(durs):
    """k kernels per call, 3 calls, random durations: one row each, time = median of its 3 durations."""
    reps, ev, corr = 3, [], 0
    for rep in range(reps):
        t0 = rep * 1e6
        ev.append(_ev("user_annotation", f"kdp_rep{rep}", t0, 100))
        for j, d in enumerate(durs):
            corr += 1
            ev.append(_ev("cuda_runtime", "cudaLaunchKernel", t0 + 1 + j, 0.5, correlation=corr))
            ev.append(_ev("kernel", f"k{j}", t0 + 200 + 10000 * j, d[rep], correlation=corr, grid=[j + 1, 1, 1],
                          block=[128, 1, 1]))
    rows = kdp.aggregate(kdp.parse_trace(ev, reps)[0], reps)
    assert [r["kernel"] for r in rows] == [f"k{j}" for j in range(len(durs))]
    for r, d in zip(rows, durs):
        assert r["count"] == 1.0 and r["n_kernels"] == len(durs)
        assert r["kernel_time_s"] == pytest.approx(sorted(d)[1] * 1e-6)


# ----------------------------------------------------------------------------- CSV streaming and main

def test_csv_rows_stream_per_case(tmp_path):
    path = tmp_path / "kernel_dispatch.csv"
    out = mb.CsvOut(str(path), kdp.FIELDS)
    case = kdp.Case(["fit5"], "gemm", "fp8_e4m3", "torch._scaled_mm", {"m": 16, "n": 4096, "k": 4096})
    kdp.write_case(out, case, 2, kdp.aggregate(kdp.parse_trace(_synthetic_trace(), 2)[0], 2))
    rows = list(csv.DictReader(open(path)))  # readable before close: flushed per row
    assert len(rows) == 3 and rows[1]["suite"] == "fit5" and json.loads(rows[1]["dims"])["m"] == 16
    kdp.write_case(out, case, 2, [], "FAILED: out of memory")
    rows = list(csv.DictReader(open(path)))
    assert rows[-1]["note"] == "FAILED: out of memory" and rows[-1]["n_kernels"] == "0"
    with pytest.raises(SystemExit, match="exists with"):
        kdp.main(["--out-dir", str(tmp_path), "--suites", "fit3"])  # an earlier run's CSV is never truncated


class _FakeCuda:
    @staticmethod
    def empty_cache():
        pass


class _FakeTorch:
    cuda = _FakeCuda()


def test_main_streams_counts_failures_and_budget_skips(tmp_path, monkeypatch):
    clock = {"t": 0.0}
    monkeypatch.setattr(kdp.time, "time", lambda: clock["t"])
    monkeypatch.setattr(kdp, "_need_cuda", lambda: _FakeTorch())
    monkeypatch.setattr(kdp.mb, "Nvml", lambda: type("N", (), {"state": lambda self: {}})())
    monkeypatch.setattr(kdp.mb, "env_record", lambda torch, nvml, src_dir=None: {"device_name": "fake"})
    monkeypatch.setattr(kdp.mb, "Bench", lambda *a, **k: None)
    calls = []

    def fake_profile(torch, bench, case, reps, trace):
        calls.append(case)
        clock["t"] += 10.0  # each case "takes" 10 s
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory.\nmore")
        return kdp.parse_trace(_synthetic_trace(), 2)[0], ""

    monkeypatch.setattr(kdp, "profile_case", fake_profile)
    out = tmp_path / "o"
    kdp.main(["--out-dir", str(out), "--suites", "fit3", "--budget-s", "25", "--reps", "2"])
    rows = list(csv.DictReader(open(out / "kernel_dispatch.csv")))
    assert len(calls) == 3  # cases start at t = 0, 10, 20; none after 25 s
    assert len(rows) == 3 + 1 + 3 and rows[3]["note"] == "FAILED: CUDA out of memory."
    env = json.load(open(out / "kernel_dispatch_env.json"))
    assert env["cases_total"] == 231 and env["cases_done"] == 3 and env["cases_failed"] == 1
    assert env["cases_skipped_budget"] == 228 and env["status"] == "finished" and env["device_name"] == "fake"


# ----------------------------------------------------------------------------- no CUDA

def _run(tmp_path, fake_torch_src):
    env = dict(os.environ)
    if fake_torch_src is not None:
        (tmp_path / "torch").mkdir()
        (tmp_path / "torch" / "__init__.py").write_text(fake_torch_src)
        env["PYTHONPATH"] = str(tmp_path)
    else:  # a torch that cannot be imported, whether or not this machine has one
        (tmp_path / "torch.py").write_text("raise ImportError('No module named torch (test)')\n")
        env["PYTHONPATH"] = str(tmp_path)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(out)], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120)
    return p, out


def test_no_torch_one_clear_message(tmp_path):
    p, out = _run(tmp_path, None)
    assert p.returncode == 1 and not out.exists()
    assert p.stderr.strip().splitlines() == ["kernel_dispatch_profile: needs PyTorch with CUDA on a GPU machine "
                                             "(import torch failed: No module named torch (test))"]


def test_no_cuda_one_clear_message(tmp_path):
    src = "__version__ = '2.11.0+cpu'\nclass cuda:\n    @staticmethod\n    def is_available():\n        return False\n"
    p, out = _run(tmp_path, src)
    assert p.returncode == 1 and not out.exists()
    assert p.stderr.strip().splitlines() == ["kernel_dispatch_profile: needs a CUDA GPU; torch 2.11.0+cpu sees "
                                             "none (torch.cuda.is_available() is False)"]
