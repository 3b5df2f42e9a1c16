"""`cosim validate` says when the model it scores was not calibrated on the GPU that was measured."""

from pathlib import Path

from cosim.validate import measured_devices, validate

H100 = Path("validation/h100_ops.csv")


def test_measured_devices_read_from_the_sibling_env_json(tmp_path):
    assert measured_devices(H100) == ["NVIDIA H100 80GB HBM3"]
    assert measured_devices(Path("validation/h200_runs.csv")) == ["NVIDIA H200"]
    lone = tmp_path / "x_ops.csv"
    lone.write_text(H100.read_text().splitlines()[0] + "\n")
    assert measured_devices(lone) == []  # no x_env.json beside it: nothing to say


def _cross(res):
    return [n for n in res.notes if n.startswith("cross-device")]


def test_cross_device_note_only_where_the_calibration_is_of_another_device():
    assert _cross(validate("h100_sxm", H100)) == []  # its own calibration's GPU
    assert _cross(validate("mi300x", H100)) == [
        "cross-device: the measurements were taken on NVIDIA H100 80GB HBM3; mi300x is priced with "
        "no analytical calibration"]
    assert _cross(validate("h200", H100))[0].endswith("h200 is priced with calibrated:NVIDIA H200")
    assert _cross(validate("b200", H100))[0].endswith("b200 is priced with transferred from h100_sxm")
