"""GPU microbenchmark suite for calibrating the analytical GPU model.

Self-contained on purpose (torch + numpy + pynvml only, no cosim imports) so that the
exact same file can be copied to a GPU machine and run there:

    python3 microbench.py --out OUTDIR [--sections env,launch,gemm,attention,elementwise,energy,e2e]

and so that `cosim calibrate` (which imports it) measures exactly what the committed CSVs
were measured with.

Method
- Kernel timing: CUDA events around ONE launch, preceded by an L2 flush that READS a
  1 GiB buffer (a write flush would leave ~50 MB of dirty lines whose write-back would be
  charged to the measured kernel; the flush's ~0.35 ms also lets the host enqueue the
  measured launch before the GPU reaches it, so host overhead is not timed); median of repeats (repeat count adapts to the kernel's
  length: ~0.1 s per point, 3..30 repeats); 2 warm-up calls first (cuBLAS heuristics).
- Energy: NVML total-energy counter (mJ) read around loops of >= 2 s.
- End to end: plain-PyTorch Llama-style model with random bf16 weights, decode step eager
  and captured in a CUDA graph, prefill eager.
Outputs (CSV, one row per measurement, everything needed to rebuild the op):
  ops.csv, energy.csv, e2e.csv, env.json, plus the log the caller tees.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import random
import sys
import time

# ----------------------------------------------------------------------------- helpers

_T0 = time.time()


def log(msg):
    print(f"[{time.time() - _T0:7.1f}s] {msg}", flush=True)


def _lazy_torch():
    try:
        import torch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise SystemExit("cosim calibrate needs PyTorch with CUDA: pip install 'cosim[torch]' "
                         f"(import failed: {exc})")
    return torch


class Nvml:
    """Thin NVML wrapper; every reading degrades to None when NVML is absent."""

    def __init__(self):
        self.h = None
        try:
            import pynvml
            pynvml.nvmlInit()
            self.nv = pynvml
            self.h = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or 0))
        except Exception as exc:  # noqa: BLE001 - NVML is optional
            log(f"NVML unavailable: {exc}")

    def _q(self, fn, *a):
        if self.h is None:
            return None
        try:
            return fn(self.h, *a)
        except Exception:  # noqa: BLE001
            return None

    def state(self):
        nv = getattr(self, "nv", None)
        if nv is None or self.h is None:
            return {"sm_clock_mhz": "", "mem_clock_mhz": "", "temp_c": "", "power_w": ""}
        p = self._q(nv.nvmlDeviceGetPowerUsage)
        return {"sm_clock_mhz": self._q(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_SM),
                "mem_clock_mhz": self._q(nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM),
                "temp_c": self._q(nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU),
                "power_w": (p / 1000.0) if p is not None else None}

    def energy_j(self):
        nv = getattr(self, "nv", None)
        if nv is None:
            return None
        e = self._q(nv.nvmlDeviceGetTotalEnergyConsumption)
        return None if e is None else e / 1000.0

    def static_info(self):
        nv = getattr(self, "nv", None)
        if nv is None or self.h is None:
            return {}
        out = {}
        for key, fn, args in [
            ("driver", nv.nvmlSystemGetDriverVersion, None),
            ("max_sm_clock_mhz", nv.nvmlDeviceGetMaxClockInfo, (nv.NVML_CLOCK_SM,)),
            ("max_mem_clock_mhz", nv.nvmlDeviceGetMaxClockInfo, (nv.NVML_CLOCK_MEM,)),
            ("power_limit_w", nv.nvmlDeviceGetPowerManagementLimit, ()),
            ("name", nv.nvmlDeviceGetName, ()),
            ("pcie_link_gen", nv.nvmlDeviceGetCurrPcieLinkGeneration, ()),
            # which physical GPU ran the suite: lent machines differ run to run, and a run's speed offset
            # (validation/run_offsets.py) can only be told apart from its shapes when the unit is known; published
            # as a short hash (tells units apart without publishing a lender's device identifiers)
            ("uuid_sha256", nv.nvmlDeviceGetUUID, ()),
            ("serial_sha256", nv.nvmlDeviceGetSerial, ()),
        ]:
            try:
                v = fn() if args is None else fn(self.h, *args)
                if isinstance(v, bytes):
                    v = v.decode()
                if key == "power_limit_w":
                    v = v / 1000.0
                if key.endswith("_sha256"):
                    v = hashlib.sha256(str(v).encode()).hexdigest()[:12]
                out[key] = v
            except Exception as exc:  # noqa: BLE001
                out[key] = f"n/a ({exc.__class__.__name__})"
        return out


class CsvOut:
    """Append rows to a CSV as they come (a killed run keeps what it measured). A non-empty file already
    there is refused, never truncated: it holds an earlier run's measurements."""

    def __init__(self, path, fields):
        self.path, self.fields = path, fields
        refuse_existing(path)
        self.f = open(path, "w", newline="")  # absent or empty: nothing is lost
        self.w = csv.DictWriter(self.f, fieldnames=fields, extrasaction="ignore")
        self.w.writeheader()
        self.n = 0

    def row(self, **kw):
        self.w.writerow({k: ("" if v is None else v) for k, v in kw.items()})
        self.f.flush()
        self.n += 1


OPS_FIELDS = ["section", "kind", "name", "fmt", "dims", "impl", "median_s", "p10_s", "p90_s",
              "min_s", "reps", "flops", "bytes_min", "sm_clock_mhz", "mem_clock_mhz", "temp_c",
              "power_w", "note"]
ENERGY_FIELDS = ["name", "kind", "fmt", "dims", "impl", "iters", "elapsed_s", "energy_j",
                 "avg_power_w", "time_per_iter_s", "energy_per_iter_j", "flops_per_iter",
                 "bytes_per_iter", "sm_clock_mhz", "temp_c", "note"]
E2E_FIELDS = ["model", "phase", "mode", "batch", "seq", "ctx", "layers", "layers_full", "hidden",
              "heads", "kv_heads", "head_dim", "intermediate", "vocab", "lm_head_tokens", "attn_impl",
              "fusion", "median_s", "p10_s", "p90_s", "reps", "kernels", "kernel_time_s", "sm_clock_mhz",
              "temp_c", "note"]


