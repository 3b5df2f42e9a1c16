"""The microbenchmark's environment record names the physical GPU (NVML UUID and serial), so a run's speed offset
(validation/run_offsets.py) can be told apart from its shapes: lent machines differ from run to run (session 22)."""
import hashlib
from types import SimpleNamespace

from cosim.calibrate.microbench import Nvml


def _fake_nvml(serial_error=False):
    def serial(h):
        if serial_error:
            raise RuntimeError("not supported")
        return b"1652223012345"
    nv = SimpleNamespace(NVML_CLOCK_SM=0, NVML_CLOCK_MEM=1,
                         nvmlSystemGetDriverVersion=lambda: b"580.159.04",
                         nvmlDeviceGetMaxClockInfo=lambda h, c: 1980 if c == 0 else 2619,
                         nvmlDeviceGetPowerManagementLimit=lambda h: 700000,
                         nvmlDeviceGetName=lambda h: b"NVIDIA H100 80GB HBM3",
                         nvmlDeviceGetCurrPcieLinkGeneration=lambda h: 5,
                         nvmlDeviceGetUUID=lambda h: b"GPU-5e1b2c3d-0000-1111-2222-333344445555",
                         nvmlDeviceGetSerial=serial)
    n = Nvml.__new__(Nvml)
    n.nv, n.h = nv, object()
    return n


def test_static_info_names_the_physical_gpu():
    info = _fake_nvml().static_info()
    want = hashlib.sha256(b"GPU-5e1b2c3d-0000-1111-2222-333344445555").hexdigest()[:12]
    assert info["uuid_sha256"] == want and info["serial_sha256"] == hashlib.sha256(b"1652223012345").hexdigest()[:12]
    assert "GPU-5e1b2c3d" not in str(info)  # the identifier itself is not published
    assert info["power_limit_w"] == 700.0 and info["name"] == "NVIDIA H100 80GB HBM3"


def test_a_reading_nvml_cannot_give_is_marked_not_dropped():
    info = _fake_nvml(serial_error=True).static_info()
    assert info["serial_sha256"] == "n/a (RuntimeError)" and len(info["uuid_sha256"]) == 12
