"""BERT-style encoder forward pass (post-norm, GELU, learned positions) on a real
checkpoint, every GEMM's operands through the functional core's quantizers."""

from __future__ import annotations

import math

import numpy as np

from cosim.functional.metrics import sqnr_db
from cosim.functional.softmax import softmax

from ..checkpoint import Checkpoint
from .numerics import Numerics

__all__ = ["EncoderLM"]

_MATS = ("q", "k", "v", "o", "mlp_up", "mlp_down")


def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = np.mean(np.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(eps)) * w + b


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), in float64: numpy has no erf."""
    x = np.asarray(x, np.float64)
    s, a = np.sign(x), np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def gelu(x):
    """Exact (erf) GELU, BERT's `gelu`."""
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)


class EncoderLM:
    def __init__(self, ck: Checkpoint, numerics: Numerics | None = None):
        if ck.config.arch != "bert":
            raise ValueError(f"{ck.path}: {ck.config.arch} is not an encoder; use DecoderLM")
        self.ck, self.c, self.num = ck, ck.config, numerics or Numerics()
        self.W, self.weight_sqnr_db = {}, []
        for i in range(self.c.layers):
            sq = []
            for m in _MATS:
                n = f"layers.{i}.{m}"
                w = ck.tensor(n)
                self.W[n] = self.num.weight(w)
                if self.W[n] is not w:
                    sq.append(sqnr_db(w, self.W[n]))
            self.weight_sqnr_db.append(float(np.mean(sq)) if sq else float("inf"))

    def linear(self, x, name):
        return self.num.act(x) @ self.W[name].T + self.ck.tensor(name + "_bias" if name.endswith(("q", "k", "v", "o"))
                                                                  else name + "_b")

    def forward(self, ids: np.ndarray, collect_hidden: bool = False):
        """ids (N,) one sequence ([CLS] ... [SEP]) -> (last hidden state (N, hidden), per-layer hiddens)."""
        c, t = self.c, self.ck.tensor
        ids = np.asarray(ids, np.int64)
        N = ids.size
        if N > c.max_positions:
            raise ValueError(f"{N} tokens exceed the encoder's {c.max_positions} positions")
        h = t("embed")[ids] + t("pos_embed")[:N]
        if c.type_vocab:
            h = h + t("type_embed")[0]
        h = layer_norm(h, t("embed_norm"), t("embed_norm_b"), c.norm_eps).astype(np.float32)
        hidden = []
        for i in range(c.layers):
            p = f"layers.{i}."
            q = self.linear(h, p + "q").reshape(N, c.heads, c.head_dim)
            k = self.linear(h, p + "k").reshape(N, c.heads, c.head_dim)
            v = self.linear(h, p + "v").reshape(N, c.heads, c.head_dim)
            a = _bidirectional(self.num.attn_operand(q), self.num.attn_operand(k), self.num.attn_operand(v, axis=0))
            h = layer_norm(h + self.linear(a.reshape(N, -1), p + "o"), t(p + "attn_norm"), t(p + "attn_norm_b"),
                           c.norm_eps)
            m = self.linear(gelu(self.linear(h, p + "mlp_up")), p + "mlp_down")
            h = layer_norm(h + m, t(p + "mlp_norm"), t(p + "mlp_norm_b"), c.norm_eps).astype(np.float32)
            if collect_hidden:
                hidden.append(h.copy())
        return h, hidden


def _bidirectional(q, k, v):
    s = np.einsum("nhd,mhd->hnm", q, k) / np.float32(np.sqrt(q.shape[-1]))
    p = softmax(s, inplace=True)
    return np.einsum("hnm,mhd->nhd", p, v).astype(np.float32)
