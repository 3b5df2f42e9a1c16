"""Measure a real continuous-batching run of a Llama-shaped model in plain PyTorch.

Llama-3-8B shape (random bf16 weights: timing does not depend on their values), a static
KV cache of `slots` sequences x `max_len` tokens, CUDA graphs for decode steps (one graph
per padded batch size x padded context length), greedy next token. Scheduler: at every
iteration, arrived requests are admitted into free slots and prefilled one after another
(eager, flash attention through SDPA), then all active sequences decode one token (vLLM-
style prefill priority, as cosim's `continuous` policy). Requests come from a Poisson trace
at each QPS value; per-request TTFT / TPOT / end-to-end times are written as CSV, plus
isolated prefill and decode step times.

    python measure_serving.py --out DIR                      # H200: Llama-3-8B shape
    python measure_serving.py --out DIR --tiny --device cpu  # dry run
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F

LLAMA3_8B = dict(hidden=4096, layers=32, heads=32, kv_heads=8, inter=14336, vocab=128256, rope_theta=500000.0)
TINY = dict(hidden=256, layers=2, heads=4, kv_heads=2, inter=512, vocab=1000, rope_theta=500000.0)
BATCH_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
LEN_BUCKET = 256


class Model:
    def __init__(self, c, slots, max_len, device, dtype):
        self.c, self.dev, self.dtype, self.slots, self.max_len = c, device, dtype, slots, max_len
        h, H, KV, I, V = c["hidden"], c["heads"], c["kv_heads"], c["inter"], c["vocab"]
        self.D = D = h // H
        g = torch.Generator(device=device).manual_seed(0)

        def w(*shape):
            return (torch.randn(*shape, generator=g, device=device, dtype=torch.float32) * 0.02).to(dtype)
        self.embed, self.lm_head, self.final_norm = w(V, h), w(h, V), torch.ones(h, device=device, dtype=dtype)
        self.layers = [dict(wqkv=w(h, (H + 2 * KV) * D), wo=w(H * D, h), wgu=w(h, 2 * I), wd=w(I, h),
                            n1=torch.ones(h, device=device, dtype=dtype), n2=torch.ones(h, device=device, dtype=dtype))
                       for _ in range(c["layers"])]
        self.k = torch.zeros(c["layers"], slots, max_len, KV, D, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, device=device, dtype=torch.float32) / D))
        ang = torch.arange(max_len, device=device, dtype=torch.float32)[:, None] * inv[None, :]
        self.cos, self.sin = ang.cos().to(dtype), ang.sin().to(dtype)

    @staticmethod
    def norm(x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(x.dtype) * w

    def rope(self, x, pos):  # x (T, heads, D), pos (T,)
        c, s = self.cos[pos][:, None, :], self.sin[pos][:, None, :]
        x1, x2 = x[..., ::2], x[..., 1::2]
        return torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1).flatten(-2)

    def _qkv(self, x, L, pos):
        H, KV, D = self.c["heads"], self.c["kv_heads"], self.D
        qkv = self.norm(x, L["n1"]) @ L["wqkv"]
        q, k, v = qkv.split((H * D, KV * D, KV * D), dim=-1)
        T = x.shape[0]
        return self.rope(q.view(T, H, D), pos), self.rope(k.view(T, KV, D), pos), v.view(T, KV, D)

    def _mlp(self, x, L):
        gu = self.norm(x, L["n2"]) @ L["wgu"]
        g, u = gu.chunk(2, dim=-1)
        return x + (F.silu(g) * u) @ L["wd"]

    def prefill(self, tokens, slot):
        T = tokens.shape[0]
        pos = torch.arange(T, device=self.dev)
        x = self.embed[tokens]
        for i, L in enumerate(self.layers):
            q, k, v = self._qkv(x, L, pos)
            self.k[i, slot, :T], self.v[i, slot, :T] = k, v
            o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None],
                                               v.transpose(0, 1)[None], is_causal=True, enable_gqa=True)
            x = x + o[0].transpose(0, 1).reshape(T, -1) @ L["wo"]
            x = self._mlp(x, L)
        return (self.norm(x[-1:], self.final_norm) @ self.lm_head).argmax(-1)

    def decode(self, tokens, pos, Lb):
        """tokens, pos: (B,) for slots 0..B-1; attends over the first Lb cache positions."""
        B = tokens.shape[0]
        x = self.embed[tokens]
        slot = torch.arange(B, device=self.dev)
        mask = (torch.arange(Lb, device=self.dev)[None, :] <= pos[:, None])[:, None, None, :]
        for i, L in enumerate(self.layers):
            q, k, v = self._qkv(x, L, pos)
            self.k[i, slot, pos], self.v[i, slot, pos] = k, v
            o = F.scaled_dot_product_attention(q[:, :, None, :], self.k[i, :B, :Lb].transpose(1, 2),
                                               self.v[i, :B, :Lb].transpose(1, 2), attn_mask=mask, enable_gqa=True)
            x = x + o.reshape(B, -1) @ L["wo"]
            x = self._mlp(x, L)
        return (self.norm(x, self.final_norm) @ self.lm_head).argmax(-1)

    def move_slot(self, src, dst, n):
        self.k[:, dst, :n] = self.k[:, src, :n]
        self.v[:, dst, :n] = self.v[:, src, :n]


class Decoder:
    """Decode steps through CUDA graphs keyed by (padded batch, padded length)."""

    def __init__(self, model, graphs):
        self.m, self.graphs = model, graphs
        n = model.slots
        self.tok = torch.zeros(n, dtype=torch.long, device=model.dev)
        self.pos = torch.zeros(n, dtype=torch.long, device=model.dev)
        self.cache, self.pool = {}, None
        self.capture_s = 0.0
        self.failed = None

    def step(self, tokens, pos):
        B = len(tokens)
        Bb = next(b for b in BATCH_BUCKETS if b >= B)
        Bb = min(Bb, self.m.slots)
        Lb = min(self.m.max_len, LEN_BUCKET * math.ceil((max(pos) + 1) / LEN_BUCKET))
        self.tok.zero_()
        self.pos.zero_()
        self.tok[:B] = torch.tensor(tokens, device=self.m.dev)
        self.pos[:B] = torch.tensor(pos, device=self.m.dev)
        if not self.graphs:
            return self.m.decode(self.tok[:Bb], self.pos[:Bb], Lb)[:B], (Bb, Lb)
        key = (Bb, Lb)
        if key not in self.cache:
            try:
                self._capture(key, Bb, Lb)
            except Exception as e:  # one run on the device: record the failure, go on eagerly
                print(f"CUDA graph capture failed for {key}: {e!r}; decoding eagerly", flush=True)
                self.graphs, self.failed = False, repr(e)
                torch.cuda.synchronize()
                return self.m.decode(self.tok[:Bb], self.pos[:Bb], Lb)[:B], (Bb, Lb)
        g, out = self.cache[key]
        g.replay()
        return out[:B], key

    def _capture(self, key, Bb, Lb):
        t = time.perf_counter()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                self.m.decode(self.tok[:Bb], self.pos[:Bb], Lb)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        with torch.cuda.graph(g, pool=self.pool):
            out = self.m.decode(self.tok[:Bb], self.pos[:Bb], Lb)
        self.cache[key] = (g, out)
        torch.cuda.synchronize()
        self.capture_s += time.perf_counter() - t


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def run_trace(model, dec, reqs, dev, vocab, limit_s=float("inf")):
    """Continuous batching over a request list [(rid, arrival_s, prompt_len, output_len)]."""
    rng = np.random.default_rng(1)
    waiting, active, out, steps = deque(), [], {}, []
    i, n = 0, len(reqs)
    t0 = time.perf_counter()
    now = lambda: time.perf_counter() - t0
    while len(out) < n:
        t = now()
        if t > limit_s:  # device time is budgeted: keep what finished, say so in meta.json
            break
        while i < n and reqs[i][1] <= t:
            waiting.append(reqs[i])
            i += 1
        while waiting and len(active) < model.slots:
            rid, arr, pl, ol = waiting.popleft()
            slot = len(active)
            ts = now()
            tok = model.prefill(torch.from_numpy(rng.integers(0, vocab, pl)).to(dev), slot)
            sync(dev)
            te = now()
            steps.append(("prefill", ts, te - ts, 1, pl))
            r = dict(rid=rid, arrival_s=arr, prompt_len=pl, output_len=ol, first_token_s=te, generated=1,
                     pos=pl, last=int(tok.item()), start_s=ts)
            if ol == 1:
                r["finish_s"] = te
                out[rid] = r
            else:
                active.append(r)
        if not active:
            if i < n:
                time.sleep(max(0.0, min(reqs[i][1] - now(), 0.01)))
            continue
        ts = now()
        toks, key = dec.step([r["last"] for r in active], [r["pos"] for r in active])
        toks = toks.tolist()  # synchronises
        te = now()
        steps.append(("decode", ts, te - ts, len(active), key[1]))
        keep = []
        for r, tk in zip(active, toks):
            r["generated"] += 1
            r["pos"] += 1
            r["last"] = tk
            if r["generated"] >= r["output_len"]:
                r["finish_s"] = te
                out[r["rid"]] = r
            else:
                keep.append(r)
        # compact: surviving sequences move to slots 0..len(keep)-1
        for new, r in enumerate(keep):
            old = active.index(r)
            if old != new:
                model.move_slot(old, new, r["pos"])
        active = keep
    return [out[r[0]] for r in reqs if r[0] in out], steps


def poisson(lengths, qps, n, seed):
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / qps, n)
    t = np.cumsum(gaps) - gaps[0]
    idx = rng.integers(0, len(lengths), n)
    return [(k, float(t[k]), int(lengths[j][0]), int(lengths[j][1])) for k, j in enumerate(idx)]


def isolated(model, dec, dev, vocab, reps=5):
    """Step times outside the scheduler: prefill of one prompt, decode of B sequences."""
    res = []
    for L in (128, 512, 1024):
        if L > model.max_len:
            continue
        tok = torch.randint(0, vocab, (L,), device=dev)
        model.prefill(tok, 0)
        sync(dev)
        t = time.perf_counter()
        for _ in range(reps):
            model.prefill(tok, 0)
        sync(dev)
        res.append({"kind": "prefill", "batch": 1, "context": L, "time_s": (time.perf_counter() - t) / reps})
    for B in (1, 8, 32):
        for L in (256, 1024):
            if B > model.slots or L > model.max_len:
                continue
            dec.step([1] * B, [L - 1] * B)
            sync(dev)
            t = time.perf_counter()
            for _ in range(reps):
                dec.step([1] * B, [L - 1] * B)
            sync(dev)
            res.append({"kind": "decode", "batch": B, "context": L, "time_s": (time.perf_counter() - t) / reps})
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--qps", default="2,8")
    ap.add_argument("--requests", default="120,240")
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--max-prompt", type=int, default=1024)
    ap.add_argument("--max-output", type=int, default=1000)
    ap.add_argument("--lengths", default="sharegpt_synth.csv")
    ap.add_argument("--limit-s", type=float, default=110.0, help="wall limit per QPS run")
    args = ap.parse_args()
    c = TINY if args.tiny else LLAMA3_8B
    dev, dtype = args.device, (torch.bfloat16 if args.device.startswith("cuda") else torch.float32)
    max_len = args.max_prompt + args.max_output + LEN_BUCKET
    t = time.perf_counter()
    model = Model(c, args.slots, max_len, dev, dtype)
    dec = Decoder(model, graphs=dev.startswith("cuda"))
    setup_s = time.perf_counter() - t
    rows = list(csv.DictReader(open(args.lengths)))
    lengths = [(min(int(r["prompt_len"]), args.max_prompt), min(int(r["output_len"]), args.max_output)) for r in rows]
    meta = {"model": "llama3_8b shape" if not args.tiny else "tiny", "slots": args.slots, "max_len": max_len,
            "device": torch.cuda.get_device_name() if dev.startswith("cuda") else "cpu",
            "torch": torch.__version__, "setup_s": setup_s, "runs": []}
    iso = isolated(model, dec, dev, c["vocab"])
    meta["isolated"] = iso
    for j, (q, n) in enumerate(zip(map(float, args.qps.split(",")), map(int, args.requests.split(",")))):
        reqs = poisson(lengths, q, n, seed=100 + j)
        # warm the graphs this run will need is not possible in advance; capture time is logged
        cap0 = dec.capture_s
        t = time.perf_counter()
        res, steps = run_trace(model, dec, reqs, dev, c["vocab"], args.limit_s)
        wall = time.perf_counter() - t
        with open(f"{args.out}/requests_qps{q:g}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rid", "arrival_s", "prompt_len", "output_len", "ttft_s", "tpot_s", "e2e_s", "queueing_s"])
            for r in res:
                tpot = (r["finish_s"] - r["first_token_s"]) / (r["output_len"] - 1) if r["output_len"] > 1 else 0.0
                w.writerow([r["rid"], f"{r['arrival_s']:.6f}", r["prompt_len"], r["output_len"],
                            f"{r['first_token_s'] - r['arrival_s']:.6f}", f"{tpot:.6f}",
                            f"{r['finish_s'] - r['arrival_s']:.6f}", f"{r['start_s'] - r['arrival_s']:.6f}"])
        with open(f"{args.out}/steps_qps{q:g}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "start_s", "duration_s", "batch", "tokens_or_padded_len"])
            w.writerows(steps)
        meta["runs"].append({"qps": q, "requests": n, "finished": len(res), "wall_s": wall,
                             "graph_capture_s": dec.capture_s - cap0, "graph_failure": dec.failed})
        json.dump(meta, open(f"{args.out}/meta.json", "w"), indent=1)
        print(f"qps {q}: {n} requests in {wall:.1f} s (graph capture {dec.capture_s - cap0:.1f} s)", flush=True)
    meta["isolated"] = iso
    json.dump(meta, open(f"{args.out}/meta.json", "w"), indent=1)
    print(json.dumps(iso, indent=0))


if __name__ == "__main__":
    main()
