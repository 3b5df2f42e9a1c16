"""Measured error of a family transfer: one GPU's calibration, transferred to a sibling by
its datasheet (hwmodels.gpu_transfer), scored on the sibling's own measurements.

    transfer_validate("h200", "h100_sxm", "validation/h200_runs.csv")   # H100 params -> H200 kernels
    transfer_validate("h100_sxm", "h200", "validation/h100_ops.csv")   # H200 params -> H100 kernels
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hwmodels.spec import hw_path, load_hw

__all__ = ["transferred_spec", "transfer_validate"]


def transferred_spec(target: str, sibling: str, sm_count: int):
    """`target`'s datasheet with `calibration: {from: sibling, sm_count}` instead of its own."""
    text = Path(hw_path(target)).read_text()
    text = re.sub(r"(?m)^calibration:.*$", "", text)
    text += f"\ncalibration: {{from: {sibling}, sm_count: {int(sm_count)}}}\n"
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / f"{target}_from_{sibling}.yaml"
        p.write_text(text)
        return load_hw(p)


def transfer_validate(target: str, sibling: str, measurements, split: str = "test", sm_count: int | None = None,
                      include_unreliable: bool = True) -> dict:
    from cosim.validate import validate
    from hwmodels import gpu
    sms = sm_count or gpu.params_for(load_hw(target)).sm_count
    return validate(transferred_spec(target, sibling, sms), measurements, split=split,
                    include_unreliable=include_unreliable)