class Bench:
    def __init__(self, torch, nvml, flush_mb=256):
        self.torch = torch
        self.nvml = nvml
        self.dev = torch.device("cuda")
        # Read-flush: a clean 256 MB buffer, summed before every timed launch.
        self.flush_buf = torch.ones(flush_mb * 1024 * 1024 // 4, dtype=torch.float32, device=self.dev)

    def flush(self):
        self.flush_buf.sum()

    def time(self, fn, target_s=0.1, min_reps=3, max_reps=30, flush=True, warm=2):
        """Median/p10/p90 GPU time of one call of fn (seconds)."""
        torch = self.torch
        for _ in range(warm):
            fn()
        torch.cuda.synchronize()
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if flush:
            self.flush()
        s.record(); fn(); e.record()
        torch.cuda.synchronize()
        t1 = s.elapsed_time(e) / 1e3
        reps = int(max(min_reps, min(max_reps, target_s / max(t1, 1e-6))))
        evs = []
        for _ in range(reps):
            if flush:
                self.flush()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(); fn(); b.record()
            evs.append((a, b))
        torch.cuda.synchronize()
        ts = sorted(a.elapsed_time(b) / 1e3 for a, b in evs)
        import numpy as np
        arr = np.array(ts)
        return {"median_s": float(np.median(arr)), "p10_s": float(np.percentile(arr, 10)),
                "p90_s": float(np.percentile(arr, 90)), "min_s": float(arr[0]), "reps": reps}


# ----------------------------------------------------------------------------- sections

def git_state(src_dir=None, probe=None):
    """The git commit the measuring code runs at: {"git_commit": HEAD's hash or "unknown: <why>", "git_dirty":
    True / False (tracked files modified; untracked files such as the run's own output are not counted) or None
    when unknown}. Never fails: a tree copied without .git (as onto a device machine) or a machine without git
    says so in git_commit. `src_dir`: the tree to ask (default: the folder of this file); `probe`: a file of
    src_dir the repository must track (default: this file), so that a copy inside some other repository is
    not given that repository's commit."""
    import subprocess
    given = os.environ.get("COSIM_GIT_COMMIT", "").strip()
    if given:  # a device copy has no .git: whoever copied the tree says which commit it was
        return {"git_commit": f"{given} (given by the caller: COSIM_GIT_COMMIT)", "git_dirty": None}
    src = src_dir or os.path.dirname(os.path.abspath(__file__))
    probe = probe or (None if src_dir else os.path.basename(__file__))

    def git(*args):
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, timeout=30)

    try:
        inside = git("rev-parse", "--is-inside-work-tree")
    except FileNotFoundError:
        return {"git_commit": "unknown: git not installed", "git_dirty": None}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"git_commit": f"unknown: git did not run ({type(exc).__name__}: {exc})", "git_dirty": None}
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        why = (inside.stderr.strip().splitlines() or ["no .git"])[0]
        if "not a git repository" in why or why == "no .git":
            return {"git_commit": "unknown: not a git checkout", "git_dirty": None}
        return {"git_commit": f"unknown: git rev-parse failed ({why})", "git_dirty": None}
    if probe and git("ls-files", "--error-unmatch", "--", probe).returncode != 0:
        return {"git_commit": f"unknown: not a git checkout of this code (the enclosing repository does not "
                              f"track {probe})", "git_dirty": None}
    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        why = (head.stderr.strip().splitlines() or ["?"])[0]
        return {"git_commit": f"unknown: git rev-parse HEAD failed ({why})", "git_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"git_commit": head.stdout.strip(), "git_dirty": dirty}


def env_record(torch, nvml, src_dir=None):
    """The env.json record of a run: date, host, software, device properties, NVML readings and the git
    commit of the measuring code (git_state)."""
    p = torch.cuda.get_device_properties(0)
    info = {
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
        "device_name": p.name,
        "sm_count": p.multi_processor_count,
        "l2_bytes": getattr(p, "L2_cache_size", None),
        "total_mem_bytes": p.total_memory,
        "cc": f"{p.major}.{p.minor}",
        "max_threads_per_sm": getattr(p, "max_threads_per_multi_processor", None),
        "shared_mem_per_block_optin": getattr(p, "shared_memory_per_block_optin", None),
        "numpy": __import__("numpy").__version__,
    }
    try:
        import triton
        info["triton"] = triton.__version__
    except Exception:  # noqa: BLE001
        pass
    info.update({f"nvml_{k}": v for k, v in nvml.static_info().items()})
    info["nvml_state_start"] = nvml.state()
    info.update(git_state(src_dir))
    return info


def section_env(torch, nvml, out_dir):
    info = env_record(torch, nvml)
    with open(os.path.join(out_dir, "env.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)
    log("env: " + json.dumps(info, default=str))
    return info


def _row(out, bench, section, kind, name, fmt, dims, impl, t, flops, bytes_min, note=""):
    out.row(section=section, kind=kind, name=name, fmt=fmt, dims=json.dumps(dims, sort_keys=True),
            impl=impl, flops=flops, bytes_min=bytes_min, note=note, **t, **bench.nvml.state())


def section_launch(torch, bench, out):
    """Per-kernel overhead: eager (CPU-bound launches) and CUDA-graph replay of tiny kernels."""
    x = torch.zeros(1, device="cuda")
    n = 2000
    for _ in range(50):
        x.add_(1.0)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        x.add_(1.0)
    torch.cuda.synchronize()
    eager = (time.perf_counter() - t0) / n
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            x.add_(1.0)
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        for _ in range(n):
            x.add_(1.0)
    g.replay(); torch.cuda.synchronize()
    t = bench.time(lambda: g.replay(), target_s=0.2, flush=False)
    per = {k: (v / n if k.endswith("_s") else v) for k, v in t.items()}
    iso = bench.time(lambda: x.add_(1.0), target_s=0.05, min_reps=30, max_reps=60)
    _row(out, bench, "launch", "launch", "isolated_tiny_kernel", "fp32", {"kernels": 1}, "events_after_flush",
         iso, 0, 0, "event-timed single x.add_(1) after the L2 flush, as every op row is timed")
    _row(out, bench, "launch", "launch", "eager_tiny_kernel", "fp32", {"kernels": n}, "host_clock",
         {"median_s": eager, "p10_s": eager, "p90_s": eager, "min_s": eager, "reps": 1}, 0, 0,
         "wall time per launch of x.add_(1) in a Python loop (CPU-bound)")
    _row(out, bench, "launch", "launch", "graph_tiny_kernel", "fp32", {"kernels": n}, "cuda_graph",
         per, 0, 0, "GPU time per kernel of a graph of tiny kernels")
    log(f"launch: eager {eager * 1e6:.2f} us/launch, graph {per['median_s'] * 1e6:.2f} us/kernel")


GEMM_NK = [(4096, 4096), (1024, 4096), (14336, 4096), (4096, 14336), (11008, 4096), (4096, 11008),
           (128256, 4096), (32000, 4096), (6144, 4096), (28672, 8192), (8192, 28672), (8192, 8192),
           (1024, 8192), (12288, 4096)]
GEMM_M = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
GEMM_SQUARE = [256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192]
# Second, held-out suite (--variant heldout): shapes of other models (Qwen2.5-7B, Llama-2-13B,
# Llama-2/3-70B), non-power-of-two M and square sizes, none of which the default suite has.
HELDOUT = {
    "gemm_nk": [(3584, 3584), (512, 3584), (18944, 3584), (3584, 18944), (152064, 3584), (5120, 5120),
                (13824, 5120), (5120, 13824), (15360, 5120), (10240, 8192), (2048, 2048)],
    "gemm_m": [1, 3, 6, 12, 24, 48, 96, 192, 384, 768, 1536, 3072, 6144],
    "gemm_square": [384, 640, 1280, 2560, 5120, 7168],
}


# Third suite (--variant heldout2, issue 11): a fresh held-out set measured after the model
# changes of 2026-12-04 were frozen (rules in docs/gpu-validation.md). Shapes of models in
# neither earlier suite (Gemma-2-9B: 3584 -> 4096 / 14336, lm head 256000; Phi-3-mini: 3072 ->
# 9216 / 16384, 8192 -> 3072; Yi-34B: 7168 -> 20480), M = 5 x 2^k, other squares; attention
# head layouts 24/8, 48/8, 16/4 (d 128) and 12/12 (d 64), lengths 5 x 2^k; elementwise row
# widths 512..65536 the other suites do not have, sizes 5 x 2^k.
HELDOUT2 = {
    "gemm_nk": [(4096, 3584), (14336, 3584), (3584, 14336), (256000, 3584), (9216, 3072), (16384, 3072),
                (3072, 8192), (20480, 7168), (7168, 20480)],
    "gemm_m": [1, 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120],
    "gemm_square": [448, 896, 1792, 3584, 4608],
}


# Fit suite 3 (--variant fit3, issue 11, 2026-12-04 session 4): the fused GEMMs an engine runs
# (gate-up of Llama-3-8B 28672x4096 and Llama-2-7B 22016x4096, QKV of a 32/4 GQA model 5120x4096).
FIT3 = {
    "gemm_nk": [(28672, 4096), (22016, 4096), (5120, 4096)],
    "gemm_m": [1, 4, 16, 64, 256, 1024, 4096, 8192],
    "gemm_square": [],
}
# Held-out suite 3 (--variant heldout3): fresh shapes measured after the 2026-12-04 session-4
# freeze (rules in validation/heldout3_rules.md): fused QKV / gate-up / down GEMMs of
# Mistral-Nemo-12B (5120: 6144, 28672, 5120x14336), Qwen2.5-14B (7168x5120, 27648x5120),
# Gemma-2-27B (8192x4608, 73728x4608, 4608x36864, o_proj 4608x4096), Llama-3.2-3B QKV
# (5120x3072); M = 7 x 2^k (and 1).
HELDOUT3 = {
    "gemm_nk": [(6144, 5120), (4608, 4096), (28672, 5120), (5120, 14336), (7168, 5120), (27648, 5120),
                (8192, 4608), (73728, 4608), (4608, 36864), (5120, 3072)],
    "gemm_m": [1, 7, 14, 28, 56, 112, 224, 448, 896, 1792, 3584, 7168],
    "gemm_square": [320, 960, 1920, 3840, 5760],
}
# Held-out suite 4 (--variant heldout4, rules in validation/heldout4_rules.md): shapes drawn at
# random (seed HELDOUT4_SEED) from the acceptance classes' ranges, see heldout4_shapes.py.
if __package__:
    from cosim.calibrate.heldout4_shapes import (HELDOUT4, HELDOUT4_SEED, E2E_DECODE4, E2E_PREFILL4,  # noqa: E402,F401
                                                 heldout4_attention_cases, heldout4_elementwise_cases)
    from cosim.calibrate.heldout4_shapes import _draw as _draw_heldout, _gemm_cases, _layout, _logu  # noqa: E402
else:  # run as a script on the measurement machine, where the cosim package is not installed
    from heldout4_shapes import (HELDOUT4, HELDOUT4_SEED, E2E_DECODE4, E2E_PREFILL4,  # noqa: E402,F401
                                 heldout4_attention_cases, heldout4_elementwise_cases)
    from heldout4_shapes import _draw as _draw_heldout, _gemm_cases, _layout, _logu  # noqa: E402

GEMM_SUITES = {"heldout": HELDOUT, "heldout2": HELDOUT2, "fit3": FIT3, "heldout3": HELDOUT3, "heldout4": HELDOUT4}


# the default suite's GEMMs (and any variant without a list of its own): a grid, in GEMM_SUITES' form
DEFAULT_GEMM = {"gemm_nk": GEMM_NK, "gemm_m": GEMM_M, "gemm_square": GEMM_SQUARE}


def gemm_cases(suite: dict) -> list:
    """The (M, N, K) cases of a GEMM suite in the order section_gemm measures them: the N x K by M grid, the squares,
    then drawn triples (heldout4 on)."""
    return ([(m, n, k) for (n, k) in suite["gemm_nk"] for m in suite["gemm_m"]]
            + [(s, s, s) for s in suite["gemm_square"]] + list(suite.get("gemm_mnk", ())))


def section_gemm(torch, bench, out, budget_s, variant="default"):
    import torch.nn.functional as F
    t_start = time.time()
    dev = "cuda"
    has_fp8 = hasattr(torch, "float8_e4m3fn") and hasattr(torch, "_scaled_mm")
    one = torch.ones((), device=dev, dtype=torch.float32)
    cases = gemm_cases(GEMM_SUITES.get(variant, DEFAULT_GEMM))
    wcache = {}
    done = 0
    for (m, n, k) in cases:
        if time.time() - t_start > budget_s:
            log(f"gemm: budget {budget_s}s reached after {done} cases; skipping the rest")
            break
        key = (n, k)
        if key not in wcache:
            wcache.clear()
            torch.cuda.empty_cache()
            w = torch.randn(n, k, device=dev, dtype=torch.bfloat16) * 0.02
            w8 = (torch.randn(n, k, device=dev) ).to(torch.float8_e4m3fn) if has_fp8 else None
            wcache[key] = (w, w8)
        w, w8 = wcache[key]
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        flops = 2.0 * m * n * k
        try:
            t = bench.time(lambda: F.linear(a, w))
            _row(out, bench, "gemm", "gemm", "linear", "bf16", {"m": m, "n": n, "k": k}, "F.linear", t,
                 flops, 2.0 * (m * k + n * k + m * n))
        except Exception as exc:  # noqa: BLE001
            log(f"gemm bf16 {m}x{n}x{k} failed: {exc}")
        if has_fp8:
            a8 = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
            for fast in ((False, True) if (m in (16, 1024, 8192) and n <= 14336) else (False,)):
                try:
                    fn = lambda: torch._scaled_mm(a8, w8.t(), scale_a=one, scale_b=one,  # noqa: E731
                                                  out_dtype=torch.bfloat16, use_fast_accum=fast)
                    t = bench.time(fn)
                    _row(out, bench, "gemm", "gemm", "scaled_mm", "fp8_e4m3", {"m": m, "n": n, "k": k},
                         "torch._scaled_mm" + ("+fast_accum" if fast else ""), t, flops,
                         1.0 * (m * k + n * k) + 2.0 * m * n)
                except Exception as exc:  # noqa: BLE001
                    msg = str(exc).splitlines()[0][:200]
                    out.row(section="gemm", kind="gemm", name="scaled_mm", fmt="fp8_e4m3",
                            dims=json.dumps({"m": m, "n": n, "k": k}, sort_keys=True),
                            impl="torch._scaled_mm", note=f"FAILED: {msg}")
            del a8
        del a
        done += 1
        if done % 40 == 0:
            log(f"gemm: {done}/{len(cases)} cases, {time.time() - t_start:.0f}s")
    wcache.clear()
    torch.cuda.empty_cache()
    log(f"gemm: {done} cases in {time.time() - t_start:.0f}s")


def _sdpa_ctx(torch, backend):
    """"default" = no pin: PyTorch's own backend choice (cuDNN attention on Hopper in torch
    2.5+), which is what a user of F.scaled_dot_product_attention gets."""
    if backend == "default":
        import contextlib
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel([getattr(SDPBackend, backend)])


# attention implementations measured by the attention section: PyTorch's default choice, the
# two fused backends it can pin (cuDNN = FA3-class on Hopper, FlashAttention-2), and the
# unfused attention of a plain Hugging Face model (attn_implementation="eager")
ATTN_BACKENDS = ("default", "CUDNN_ATTENTION", "FLASH_ATTENTION", "unfused")


def backend_gqa(torch, backend):
    """Does this backend take GQA natively (enable_gqa=True)? Else K/V are expanded first
    (outside the timed region). None: the backend cannot run here at all."""
    import torch.nn.functional as F
    q = torch.randn(1, 8, 16, 128, device="cuda", dtype=torch.bfloat16)
    kv = torch.randn(1, 2, 16, 128, device="cuda", dtype=torch.bfloat16)
    kvf = kv.repeat_interleave(4, 1)
    for gqa in (True, False):
        try:
            with _sdpa_ctx(torch, backend):
                F.scaled_dot_product_attention(q, kv if gqa else kvf, kv if gqa else kvf, is_causal=True,
                                               enable_gqa=gqa)
                F.scaled_dot_product_attention(q[:, :, :1], kv if gqa else kvf, kv if gqa else kvf,
                                               is_causal=False, enable_gqa=gqa)
            torch.cuda.synchronize()
            return gqa
        except Exception as exc:  # noqa: BLE001
            log(f"sdpa {backend} enable_gqa={gqa} failed: {str(exc).splitlines()[0][:160]}")
    return None


def unfused_attention(torch, q, k, v, mask):
    """Hugging Face eager_attention_forward: repeat_kv (expand + copy), Q K^T, scale, additive
    mask, fp32 softmax, cast back, P V — six or seven kernels, the scores in HBM."""
    b, h, ql, d = q.shape
    kvh, kl = k.shape[1], k.shape[2]
    if h != kvh:
        k = k[:, :, None].expand(b, kvh, h // kvh, kl, d).reshape(b, h, kl, d)
        v = v[:, :, None].expand(b, kvh, h // kvh, kl, v.shape[-1]).reshape(b, h, kl, v.shape[-1])
    s = torch.matmul(q, k.transpose(2, 3)) * (d ** -0.5)
    if mask is not None:
        s = s + mask
    p = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(p, v)


def attn_mask(torch, ql, kl, device="cuda", dtype=None):
    """HF-style additive causal mask (1, 1, ql, kl): 0 where visible, dtype min above the diagonal."""
    dtype = dtype or torch.bfloat16
    m = torch.full((ql, kl), torch.finfo(dtype).min, device=device, dtype=dtype).triu(kl - ql + 1)
    return m[None, None]


def attention_policy(torch, backend="default"):
    """The attention used by the energy and end-to-end sections: `backend` (default: PyTorch's
    own choice, what users run) with native GQA when it takes it."""
    gqa = backend_gqa(torch, backend)
    if gqa is None:
        log(f"attention policy: {backend} unavailable; FLASH_ATTENTION used")
        return "FLASH_ATTENTION", bool(backend_gqa(torch, "FLASH_ATTENTION"))
    return backend, gqa


def _sdpa(torch, backend, gqa_native, q, k, v, causal, ctx=True):
    """SDPA on one backend. ctx=False: the caller already entered sdpa_kernel (the
    microbenchmarks do, once per section, so that the context manager's host time does
    not delay the launch past the L2 flush)."""
    import torch.nn.functional as F
    h, kvh = q.shape[1], k.shape[1]
    if h != kvh and not gqa_native:
        rep = h // kvh
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    if not ctx:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=(h != kvh and gqa_native))
    with _sdpa_ctx(torch, backend):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=(h != kvh and gqa_native))


def _decode_cases(batches, layouts, contexts, max_kv_bytes=8e9):
    """Decode cases (q_len 1, d 128) over batch x (heads, KV heads) x context, in that loop
    order, keeping those whose bf16 KV cache fits in max_kv_bytes."""
    return [("decode", b, h, kvh, 128, 1, ctx, False) for b in batches for (h, kvh) in layouts for ctx in contexts
            if 2 * b * kvh * ctx * 128 * 2 <= max_kv_bytes]


# Fit suite 5 (--variant fit5, measured in session 6 (run 8), merged and fitted since session 7): the shapes the held-out-4 tails were made of (docs/gpu-validation.md), drawn at
# random (seed FIT5_SEED) from narrow ranges around them. tests/test_fit5_suite.py pins the
# digest and asserts that no case is a case of any held-out suite.
FIT5_SEED = 20261204_5
FIT5_M_BANDS = ((129, 160), (193, 230), (257, 300), (385, 420), (513, 560), (1025, 1100))  # just above tiles
FIT5_DECODE_LAYOUTS = ((8, 1), (16, 1), (32, 1), (16, 8), (32, 16), (64, 32))  # MQA and GQA groups of 2
FIT5_PREFILL_LAYOUTS = ((32, 8, 128), (16, 8, 128), (8, 1, 128), (32, 32, 128), (16, 16, 64), (40, 20, 128))


def _fit5_gemm(rng, n_tile=108, n_small=48):
    """bf16 + fp8 GEMMs: M just above a tile multiple with N, K multiples of 128 log-uniform in
    [1024, 32768] (N x K <= 2^28, as heldout4), then small M (1-64) with K of 16-32 K (split-K)."""
    cases = []
    while len(cases) < n_tile:
        lo, hi = FIT5_M_BANDS[len(cases) % len(FIT5_M_BANDS)]
        m = rng.randint(lo, hi)
        n, k = (128 * int(round(_logu(rng, 8, 256))) for _ in range(2))
        if n * k <= 2 ** 28:
            cases.append((m, n, k))
    while len(cases) < n_tile + n_small:
        m, k = max(1, int(round(_logu(rng, 1, 64)))), 128 * rng.randint(128, 256)
        n = 128 * int(round(_logu(rng, 8, 128)))
        if n * k <= 2 ** 28:
            cases.append((m, n, k))
    return sorted(cases, key=lambda c: (c[1], c[2], c[0]))  # one weight allocation per (N, K)


def _distinct(rng, draw, n):
    out = set()
    while len(out) < n:
        out.add(draw(rng))
    return sorted(out)


def _fit5_attention(rng, n_prefill=7, n_batch=5, n_ctx=6):
    """Short causal prefill (200-500 tokens, batch 1-4) on six layouts; decode (d 128) per MQA /
    GQA-2 layout over its own 5 batches (log-uniform 1-128) x 6 contexts (log-uniform
    128-32768, half of them rounded to a multiple of 8)."""
    cases = [("prefill", rng.randint(1, 4), h, kvh, d, L, L, True)
             for (h, kvh, d) in FIT5_PREFILL_LAYOUTS for L in (rng.randint(200, 500) for _ in range(n_prefill))]
    for layout in FIT5_DECODE_LAYOUTS:
        batches = _distinct(rng, lambda r: max(1, int(round(_logu(r, 1, 128)))), n_batch)
        ctxs = _distinct(rng, lambda r: int(round(_logu(r, 128, 32768))), n_ctx)
        ctxs = [8 * max(16, round(c / 8)) if i % 2 else c for i, c in enumerate(ctxs)]
        cases += _decode_cases(batches, (layout,), ctxs)
    return cases


def _fit5_elementwise(rng, n_emb=32, n_soft=32, soft_cols=(10000, 16384)):
    """Embeddings (gathers) of 1-32 rows of widths 256 x U{4..64}; softmax rows soft_cols wide
    (uniform; fit5 10,000-16,384) over main-input sizes log-uniform in [64 KiB, 1 GiB]."""
    cases = []
    for _ in range(n_emb):
        rows, cols = rng.randint(1, 32), 256 * rng.randint(4, 64)
        cases.append(("embedding", cols, 2 * rows * cols))
    for _ in range(n_soft):
        cases.append(("softmax", rng.randint(*soft_cols), 2 * int(_logu(rng, 2 ** 16, 2 ** 30) / 2)))
    return cases


def _fit5_draw(seed=FIT5_SEED):
    rng = random.Random(seed)
    return _fit5_gemm(rng), _fit5_attention(rng), _fit5_elementwise(rng)


_GEMM5, _ATTN5, _EW5 = _fit5_draw()
FIT5 = {"gemm_mnk": _GEMM5, "gemm_nk": [], "gemm_m": [], "gemm_square": []}

# Held-out suite 5 (--variant heldout5, session 7; rules in validation/heldout5_rules.md): the
# held-out-4 distributions (heldout4_shapes._draw) with a new seed, plus the tail classes drawn
# by the fit-5 functions above from a second generator of that seed with fewer cases each:
# 24 + 8 GEMMs, 12 short causal prefills (2 per layout), 24 MQA / GQA-2 decodes (2 batches x 2
# contexts per layout), 12 small embeddings, 12 wide softmaxes.
HELDOUT5_SEED = 20261204_7


def _heldout_with_tails(seed):
    """heldout5's construction, by seed (heldout6 reuses it): the held-out-4 draw of `seed` plus
    the fit-5 tail functions on a second generator seeded seed + 1. Returns (GEMM suite, attention
    draw, attention tails, elementwise draw, elementwise tails, GEMM tails, e2e decode, e2e prefill)."""
    g, a, e, dec, pre = _draw_heldout(seed)
    tail = random.Random(seed + 1)
    gt, at, et = _fit5_gemm(tail, 24, 8), _fit5_attention(tail, 2, 2, 2), _fit5_elementwise(tail, 12, 12)
    suite = {"gemm_mnk": sorted(g + gt, key=lambda c: (c[1], c[2], c[0])), "gemm_nk": [], "gemm_m": [],
             "gemm_square": []}
    return suite, a, at, e, et, gt, dec, pre


HELDOUT5, _A5, _AT5, _E5, _ET5, _GT5, E2E_DECODE5, E2E_PREFILL5 = _heldout_with_tails(HELDOUT5_SEED)
GEMM_SUITES["heldout5"] = HELDOUT5
GEMM_SUITES["fit5"] = FIT5

# Fit suite 6 (--variant fit6, session 7, second round): more fit rows of the classes heldout5
# missed (docs/gpu-validation.md, session 7), from seeds no held-out suite uses: the held-out-4
# distributions drawn with FIT6_SEED (every acceptance class, no end to end), then on a second
# generator (FIT6_SEED + 1): fp8/bf16 GEMMs with M just above a tile multiple and small-M
# long-K (fit-5 function), causal prefills at lengths no multiple of 128, decode at short
# contexts (128-1024) over batch 1-128 and long contexts at small batch, softmax rows 8-32 K.
FIT6_SEED = 20261204_60


def _fit6_prefill(rng, n=48):
    """Causal prefill on held-out-4 layouts, length uniform 129..4000 and no multiple of 128,
    batch 1..4 with batch x length <= 24576 (FA2's partial last tile on the causal diagonal)."""
    cases = []
    while len(cases) < n:
        h, kvh, d = _layout(rng)
        L, b = rng.randint(129, 4000), rng.randint(1, 4)
        if L % 128 and b * L <= 24576:
            cases.append(("prefill", b, h, kvh, d, L, L, True))
    return cases


def _fit6_decode(rng, n_short=48, n_long=24):
    """Decode (d 128) on held-out-4 layouts: n_short at context log-uniform 128-1024 and batch
    log-uniform 1-128; n_long at context log-uniform 4096-32768 and batch 1-8."""
    cases = []
    while len(cases) < n_short + n_long:
        h, kvh, d = _layout(rng, 128)
        short = len(cases) < n_short
        b = int(round(_logu(rng, 1, 128))) if short else rng.randint(1, 8)
        ctx = int(round(_logu(rng, 128, 1024) if short else _logu(rng, 4096, 32768)))
        if 2 * b * kvh * ctx * 128 * 2 <= 8e9:
            cases.append(("decode", b, h, kvh, 128, 1, ctx, False))
    return cases


def _fit6_draw(seed=FIT6_SEED):
    g, a, e, _, _ = _draw_heldout(seed)
    rng = random.Random(seed + 1)
    gt = _fit5_gemm(rng, 48, 16)
    at = _fit6_prefill(rng) + _fit6_decode(rng)
    et = _fit5_elementwise(rng, 0, 40, (8192, 32768))
    return sorted(g + gt, key=lambda c: (c[1], c[2], c[0])), a + at, e + et


_GEMM6, _ATTN6, _EW6 = _fit6_draw()
GEMM_SUITES["fit6"] = {"gemm_mnk": _GEMM6, "gemm_nk": [], "gemm_m": [], "gemm_square": []}

# Held-out suite 6 (--variant heldout6, session 7 second round; rules in validation/heldout6_rules.md):
# heldout5's construction (_heldout_with_tails) with a new seed, plus fit suite 6's tail functions on
# a third generator (seed + 2) with fewer cases: 12 causal prefills at lengths no multiple of 128,
# 12 short-context + 6 long-context decodes, 12 softmaxes of 8-32 K-wide rows.
HELDOUT6_SEED = 20261204_80
HELDOUT6, _A6, _AT6, _E6, _ET6, _GT6, E2E_DECODE6, E2E_PREFILL6 = _heldout_with_tails(HELDOUT6_SEED)
_tail6 = random.Random(HELDOUT6_SEED + 2)
_AT6 = _AT6 + _fit6_prefill(_tail6, 12) + _fit6_decode(_tail6, 12, 6)
_ET6 = _ET6 + _fit5_elementwise(_tail6, 0, 12, (8192, 32768))
GEMM_SUITES["heldout6"] = HELDOUT6

# Fit suite 7 (--variant fit7, session 8): more fit rows of the classes heldout6 missed
# (docs/gpu-validation.md, session 7 second round), from seeds no held-out suite uses: the held-out-4
# distributions drawn with FIT7_SEED (every acceptance class, on all four attention implementations,
# so unfused prefill/decode, FA2 decode and elementwise get fresh fit rows), then on a second
# generator (FIT7_SEED + 1): 120 more GEMMs of the held-out-4 distribution (the bf16 GEMM median
# miss), 24 causal prefills (fit-6 function), and the decode grid below; then 60 more elementwise
# cases of the held-out-4 distribution.
FIT7_SEED = 20261204_77  # the first seed from 2026120470 whose draw shares no shape with an earlier suite (70-76 each drew 1-2)
FIT7_DECODE_KVH = (1, 1, 1, 2, 4, 8, 16)  # MQA weighted: MQA decode on default/cuDNN ran ~9 % slower than priced
FIT7_DECODE_GROUPS = (1, 2, 4, 5, 6, 8, 16, 32)


def _fit7_decode(rng, n_short=96, n_long=48, kv_heads=FIT7_DECODE_KVH, groups=FIT7_DECODE_GROUPS):
    """Decode (d 128) over KV-head groups 1..64 (kv heads FIT7_DECODE_KVH, heads 8..64): n_short at
    context log-uniform 128-2048 and batch log-uniform 1-128 (cuDNN/default decode kernel time vs work
    per CTA where its p90 tail was), n_long at context log-uniform 2048-32768, batch 1-32. Fit suite 8
    draws its own KV heads and groups (_fit8_decode)."""
    cases = []
    while len(cases) < n_short + n_long:
        kvh, g = rng.choice(kv_heads), rng.choice(groups)
        if not 8 <= kvh * g <= 64:
            continue
        short = len(cases) < n_short
        b = int(round(_logu(rng, 1, 128 if short else 32)))
        ctx = int(round(_logu(rng, 128, 2048) if short else _logu(rng, 2048, 32768)))
        if 2 * b * kvh * ctx * 128 * 2 <= 8e9:
            cases.append(("decode", b, kvh * g, kvh, 128, 1, ctx, False))
    return cases


def _fit7_draw(seed=FIT7_SEED):
    g, a, e, _, _ = _draw_heldout(seed)
    rng = random.Random(seed + 1)
    gt = _gemm_cases(rng, 120)
    at = _fit6_prefill(rng, 24) + _fit7_decode(rng)
    et = _draw_heldout(seed + 2)[2][:60]
    return sorted(g + gt, key=lambda c: (c[1], c[2], c[0])), a + at, e + et


_GEMM7, _ATTN7, _EW7 = _fit7_draw()
GEMM_SUITES["fit7"] = {"gemm_mnk": _GEMM7, "gemm_nk": [], "gemm_m": [], "gemm_square": []}

# Held-out suite 7 (--variant heldout7, session 8; rules in validation/heldout7_rules.md): heldout6's
# construction with a new seed (heldout5's construction by seed, plus fit suite 6's tail functions on a
# third generator), plus fit suite 7's decode grid on a fourth generator (seed + 3) with fewer cases:
# 24 short-context and 12 long-context decodes over KV-head groups 1..64.
HELDOUT7_SEED = 20261204_92  # the first seed from 2026120490 whose draw shares no shape with an earlier suite (90, 91: one each)


def _heldout7_draw(seed=HELDOUT7_SEED):
    suite, a, at, e, et, gt, dec, pre = _heldout_with_tails(seed)
    tail = random.Random(seed + 2)
    at = at + _fit6_prefill(tail, 12) + _fit6_decode(tail, 12, 6)
    et = et + _fit5_elementwise(tail, 0, 12, (8192, 32768))
    at = at + _fit7_decode(random.Random(seed + 3), 24, 12)
    return suite, a, at, e, et, dec, pre


HELDOUT7, _A7, _AT7, _E7, _ET7, E2E_DECODE7, E2E_PREFILL7 = _heldout7_draw()
GEMM_SUITES["heldout7"] = HELDOUT7

# Fit suite 8 (--variant fit8, session 8 second round): more fit rows of the classes heldout7 missed
# (docs/gpu-validation.md, session 8), from seeds no held-out suite uses: the held-out-4 distributions
# drawn with FIT8_SEED (every acceptance class on all four attention implementations, so unfused
# prefill/decode get fresh fit rows), then on a second generator (FIT8_SEED + 1) the tail functions
# below: split-K GEMMs (small M, long K: fp8 ran up to 40 % slower than priced) and few-tile long-K
# GEMMs (M 500-1100: up to 34 % faster), one- and two-wave causal prefills (FA2 200-500 tokens -21 %),
# decodes over GQA groups 2 and 4 at short contexts (cuDNN +28 / -26 %), and elementwise cases of the
# kinds heldout7 missed (rmsnorm, softmax, copy, add_rmsnorm, rope_fused).
FIT8_SEED = 20261204_105  # the first seed from 20261204100 whose draw shares no shape with an earlier suite (100-104: 1-4 each)
FIT8_EW_KINDS = ("copy", "rmsnorm", "add_rmsnorm", "softmax", "rope_fused")


def _fit8_gemm(rng, n_splitk=60, n_long=36):
    """Split-K GEMMs: M log-uniform 40-320, N 128 x U{8..24}, K 128 x U{32..224} (K 4-28 K); few-tile
    long-K GEMMs: M 480-1150, N 128 x U{8..24}, K 128 x U{80..224}."""
    cases = []
    while len(cases) < n_splitk + n_long:
        splitk = len(cases) < n_splitk
        m = int(round(_logu(rng, 40, 320))) if splitk else rng.randint(480, 1150)
        n, k = 128 * rng.randint(8, 24), 128 * rng.randint(32 if splitk else 80, 224)
        cases.append((m, n, k))
    return cases


def _fit8_prefill(rng, n=60):
    """Causal prefill on held-out-4 layouts, length uniform 129..1024 (a quarter rounded to a multiple
    of 64), batch 1..4, launching one or two waves of FA2 CTAs (batch x heads x 128-row query blocks
    <= 2 x 132)."""
    cases = []
    while len(cases) < n:
        h, kvh, d = _layout(rng)
        L, b = rng.randint(129, 1024), rng.randint(1, 4)
        if len(cases) % 4 == 3:
            L = 64 * max(3, round(L / 64))
        if b * h * math.ceil(L / 128) <= 264:
            cases.append(("prefill", b, h, kvh, d, L, L, True))
    return cases


FIT8_DECODE_KVH = (1, 2, 4, 8, 16)
FIT8_DECODE_GROUPS = (2, 2, 4, 4, 8)  # GQA groups 2 and 4 weighted (cuDNN decode -26..+34 % at group 2)


def _fit8_decode(rng, n_short=72, n_long=24):
    """Fit suite 7's decode grid (_fit7_decode) over GQA groups 2 and 4 (and 8): KV heads FIT8_DECODE_KVH,
    heads 8..64; n_short at context 128-2048 and batch 1-128, n_long at 2048-32768, batch 1-32."""
    return _fit7_decode(rng, n_short, n_long, FIT8_DECODE_KVH, FIT8_DECODE_GROUPS)


def _fit8_elementwise(rng, n=100):
    """The held-out-4 elementwise distribution restricted to FIT8_EW_KINDS."""
    cases = []
    while len(cases) < n:
        c = _draw_heldout(rng.randrange(2 ** 31))[2]
        cases += [x for x in c if x[0] in FIT8_EW_KINDS][:5]
    return cases[:n]


def _fit8_draw(seed=FIT8_SEED):
    g, a, e, _, _ = _draw_heldout(seed)
    rng = random.Random(seed + 1)
    gt = _fit8_gemm(rng)
    at = _fit8_prefill(rng) + _fit8_decode(rng)
    et = _fit8_elementwise(rng)
    return sorted(g + gt, key=lambda c: (c[1], c[2], c[0])), a + at, e + et


_GEMM8, _ATTN8, _EW8 = _fit8_draw()
GEMM_SUITES["fit8"] = {"gemm_mnk": _GEMM8, "gemm_nk": [], "gemm_m": [], "gemm_square": []}


# Held-out suite 8 (--variant heldout8, session 8 second round; rules in validation/heldout8_rules.md):
# heldout7's construction with a new seed (_heldout7_draw: heldout5's construction, fit suite 6's tails,
# fit suite 7's decode grid), plus fit suite 8's tail functions on a fifth generator (seed + 4) with
# fewer cases: 20 split-K and 12 few-tile long-K GEMMs, 16 one/two-wave causal prefills, 24 short- and 8
# long-context decodes over GQA groups 2-8, 30 elementwise cases of FIT8_EW_KINDS.
HELDOUT8_SEED = 20261204_152  # the first seed from 20261204120 whose draw shares no shape with an earlier suite (120-151: 1-5 each)


def _heldout8_draw(seed=HELDOUT8_SEED):
    suite, a, at, e, et, dec, pre = _heldout7_draw(seed)
    tail = random.Random(seed + 4)
    gt = _fit8_gemm(tail, 20, 12)
    at = at + _fit8_prefill(tail, 16) + _fit8_decode(tail, 24, 8)
    et = et + _fit8_elementwise(tail, 30)
    suite = {**suite, "gemm_mnk": sorted(suite["gemm_mnk"] + gt, key=lambda c: (c[1], c[2], c[0]))}
    return suite, a, at, e, et, dec, pre


# the suites drawn with this construction: name -> (gemm suite, attention, attention tails, elementwise, elementwise
# tails, e2e decode points, e2e prefill points); GEMM_SUITES, the attention / elementwise case lists, E2E_POINTS and
# --variant read them from here, so a new suite is one line
HELDOUT8_DRAWS = {"heldout8": _heldout8_draw()}

# Held-out suite 9 (--variant heldout9, session 8 third round; rules in validation/heldout9_rules.md):
# heldout8's construction (_heldout8_draw) with a new seed.
# the first seed from 20261204200 whose draw shares no shape with an earlier suite (200-229: 1-7 each)
HELDOUT9_SEED = 20261204_230
HELDOUT8_DRAWS["heldout9"] = _heldout8_draw(HELDOUT9_SEED)

# Held-out suite 10 (--variant heldout10, session 9; rules in validation/heldout10_rules.md): heldout8's
# construction (_heldout8_draw) with a seed from a new base: the first from 20261205000 whose draw shares no
# shape with an earlier suite (20261205000-002: 4-6 each)
HELDOUT10_SEED = 20261205_003
HELDOUT8_DRAWS["heldout10"] = _heldout8_draw(HELDOUT10_SEED)

# Held-out suite 11 (--variant heldout11, session 10; rules in validation/heldout11_rules.md; RETIRED unmeasured in
# session 11, see RETIRED_SUITES below): heldout8's
# construction (_heldout8_draw) with a seed from a new base: the first from 20261205100 whose draw shares no
# shape with an earlier suite (20261205100-105: 1-8 each)
HELDOUT11_SEED = 20261205_106
HELDOUT8_DRAWS["heldout11"] = _heldout8_draw(HELDOUT11_SEED)

# Held-out suite 12 (--variant heldout12, session 11; rules in validation/heldout12_rules.md; RETIRED unmeasured in
# session 12, see RETIRED_SUITES below): heldout8's
# construction (_heldout8_draw) with a seed from a new base: the first from 20261205200 whose draw shares no
# shape with an earlier suite, heldout11 included (20261205200-234: 1-8 each). heldout11 was retired unmeasured
# when the session-11 model changed its prices (validation/heldout11_rules.md says so).
HELDOUT12_SEED = 20261205_235
HELDOUT8_DRAWS["heldout12"] = _heldout8_draw(HELDOUT12_SEED)

# Held-out suite 13 (--variant heldout13, session 12; rules in validation/heldout13_rules.md): heldout8's
# construction (_heldout8_draw) with a seed from a new base, 20261205300 (the next hundred after the bases of
# sessions 9-11, 20261205000 / 100 / 200, so no seed or generator of an earlier suite lies in it): the first seed
# from it whose draw shares no shape with an earlier suite, heldout11 and heldout12 included (20261205300-378:
# 1-10 each). heldout12 was retired unmeasured when round 7's FA2 soft_c (session 12) moved its FA2 prefill
# prices (validation/heldout12_rules.md says so).
HELDOUT13_SEED = 20261205_379
HELDOUT8_DRAWS["heldout13"] = _heldout8_draw(HELDOUT13_SEED)

# Held-out suite 14 (--variant heldout14, session 15; rules in validation/heldout14_rules.md): heldout8's
# construction with a seed from a new base, 20261205400: the first seed from it whose draw shares no shape with an
# earlier suite, heldout13 included (20261205400-522: 1 or more each). Drawn for the H100 re-fit prepared in
# session 15 (validation/h100_refit_s15.py), not adopted yet: measured only after that re-fit is frozen.
HELDOUT14_SEED = 20261205_523
HELDOUT8_DRAWS["heldout14"] = _heldout8_draw(HELDOUT14_SEED)

# Held-out suite 15 (--variant heldout15, session 18; rules in validation/heldout15_rules.md): heldout8's
# construction with a seed from a new base, 20261205600 (above every seed and generator of heldout14's search,
# which ran to 20261205523 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout14
# included (20261205600-20261206043: 1-14 each). Drawn for the round-9 model (a measured-residual correction per
# op class, validation/model_selection/s18_residual_candidates.py), measured on the H200 and / or the H100 only
# after that model is frozen.
HELDOUT15_SEED = 20261206_044  # = 20261205600 + 444
HELDOUT8_DRAWS["heldout15"] = _heldout8_draw(HELDOUT15_SEED)

# Held-out suite 16 (--variant heldout16, session 18; rules in validation/heldout16_rules.md): heldout8's
# construction with a seed from a new base, 20261206200 (above every seed and generator of heldout15's search,
# which ran to 20261206044 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout15
# included (20261206200-20261206359: 1-11 each). Drawn for the round-10 model (round 9's measured-residual
# correction with the choices of validation/model_selection/s19_residual_candidates.py), measured on the H200 and / or
# the H100 only after that model is frozen.
HELDOUT16_SEED = 20261206_360  # = 20261206200 + 160
HELDOUT8_DRAWS["heldout16"] = _heldout8_draw(HELDOUT16_SEED)

# Held-out suite 17 (--variant heldout17, session 19; rules in validation/heldout17_rules.md): heldout8's
# construction with a seed from a new base, 20261207000 (above every seed and generator of heldout16's search,
# which ran to 20261206360 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout16
# included (20261207000-20261207109: 1-14 each). Drawn for the round-11 model (the round-10 model with the choices of
# validation/model_selection/s20_residual_candidates.py), measured on the H200 and / or the H100 only after that
# model is frozen.
HELDOUT17_SEED = 20261207_110  # = 20261207000 + 110
HELDOUT8_DRAWS["heldout17"] = _heldout8_draw(HELDOUT17_SEED)

# Held-out suite 18 (--variant heldout18, session 20; rules in validation/heldout18_rules.md): heldout8's
# construction with a seed from a new base, 20261208000 (above every seed and generator of heldout17's search,
# which ran to 20261207110 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout17
# included (20261208000-20261208156: 1-12 each). Drawn for the round-12 model (the round-11 model with the choices of
# validation/model_selection/s23_row_iters.py), measured on the H200 and / or the H100 only after that model is
# frozen.
HELDOUT18_SEED = 20261208_157  # = 20261208000 + 157
HELDOUT8_DRAWS["heldout18"] = _heldout8_draw(HELDOUT18_SEED)

# Held-out suite 19 (--variant heldout19, session 23; rules in validation/heldout19_rules.md): heldout8's
# construction with a seed from a new base, 20261209000 (above every seed and generator of heldout18's search,
# which ran to 20261208157 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout18
# included, heldout11 and heldout12 (retired) too (20261209000-20261209459: 1-15 each). Drawn for the round-14 model
# (the round-13 model with the choices of validation/model_selection/s25_graph_terms.py), measured on the H200 and /
# or the H100 only after that model is frozen.
HELDOUT19_SEED = 20261209_460  # = 20261209000 + 460
HELDOUT8_DRAWS["heldout19"] = _heldout8_draw(HELDOUT19_SEED)

# Held-out suite 20 (--variant heldout20, session 24; rules in validation/heldout20_rules.md): heldout8's
# construction with a seed from a new base, 20261211000 (above every seed and generator of heldout19's search,
# which ran to 20261209460 + 4, and of fit9's, 20261210000 - 20261210028): the first seed from it whose draw shares no
# shape with an earlier suite, fit9 and heldout19 included (20261211000-20261211253: 1-13 each). Drawn for the
# round-15 model (round 14 re-fitted on the H100 with fit suite 9), measured on the H200 and / or the H100 only after
# that model is frozen.
HELDOUT20_SEED = 20261211_254  # = 20261211000 + 254
HELDOUT8_DRAWS["heldout20"] = _heldout8_draw(HELDOUT20_SEED)

# Held-out suite 21 (--variant heldout21, session 24; rules in validation/heldout21_rules.md): heldout8's
# construction with a seed from a new base, 20261213000 (above every seed and generator of heldout20's search,
# 20261211000 - 20261211254 + 4, and of fit10's, 20261212000 - 20261212105): the first seed from it whose draw shares no
# shape with an earlier suite, fit10 and heldout20 included (20261213000-20261214231: 2-16 each; 1,232 seeds). Drawn for
# the round-16 model (round 15 re-fitted on the H100 with fit suite 10), measured on the H200 and / or the H100 only
# after that model is frozen.
HELDOUT21_SEED = 20261214_232  # = 20261213000 + 1232
HELDOUT8_DRAWS["heldout21"] = _heldout8_draw(HELDOUT21_SEED)

# Held-out suite 22 (--variant heldout22, session 24; rules in validation/heldout22_rules.md): heldout8's
# construction with a seed from a new base, 20261215000 (above every seed and generator of heldout21's search,
# 20261213000 - 20261214232 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout21
# included (20261215000-20261216543: 1-21 each; 1,544 seeds). Drawn for the round-17 model (round 16 with the H100's
# measured-residual classes re-chosen by validation/model_selection/s29_fit10_residuals.py), measured on the H200 and /
# or the H100 only after that model is frozen.
HELDOUT22_SEED = 20261216_544  # = 20261215000 + 1544
HELDOUT8_DRAWS["heldout22"] = _heldout8_draw(HELDOUT22_SEED)

# Held-out suite 23 (--variant heldout23, session 26; rules in validation/heldout23_rules.md): heldout8's
# construction with a seed from a new base, 20261217000 (above every seed and generator of heldout22's search,
# 20261215000 - 20261216544 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout22
# included (20261217000-20261217116: 1-16 each; 117 seeds). Drawn for the round-18 model (round 17 with the H100's
# FA2-pinned prefill priced as the kernel FlashAttention-2 runs, validation/model_selection/s33_fa2_kernels.py's GMS:
# the split-KV kernel and its combine where FA2's rule splits, the uneven-length terms only past the masking steps of
# a one-pass launch, a greedy two-slot-per-SM CTA schedule; re-fitted), measured on the H200 and / or the H100 only
# after that model is frozen.
HELDOUT23_SEED = 20261217_117  # = 20261217000 + 117
HELDOUT8_DRAWS["heldout23"] = _heldout8_draw(HELDOUT23_SEED)

# Held-out suite 24 (--variant heldout24, session 27; rules in validation/heldout24_rules.md): heldout8's
# construction with a seed from a new base, 20261218000 (above every seed and generator of heldout23's search,
# 20261217000 - 20261217117 + 4): the first seed from it whose draw shares no shape with an earlier suite, heldout23
# included (20261218000-20261219568 each share shapes with one; 1,569 seeds). Drawn for the round-19 model (round 18
# with the H200's FA2-pinned prefill priced with round 18's form, validation/model_selection/s35_h200_fa2_kernels.py's
# K; the H200 re-fitted, the H100 unchanged), measured on the H200 and / or the H100 only after that model is frozen.
HELDOUT24_SEED = 20261219_569  # = 20261218000 + 1569
HELDOUT8_DRAWS["heldout24"] = _heldout8_draw(HELDOUT24_SEED)

# Fit suite 9 (--variant fit9, session 24): fit rows of the two op classes heldout19's H100 draw missed on the p90
# (docs/gpu-validation.md "Issue 11 status, session 23"), where the fit suites hold few rows: FA2 causal prefill
# launching one or two waves of CTAs at lengths 129-1,024, head dims 64 and 128 alternating (fit8's draw made a
# third of them d 64: one fit row of a d-64 single wave filling more than half the SMs on the H100), and few-tile
# GEMMs with a long K (M 160-1,150). Only these two sections: nothing else is re-measured. Seed from a new base,
# 20261210000 (above every seed and generator of heldout19's search): the first whose draw shares no shape with
# an earlier suite.
FIT9_SEED = 20261210_028  # = 20261210000 + 28 (000-027: 2-7 shapes shared each)


WAVE_SMS = 132  # SMs of an H100 SXM / H200: the wave size the tail-only fit suites draw their launches around


def _wave_prefill(rng, n, min_len, waves, per_band, even, min_blocks=1, noncausal=lambda i: False):
    """Prefill cases, batch 1-4, length uniform min_len..1,024, head dim 64 and 128 alternating, launching a given
    number of waves of FA2-class 128-row query-block CTAs: case i launches waves[(i // per_band) % len(waves)] waves
    (CTAs in (132 (w - 1), 132 w]); `even(i)` rounds its length to a multiple of 128 (at least min_blocks blocks);
    `noncausal(i)` makes it non-causal. Draws are distinct."""
    cases = []
    while len(cases) < n:
        i = len(cases)
        h, kvh, d = _layout(rng, 64 if i % 2 else 128)
        L, b = rng.randint(min_len, 1024), rng.randint(1, 4)
        if even(i):
            L = 128 * max(min_blocks, round(L / 128))
        w = waves[(i // per_band) % len(waves)]
        c = ("prefill", b, h, kvh, d, L, L, not noncausal(i))
        if WAVE_SMS * (w - 1) < b * h * math.ceil(L / 128) <= WAVE_SMS * w and c not in cases:
            cases.append(c)
    return cases


def _fit9_prefill(rng, n=160):
    """Causal prefill, length 129..1,024, in blocks of eight cases: the even blocks launch one wave, the odd ones two;
    the last two cases of each block have their length rounded to a multiple of 128 (the even kernel beside the
    uneven one, both head dims)."""
    return _wave_prefill(rng, n, 129, (1, 2), 8, even=lambda i: i % 8 >= 6, min_blocks=2)


def _fit9_gemm(rng, n_mid=40, n_long=80):
    """Few-tile long-K GEMMs: M 160-479 (n_mid) and 480-1,150 (n_long, fit8's range), N 128 x U{8..24},
    K 128 x U{64..224} (K 8-28 K)."""
    cases = []
    while len(cases) < n_mid + n_long:
        m = rng.randint(160, 479) if len(cases) < n_mid else rng.randint(480, 1150)
        c = (m, 128 * rng.randint(8, 24), 128 * rng.randint(64, 224))
        if c not in cases:
            cases.append(c)
    return cases


def _fit9_draw(seed=FIT9_SEED):
    rng = random.Random(seed)
    gt = _fit9_gemm(rng)
    return sorted(gt, key=lambda c: (c[1], c[2], c[0])), _fit9_prefill(rng)


_GEMM9, _ATTN9 = _fit9_draw()
GEMM_SUITES["fit9"] = {"gemm_mnk": _GEMM9, "gemm_nk": [], "gemm_m": [], "gemm_square": []}
# Fit suite 10 (--variant fit10, session 24, after heldout20 on the H100): more fit rows of the one class heldout20's
# H100 draw missed (FA2-pinned prefill, p90 16.7: short causal and non-causal launches of one to three waves, both
# signs), where round 15's FA2 candidates (validation/model_selection/s27_fa2_waves.py) gained without resolving.
# Attention only. Seed from a new base, 20261212000 (above heldout20's search, 20261211000 - 20261211254 + 4): the first
# whose draw shares no shape with an earlier suite.
FIT10_SEED = 20261212_105  # = 20261212000 + 105 (000-104: 1-11 shapes shared each)


def _fit10_prefill(rng, n=240):
    """Prefill, length 65..1,024; every fourth pair of cases (both head dims) non-causal; one, two and three waves in
    turn per block of six cases; every fifth length rounded to a multiple of 128."""
    return _wave_prefill(rng, n, 65, (1, 2, 3), 6, even=lambda i: i % 5 == 4, noncausal=lambda i: (i // 2) % 4 == 3)


_ATTN10 = _fit10_prefill(random.Random(FIT10_SEED))
# the sections a tail-only fit suite defines: any other section would measure the default suite's cases under its name
SUITE_SECTIONS = {"fit9": ("gemm", "attention"), "fit10": ("attention",)}

# held-out suites retired before any row of them was measured: the model they were frozen for changed their
# prices, so measuring them would test no committed model (a new suite replaces each). run() / main() here and
# cosim calibrate / dataset.merge_run refuse them.
GEMM_SUITES.update({name: d[0] for name, d in HELDOUT8_DRAWS.items()})
RETIRED_SUITES = {"heldout11": "drawn for the session-10 model (frozen at 7afb60e) and never measured; the session-11 "
                               "model moves its prices (validation/heldout11_rules.md); its replacement heldout12 is "
                               "retired too; heldout13 replaced both (measured in "
                               "run h200_run18, session 13)",
                  "heldout12": "drawn for the session-11 model (frozen at 504579c) and never measured; round 7's FA2 "
                               "soft_c (session 12) moves its FA2 prefill prices (validation/heldout12_rules.md); "
                               "heldout13 replaced it (measured in run h200_run18, session 13)"}

# Fit suite 11 (--variant fit11, session 31): fresh GEMM rows (bf16 and fp8) from the held-out suites' own GEMM
# distribution (heldout8's construction: the held-out-4 draw, fit5's and fit8's tails), for the next GEMM round's model
# selection. The H100's GEMM fit rows' carved validation part has been scored twice (s16's second opinion, s36's
# round 20); a round designed on the fit rows scores its candidates once on these rows instead, then re-fits on all
# (validation/fit11_rules.md, written before the run). The GEMM parts of heldout8 draws at FIT11_SEEDS (10 apart: a
# draw uses generators seed .. seed + 4), from a new base above every seed and generator of heldout24's search; a
# shape any earlier suite measured, or an earlier draw of this suite holds, is left out.
FIT11_SEEDS = tuple(20261221_000 + 10 * i for i in range(6))


def _fit11_draw(seeds=FIT11_SEEDS):
    seen = {tuple(c) for g in (DEFAULT_GEMM, *GEMM_SUITES.values()) for c in gemm_cases(g)}
    cases = []
    for seed in seeds:
        for c in _heldout8_draw(seed)[0]["gemm_mnk"]:
            if c not in seen:
                seen.add(c)
                cases.append(c)
    return sorted(cases, key=lambda c: (c[1], c[2], c[0]))  # one weight allocation per (N, K)


GEMM_SUITES["fit11"] = {"gemm_mnk": _fit11_draw(), "gemm_nk": [], "gemm_m": [], "gemm_square": []}
SUITE_SECTIONS["fit11"] = ("gemm",)
# Fit suite 12 (--variant fit12, session 32): fit11's construction at eight fresh seeds, as round 22's validation rows
# (validation/fit12_rules.md, written before the run): fit11 was read by round 21 and by the design of round 22, so it
# is fitted in round 22 and these rows are the unseen ones. Drawn after fit11, so its shapes are left out too.
FIT12_SEEDS = tuple(20261221_100 + 10 * i for i in range(8))
GEMM_SUITES["fit12"] = {"gemm_mnk": _fit11_draw(FIT12_SEEDS), "gemm_nk": [], "gemm_m": [], "gemm_square": []}
SUITE_SECTIONS["fit12"] = ("gemm",)

# Held-out suite 25 (--variant heldout25, session 32; rules in validation/heldout25_rules.md): heldout8's construction
# with a seed from a new base, 20261221200 (above every seed and generator of fit12's draws, 20261221100 - 20261221170
# + 4): the first seed from it whose draw shares no shape with an earlier suite, fit11, fit12 and the default GEMM grid
# included (20261221200-20261228716 each share shapes with one; 7,517 seeds). Drawn for the round-22 model (round 19
# with the H100's GEMM tiles from the nvjet menus, validation/model_selection/s38_h100_gemm_fit12.py's F; the H100
# re-fitted with fit11 and fit12, the H200 unchanged), measured on the H100 and / or the H200 only after that model is
# frozen.
HELDOUT25_SEED = 20261228_717  # = 20261221200 + 7517
HELDOUT8_DRAWS["heldout25"] = _heldout8_draw(HELDOUT25_SEED)
GEMM_SUITES["heldout25"] = HELDOUT8_DRAWS["heldout25"][0]


def _attention_cases(variant):
    cases = []
    # prefill (q_len == kv_len), causal; a few non-causal to separate the causal skip
    for b in (1, 2, 4, 8):
        for (h, kvh, d) in ((32, 32, 128), (32, 8, 128), (64, 8, 128), (16, 16, 64)):
            for L in (128, 256, 512, 1024, 2048, 4096, 8192):
                if b * L > 32768 or (h == 64 and b > 2) or (d == 64 and b not in (1, 4)):
                    continue
                cases.append(("prefill", b, h, kvh, d, L, L, True))
    for L in (512, 2048, 8192):
        for (h, kvh) in ((32, 32), (32, 8)):
            cases.append(("prefill", 1, h, kvh, 128, L, L, False))
    # decode (q_len 1) over batch, kv heads, context
    for b in (1, 2, 4, 8, 16, 32, 64):
        for (h, kvh) in ((32, 32), (32, 8), (64, 8)):
            for ctx in (128, 512, 1024, 2048, 4096, 8192, 16384, 32768):
                kv_bytes = 2 * b * kvh * ctx * 128 * 2
                if kv_bytes > 8e9 or (b in (2, 32) and ctx not in (1024, 4096, 16384)):
                    continue
                cases.append(("decode", b, h, kvh, 128, 1, ctx, False))
    if variant == "heldout":
        cases = []
        for b in (1, 3, 6):
            for (h, kvh, d) in ((28, 4, 128), (40, 40, 128), (32, 8, 128)):
                for L in (192, 384, 768, 1536, 3072, 6144):
                    if b * L <= 24576:
                        cases.append(("prefill", b, h, kvh, d, L, L, True))
        cases += _decode_cases((1, 3, 6, 12, 24, 48), ((28, 4), (40, 40), (32, 8)),
                               (200, 700, 1500, 3000, 6000, 12000, 24000))
    if variant == "heldout2":
        cases = []
        for b in (1, 2, 5):
            for (h, kvh, d) in ((24, 8, 128), (48, 8, 128), (16, 4, 128), (12, 12, 64)):
                for L in (320, 640, 1280, 2560, 5120, 10240):
                    if b * L <= 20480:
                        cases.append(("prefill", b, h, kvh, d, L, L, True))
        for L in (640, 2560):
            cases.append(("prefill", 2, 24, 8, 128, L, L, False))
        cases += _decode_cases((1, 5, 10, 20, 40), ((24, 8), (48, 8), (16, 16)),
                               (300, 1000, 2500, 5000, 10000, 20000))
    if variant == "fit3":  # decode over batch x context where the 2026-12-04 model missed (FA2 p90 40 %)
        cases = []
        cases += _decode_cases((1, 2, 4, 8, 16, 32, 48, 64, 96, 128), ((32, 8), (32, 32), (8, 8), (32, 4), (64, 8)),
                               (256, 1024, 4096, 16384, 65536))
    if variant == "heldout3":
        cases = _heldout3_attention_cases()
    if variant == "fit4":
        cases = _fit4_attention_cases()
    if variant == "heldout4":
        cases = heldout4_attention_cases()
    drawn = {"fit5": (_ATTN5,), "heldout5": (_A5, _AT5), "fit6": (_ATTN6,), "heldout6": (_A6, _AT6),
             "fit7": (_ATTN7,), "heldout7": (_A7, _AT7), "fit8": (_ATTN8,), "fit9": (_ATTN9,), "fit10": (_ATTN10,),
             "fit11": (), "fit12": (),
             **{name: (d[1], d[2]) for name, d in HELDOUT8_DRAWS.items()}}  # random cases, then their tail cases
    if variant in drawn:
        cases = [c for part in drawn[variant] for c in part]
    return cases


def _fit4_attention_cases():
    """Fit suite 4 (session 6): the shapes the session-5 tails were made of, absent from the fit
    suites: decode contexts that are no multiple of 8 (unfused bmm alignment) and FA2 decode
    launches of 132..420 CTAs (split heuristic, waves); prefill lengths that are no multiple of
    128 (causal diagonal, partial waves), non-causal, head dims 64 and 128."""
    cases = []
    for b in (1, 2):
        for (h, kvh, d) in ((32, 8, 128), (16, 16, 64), (28, 4, 128)):
            for L in (300, 700, 1100, 2500, 5000, 9000):
                if b * L <= 18000:
                    cases.append(("prefill", b, h, kvh, d, L, L, True))
    for (h, kvh, d) in ((32, 8, 128), (16, 16, 64)):
        for L in (700, 1500, 3000):
            cases.append(("prefill", 1, h, kvh, d, L, L, False))
    cases += _decode_cases((1, 4, 9, 17, 26, 33, 45), ((32, 8), (16, 16), (56, 8)),
                           (600, 1100, 2300, 5100, 9800, 20100))
    return cases


def _heldout3_attention_cases():
    """Held-out suite 3: head layouts 40/8, 32/16, 20/20 (d 128) and 24/8 (d 64), lengths
    7 x 2^k, batches 3, 7, 14, 28, 56, 112; none of them in any earlier suite."""
    cases = []
    for b in (1, 3):
        for (h, kvh, d) in ((40, 8, 128), (32, 16, 128), (20, 20, 128), (24, 8, 64)):
            for L in (448, 896, 1792, 3584, 7168, 14336):
                if b * L <= 21504:
                    cases.append(("prefill", b, h, kvh, d, L, L, True))
    for L in (896, 3584):
        cases.append(("prefill", 3, 40, 8, 128, L, L, False))
    cases += _decode_cases((1, 3, 7, 14, 28, 56, 112), ((40, 8), (32, 16), (20, 20)),
                           (448, 1400, 3500, 7000, 14000, 28000))
    return cases


UNFUSED_MAX_SCORES = 1.2e9  # score elements (b*h*q*kv) the unfused path may materialise (~7 GB with fp32)


def section_attention(torch, bench, out, budget_s, policy, variant="default", backends=ATTN_BACKENDS,
                      out_dir=None):
    """Every attention case on every backend (round-robin per case, so a budget cut leaves
    the backends comparable). One prefill and one decode case per backend are profiled and
    the kernel names written to attn_kernels.txt: they say what "default" really ran."""
    t_start = time.time()
    dev = "cuda"
    cases = _attention_cases(variant)
    gqa = {}
    for be in backends:
        gqa[be] = True if be == "unfused" else backend_gqa(torch, be)
        if gqa[be] is None:
            log(f"attention: backend {be} unavailable here; not measured")
    backends = [be for be in backends if gqa[be] is not None]
    prof_lines, profiled = [], set()
    done = 0
    for (phase, b, h, kvh, d, ql, kl, causal) in cases:
        if time.time() - t_start > budget_s:
            log(f"attention: budget {budget_s}s reached after {done}/{len(cases)}; skipping the rest")
            break
        for be in backends:
            if be == "unfused" and b * h * ql * kl > UNFUSED_MAX_SCORES:
                continue
            try:
                q = torch.randn(b, h, ql, d, device=dev, dtype=torch.bfloat16)
                k = torch.randn(b, kvh, kl, d, device=dev, dtype=torch.bfloat16)
                v = torch.randn(b, kvh, kl, d, device=dev, dtype=torch.bfloat16)
                if be == "unfused":
                    impl = "unfused:hf_eager"
                    mask = attn_mask(torch, ql, kl) if causal else None
                    fn = lambda: unfused_attention(torch, q, k, v, mask)  # noqa: E731
                    ctx = _sdpa_ctx(torch, "default")
                else:
                    impl = f"sdpa:{be}" + (":gqa" if gqa[be] else ":expand")
                    if h != kvh and not gqa[be]:  # expand outside the timed region
                        k = k.repeat_interleave(h // kvh, dim=1); v = v.repeat_interleave(h // kvh, dim=1)
                    fn = lambda: _sdpa(torch, be, True, q, k, v, causal, ctx=False)  # noqa: E731
                    ctx = _sdpa_ctx(torch, be)
                with ctx:
                    t = bench.time(fn)
                    want = (phase, b, h, kvh, ql, kl) in (("prefill", 1, 32, 8, 4096, 4096), ("decode", 8, 32, 8, 1, 4096))
                    if want and causal == (phase == "prefill") and (be, phase) not in profiled:
                        profiled.add((be, phase))
                        try:
                            n, kt, names = _profile_kernels(torch, fn)
                            prof_lines.append(f"== {impl} {phase} b{b} h{h}/{kvh} q{ql} kv{kl}: {n} kernels, "
                                              f"{kt * 1e6:.1f} us")
                            for k_, (cnt, us) in sorted(names.items(), key=lambda kv: -kv[1][1]):
                                prof_lines.append(f"  {cnt:4d} {us:9.1f} us  {k_}")
                        except Exception as exc:  # noqa: BLE001
                            log(f"attention profile failed: {str(exc)[:160]}")
                pairs = (ql * (kl - ql) + ql * (ql + 1) / 2.0) if causal else ql * kl
                flops = 4.0 * b * h * pairs * d
                byt = 2.0 * (2 * b * h * ql * d + 2 * b * kvh * kl * d)
                _row(out, bench, "attention", "attention", phase, "bf16",
                     {"batch": b, "heads": h, "kv_heads": kvh, "q_len": ql, "kv_len": kl, "head_dim": d,
                      "causal": causal}, impl, t, flops, byt)
                del q, k, v
            except Exception as exc:  # noqa: BLE001
                log(f"attention {be} {phase} b{b} h{h}/{kvh} {ql}x{kl} failed: {str(exc).splitlines()[0][:160]}")
            fn = None
            torch.cuda.empty_cache()
        done += 1
    torch.cuda.empty_cache()
    if out_dir and prof_lines:
        with open(os.path.join(out_dir, "attn_kernels.txt"), "w") as f:
            f.write("\n".join(prof_lines) + "\n")
        log("attention kernels:\n" + "\n".join(prof_lines))
    log(f"attention: {done} cases x {len(backends)} backends in {time.time() - t_start:.0f}s ({backends})")


def rope_apply(torch, x, cos, sin):
    """HF-style rotate-half RoPE on (B, L, H, D) with cos/sin of shape (L, 1, D)."""
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rot * sin


def _elementwise_cases(variant):
    """(kind, row length, bytes of the main bf16 input) of every elementwise case of a suite."""
    sizes = [2 ** p for p in range(16, 31)]  # 64 KiB .. 1 GiB of the main bf16 input
    cases = []
    if variant == "heldout":
        for sz in [3 * 2 ** p for p in range(15, 29, 1)]:  # 96 KiB .. 768 MiB
            cases += [("copy", 3584, sz), ("add", 5120, sz), ("rmsnorm", 3584, sz), ("rmsnorm", 5120, sz),
                      ("softmax", 1024, sz), ("softmax", 152064, sz), ("silu_mul", 18944, sz),
                      ("silu_mul", 13824, sz)]
            if sz <= 3 * 2 ** 26:
                cases += [("rope", 128, sz), ("embedding", 3584, sz)]
        sizes = []
    if variant == "heldout2":
        for sz in [5 * 2 ** p for p in range(14, 28)]:  # 80 KiB .. 640 MiB
            cases += [("copy", 2048, sz), ("add", 6144, sz), ("rmsnorm", 2048, sz), ("rmsnorm", 7168, sz),
                      ("softmax", 512, sz), ("softmax", 2048, sz), ("softmax", 8192, sz), ("softmax", 65536, sz),
                      ("silu_mul", 8192, sz), ("silu_mul", 28672, sz)]
            if sz <= 5 * 2 ** 25:
                cases += [("rope", 64, sz), ("rope", 256, sz), ("embedding", 3072, sz)]
        sizes = []
    if variant == "fit3":
        cases, sizes = _fit3_elementwise_cases(), []
    if variant == "heldout3":
        cases, sizes = _heldout3_elementwise_cases(), []
    if variant == "fit4":
        cases, sizes = _fit4_elementwise_cases(), []
    if variant == "heldout4":
        cases, sizes = heldout4_elementwise_cases(), []
    if variant == "fit5":
        cases, sizes = list(_EW5), []
    if variant == "heldout5":
        cases, sizes = list(_E5) + list(_ET5), []
    if variant == "fit6":
        cases, sizes = list(_EW6), []
    if variant == "heldout6":
        cases, sizes = list(_E6) + list(_ET6), []
    if variant == "fit7":
        cases, sizes = list(_EW7), []
    if variant == "heldout7":
        cases, sizes = list(_E7) + list(_ET7), []
    if variant == "fit8":
        cases, sizes = list(_EW8), []
    if variant in ("fit9", "fit10", "fit11", "fit12"):  # GEMM and / or attention only
        cases, sizes = [], []
    if variant in HELDOUT8_DRAWS:  # random cases, then their tail cases
        cases, sizes = list(HELDOUT8_DRAWS[variant][3]) + list(HELDOUT8_DRAWS[variant][4]), []
    for sz in sizes:
        cases.append(("copy", 4096, sz))
        cases.append(("add", 4096, sz))
        for cols in (4096, 8192):
            cases.append(("rmsnorm", cols, sz))
        for cols in (1024, 4096, 32000):  # 1024: PyTorch's warp-per-row softmax (held-out H100 miss)
            cases.append(("softmax", cols, sz))
        for cols in (11008, 14336):
            cases.append(("silu_mul", cols, sz))
        if sz <= 2 ** 28:
            cases.append(("rope", 128, sz))
            cases.append(("embedding", 4096, sz))
    return cases


def _fit3_elementwise_cases():
    """Fit suite 3: softmax and RMSNorm over the row widths the 2026-12-04 fit never saw
    (256..262144), and the engine-fused kernels (fused residual add + RMSNorm, fused RoPE on
    q and k; Triton, see triton_fused_kernels) over widths and head layouts."""
    cases = []
    for sz in [2 ** p for p in range(16, 31, 2)]:  # 64 KiB .. 1 GiB, every 4x
        cases += [("softmax", c, sz) for c in (256, 512, 768, 2048, 3072, 6144, 8192, 16384, 24576, 32768,
                                               65536, 131072, 262144)]
        cases += [("rmsnorm", c, sz) for c in (1024, 2048, 3072, 6144, 16384)]
        cases += [("add_rmsnorm", c, sz) for c in (2048, 3072, 4096, 8192, 16384)]
        if sz <= 2 ** 28:
            cases += [("rope_fused", hk, sz) for hk in ((32, 8, 128), (32, 32, 128), (16, 4, 64), (64, 8, 128))]
    return cases


def _fit4_elementwise_cases():
    """Fit suite 4 (session 6): softmax rows of 10-50 K elements (block softmax near the L2
    size), small copies / adds / embeddings (launch floors), RMSNorm widths 5-7 K."""
    cases = []
    for sz in [3 * 2 ** p for p in range(14, 29, 2)]:  # 48 KiB .. 768 MiB
        cases += [("softmax", c, sz) for c in (10240, 12800, 20480, 40960)]
        cases += [("copy", c, sz) for c in (1024, 2560)] + [("add", 3072, sz), ("rmsnorm", 5120, sz),
                                                            ("rmsnorm", 7168, sz)]
        if sz <= 3 * 2 ** 24:
            cases += [("embedding", 2048, sz), ("embedding", 5120, sz)]
    return cases


def _heldout3_elementwise_cases():
    """Held-out suite 3: widths no earlier suite has, sizes 7 x 2^k (112 KiB .. 896 MiB)."""
    cases = []
    for sz in [7 * 2 ** p for p in range(14, 28, 2)]:
        cases += [("copy", 1536, sz), ("add", 2560, sz), ("silu_mul", 13824 * 2, sz), ("silu_mul", 36864, sz),
                  ("rmsnorm", 2560, sz), ("rmsnorm", 4608, sz)]
        cases += [("softmax", c, sz) for c in (384, 1536, 5120, 12288, 49152, 100352, 200704)]
        cases += [("add_rmsnorm", c, sz) for c in (2560, 4608, 5120, 6144)]
        if sz <= 7 * 2 ** 24:
            cases += [("embedding", 4608, sz)]
            cases += [("rope_fused", hk, sz) for hk in ((40, 8, 128), (32, 16, 128), (24, 8, 64))]
    return cases


_TRITON = {}


def triton_fused_kernels():
    """The two engine-fused elementwise kernels, as Triton kernels with the semantics of vLLM's
    CUDA ones (PyTorch has neither): fused_add_rms_norm (residual += x; x = rmsnorm(residual) * w,
    both in place: reads x and residual, writes both) and rotary_embedding (NeoX rotate-half
    RoPE of q and k in place, one launch, cos/sin from a per-position cache). Compiled once."""
    if _TRITON:
        return _TRITON
    import triton
    import triton.language as tl

    @triton.jit
    def _add_rmsnorm(x_ptr, r_ptr, w_ptr, cols, eps, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        mask = offs < cols
        x = tl.load(x_ptr + row * cols + offs, mask=mask, other=0.0).to(tl.float32)
        r = tl.load(r_ptr + row * cols + offs, mask=mask, other=0.0).to(tl.float32)
        s = x + r
        tl.store(r_ptr + row * cols + offs, s.to(r_ptr.dtype.element_ty), mask=mask)
        inv = tl.rsqrt(tl.sum(s * s, axis=0) / cols + eps)
        w = tl.load(w_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(x_ptr + row * cols + offs, (s * inv * w).to(x_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _rope(q_ptr, k_ptr, pos_ptr, cs_ptr, q_stride, k_stride, n_pos, H, KV, D: tl.constexpr, HALF: tl.constexpr,
              BH: tl.constexpr):
        # (written out for q and k: a jitted helper defined in this closure is not visible to Triton)
        t = tl.program_id(0).to(tl.int64)
        pos = tl.load(pos_ptr + t % n_pos)
        offs_d = tl.arange(0, HALF)
        cos = tl.load(cs_ptr + pos * D + offs_d).to(tl.float32)[None, :]
        sin = tl.load(cs_ptr + pos * D + HALF + offs_d).to(tl.float32)[None, :]
        offs_h = tl.arange(0, BH)
        mq = (offs_h < H)[:, None]
        bq = q_ptr + t * q_stride + offs_h[:, None] * D + offs_d[None, :]
        q1 = tl.load(bq, mask=mq, other=0.0).to(tl.float32)
        q2 = tl.load(bq + HALF, mask=mq, other=0.0).to(tl.float32)
        tl.store(bq, (q1 * cos - q2 * sin).to(q_ptr.dtype.element_ty), mask=mq)
        tl.store(bq + HALF, (q2 * cos + q1 * sin).to(q_ptr.dtype.element_ty), mask=mq)
        mk = (offs_h < KV)[:, None]
        bk = k_ptr + t * k_stride + offs_h[:, None] * D + offs_d[None, :]
        k1 = tl.load(bk, mask=mk, other=0.0).to(tl.float32)
        k2 = tl.load(bk + HALF, mask=mk, other=0.0).to(tl.float32)
        tl.store(bk, (k1 * cos - k2 * sin).to(k_ptr.dtype.element_ty), mask=mk)
        tl.store(bk + HALF, (k2 * cos + k1 * sin).to(k_ptr.dtype.element_ty), mask=mk)

    def add_rmsnorm(x, r, w, eps=1e-5):
        cols = x.shape[-1]
        block = triton.next_power_of_2(cols)
        _add_rmsnorm[(x.numel() // cols,)](x, r, w, cols, eps, BLOCK=block,
                                           num_warps=4 if block <= 2048 else 8 if block <= 8192 else 16)
        return x, r

    def rope(q, k, pos, cos_sin, heads, kv_heads, d, tokens=None):
        """q, k: (tokens, ...) whose rows hold heads*d / kv_heads*d contiguous elements (row
        stride free: views of a fused QKV output work); token t uses position pos[t % len(pos)]."""
        bh = triton.next_power_of_2(max(heads, kv_heads))
        tokens = tokens or pos.numel()
        _rope[(tokens,)](q, k, pos, cos_sin, q.stride(-2), k.stride(-2), pos.numel(), heads, kv_heads, D=d,
                         HALF=d // 2, BH=bh, num_warps=4 if bh * d <= 4096 else 8)
        return q, k

    _TRITON.update(add_rmsnorm=add_rmsnorm, rope=rope)
    return _TRITON


def section_elementwise(torch, bench, out, budget_s, variant="default"):
    import torch.nn.functional as F
    t_start = time.time()
    dev = "cuda"
    cases = _elementwise_cases(variant)
    done = 0
    for (kind, cols, sz) in cases:
        if time.time() - t_start > budget_s:
            log(f"elementwise: budget reached after {done}/{len(cases)}")
            break
        if kind == "rope_fused":
            _fused_rope_case(torch, bench, out, cols, sz)
            done += 1
            continue
        n = sz // 2
        rows = n // cols
        if rows < 1:
            continue
        n = rows * cols
        try:
            x = torch.randn(rows, cols, device=dev, dtype=torch.bfloat16)
            impl, note = "", ""
            if kind == "copy":
                y = torch.empty_like(x); fn = lambda: y.copy_(x); impl = "Tensor.copy_"; byt = 4 * n  # noqa: E731
            elif kind == "add":
                y = torch.randn_like(x); z = torch.empty_like(x)
                fn = lambda: torch.add(x, y, out=z); impl = "torch.add(out=)"; byt = 6 * n  # noqa: E731
            elif kind == "rmsnorm":
                w = torch.ones(cols, device=dev, dtype=torch.bfloat16)
                fn = lambda: F.rms_norm(x, (cols,), w, 1e-5); impl = "F.rms_norm"; byt = 4 * n  # noqa: E731
            elif kind == "add_rmsnorm":
                r = torch.randn_like(x)
                w = torch.ones(cols, device=dev, dtype=torch.bfloat16)
                tk = triton_fused_kernels()
                fn = lambda: tk["add_rmsnorm"](x, r, w); impl = "triton:fused_add_rmsnorm"  # noqa: E731
                byt = 8 * n + 2 * cols
                note = "residual += x; x = rmsnorm(residual) * w, in place (vLLM fused_add_rms_norm semantics)"
            elif kind == "softmax":
                fn = lambda: torch.softmax(x, dim=-1); impl = "torch.softmax"; byt = 4 * n  # noqa: E731
            elif kind == "silu_mul":
                u = torch.randn_like(x)
                fn = lambda: F.silu(x) * u; impl = "F.silu(g)*u"; byt = 6 * n  # noqa: E731
            elif kind == "rope":
                heads = 32
                tokens = max(1, rows // heads)
                x = x[: tokens * heads].view(1, tokens, heads, cols)
                rows = tokens * heads; n = rows * cols
                ang = torch.randn(tokens, 1, cols, device=dev)
                cos, sin = ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)
                fn = lambda: rope_apply(torch, x, cos, sin); impl = "rotate_half(cat)"; byt = 4 * n  # noqa: E731
                note = f"tokens={tokens} heads={heads}"
            elif kind == "embedding":
                table = torch.randn(128256, cols, device=dev, dtype=torch.bfloat16)
                ids = torch.randint(0, 128256, (rows,), device=dev)
                fn = lambda: F.embedding(ids, table); impl = "F.embedding"; byt = 4 * n  # noqa: E731
                note = "vocab=128256"
            t = bench.time(fn)
            _row(out, bench, "elementwise", kind, kind, "bf16", {"rows": rows, "cols": cols}, impl, t,
                 0, byt, note)
        except Exception as exc:  # noqa: BLE001
            log(f"elementwise {kind} {rows}x{cols} failed: {str(exc).splitlines()[0][:160]}")
        done += 1
        x = y = z = u = None  # noqa: F841
    torch.cuda.empty_cache()
    log(f"elementwise: {done} cases in {time.time() - t_start:.0f}s")


def _fused_rope_case(torch, bench, out, hk, sz):
    """One fused-RoPE row: q (tokens, heads*d) and k (tokens, kv_heads*d) in place, sz = bytes of
    q and k together. Written as rows = tokens, cols = (heads + kv_heads) * d, as the trace
    builder's rope op is."""
    h, kvh, d = hk
    tokens = sz // (2 * (h + kvh) * d)
    if tokens < 1:
        return
    try:
        q = torch.randn(tokens, h * d, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(tokens, kvh * d, device="cuda", dtype=torch.bfloat16)
        pos = torch.randint(0, 8192, (tokens,), device="cuda")
        cos_sin = torch.randn(8192, d, device="cuda", dtype=torch.bfloat16)
        tk = triton_fused_kernels()
        t = bench.time(lambda: tk["rope"](q, k, pos, cos_sin, h, kvh, d))
        cols = (h + kvh) * d
        _row(out, bench, "elementwise", "rope_fused", "rope_fused", "bf16", {"rows": tokens, "cols": cols},
             "triton:rotary_embedding_neox", t, 0, 4 * tokens * cols + 2 * tokens * d,
             f"heads={h} kv_heads={kvh} head_dim={d}; q and k in place, one launch (vLLM rotary_embedding semantics)")
    except Exception as exc:  # noqa: BLE001
        log(f"elementwise rope_fused {tokens}x{hk} failed: {str(exc).splitlines()[0][:160]}")


class _EnergyCases:
    """Builders of the energy section's cases, each (name, kind, fmt, dims, make, flops, bytes):
    make() allocates the operands and returns the call the measured loop repeats (None: idle)."""

    def __init__(self, torch, policy, dev="cuda"):
        self.torch, self.dev = torch, dev
        self.backend, self.gqa_native = policy

    @staticmethod
    def idle(name):
        return (name, "idle", "", {}, None, 0.0, 0.0)

    def gemm(self, name, m, n, k, fmt):
        torch, dev = self.torch, self.dev

        def make():
            import torch.nn.functional as F
            if fmt == "bf16":
                a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
                w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
                return lambda: F.linear(a, w)
            one = torch.ones((), device=dev, dtype=torch.float32)
            a = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
            w = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn)
            return lambda: torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        eb = 2 if fmt == "bf16" else 1
        return (name, "gemm", fmt, {"m": m, "n": n, "k": k}, make, 2.0 * m * n * k,
                eb * (m * k + n * k) + 2 * m * n)

    def copy(self, name, nbytes):
        torch, dev = self.torch, self.dev

        def make():
            x = torch.empty(nbytes // 2, device=dev, dtype=torch.bfloat16).normal_()
            y = torch.empty_like(x)
            return lambda: y.copy_(x)
        return (name, "copy", "bf16", {"rows": nbytes // 2 // 4096, "cols": 4096}, make, 0.0, 2.0 * nbytes)

    def add(self, name, nbytes):
        torch, dev = self.torch, self.dev

        def make():
            x = torch.randn(nbytes // 2, device=dev, dtype=torch.bfloat16)
            y = torch.randn_like(x); z = torch.empty_like(x)
            return lambda: torch.add(x, y, out=z)
        return (name, "add", "bf16", {"rows": nbytes // 2 // 4096, "cols": 4096}, make, nbytes // 2, 3.0 * nbytes)

    def attn(self, name, b, h, kvh, ql, kl, causal):
        torch, dev = self.torch, self.dev

        def make():
            q = torch.randn(b, h, ql, 128, device=dev, dtype=torch.bfloat16)
            k = torch.randn(b, kvh, kl, 128, device=dev, dtype=torch.bfloat16)
            v = torch.randn_like(k)
            if h != kvh and not self.gqa_native:
                k = k.repeat_interleave(h // kvh, 1); v = v.repeat_interleave(h // kvh, 1)
            return lambda: _sdpa(torch, self.backend, True, q, k, v, causal)
        pairs = (ql * (ql + 1) / 2.0 + ql * (kl - ql)) if causal else ql * kl
        return (name, "attention", "bf16", {"batch": b, "heads": h, "kv_heads": kvh, "q_len": ql, "kv_len": kl,
                                            "head_dim": 128, "causal": causal}, make,
                4.0 * b * h * pairs * 128, 2.0 * (2 * b * h * ql * 128 + 2 * b * kvh * kl * 128))

    def elementwise(self, name, kind, nbytes, cols):
        torch, dev = self.torch, self.dev
        rows = nbytes // 2 // cols

        def make():
            import torch.nn.functional as F
            x = torch.randn(rows, cols, device=dev, dtype=torch.bfloat16)
            if kind == "rmsnorm":
                w = torch.ones(cols, device=dev, dtype=torch.bfloat16)
                return lambda: F.rms_norm(x, (cols,), w, 1e-5)
            if kind == "softmax":
                return lambda: torch.softmax(x, dim=-1)
            u = torch.randn_like(x)
            return lambda: F.silu(x) * u
        byt = {"rmsnorm": 4, "softmax": 4, "silu_mul": 6}[kind] * rows * cols
        return (name, kind, "bf16", {"rows": rows, "cols": cols}, make, 0.0, byt)


MiB = 2 ** 20
# One suite per --variant, each case (builder, name, *shape); idle rows first and last give the
# static power the per-class energy fit subtracts.
ENERGY_SUITES = {
    "default": [
        ("idle", "idle"), ("gemm", "gemm_bf16_8192", 8192, 8192, 8192, "bf16"),
        ("gemm", "gemm_fp8_8192", 8192, 8192, 8192, "fp8_e4m3"), ("copy", "copy_1GiB", 2 ** 30),
        ("gemm", "gemv_bf16_14336x4096", 1, 14336, 4096, "bf16"),
        # held-out candidates (different shapes / kinds)
        ("gemm", "gemm_bf16_4096x14336x4096", 4096, 14336, 4096, "bf16"),
        ("gemm", "gemm_fp8_4096x14336x4096", 4096, 14336, 4096, "fp8_e4m3"),
        ("gemm", "gemm_bf16_2048x4096x4096", 2048, 4096, 4096, "bf16"),
        ("gemm", "gemv_bf16_16x128256x4096", 16, 128256, 4096, "bf16"),
        ("gemm", "gemv_bf16_1x4096x14336", 1, 4096, 14336, "bf16"),
        ("copy", "copy_256MiB", 2 ** 28), ("add", "add_512MiB", 2 ** 29),
        ("attn", "attn_prefill_b4_4096", 4, 32, 8, 4096, 4096, True),
        ("attn", "attn_decode_b16_8192", 16, 32, 8, 1, 8192, False), ("idle", "idle2"),
    ],
    "heldout": [
        ("idle", "idle"), ("gemm", "gemm_bf16_5120", 5120, 5120, 5120, "bf16"),
        ("gemm", "gemm_bf16_3072x18944x3584", 3072, 18944, 3584, "bf16"),
        ("gemm", "gemm_fp8_2048x18944x3584", 2048, 18944, 3584, "fp8_e4m3"),
        ("gemm", "gemm_fp8_6144", 6144, 6144, 6144, "fp8_e4m3"), ("gemm", "gemv_fp8_1x18944x3584", 1, 18944, 3584,
                                                                 "fp8_e4m3"),
        ("gemm", "gemv_bf16_8x152064x3584", 8, 152064, 3584, "bf16"),
        ("gemm", "gemm_bf16_256x13824x5120", 256, 13824, 5120, "bf16"),
        ("copy", "copy_96MiB", 96 * MiB), ("add", "add_192MiB", 192 * MiB),
        ("elementwise", "rmsnorm_384MiB", "rmsnorm", 384 * MiB, 3584),
        ("elementwise", "softmax_256MiB", "softmax", 256 * MiB, 1024),
        ("elementwise", "silu_mul_384MiB", "silu_mul", 384 * MiB, 18944),
        ("attn", "attn_prefill_b1_6144_h28", 1, 28, 4, 6144, 6144, True),
        ("attn", "attn_prefill_b3_3072_h40", 3, 40, 40, 3072, 3072, True),
        ("attn", "attn_decode_b48_3000_h28", 48, 28, 4, 1, 3000, False),
        ("attn", "attn_decode_b6_12000_h40", 6, 40, 40, 1, 12000, False), ("idle", "idle2"),
    ],
    # more fit points (default-suite shapes) for the per-class energy terms
    "energy2": [
        ("idle", "idle"), ("elementwise", "rmsnorm_512MiB", "rmsnorm", 2 ** 29, 4096),
        ("elementwise", "softmax_512MiB", "softmax", 2 ** 29, 4096),
        ("elementwise", "silu_mul_512MiB", "silu_mul", 2 ** 29, 14336),
        ("attn", "attn_decode_b64_2048_h32", 64, 32, 32, 1, 2048, False),
        ("attn", "attn_prefill_b2_8192_h32", 2, 32, 32, 8192, 8192, True),
        ("gemm", "gemm_bf16_512x14336x4096", 512, 14336, 4096, "bf16"),
        ("gemm", "gemv_fp8_1x14336x4096", 1, 14336, 4096, "fp8_e4m3"), ("idle", "idle2"),
    ],
}


def energy_cases(torch, policy, variant="default", dev="cuda"):
    """The energy section's cases of one suite, built (operands not yet allocated)."""
    b = _EnergyCases(torch, policy, dev)
    return [getattr(b, spec[0])(*spec[1:]) for spec in ENERGY_SUITES[variant]]


def _energy_loop(torch, nvml, make, loop_s):
    """(iterations, elapsed s, energy J or None) of a loop of about loop_s seconds of make()'s call
    (make None: the idle GPU for loop_s)."""
    if make is None:
        torch.cuda.synchronize(); time.sleep(0.5)
        e0, t0 = nvml.energy_j(), time.perf_counter()
        time.sleep(loop_s)
        e1, t1 = nvml.energy_j(), time.perf_counter()
        iters = 0
    else:
        fn = make()
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        per = (time.perf_counter() - t0) / 5
        iters = max(10, int(loop_s / max(per, 1e-6)))
        # warm the clocks/power for ~0.3 s before the measured loop
        for _ in range(max(1, int(0.3 / max(per, 1e-6)))):
            fn()
        torch.cuda.synchronize()
        e0, t0 = nvml.energy_j(), time.perf_counter()
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
        e1, t1 = nvml.energy_j(), time.perf_counter()
    ej = (e1 - e0) if (e0 is not None and e1 is not None) else None
    return iters, t1 - t0, ej


def section_energy(torch, bench, nvml, out, budget_s, policy, loop_s=2.0, variant="default"):
    t_start = time.time()
    for (name, kind, fmt, dims, make, flops, byt) in energy_cases(torch, policy, variant):
        if time.time() - t_start > budget_s:
            log(f"energy: budget reached before {name}")
            break
        try:
            iters, el, ej = _energy_loop(torch, nvml, make, loop_s)
            st = nvml.state()
            out.row(name=name, kind=kind, fmt=fmt, dims=json.dumps(dims, sort_keys=True), impl="loop",
                    iters=iters, elapsed_s=el, energy_j=ej, avg_power_w=(ej / el if ej is not None else None),
                    time_per_iter_s=(el / iters if iters else None),
                    energy_per_iter_j=(ej / iters if (iters and ej is not None) else None),
                    flops_per_iter=flops, bytes_per_iter=byt, sm_clock_mhz=st["sm_clock_mhz"],
                    temp_c=st["temp_c"], note="")
            log(f"energy {name}: {iters} iters {el:.2f}s {ej}J -> {ej / el if ej else float('nan'):.1f} W")
            torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001
            log(f"energy {name} failed: {str(exc).splitlines()[0][:160]}")


# ----------------------------------------------------------------------------- e2e model

LLAMA = {
    "llama2_7b": dict(hidden=4096, heads=32, kv_heads=32, intermediate=11008, vocab=32000, layers=32,
                      eps=1e-5, theta=10000.0),
    "llama3_8b": dict(hidden=4096, heads=32, kv_heads=8, intermediate=14336, vocab=128256, layers=32,
                      eps=1e-5, theta=500000.0),
    # held-out shapes (no q/k/v bias: Qwen2.5's bias adds << 1 % of the work)
    "qwen2_5_7b": dict(hidden=3584, heads=28, kv_heads=4, intermediate=18944, vocab=152064, layers=28,
                       eps=1e-6, theta=1000000.0),
    "llama2_13b": dict(hidden=5120, heads=40, kv_heads=40, intermediate=13824, vocab=32000, layers=40,
                       eps=1e-5, theta=10000.0),
    # held-out suite 3 (no earlier suite ran them; tied embeddings and RoPE scaling change neither
    # FLOPs nor bytes of a step: separate random lm_head, plain RoPE)
    "llama3_2_3b": dict(hidden=3072, heads=24, kv_heads=8, intermediate=8192, vocab=128256, layers=28,
                        eps=1e-5, theta=500000.0),
    "qwen2_5_14b": dict(hidden=5120, heads=40, kv_heads=8, intermediate=13824, vocab=152064, layers=48,
                        eps=1e-6, theta=1000000.0),
}


class Llama:
    """Plain-PyTorch Llama (HF-style ops: rotate-half RoPE, SDPA attention, F.rms_norm), random
    bf16 weights, preallocated KV cache. fusion="eager": separate q/k/v and gate/up projections
    (a Hugging Face model); "engine": one QKV GEMM and one gate-up GEMM (as vLLM/TRT-LLM/SGLang
    do; their fused RoPE and residual+norm kernels are not reproduced here, see docs)."""

    def __init__(self, torch, cfg, layers, policy, device="cuda", dtype=None, fusion="eager"):
        self.fusion = fusion
        self.t = torch
        self.c = cfg
        self.layers = layers
        self.backend, self.gqa_native = policy
        dt = dtype or torch.bfloat16
        self.dt = dt
        H, KV, D, Hd, I = cfg["heads"], cfg["kv_heads"], cfg["hidden"] // cfg["heads"], cfg["hidden"], cfg["intermediate"]
        self.D = D

        def w(*shape):
            return (torch.randn(*shape, device=device, dtype=dt) * 0.02)
        self.embed = w(cfg["vocab"], Hd)
        self.lm_head = w(cfg["vocab"], Hd)
        self.final_norm = torch.ones(Hd, device=device, dtype=dt)
        self.L = []
        for _ in range(layers):
            norms = dict(n1=torch.ones(Hd, device=device, dtype=dt), n2=torch.ones(Hd, device=device, dtype=dt))
            if fusion in ("engine", "engine_fused"):
                self.L.append(dict(wqkv=w((H + 2 * KV) * D, Hd), wo=w(Hd, H * D), wgu=w(2 * I, Hd), wd=w(Hd, I),
                                   **norms))
            else:
                self.L.append(dict(wq=w(H * D, Hd), wk=w(KV * D, Hd), wv=w(KV * D, Hd), wo=w(Hd, H * D),
                                   wg=w(I, Hd), wu=w(I, Hd), wd=w(Hd, I), **norms))
        self.device = device
        self.cos_sin = None

    def rope_tables(self, positions):
        t = self.t
        if self.fusion == "engine_fused":  # the fused kernel reads a (position, cos|sin) cache
            if self.cos_sin is None:
                D = self.D
                inv = 1.0 / (self.c["theta"] ** (t.arange(0, D, 2, device=self.device, dtype=t.float32) / D))
                ang = t.arange(65536, device=self.device, dtype=t.float32)[:, None] * inv[None, :]
                self.cos_sin = t.cat((ang.cos(), ang.sin()), dim=-1).to(self.dt).contiguous()
            return positions.to(t.int64).contiguous(), self.cos_sin
        D = self.D
        inv = 1.0 / (self.c["theta"] ** (t.arange(0, D, 2, device=self.device, dtype=t.float32) / D))
        ang = positions.to(t.float32)[:, None] * inv[None, :]
        ang = t.cat((ang, ang), dim=-1)
        return ang.cos().to(self.dt)[:, None, :], ang.sin().to(self.dt)[:, None, :]

    def alloc_cache(self, batch, max_len):
        t = self.t
        shape = (batch, self.c["kv_heads"], max_len, self.D)
        return [(t.zeros(shape, device=self.device, dtype=self.dt), t.zeros(shape, device=self.device, dtype=self.dt))
                for _ in range(self.layers)]

    def forward_fused(self, ids, cache, pos, positions, cos_sin, last_only):
        """fusion engine_fused: an engine's layer (vLLM's Llama): fused QKV and gate-up GEMMs,
        one fused RoPE kernel on q and k in place, each residual add folded into the next
        RMSNorm (fused_add_rms_norm); the first layer's norm has no residual to add."""
        import torch.nn.functional as F
        c, tk = self.c, triton_fused_kernels()
        B, L = ids.shape
        H, KV, D, Hd = c["heads"], c["kv_heads"], self.D, c["hidden"]
        x = F.embedding(ids, self.embed).view(B * L, Hd)
        residual = None
        for lw, (kc, vc) in zip(self.L, cache):
            if residual is None:
                residual, h = x, F.rms_norm(x, (Hd,), lw["n1"], c["eps"])
            else:
                h, residual = tk["add_rmsnorm"](x, residual, lw["n1"], c["eps"])
            q, k, v = F.linear(h, lw["wqkv"]).split([H * D, KV * D, KV * D], dim=-1)
            tk["rope"](q, k, positions, cos_sin, H, KV, D, tokens=B * L)
            q, k, v = q.view(B, L, H, D), k.view(B, L, KV, D), v.view(B, L, KV, D)
            kc[:, :, pos:pos + L] = k.transpose(1, 2)
            vc[:, :, pos:pos + L] = v.transpose(1, 2)
            o = _sdpa(self.t, self.backend, self.gqa_native, q.transpose(1, 2), kc[:, :, :pos + L],
                      vc[:, :, :pos + L], causal=(L > 1))
            x = F.linear(o.transpose(1, 2).reshape(B * L, H * D), lw["wo"])
            h, residual = tk["add_rmsnorm"](x, residual, lw["n2"], c["eps"])
            g, u = F.linear(h, lw["wgu"]).chunk(2, dim=-1)
            x = F.linear(F.silu(g) * u, lw["wd"])
        if last_only:
            x, residual = x.view(B, L, Hd)[:, -1].contiguous(), residual.view(B, L, Hd)[:, -1].contiguous()
        x, _ = tk["add_rmsnorm"](x, residual, self.final_norm, c["eps"])
        return F.linear(x, self.lm_head)

    def forward(self, ids, cache, pos, cos, sin, last_only):
        if self.fusion == "engine_fused":
            return self.forward_fused(ids, cache, pos, cos, sin, last_only)
        import torch.nn.functional as F
        t = self.t
        c = self.c
        B, L = ids.shape
        H, KV, D, Hd = c["heads"], c["kv_heads"], self.D, c["hidden"]
        x = F.embedding(ids, self.embed)
        for lw, (kc, vc) in zip(self.L, cache):
            h = F.rms_norm(x, (Hd,), lw["n1"], c["eps"])
            if self.fusion == "engine":
                q, k, v = F.linear(h, lw["wqkv"]).split([H * D, KV * D, KV * D], dim=-1)
                q, k, v = q.view(B, L, H, D), k.view(B, L, KV, D), v.view(B, L, KV, D)
            else:
                q = F.linear(h, lw["wq"]).view(B, L, H, D)
                k = F.linear(h, lw["wk"]).view(B, L, KV, D)
                v = F.linear(h, lw["wv"]).view(B, L, KV, D)
            q = rope_apply(t, q, cos, sin)
            k = rope_apply(t, k, cos, sin)
            kc[:, :, pos:pos + L] = k.transpose(1, 2)
            vc[:, :, pos:pos + L] = v.transpose(1, 2)
            o = _sdpa(t, self.backend, self.gqa_native, q.transpose(1, 2), kc[:, :, :pos + L],
                      vc[:, :, :pos + L], causal=(L > 1))
            o = o.transpose(1, 2).reshape(B, L, H * D)
            x = x + F.linear(o, lw["wo"])
            h = F.rms_norm(x, (Hd,), lw["n2"], c["eps"])
            if self.fusion == "engine":
                g, u = F.linear(h, lw["wgu"]).chunk(2, dim=-1)
            else:
                g, u = F.linear(h, lw["wg"]), F.linear(h, lw["wu"])
            x = x + F.linear(F.silu(g) * u, lw["wd"])
        if last_only:
            x = x[:, -1:]
        x = F.rms_norm(x, (Hd,), self.final_norm, c["eps"])
        return F.linear(x, self.lm_head)


def _ev_times(torch, fn, reps):
    import numpy as np
    evs = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record()
        evs.append((a, b))
    torch.cuda.synchronize()
    ts = np.array([a.elapsed_time(b) / 1e3 for a, b in evs])
    return float(np.median(ts)), float(np.percentile(ts, 10)), float(np.percentile(ts, 90))


def _profile_kernels(torch, fn):
    """Kernel count and summed kernel time of one call (torch.profiler/CUPTI)."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    n, tot, names = 0, 0.0, {}
    for ev in prof.events():
        dt = getattr(ev, "device_type", None)
        if dt is not None and "CUDA" in str(dt) and getattr(ev, "device_time", None) is not None:
            n += 1
            us = ev.device_time
            tot += us
            key = ev.name[:60]
            cnt, s = names.get(key, (0, 0.0))
            names[key] = (cnt + 1, s + us)
    return n, tot / 1e6, names


E2E_DECODE = [(b, c) for c in (128, 1024, 4096, 16384) for b in (1, 4, 16, 64)] + [(8, 2048), (32, 512), (2, 8192)]
E2E_PREFILL = [(b, L) for b in (1, 2, 4, 8) for L in (128, 512, 1024, 2048, 4096) if b * L <= 16384]
E2E_PROFILED = {"decode": ((1, 1024), (16, 4096), (6, 1500)), "prefill": ((1, 2048), (1, 1200))}
# held-out suite 3: other batches and lengths (7 x / 3 x multiples), three fusion levels
E2E_DECODE3 = [(b, c) for c in (200, 1500, 6000) for b in (1, 6, 24)] + [(48, 3000)]
E2E_PREFILL3 = [(b, L) for b in (1, 3) for L in (300, 1200, 4000)]
# the end-to-end (decode, prefill) points of each held-out suite (section_e2e and suite_digest read them)
E2E_POINTS = {"heldout3": (E2E_DECODE3, E2E_PREFILL3), "heldout4": (E2E_DECODE4, E2E_PREFILL4),
              "heldout5": (E2E_DECODE5, E2E_PREFILL5), "heldout6": (E2E_DECODE6, E2E_PREFILL6),
              "heldout7": (E2E_DECODE7, E2E_PREFILL7),
              **{name: (d[5], d[6]) for name, d in HELDOUT8_DRAWS.items()}}


class _E2EModel:
    """One built model of the end-to-end section: measures decode steps and prefills at a
    number of layers that keeps the KV cache under kv_budget, writes one row each."""

    def __init__(self, torch, nvml, out, model, cfg, base, name_f, kv_budget, prof_lines):
        self.torch, self.nvml, self.out, self.model, self.cfg = torch, nvml, out, model, cfg
        self.base, self.name_f, self.kv_budget, self.prof_lines = base, name_f, kv_budget, prof_lines

    def layers_for(self, batch, max_len):
        per_layer = 2.0 * batch * self.cfg["kv_heads"] * max_len * self.base["head_dim"] * 2
        return int(max(1, min(self.cfg["layers"], self.kv_budget // per_layer)))

    def timed_row(self, step, reps, **kw):
        """Median/p10/p90 event time of step() over reps calls, written as one row."""
        med, p10, p90 = _ev_times(self.torch, step, reps)
        st = self.nvml.state()
        self.out.row(**self.base, **kw, median_s=med, p10_s=p10, p90_s=p90, reps=reps,
                     sm_clock_mhz=st["sm_clock_mhz"], temp_c=st["temp_c"])
        return med

    def profile(self, step, label, note=None, **kw):
        """Kernel count and time of one step, as a row and as lines of e2e_profile.txt."""
        try:
            n, kt, names = _profile_kernels(self.torch, step)
            extra = {} if note is None else {"note": note}
            self.out.row(**self.base, **kw, mode="profile_eager", kernels=n, kernel_time_s=kt, **extra)
            self.prof_lines.append(f"== {self.name_f} {label} layers{kw['layers']}: {n} kernels, {kt * 1e3:.3f} ms")
            for k_, (cnt, us) in sorted(names.items(), key=lambda kv: -kv[1][1])[:25]:
                self.prof_lines.append(f"  {cnt:5d} {us / 1e3:9.3f} ms  {k_}")
        except Exception as exc:  # noqa: BLE001
            log(f"profile failed: {str(exc)[:160]}")

    def point(self, phase, b, n, measure):
        """Run measure(nl) with the model cut to the layers the KV budget allows; the full
        layer list is restored and the cache freed whatever happens."""
        torch, model = self.torch, self.model
        nl = self.layers_for(b, n + 1 if phase == "decode" else n)
        Ls = model.L
        try:
            model.layers = nl
            model.L = Ls[:nl]
            measure(nl)
            model.L = Ls
            torch.cuda.empty_cache()
        except Exception as exc:  # noqa: BLE001
            model.L = Ls
            what = f"ctx{n}" if phase == "decode" else f"L{n}"
            log(f"e2e {self.name_f} {phase} b{b} {what} failed: {str(exc).splitlines()[0][:200]}")
            torch.cuda.empty_cache()

    def decode(self, b, ctx):
        torch, model = self.torch, self.model

        def measure(nl):
            cache = model.alloc_cache(b, ctx + 1)
            ids = torch.randint(0, self.cfg["vocab"], (b, 1), device="cuda")
            cos, sin = model.rope_tables(torch.tensor([ctx], device="cuda"))
            step = lambda: model.forward(ids, cache, ctx, cos, sin, False)  # noqa: E731
            kw = dict(phase="decode", batch=b, seq=1, ctx=ctx, layers=nl, lm_head_tokens=b)
            small = nl * b * ctx < 4e6
            with torch.no_grad():
                for _ in range(2):
                    step()
                torch.cuda.synchronize()
                eager = self.timed_row(step, 8 if small else 4, mode="eager", **kw)
                g = _capture_graph(torch, step)
                graph = self.timed_row(g.replay, 15 if small else 6, mode="graph", **kw)
                if (b, ctx) in E2E_PROFILED["decode"]:
                    self.profile(step, f"decode b{b} ctx{ctx}", note="torch.profiler CUDA kernels of one eager step",
                                 **kw)
                del g
            log(f"e2e {self.name_f} decode b{b} ctx{ctx} L{nl}: eager {eager * 1e3:.2f} ms graph {graph * 1e3:.2f} ms")
        self.point("decode", b, ctx, measure)

    def prefill(self, b, L):
        torch, model = self.torch, self.model

        def measure(nl):
            cache = model.alloc_cache(b, L)
            ids = torch.randint(0, self.cfg["vocab"], (b, L), device="cuda")
            cos, sin = model.rope_tables(torch.arange(L, device="cuda"))
            step = lambda: model.forward(ids, cache, 0, cos, sin, True)  # noqa: E731
            kw = dict(phase="prefill", batch=b, seq=L, ctx=0, layers=nl, lm_head_tokens=b)
            with torch.no_grad():
                step(); torch.cuda.synchronize()
                med = self.timed_row(step, 5 if b * L <= 4096 else 3, mode="eager",
                                     note="lm_head on the last position of each sequence only", **kw)
                if (b, L) in E2E_PROFILED["prefill"]:
                    self.profile(step, f"prefill b{b} L{L}", **kw)
            log(f"e2e {self.name_f} prefill b{b} L{L} L{nl}: {med * 1e3:.2f} ms")
        self.point("prefill", b, L, measure)


def _capture_graph(torch, step):
    """A CUDA graph of step() (warmed on a side stream first, as capture requires), replayed once."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    g.replay(); torch.cuda.synchronize()
    return g


def section_e2e(torch, nvml, out, budget_s, policy, out_dir, models=("llama2_7b", "llama3_8b"),
                kv_budget=24e9, fusions=("eager", "engine"), points=None):
    """points: (decode (batch, ctx) list, prefill (batch, length) list); default the fit suite's."""
    decode_pts, prefill_pts = points or (E2E_DECODE, E2E_PREFILL)
    t_start = time.time()
    impl = f"sdpa:{policy[0]}" + (":gqa" if policy[1] else ":expand")
    prof_lines = []
    combos = [(name, fu) for name in models for fu in fusions]
    per_model = budget_s / len(combos)
    for mi, (name, fusion) in enumerate(combos):
        cfg = LLAMA[name]
        m_start = time.time()
        m_budget = per_model * (mi + 1) - (m_start - t_start)
        try:
            model = Llama(torch, cfg, cfg["layers"], policy, fusion=fusion)
        except Exception as exc:  # noqa: BLE001
            log(f"e2e {name} {fusion}: cannot build ({exc})")
            continue
        log(f"e2e {name} {fusion}: built in {time.time() - m_start:.1f}s, "
            f"mem {torch.cuda.memory_allocated() / 1e9:.1f} GB")
        base = dict(model=name, layers_full=cfg["layers"], hidden=cfg["hidden"], heads=cfg["heads"],
                    kv_heads=cfg["kv_heads"], head_dim=cfg["hidden"] // cfg["heads"],
                    intermediate=cfg["intermediate"], vocab=cfg["vocab"], attn_impl=impl, fusion=fusion)
        run = _E2EModel(torch, nvml, out, model, cfg, base, f"{name}/{fusion}", kv_budget, prof_lines)
        for (b, ctx) in decode_pts:
            if time.time() - m_start > m_budget * 0.6:
                log(f"e2e {run.name_f}: decode budget reached at b{b} ctx{ctx}")
                break
            run.decode(b, ctx)
        for (b, L) in prefill_pts:
            if time.time() - m_start > m_budget:
                log(f"e2e {run.name_f}: prefill budget reached at b{b} L{L}")
                break
            run.prefill(b, L)
        del model, run
        torch.cuda.empty_cache()
    with open(os.path.join(out_dir, "e2e_profile.txt"), "w") as f:
        f.write("\n".join(prof_lines) + "\n")
    log(f"e2e: done in {time.time() - t_start:.0f}s")


# ----------------------------------------------------------------------------- main

SECTIONS = ("env", "launch", "gemm", "attention", "elementwise", "energy", "e2e")
DEFAULT_BUDGET = {"gemm": 130, "attention": 120, "elementwise": 35, "energy": 55, "e2e": 240}


def refuse_existing(path) -> None:
    """SystemExit naming a non-empty measurement file that writing `path` would truncate."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        raise SystemExit(f"{path}: exists with {os.path.getsize(path)} bytes (an earlier run's measurements); "
                         f"expected a new, empty output folder (give another run name / folder)")


def run(out_dir, sections=SECTIONS, budgets=None, variant="default", flush_mb=1024, attention="default"):
    if variant in RETIRED_SUITES:  # before anything is measured or written
        raise SystemExit(f"error: --variant: got {variant!r}, retired unmeasured: {RETIRED_SUITES[variant]}")
    allowed = SUITE_SECTIONS.get(variant)
    other = [s for s in sections if allowed and s != "env" and s not in allowed]
    if other:
        raise SystemExit(f"error: --sections: got {','.join(other)} for --variant {variant}; expected only "
                         f"{','.join(SUITE_SECTIONS[variant])} (the sections that suite defines)")
    for name in ("ops.csv", "energy.csv", "e2e.csv"):  # before anything is measured or written
        refuse_existing(os.path.join(out_dir, name))
    torch = _lazy_torch()
    if not torch.cuda.is_available():
        raise SystemExit("cosim calibrate needs a CUDA GPU (torch.cuda.is_available() is False)")
    os.makedirs(out_dir, exist_ok=True)
    budgets = {**DEFAULT_BUDGET, **(budgets or {})}
    torch.backends.cuda.matmul.allow_tf32 = False
    nvml = Nvml()
    section_env(torch, nvml, out_dir)
    bench = Bench(torch, nvml, flush_mb)
    ops = CsvOut(os.path.join(out_dir, "ops.csv"), OPS_FIELDS)
    policy = attention_policy(torch, attention)
    log(f"attention policy: backend={policy[0]} native_gqa={policy[1]}")
    for sec in sections:
        t0 = time.time()
        try:
            if sec == "launch":
                section_launch(torch, bench, ops)
            elif sec == "gemm":
                section_gemm(torch, bench, ops, budgets["gemm"], variant)
            elif sec == "attention":
                # fit3 widens decode coverage of the default backend and FA2 only
                backends = ("default", "FLASH_ATTENTION") if variant == "fit3" else ATTN_BACKENDS
                section_attention(torch, bench, ops, budgets["attention"], policy, variant, backends, out_dir=out_dir)
            elif sec == "elementwise":
                section_elementwise(torch, bench, ops, budgets["elementwise"], variant)
            elif sec == "energy":
                en = CsvOut(os.path.join(out_dir, "energy.csv"), ENERGY_FIELDS)
                section_energy(torch, bench, nvml, en, budgets["energy"], policy, variant=variant)
            elif sec == "e2e":
                e2 = CsvOut(os.path.join(out_dir, "e2e.csv"), E2E_FIELDS)
                bench.flush_buf = None
                torch.cuda.empty_cache()
                if variant == "fit3":  # the engine-fused layer on a fit model (a smoke test before heldout3)
                    section_e2e(torch, nvml, e2, budgets["e2e"], policy, out_dir, models=("llama3_8b",),
                                fusions=("engine_fused",), points=(E2E_DECODE3[:4] + [(16, 4096)], [(1, 2048)]))
                elif variant == "heldout3":
                    section_e2e(torch, nvml, e2, budgets["e2e"], policy, out_dir, models=("llama3_2_3b", "qwen2_5_14b"),
                                fusions=("eager", "engine", "engine_fused"), points=E2E_POINTS[variant])
                elif variant in E2E_POINTS:
                    section_e2e(torch, nvml, e2, budgets["e2e"], policy, out_dir, models=("qwen2_5_7b", "llama2_13b"),
                                fusions=("eager", "engine", "engine_fused"), points=E2E_POINTS[variant])
                else:
                    models = ("qwen2_5_7b", "llama2_13b") if variant == "heldout" else ("llama2_7b", "llama3_8b")
                    section_e2e(torch, nvml, e2, budgets["e2e"], policy, out_dir, models=models)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            import traceback
            log(f"SECTION {sec} FAILED: {exc}\n{traceback.format_exc()}")
        log(f"section {sec} took {time.time() - t0:.0f}s; ops rows so far {ops.n}")
    with open(os.path.join(out_dir, "env.json")) as f:
        info = json.load(f)
    info["nvml_state_end"] = nvml.state()
    info["sections"] = list(sections)
    info["variant"] = variant
    info["flush_mb"] = flush_mb
    info["budgets_s"] = budgets
    info["attention_policy"] = {"backend": policy[0], "native_gqa": policy[1]}
    with open(os.path.join(out_dir, "env.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)
    log("all done")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--budget", action="append", default=[], help="section=seconds")
    ap.add_argument("--flush-mb", type=int, default=1024,
                    help="size of the buffer read before each timed launch: it evicts L2 AND gives the host "
                         "time to enqueue the measured launch (256 MB let Python-heavy launches slip past it)")
    ap.add_argument("--variant", choices=("default", "heldout", "heldout2", "energy2", "fit3", "heldout3", "fit4",
                                          "heldout4", "fit5", "heldout5", "fit6", "heldout6", "fit7", "heldout7", "fit8",
                                          "fit9", "fit10", "fit11", "fit12")
                    + tuple(HELDOUT8_DRAWS),
                    default="default",
                    help="heldout: a second suite with shapes the default suite does not have; heldout2: a "
                         "third, fresh one (shapes in neither)")
    ap.add_argument("--attention", default="default",
                    help="SDPA backend of the energy and end-to-end sections: default (PyTorch's choice), "
                         "FLASH_ATTENTION (the H100 runs), CUDNN_ATTENTION")
    a = ap.parse_args(argv)
    budgets = {k: float(v) for k, v in (b.split("=") for b in a.budget)}
    secs = [s for s in a.sections.split(",") if s and s != "env"]
    run(a.out, secs, budgets, a.variant, a.flush_mb, a.attention)


if __name__ == "__main__":
    main()
