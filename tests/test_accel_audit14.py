"""Session-14 accelerator audit: each defect pinned with a hand-checkable number or message."""

import pytest
import yaml

from cosim.dse import load_sweep
from workloads.io import InputError

MX = {"model": "llama3_8b", "hw": "mx_systolic_128", "seq": 1024, "weights": "mxfp4", "acts": "mxfp8_e4m3"}


def _sweep_err(tmp_path, doc):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), **doc}))
    with pytest.raises(InputError) as e:
        load_sweep(p)
    assert not (tmp_path / "out").exists()
    return str(e.value), str(p)


@pytest.mark.parametrize("field,values", [("hw.accelerator.rows", [64, 128]),
                                          ("hw.accelerator.sram.ifmap", ["4 MiB", "8 MiB"])])
def test_roofline_sweep_over_accelerator_axes_is_refused(tmp_path, field, values):
    # the roofline never reads accelerator:, so every row would be identical; refused like area_mm2
    msg, path = _sweep_err(tmp_path, {"base": {**MX, "level": "roofline"}, "axes": [{"grid": {field: values}}]})
    assert path in msg and f"axes[0].grid.{field}" in msg and "level: cycle" in msg and "accelerator:" in msg
    msg, _ = _sweep_err(tmp_path, {"base": {**MX, "level": "roofline"},
                                   "axes": [{"random": {"samples": 2, "fields": {"hw.accelerator.rows": [64, 128]}}}]})
    assert "axes[0].random.hw.accelerator.rows" in msg


def test_accelerator_axes_accepted_when_a_point_is_cycle(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"output": str(tmp_path / "out"), "base": {**MX, "level": "roofline"},
                                 "axes": [{"grid": {"level": ["roofline", "cycle"], "hw.accelerator.rows": [64, 128]}}]}))
    assert load_sweep(p)
