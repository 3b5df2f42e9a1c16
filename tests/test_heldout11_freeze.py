"""heldout11 is frozen at 7afb60e (validation/heldout11_rules.md) and not yet measured: the H200 model on main
must price its cases exactly as the frozen model does, or the suite stops being a clean test of it. The digest
below was computed at 7afb60e and at the commit that added this test (equal: 1,440 prices, 268 attention cases x
4 implementations and 184 GEMMs x bf16/fp8; elementwise cases are not covered here). A model change that moves
one of these prices must re-freeze and draw a new suite (or score heldout11 with the 7afb60e model through
cosim.calibrate.frozen_commit), not edit this digest."""

import hashlib
import json

from cosim.calibrate import dataset
from cosim.calibrate.suite_digest import suite_cases
from hwmodels import gpu
from hwmodels.spec import hw_path, load_hw

FROZEN_PRICES = "4ea3eb813431d4710afbab777b0af9863664e1a864205e39257b708d5be52855"
IMPLS = ("sdpa:default", "sdpa:CUDNN_ATTENTION", "sdpa:FLASH_ATTENTION", "unfused")


def heldout11_prices() -> list[str]:
    hw = load_hw(hw_path("h200"))
    params = gpu.params_for(hw)
    cases = suite_cases("heldout11")
    rows = []
    for (_phase, b, h, kvh, d, ql, kl, causal) in cases["attention"]:
        dims = {"batch": b, "heads": h, "kv_heads": kvh, "q_len": ql, "kv_len": kl, "head_dim": d, "causal": causal}
        rows += [{"kind": "attention", "fmt": "bf16", "impl": impl, "dims": json.dumps(dims)} for impl in IMPLS]
    for (m, n, k) in cases["gemm"]:
        rows += [{"kind": "gemm", "fmt": fmt, "impl": "", "dims": json.dumps({"m": m, "n": n, "k": k})}
                 for fmt in ("bf16", "fp8_e4m3")]
    # 6 significant digits: a price moved by a model change differs far above that; libm ulps do not
    return [f"{gpu.estimate(dataset.op_from_row(r), hw, params=params).details['isolated_s']:.5e}" for r in rows]


def test_main_prices_heldout11_as_the_frozen_model():
    prices = heldout11_prices()
    assert len(prices) == 1440
    assert hashlib.sha256("\n".join(prices).encode()).hexdigest() == FROZEN_PRICES
